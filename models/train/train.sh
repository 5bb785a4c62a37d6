#!/usr/bin/env bash
# Trains the shipped risk model from the repository's data, on the CPU:
#
#   TRIAGE_RISK_VERSION=risk-2.6 models/train/train.sh
#
# 1. a pinned Python environment in ~/.cache/triage/train-venv (requirements.txt);
# 2. finetune.py, twice: LoRA fine-tuning of multilingual-e5-small with the
#    heads, from one initialisation (seed 13), once on the training writers
#    risk-2.2 had and once on every training writer (about 40 and 47 minutes
#    on 2 cores), each into target/finetune/run-*;
# 3. soup.py: the mean of the two runs, one delta (still one encoder pass),
#    writing models/delta/ (the delta and the merge fixture) and the scored
#    splits in target/finetune/ (EVALUATION.md says why two runs);
# 4. calibrate.py: thresholds on the calibration split, writing
#    models/heads/risk.json and the delta's hash into models/manifest.toml.
#
# Then `cargo build --release` compiles the new model in, and
# `eval/evaluate.sh` reports it. The encoder files come from `triage model
# fetch` (TRIAGE_MODEL_DIR to override); the labelled sets from ../shared/data
# (TRIAGE_DATA). Extra arguments go to both finetune.py runs (see its
# --help), except those that would make the two runs one or move their files.
# The shipped runs used 2 threads (finetune.py's default is every core); the
# thread count changes floating-point sums, so pass --threads 2 to repeat
# them exactly.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The version the new heads file names, asked for before the hour of training.
version="${TRIAGE_RISK_VERSION:?set TRIAGE_RISK_VERSION to the new model version, e.g. risk-2.6}"
for arg in "$@"; do
  case "$arg" in
    --train-writers* | --out* | --scores-dir* | --splits*)
      echo "train.sh sets $arg itself (run A: risk-2.2's writers, run B: every training writer)" >&2
      exit 2 ;;
  esac
done
venv="${TRIAGE_TRAIN_VENV:-$HOME/.cache/triage/train-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r models/train/requirements.txt
fi
model_dir="${TRIAGE_MODEL_DIR:-$HOME/.cache/triage/models/multilingual-e5-small}"
cargo run --release -q -- model fetch --model-dir "$model_dir" >/dev/null
runs=target/finetune
"$venv/bin/python" models/train/finetune.py --model-dir "$model_dir" --splits calib \
  --train-writers w1,w2,w3,w5,w8,w9,w10,w11,w12 --out "$runs/run-a" --scores-dir "$runs/run-a" "$@"
"$venv/bin/python" models/train/finetune.py --model-dir "$model_dir" --splits calib \
  --out "$runs/run-b" --scores-dir "$runs/run-b" "$@"
"$venv/bin/python" models/train/soup.py --model-dir "$model_dir" --from "$runs/run-a" --from "$runs/run-b" \
  --out models/delta --scores-dir "$runs" --splits calib,test,dev
"$venv/bin/python" models/train/calibrate.py --version "$version"
