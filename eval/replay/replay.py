#!/usr/bin/env python3
"""Replay messages through a running `triage serve` as a stream, in order of
their dates, each stored, and count what the escalation rules did.

    python3 eval/replay/replay.py --url http://127.0.0.1:8080 --key $KEY \
        --input ../shared/data/real/gov_messages.jsonl --lag-days 5 --json out.json

Each message is sent to /v1/triage with `store: true`, `received_at` = its
date and `as_of` = its date plus --lag-days (0: triaged on arrival; 5: a
backlog triaged five days late, so every case is past its 13715 "meet" limit).
Messages carry no reporter, so `repeat_petition` cannot fire. Use a fresh data
directory for each run: the replay writes every message into the store.
Standard library only; prints a summary and, with --json, writes it.
"""
import argparse
import collections
import datetime as dt
import json
import sys
import urllib.error
import urllib.request

LEVELS = ["blue", "yellow", "orange", "red"]


def parse_time(s):
    for fmt in ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(s.strip(), fmt)
        except ValueError:
            pass
    raise ValueError(f"unreadable time {s!r}")


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S+08:00")


def post(url, key, body):
    req = urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode(), method="POST")
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--key", required=True, help="a platform or admin key")
    ap.add_argument("--input", required=True, help="JSON Lines with id, text, optional title, time")
    ap.add_argument("--lag-days", type=float, default=0.0)
    ap.add_argument("--json", help="write the summary here")
    a = ap.parse_args()

    rows = [json.loads(l) for l in open(a.input, encoding="utf-8") if l.strip()]
    rows.sort(key=lambda r: (parse_time(r["time"]), r["id"]))
    raises = collections.Counter()
    risk_raises = collections.Counter()
    base_levels, final_levels = collections.Counter(), collections.Counter()
    # Each stored case's risk as the escalation contract defines it: the text's
    # level, raised only by risk rules whose grounds hold. Computed here from
    # the answers, so that builds which do not report it can be judged alike.
    risk = {}
    # similar_escalated raises with no past case at orange or red by risk.
    unfounded = 0
    # Cases whose risk reached orange only through similar_escalated, and the
    # raises those cases made in turn (a chain: a raise passed on).
    through_similar = set()
    chained = 0
    errors = collections.Counter()
    for n, r in enumerate(rows, 1):
        t = parse_time(r["time"])
        text = (r.get("title", "") + "\n" + r["text"]).strip()[:5000]
        body = {"text": text, "case_id": r["id"], "store": True,
                "context": {"received_at": iso(t), "as_of": iso(t + dt.timedelta(days=a.lag_days))}}
        st, v = post(a.url.rstrip("/") + "/v1/triage", a.key, body)
        if st != 200:
            errors[f"{st} {v.get('error', {}).get('code', '?')}"] += 1
            continue
        base_levels[v["base_level"]] += 1
        final_levels[v["level"]] += 1
        own = LEVELS.index(v["base_level"])
        for e in v["escalations"]:
            raises[e["rule"]] += 1
            if e.get("risk"):
                risk_raises[e["rule"]] += 1
            to = LEVELS.index(e["to"])
            if e["rule"] in ("repeat_petition", "collective_livelihood"):
                own = max(own, to)
            elif e["rule"] == "similar_escalated":
                # Builds that do not name the past cases name the best one in the reason.
                named = e.get("case_ids") or [c["case_id"] for c in v["similar"] if c["case_id"] in e["reason"]]
                grounds = [c for c in named if risk.get(c, 0) >= LEVELS.index("orange")]
                if not grounds:
                    unfounded += 1
                    continue
                if all(c in through_similar for c in grounds):
                    chained += 1
                if own < to:
                    own = to
                    through_similar.add(r["id"])
        risk[r["id"]] = own
        if n % 50 == 0:
            print(f"{n}/{len(rows)}", file=sys.stderr)
    summary = {
        "messages": len(rows),
        "lag_days": a.lag_days,
        "raises_by_rule": dict(sorted(raises.items())),
        "risk_raises_by_rule": dict(sorted(risk_raises.items())),
        "similar_escalated_without_risk": unfounded,
        "similar_escalated_chained": chained,
        "risk_levels": {l: sum(1 for x in risk.values() if x == i) for i, l in enumerate(LEVELS)},
        "base_levels": {l: base_levels[l] for l in LEVELS},
        "final_levels": {l: final_levels[l] for l in LEVELS},
        "errors": dict(errors),
    }
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False, indent=2)


if __name__ == "__main__":
    main()
