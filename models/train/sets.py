#!/usr/bin/env python3
"""Writes the labelled evaluation sets, with their text, outside the repository.

  python3 models/train/sets.py [--out target/sets]

The real board messages' text stays in ../shared; the repository keeps only
their ids and labels (models/corpus/real_labels.jsonl). `triage eval` needs
text, so this joins them into files under --out (a build directory that git
ignores):

| file | what |
|---|---|
| test-corpus.jsonl | the held-out writers' corpus parts (w4, w6) |
| test-real.jsonl | the labelled real messages in the test buckets |
| calib.jsonl | the calibration split (w7, w16, w17 and the real calibration buckets) |
| dev.jsonl | shared dev.jsonl |
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import data  # noqa: E402

KEEP = ("id", "text", "labels", "level", "source", "persona", "form", "part")


def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: r[k] for k in KEEP if k in r}, ensure_ascii=False) + "\n")
    print(f"{path}: {len(rows)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(data.REPO, "target", "sets"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    write(os.path.join(a.out, "test-corpus.jsonl"), [r for w in data.WRITERS["test"] for r in data.corpus_part(w)])
    write(os.path.join(a.out, "test-real.jsonl"), data.real_messages("test"))
    write(os.path.join(a.out, "calib.jsonl"), data.split("calib"))
    write(os.path.join(a.out, "dev.jsonl"), data.split("dev"))


if __name__ == "__main__":
    main()
