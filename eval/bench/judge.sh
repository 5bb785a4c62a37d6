#!/usr/bin/env bash
# Judgement throughput of two builds side by side: the shipped binary against
# another one (e.g. the previous model version's), on the same texts, in one
# run, alternating A B A B so drift on the machine hits both alike.
#
#   OTHER=/path/to/older/triage eval/bench/judge.sh [TEXTS.jsonl] [ROUNDS]
#
# Each round is one `triage judge` process over all texts (model load
# included, reported apart from the per-text time via a 1-text run). Prints a
# markdown table: texts/s per round, mean, and peak RSS (GNU time).
set -euo pipefail
cd "$(dirname "$0")/../.."
TEXTS=${1:-${TRIAGE_DATA:-../shared/data}/dev.jsonl}
ROUNDS=${2:-2}
THIS=./target/release/triage
: "${OTHER:?set OTHER to the other triage binary}"
cargo build --release -q -p triage-server
n=$(grep -c . "$TEXTS")
one=$(mktemp); head -n 1 "$TEXTS" > "$one"
run() { # bin file -> "seconds rss_kb"
  /usr/bin/time -f '%e %M' "$1" judge "$2" 2>&1 >/dev/null | tail -n 1
}
declare -A tot
echo "| binary | model | round | texts | wall s | load s (1 text) | texts/s excl. load | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
  for bin in "$OTHER" "$THIS"; do
    version=$("$bin" judge "$one" 2>/dev/null | grep -o '"model_version":"[^"]*"' | cut -d'"' -f4)
    read -r load _ < <(run "$bin" "$one")
    read -r wall rss < <(run "$bin" "$TEXTS")
    rate=$(python3 -c "print(f'{$n / max($wall - $load, 1e-9):.2f}')")
    echo "| $bin | $version | $r | $n | $wall | $load | $rate | $((rss / 1024)) |"
  done
done
rm -f "$one"
