#!/usr/bin/env bash
# Encoder benchmark, every engine in one run on the same texts, weights,
# tokenizer, pooling and thread count: triage's f32 and int8 paths, PyTorch f32
# and ONNX Runtime int8 (dynamic quantization of the same weights exported
# from PyTorch); then the int8 kernel microbenchmark on one thread. Prints
# markdown tables.
#   eval/bench/encoder.sh            (TRIAGE_DATA defaults to ../shared/data)
# Needs a Python with torch, transformers, tokenizers, numpy, onnx, onnxruntime:
# PYTHON=... to choose. MODES="quantized f32 int8" adds candle's Q4_0 path (slow).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=$(realpath "${TRIAGE_DATA:-../shared/data}")
THREADS=${THREADS:-$(nproc)}
PYTHON=${PYTHON:-python3}
MODES=${MODES:-f32 int8}
MODEL_DIR=${TRIAGE_MODEL_DIR:-$HOME/.cache/triage/models/multilingual-e5-small}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The machine may be shared: the load average before and after says how much.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
REAL=()
[ -f "$DATA/real/gov_messages.jsonl" ] && REAL=(--real "$DATA/real/gov_messages.jsonl")
cargo build --release -q -p triage-server && ./target/release/triage model fetch --model-dir "$MODEL_DIR" >/dev/null
cargo bench -q -p triage-encoder --no-run 2>/dev/null
engines=()
for mode in $MODES; do
  TRIAGE_BENCH_MODE=$mode TRIAGE_DATA=$DATA TRIAGE_MODEL_DIR=$MODEL_DIR RAYON_NUM_THREADS=$THREADS \
    cargo bench -q -p triage-encoder --bench encoder 2>/dev/null | tail -n 1 > "$out/$mode.json"
  engines+=("$mode")
done
OMP_NUM_THREADS=$THREADS $PYTHON eval/bench/e5_torch.py bench --model-dir "$MODEL_DIR" \
  --texts "$DATA/dev.jsonl" "${REAL[@]}" --threads "$THREADS" --out "$out/torch.json" >/dev/null
$PYTHON eval/bench/e5_torch.py onnx-export --model-dir "$MODEL_DIR" --out "$out/e5-int8.onnx" >/dev/null 2>&1
OMP_NUM_THREADS=$THREADS $PYTHON eval/bench/e5_torch.py bench --onnx "$out/e5-int8.onnx" --model-dir "$MODEL_DIR" \
  --texts "$DATA/dev.jsonl" "${REAL[@]}" --threads "$THREADS" --out "$out/onnx.json" >/dev/null
RAYON_NUM_THREADS=1 cargo bench -q -p triage-encoder --bench int8 2>/dev/null > "$out/kernels.jsonl"
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
echo
$PYTHON - "$out" "${engines[@]}" torch onnx <<'PY'
import json, sys, os
import numpy as np
d, names = sys.argv[1], sys.argv[2:]
r = {k: json.load(open(os.path.join(d, k + ".json"))) for k in names}
t = r["torch"]
ref = np.array(t["single_vectors"])
print("| engine | threads | single p50 ms | single p99 ms | dev texts/s | dev tokens/s | x PyTorch (dev) | real texts/s | x PyTorch (real) | min cosine to PyTorch | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for k in names:
    x = r[k]
    cos = np.min(np.sum(np.array(x["single_vectors"]) * ref, axis=1))
    real = f"{x['real_texts_per_s']:.1f} | {x['real_texts_per_s'] / t['real_texts_per_s']:.2f}" if "real_texts_per_s" in x else "- | -"
    print(f"| {x['engine']} | {x['threads']} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['texts_per_s']:.1f} | "
          f"{x['tokens_per_s']:.0f} | {x['texts_per_s'] / t['texts_per_s']:.2f} | {real} | {cos:.4f} | {x['peak_rss_mb']:.0f} |")
x = r[names[0]]
print(f"\ndev: {x['batch_texts']} texts, {x['batch_tokens']} tokens; single-text set: {x['single_n']} dev texts of "
      f"120-180 characters" + (f"; real: {x['real_texts']} messages, {x['real_tokens']} tokens (512 at most each)." if "real_texts" in x else "."))
print("\nint8 kernels, one thread (best of the repeats), G multiply-adds/s:\n")
print("| kernel | layer | m x n x k | µs | G/s per core | % of the kernel's peak |")
print("|---|---|---|---|---|---|")
for l in open(os.path.join(d, "kernels.jsonl")):
    k = json.loads(l)
    peak = f"{100 * k['gmacs_per_s_per_core'] / k['peak_gmacs_per_s']:.0f} % of {k['peak_gmacs_per_s']:.0f}" if k.get("peak_gmacs_per_s") else "-"
    print(f"| {k['kernel']} | {k['layer']} | {k['m']} x {k['n']} x {k['k']} | {k['best_us']:.0f} | {k['gmacs_per_s_per_core']:.1f} | {peak} |")
PY
