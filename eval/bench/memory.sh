#!/usr/bin/env bash
# Peak RSS (VmHWM) of the encoder's consumers (BENCHMARKS.md, "Memory"):
#   1. loading the tokenizer alone (examples/tokenizer_rss),
#   2. `triage embed` of one text (/usr/bin/time -v),
#   3. `triage serve` once ready, after REQUESTS (default 50) sequential
#      POST /v1/triage calls with the longest dev texts, and after every
#      real message (../shared/data/real) sent 8 at a time.
#
#   eval/bench/memory.sh [REQUESTS]
#
# Uses the default model directory (TRIAGE_MODEL_DIR overrides) and
# ../shared/data (TRIAGE_DATA overrides). Needs python3 and curl. To compare
# with another build (an earlier commit's), point TRIAGE_BIN at its `triage`
# for 2 and 3; TOKENIZER_ARGS=--json measures 1 with `tokenizers` reading
# tokenizer.json itself.
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
bin=${TRIAGE_BIN:-$target/triage}
echo "load: $(uptime)"

echo "## tokenizer alone"
"$target/examples/tokenizer_rss" ${TOKENIZER_ARGS:-}

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
send() {
    python3 - "$port" "$key" "$@" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor

port, key, path, n, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
# Longest first: the largest activations a request makes. Texts are sent, never printed.
texts = sorted((json.loads(l)["text"] for l in open(path, encoding="utf-8") if l.strip()), key=len, reverse=True)
def call(i):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/triage", data=json.dumps({"text": texts[i % len(texts)]}).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return r.status
with ThreadPoolExecutor(workers) as pool:
    statuses = list(pool.map(call, range(n)))
assert statuses == [200] * n, {s: statuses.count(s) for s in set(statuses)}
PY
}
send "$data/dev.jsonl" "$requests" 1
echo "after $requests sequential POST /v1/triage (longest dev texts): $(mem)"
real=$data/real/gov_messages.jsonl
send "$real" "$(grep -c . "$real")" 8
echo "then every real message, 8 at a time: $(mem)"
echo "load: $(uptime)"
