#!/usr/bin/env python3
"""Label noise: a blind second labelling of a sample against the writers' labels.

  python3 models/corpus/agreement.py [models/corpus/relabel_sample.jsonl]

`relabel_sample.jsonl` holds a second annotator's labels (id, labels, level)
for 30 random texts of each part (seed 5), labelled from the text alone.
Prints level agreement, the level confusion (writer rows, second annotator
columns) and per-label F1 between the two.
"""
import collections
import glob
import json
import os
import sys

HERE = os.path.dirname(__file__)
LABELS = ["violence", "retaliation", "self_harm", "collective", "livelihood"]
LEVELS = ["blue", "yellow", "orange", "red"]

gold = {}
for f in glob.glob(os.path.join(HERE, "parts", "*.jsonl")):
    for line in open(f, encoding="utf-8"):
        r = json.loads(line)
        gold[r["id"]] = r
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "relabel_sample.jsonl")
second = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
n = len(second)
same = sum(gold[r["id"]]["level"] == r["level"] for r in second)
threat = sum((LEVELS.index(gold[r["id"]]["level"]) >= 2) == (LEVELS.index(r["level"]) >= 2) for r in second)
print(f"{n} texts: level agreement {same / n:.3f}, threat or not {threat / n:.3f}")
conf = collections.Counter((gold[r["id"]]["level"], r["level"]) for r in second)
print("writer \\ second " + " ".join(f"{v:>6}" for v in LEVELS))
for g in LEVELS:
    print(f"{g:>15} " + " ".join(f"{conf[(g, p)]:>6}" for p in LEVELS))
for lab in LABELS:
    a = [lab in gold[r["id"]]["labels"] for r in second]
    b = [lab in r["labels"] for r in second]
    tp = sum(x and y for x, y in zip(a, b))
    print(f"{lab:<12} writer {sum(a):>3}  second {sum(b):>3}  F1 {2 * tp / max(sum(a) + sum(b), 1):.3f}")
