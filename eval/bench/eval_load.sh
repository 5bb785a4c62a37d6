#!/usr/bin/env bash
# Live triage latency with and without an evaluation job (BENCHMARKS.md,
# "Triage during an evaluation").
#
#   eval/bench/eval_load.sh [REQUESTS] [ROUNDS]
#
# Starts `triage serve` (release build) on a fresh data dir, then for each
# round: REQUESTS (default 150) sequential POST /v1/triage calls with the
# short dev texts and no job running, then the same calls while a
# `POST /v1/evals` job judges the whole dev set. Prints p50, p95, p99 and
# max per phase, the job's progress during the loaded phase, and any status
# other than 200 (a 503 would mean the job pushed live traffic out).
# Needs python3. TRIAGE_DATA overrides ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-150}
rounds=${2:-2}
data=${TRIAGE_DATA:-../shared/data}
work=$(mktemp -d)
pid=""
trap 'kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
cargo build --release -q -p triage-server
bin=${CARGO_TARGET_DIR:-target}/release/triage
port=18090
. eval/bench/serve.sh
start_triage "$bin" "$work" "$port"
python3 - "$port" "$key" "$data/dev.jsonl" "$requests" "$rounds" <<'PY'
import json, sys, time, urllib.request, urllib.error

port, key, dev, n, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
base = f"http://127.0.0.1:{port}"
raw = open(dev, "rb").read()
# The live texts: the 100 shortest dev texts (a hotline call's length), in a fixed order.
texts = sorted((json.loads(l)["text"] for l in raw.decode().splitlines() if l.strip()), key=len)[:100]

def call(method, path, body=None, ctype="application/json"):
    req = urllib.request.Request(base + path, data=body, method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

def phase():
    lat, bad = [], {}
    for i in range(n):
        body = json.dumps({"text": texts[i % len(texts)]}).encode()
        t = time.perf_counter()
        st, _ = call("POST", "/v1/triage", body)
        lat.append((time.perf_counter() - t) * 1000)
        if st != 200:
            bad[st] = bad.get(st, 0) + 1
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, round(p * (len(lat) - 1)))]
    return q(0.5), q(0.95), q(0.99), lat[-1], bad

for _ in range(5):
    call("POST", "/v1/triage", json.dumps({"text": texts[0]}).encode())
print(f"{n} sequential POST /v1/triage per phase, {len(texts)} shortest dev texts (median {sorted(map(len, texts))[len(texts)//2]} chars)")
print("| round | phase | p50 ms | p95 ms | p99 ms | max ms | non-200 | job texts judged during the phase |")
print("|---|---|---|---|---|---|---|---|")
for r in range(1, rounds + 1):
    p50, p95, p99, mx, bad = phase()
    print(f"| {r} | no job | {p50:.0f} | {p95:.0f} | {p99:.0f} | {mx:.0f} | {bad or 'none'} | – |")
    st, job = call("POST", "/v1/evals?name=dev.jsonl", raw, "application/x-ndjson")
    assert st == 202, job
    while call("GET", f"/v1/evals/{job['id']}")[1]["status"] != "running":
        time.sleep(0.05)
    before = call("GET", f"/v1/evals/{job['id']}")[1]["done"]
    p50, p95, p99, mx, bad = phase()
    after = call("GET", f"/v1/evals/{job['id']}")[1]
    note = "" if after["status"] == "running" else f" (job {after['status']} before the phase ended)"
    print(f"| {r} | eval job running | {p50:.0f} | {p95:.0f} | {p99:.0f} | {mx:.0f} | {bad or 'none'} | {after['done'] - before} of {after['total']}{note} |")
    while call("GET", f"/v1/evals/{job['id']}")[1]["status"] not in ("done", "failed"):
        time.sleep(0.5)
    job = call("GET", f"/v1/evals/{job['id']}")[1]
    print(f"|   | job alone after the phase | | | | | | finished in {job['report']['seconds']:.0f} s in all |")
PY
