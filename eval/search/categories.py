#!/usr/bin/env python3
"""How well a set of vectors finds related real messages: of each message's k
nearest neighbours (cosine), the share in the same board category.

  triage embed MSGS.jsonl -o tuned.jsonl            # the vectors the service stores
  triage embed --base MSGS.jsonl -o base.jsonl      # the registry's weights as they are
  python3 eval/search/categories.py ../shared/data/real/gov_messages.jsonl tuned.jsonl base.jsonl

Messages are read with their id and category; a repeated id is counted once.
Prints, per vector file, precision@k for k = 1, 5, 10, chance (the share of
same-category pairs), and the mean cosine of same- and other-category pairs
(how far apart unrelated complaints sit). Standard library only.
"""
import json
import math
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    msgs, seen = [], set()
    for m in load(sys.argv[1]):
        if m["id"] not in seen:
            seen.add(m["id"])
            msgs.append(m)
    cat = {m["id"]: m["category"] for m in msgs}
    ids = [m["id"] for m in msgs]
    n = len(ids)
    same_pairs = sum(1 for i in range(n) for j in range(n) if i != j and cat[ids[i]] == cat[ids[j]])
    print(f"{n} messages; chance (same-category pairs) {same_pairs / (n * (n - 1)):.3f}")
    for path in sys.argv[2:]:
        vec = {}
        for r in load(path):
            if "vector" in r:
                vec[str(r["id"])] = r["vector"]
        V = [vec[i] for i in ids]
        norm = [math.sqrt(sum(x * x for x in v)) for v in V]
        V = [[x / nv for x in v] for v, nv in zip(V, norm)]
        sims = [[sum(a * b for a, b in zip(V[i], V[j])) for j in range(n)] for i in range(n)]
        out = {}
        for k in (1, 5, 10):
            hit = 0
            for i in range(n):
                order = sorted((j for j in range(n) if j != i), key=lambda j: -sims[i][j])[:k]
                hit += sum(cat[ids[j]] == cat[ids[i]] for j in order)
            out[f"p@{k}"] = round(hit / (n * k), 3)
        s_same = [sims[i][j] for i in range(n) for j in range(i + 1, n) if cat[ids[i]] == cat[ids[j]]]
        s_other = [sims[i][j] for i in range(n) for j in range(i + 1, n) if cat[ids[i]] != cat[ids[j]]]
        out["mean_cos_same"] = round(sum(s_same) / len(s_same), 3)
        out["mean_cos_other"] = round(sum(s_other) / len(s_other), 3)
        print(path, json.dumps(out))


if __name__ == "__main__":
    main()
