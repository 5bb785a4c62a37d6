#!/usr/bin/env python3
"""Soak and chaos test of `triage serve` (BENCHMARKS.md, "Soak with kill -9").

Runs the service for --minutes under closed-loop load from --clients clients
(each sends its next request when the last is answered, so the load is the
service's sustained rate), and kills it with SIGKILL every --kill-every
seconds (jittered), restarting it on the same data directory at once.

The load: the real board messages (../shared/data/real/gov_messages.jsonl, or
short texts from dev.jsonl with --texts dev), 50 % `POST /v1/cases` (writes;
each client has its own case ids and overwrites one of its earlier cases one
time in four, or always once --cases are stored), 25 % `POST /v1/triage`, 25 % `POST /v1/cases/search`.

What it checks and reports (JSON on stdout, progress on stderr):
- every request was answered with a code, or cut by a kill (connection
  reset or refused while the service was down); answers with no code within
  --timeout, or 5xx other than 503 `overloaded`, are failures;
- zero acknowledged writes lost: after the last restart every acknowledged
  case is read back and must hold its last acknowledged version (or a later
  write that was cut by a kill: it may have landed before the kill);
- the server's RSS: at each start (once ready) and just before each kill,
  sampled every 5 s in between.

Exit status 1 when any check fails. Texts and case ids are not printed.
"""
import argparse
import http.client
import json
import os
import random
import secrets
import hashlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--bin", default="target/release/triage")
ap.add_argument("--minutes", type=float, default=30)
ap.add_argument("--kill-every", type=float, default=180, help="seconds between kills (±25 %% jitter)")
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--cases", type=int, default=0,
                help="at most this many distinct cases (0: no bound); past it every write replaces one, "
                     "so the store stops growing and RSS can be read without its growth")
ap.add_argument("--texts", choices=["gov", "dev"], default="gov")
ap.add_argument("--data", default=os.environ.get("TRIAGE_DATA", "../shared/data"))
ap.add_argument("--port", type=int, default=18091)
ap.add_argument("--timeout", type=float, default=130, help="seconds a client waits for an answer")
ap.add_argument("--seed", type=int, default=7)
ap.add_argument("--json", help="also write the report here")
ap.add_argument("--serve-args", default="", help="extra options for triage serve")
a = ap.parse_args()

rng = random.Random(a.seed)
src = os.path.join(a.data, "real/gov_messages.jsonl" if a.texts == "gov" else "dev.jsonl")
texts = []
for line in open(src, encoding="utf-8"):
    m = json.loads(line)
    t = ((m["title"] + "。") if m.get("title") else "") + m["text"]
    texts.append(t[:5000])

work = tempfile.mkdtemp(prefix="triage-soak-")
key = "soak_" + secrets.token_hex(16)
with open(os.path.join(work, "keys.toml"), "w") as f:
    f.write('[[key]]\nname = "soak"\nrole = "admin"\nsha256 = "%s"\n' % hashlib.sha256(key.encode()).hexdigest())
HEAD = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

lock = threading.Lock()
server = {"proc": None, "up": False}
lives = []  # {started, ready_s, rss_start_mb, rss_end_mb, rss_max_mb, ended_by}
counts = {}
failures = []


def log(*x):
    print(time.strftime("%H:%M:%S"), *x, file=sys.stderr, flush=True)


def rss_mb(pid, field="VmRSS"):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def store_mb():
    total = 0
    for root, _, files in os.walk(os.path.join(work, "data", "cases")):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return round(total / 2**20)


def start():
    log_file = open(os.path.join(work, "serve.log"), "a")
    cmd = [a.bin, "serve", "--listen", f"127.0.0.1:{a.port}", "--data-dir", os.path.join(work, "data"),
           "--keys", os.path.join(work, "keys.toml")] + a.serve_args.split()
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=log_file, stderr=log_file)
    while time.time() - t0 < 180:
        try:
            c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        if p.poll() is not None:
            sys.exit(f"triage serve exited with {p.returncode} (log: {work}/serve.log)")
        time.sleep(0.2)
    else:
        sys.exit("triage serve was not ready within 180 s")
    life = {"t0": time.time(), "ready_s": round(time.time() - t0, 1), "rss_start_mb": round(rss_mb(p.pid) or 0),
            "rss_max_mb": round(rss_mb(p.pid) or 0), "rss_each_minute_mb": [],
            "anon_file_store_each_minute_mb": []}
    with lock:
        server["proc"], server["up"] = p, True
        lives.append(life)
    log(f"serve up (pid {p.pid}) in {life['ready_s']} s, RSS {life['rss_start_mb']:.0f} MB")


def stop(how):
    with lock:
        p, server["up"] = server["proc"], False
        life = lives[-1]
        life["rss_end_mb"] = round(rss_mb(p.pid) or 0)
        life["minutes"] = round((time.time() - life["t0"]) / 60, 1)
        life["ended_by"] = how
    p.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
    p.wait()
    log(f"serve stopped by {how}, RSS before {life['rss_end_mb']:.0f} MB")


def count(k):
    with lock:
        counts[k] = counts.get(k, 0) + 1


# Per client: case id -> (last acknowledged version, versions sent after it whose answer was lost).
acked = [dict() for _ in range(a.clients)]


