#!/usr/bin/env python3
"""Open-loop load: send POST requests at a fixed rate whatever the answers
take, and count what comes back (status, error code, Retry-After), with the
server's peak RSS read from /proc. Used by eval/bench/load.sh."""
import argparse, collections, json, threading, time, urllib.request, urllib.error
from concurrent.futures import ThreadPoolExecutor

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--bodies", required=True)
ap.add_argument("--rate", type=float, required=True)
ap.add_argument("--seconds", type=float, default=30)
ap.add_argument("--pid", type=int)
a = ap.parse_args()
bodies = [l.encode() for l in open(a.bodies, encoding="utf-8")]
lock = threading.Lock()
counts = collections.Counter()
lat_ok, lat_503 = [], []
retry_after_missing = 0
peak_rss = 0

def rss():
    try:
        for line in open(f"/proc/{a.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return 0
    return 0

def one(i):
    global retry_after_missing
    req = urllib.request.Request(a.url, data=bodies[i % len(bodies)], method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {a.key}"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
            key, ok = "200", True
    except urllib.error.HTTPError as e:
        body = e.read()
        code = json.loads(body)["error"]["code"] if body.startswith(b"{") else "?"
        key, ok = f"{e.code} {code}", False
        if e.code == 503 and not e.headers.get("Retry-After"):
            with lock:
                retry_after_missing += 1
    except Exception as e:  # connection errors count as failures too
        key, ok = f"error {type(e).__name__}", False
    dt = (time.perf_counter() - t) * 1000
    with lock:
        counts[key] += 1
        (lat_ok if ok else lat_503).append(dt)

start = time.perf_counter()
n = int(a.rate * a.seconds)
with ThreadPoolExecutor(max_workers=512) as pool:
    for i in range(n):
        target = start + i / a.rate
        while True:
            now = time.perf_counter()
            if now >= target:
                break
            time.sleep(min(target - now, 0.01))
        pool.submit(one, i)
        if i % 20 == 0:
            peak_rss = max(peak_rss, rss())
    while pool._work_queue.qsize() > 0:
        peak_rss = max(peak_rss, rss())
        time.sleep(0.2)
peak_rss = max(peak_rss, rss())

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")

print(f"sent={n} answers={dict(counts)} retry_after_missing={retry_after_missing}")
print(f"ok p50_ms={pct(lat_ok, 50):.0f} p99_ms={pct(lat_ok, 99):.0f}; refused p50_ms={pct(lat_503, 50):.1f} p99_ms={pct(lat_503, 99):.1f}")
print(f"server peak RSS {peak_rss} MB")
