#!/usr/bin/env bash
# Load test of POST /v1/triage from loopback (BENCHMARKS.md, "Service").
#
#   eval/bench/load.sh [DURATION_SECONDS] [gov|dev]
#
# Starts `triage serve` (release build) on a fresh data dir with an admin key,
# replays texts with wrk at concurrency 1, 8 and 64: `gov` (default) the 495
# real board messages of ../shared/data/real/gov_messages.jsonl (long: median
# several hundred characters), `dev` the 240 short texts of dev.jsonl
# (TRIAGE_DATA overrides ../shared/data),
# then drives an open-loop load at 4x the measured sustainable rate
# (eval/bench/overload.py) and reports status codes, Retry-After and the
# server's peak RSS. Needs wrk (Debian package `wrk`) and python3. SERVE_ARGS
# passes options to `triage serve` (e.g. "--max-batch 1").
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-30}
set_=${2:-gov}
data=${TRIAGE_DATA:-../shared/data}
case $set_ in
  gov) src=$data/real/gov_messages.jsonl ;;
  dev) src=$data/dev.jsonl ;;
  *) echo "unknown text set $set_ (gov or dev)" >&2; exit 2 ;;
esac
work=$(mktemp -d)
pid=""
trap 'kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
cargo build --release -q -p triage-server
bin=${CARGO_TARGET_DIR:-target}/release/triage
# Bodies for wrk: one JSON request per line, texts cut to the service's limit.
python3 - "$src" "$work/bodies.txt" <<'PY'
import json, statistics, sys
lens = []
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        m = json.loads(line)
        text = ((m["title"] + "。") if m.get("title") else "") + m["text"]
        text = text[:5000]
        lens.append(len(text))
        out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
print(f"{len(lens)} texts, characters: median {statistics.median(lens):.0f}, max {max(lens)}")
PY
port=18080
. eval/bench/serve.sh
# shellcheck disable=SC2086 # SERVE_ARGS is a list of options
start_triage "$bin" "$work" "$port" ${SERVE_ARGS:-}
cat > "$work/post.lua" <<LUA
local bodies = {}
for line in io.lines("$work/bodies.txt") do bodies[#bodies + 1] = line end
local i = math.random(#bodies)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.2f p50_ms=%.1f p99_ms=%.1f requests=%d non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
# Warm-up, then the three concurrencies.
wrk -t1 -c1 -d5s -s "$work/post.lua" http://127.0.0.1:$port/v1/triage >/dev/null
best=0
for c in 1 8 64; do
  t=$(( c < 2 ? 1 : 2 ))
  line=$(wrk -t$t -c$c -d${dur}s --timeout 60s -s "$work/post.lua" http://127.0.0.1:$port/v1/triage | grep RESULT)
  echo "concurrency=$c $line"
  rps=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")
  best=$(python3 -c "print(max($best, $rps))")
done
rate=$(python3 -c "print(round(4 * $best, 1))")
echo "overload: open loop at $rate req/s (4x the best sustained $best req/s) for ${dur}s"
python3 eval/bench/overload.py --url http://127.0.0.1:$port/v1/triage --key "$key" --bodies "$work/bodies.txt" \
  --rate "$rate" --seconds "$dur" --pid "$pid"
