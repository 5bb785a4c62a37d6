#!/usr/bin/env bash
# Peak RSS (VmHWM) of the encoder's consumers (BENCHMARKS.md, "Memory"):
#   1. loading the tokenizer alone (examples/tokenizer_rss),
#   2. `triage embed` of one text (/usr/bin/time -v),
#   3. `triage serve` once ready, and again after REQUESTS (default 50)
#      sequential POST /v1/triage calls with the longest dev texts.
#
#   eval/bench/memory.sh [REQUESTS]
#
# Uses the default model directory (TRIAGE_MODEL_DIR overrides) and
# ../shared/data (TRIAGE_DATA overrides). Needs python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-50}
data=${TRIAGE_DATA:-../shared/data}
work=$(mktemp -d)
pid=""
trap 'kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
cargo build --release -q -p triage-server
cargo build --release -q -p triage-encoder --example tokenizer_rss
target=${CARGO_TARGET_DIR:-target}/release
bin=$target/triage
echo "load: $(uptime)"

echo "## tokenizer alone"
"$target/examples/tokenizer_rss"

echo "## triage embed, one text"
echo '老板拖欠我们三个月工资，二十多个工友准备一起去县政府上访。' \
    | /usr/bin/time -f 'peak RSS %M kB, %e s' "$bin" embed > /dev/null

echo "## triage serve"
port=18093
. eval/bench/serve.sh
start_triage "$bin" "$work" "$port"
hwm() { sed -n "s/^$1:\s*//p" "/proc/$pid/status"; }
mem() { echo "VmHWM $(hwm VmHWM) VmRSS $(hwm VmRSS) (anonymous $(hwm RssAnon), file-backed $(hwm RssFile))"; }
echo "ready: $(mem)"
python3 - "$port" "$key" "$data/dev.jsonl" "$requests" <<'PY'
import json, sys, urllib.request

port, key, dev, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# The longest dev texts first: the largest activations a single request makes.
texts = sorted((json.loads(l)["text"] for l in open(dev, encoding="utf-8") if l.strip()), key=len, reverse=True)
for i in range(n):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/triage", data=json.dumps({"text": texts[i % len(texts)]}).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200, r.status
PY
echo "after $requests POST /v1/triage: $(mem)"
echo "load: $(uptime)"
