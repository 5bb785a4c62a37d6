#!/usr/bin/env bash
# The shipped model's figures on the sets no choice was made on: the held-out
# corpus writers, the held-out labelled real messages, and dev. One command:
#
#   eval/evaluate.sh [OUT_DIR]        # default target/eval
#
# Writes OUT_DIR/<set>.json (`triage eval --json`, with bootstrap intervals and
# the breakdowns by source, persona and form) and OUT_DIR/<set>.html, and
# prints each set's summary. Needs python3 (standard library only) to join the
# real messages' labels in the repository to their text in ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/eval}"
mkdir -p "$out"
python3 models/train/sets.py --out target/sets >/dev/null
cargo build --release -q
for set in test-corpus test-real dev; do
  echo "== $set"
  ./target/release/triage eval --data "target/sets/$set.jsonl" --json "$out/$set.json" --report "$out/$set.html"
done