def client(ci, deadline):
    r = random.Random(a.seed * 1000 + ci)
    mine, version = [], 0
    while time.time() < deadline:
        roll = r.random()
        text = r.choice(texts)
        if roll < 0.5:
            full = a.cases and len(mine) >= a.cases // a.clients
            if mine and (full or r.random() < 0.25):
                cid = r.choice(mine)
            else:
                cid = f"soak-{ci}-{len(mine)}"
                mine.append(cid)
            version += 1
            body = {"case_id": cid, "text": text, "level": r.choice(["blue", "yellow", "orange", "red"]),
                    "context": {"district": f"v{version}"}}
            path, kind = "/v1/cases", "write"
        elif roll < 0.75:
            body, path, kind = {"text": text}, "/v1/triage", "triage"
        else:
            body, path, kind = {"text": text[:300], "top_k": 10}, "/v1/cases/search", "search"
        try:
            c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
            c.request("POST", path, json.dumps(body, ensure_ascii=False).encode(), HEAD)
            resp = c.getresponse()
            payload = resp.read()
            st = resp.status
        except TimeoutError:
            count("no answer within timeout")
            failures.append(f"{kind}: no answer within {a.timeout} s")
            st = None
        except OSError:
            # Reset by a kill, or refused while the service restarts: no answer, nothing acknowledged.
            count("cut by a kill or refused while down")
            st = None
            time.sleep(0.2)
        if kind == "write":
            prev = acked[ci].get(body["case_id"], (None, []))
            if st == 200:
                acked[ci][body["case_id"]] = (body["context"]["district"], [])
            elif st is None:
                acked[ci][body["case_id"]] = (prev[0], prev[1] + [body["context"]["district"]])
        if st is None:
            continue
        count(f"{kind} {st}")
        if st >= 500 and not (st == 503 and b'"overloaded"' in payload):
            failures.append(f"{kind}: {st} {payload[:200]!r}")
        elif st >= 400:
            try:
                json.loads(payload)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                failures.append(f"{kind}: {st} without the JSON error body")


def sampler(deadline):
    while time.time() < deadline + 5:
        time.sleep(5)
        with lock:
            if server["up"]:
                v = rss_mb(server["proc"].pid)
                if v:
                    life = lives[-1]
                    life["rss_max_mb"] = max(life["rss_max_mb"], round(v))
                    # One sample a minute, to show whether a life's RSS levels off.
                    if time.time() - life["t0"] >= 60 * len(life["rss_each_minute_mb"]) + 60:
                        life["rss_each_minute_mb"].append(round(v))
                        # Anonymous memory is the process's own; file-backed is mapped files
                        # (the binary, the weights, the store's segments) the kernel can drop.
                        pid = server["proc"].pid
                        life["anon_file_store_each_minute_mb"].append(
                            (round(rss_mb(pid, "RssAnon") or 0), round(rss_mb(pid, "RssFile") or 0), store_mb()))


start()
t0 = time.time()
deadline = t0 + a.minutes * 60
threads = [threading.Thread(target=client, args=(i, deadline)) for i in range(a.clients)]
threads.append(threading.Thread(target=sampler, args=(deadline,), daemon=True))
for t in threads:
    t.start()
kills = 0
next_kill = t0 + a.kill_every * rng.uniform(0.75, 1.25)
while time.time() < deadline:
    time.sleep(1)
    if time.time() >= next_kill and time.time() < deadline - 30:
        stop("kill -9")
        kills += 1
        start()
        next_kill = time.time() + a.kill_every * rng.uniform(0.75, 1.25)
    elapsed = time.time() - t0
    if int(elapsed) % 60 == 0:
        with lock:
            done = sum(counts.values())
        log(f"{elapsed / 60:.0f}/{a.minutes:.0f} min, {done} requests, {kills} kills")
for t in threads[:-1]:
    t.join()
# The last life ends by kill -9 too, then a clean start reads everything back.
stop("kill -9")
kills += 1
start()
lost, checked = [], 0
for ci in range(a.clients):
    for cid, (last, later) in acked[ci].items():
        if last is None:
            continue
        checked += 1
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        c.request("GET", f"/v1/cases/{cid}", headers=HEAD)
        resp = c.getresponse()
        got = json.loads(resp.read())
        if resp.status != 200:
            lost.append(f"acknowledged case missing ({resp.status})")
        elif got.get("district") not in [last] + later:
            lost.append("acknowledged case holds an older version")
stop("SIGTERM")
for life in lives:
    life.pop("t0")
report = {
    "minutes": a.minutes,
    "cases_bound": a.cases or None,
    "clients": a.clients,
    "texts": a.texts,
    "requests": dict(sorted(counts.items())),
    "answered_per_second": round(sum(v for k, v in counts.items() if not k.startswith("cut")) / (a.minutes * 60), 2),
    "kills": kills,
    "acknowledged_cases_checked": checked,
    "acknowledged_lost": len(lost),
    "failures": failures[:20],
    "failure_count": len(failures),
    "lives": lives,
}
out = json.dumps(report, indent=2)
print(out)
if a.json:
    open(a.json, "w").write(out)
ok = not lost and not failures
log("PASS" if ok else "FAIL", f"(work dir {work})")
if ok:
    subprocess.run(["rm", "-rf", work])
sys.exit(0 if ok else 1)
