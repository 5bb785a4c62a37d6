#!/usr/bin/env bash
# Encoder benchmark: candle (both matmul modes) and PyTorch on the same texts,
# weights, tokenizer, pooling and thread count. Prints a markdown table.
#   eval/bench/encoder.sh            (TRIAGE_DATA defaults to ../shared/data)
# Needs a Python with torch, transformers, tokenizers, numpy: PYTHON=... to choose.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=$(realpath "${TRIAGE_DATA:-../shared/data}")
THREADS=${THREADS:-$(nproc)}
PYTHON=${PYTHON:-python3}
MODEL_DIR=${TRIAGE_MODEL_DIR:-$HOME/.cache/triage/models/multilingual-e5-small}
out=$(mktemp -d)
cargo build --release -q -p triage-server && ./target/release/triage model fetch --model-dir "$MODEL_DIR" >/dev/null
for mode in quantized f32; do
  TRIAGE_BENCH_MODE=$mode TRIAGE_DATA=$DATA TRIAGE_MODEL_DIR=$MODEL_DIR RAYON_NUM_THREADS=$THREADS \
    cargo bench -q -p triage-encoder --bench encoder 2>/dev/null | tail -n 1 > "$out/$mode.json"
done
OMP_NUM_THREADS=$THREADS $PYTHON eval/bench/e5_torch.py bench --model-dir "$MODEL_DIR" \
  --texts "$DATA/dev.jsonl" --threads "$THREADS" --out "$out/torch.json" >/dev/null
$PYTHON - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
r = {k: json.load(open(os.path.join(d, k + ".json"))) for k in ("quantized", "f32", "torch")}
t = r["torch"]
print("| engine | threads | single p50 ms | single p99 ms | batch texts/s | batch tokens/s | x PyTorch (texts/s) | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|")
for k in ("quantized", "f32", "torch"):
    x = r[k]
    print(f"| {x['engine']} | {x['threads']} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['texts_per_s']:.1f} | "
          f"{x['tokens_per_s']:.0f} | {x['texts_per_s']/t['texts_per_s']:.2f} | {x['peak_rss_mb']:.0f} |")
print(f"\n{r['quantized']['batch_texts']} texts, {r['quantized']['batch_tokens']} tokens; single-text set: {r['quantized']['single_n']} texts of 120-180 characters.")
PY
