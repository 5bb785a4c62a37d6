#!/usr/bin/env python3
"""Compares two scored runs by their held-out-writer cost, paired over texts.

  python3 models/train/compare.py A/scores-calib.jsonl B/scores-calib.jsonl

Each calibration writer's texts are judged with level bars fitted on the
other writers (as `calibrate.py`'s `held_out_writers`), for both runs; the
per-text costs are then compared with a paired bootstrap (2,000 resamples of
texts, fixed seed). Prints each run's total, B - A with its 95 % interval,
and both runs' held-out under-triage, false alarm and red recall.

The interval resamples texts with the bars held as fitted: it leaves out
that texts cluster by writer (three here) and that refitting the bars would
move them too, so it is narrower than the uncertainty of a choice between
models. Read it as a check, not a test.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import calibrate  # noqa: E402
import data  # noqa: E402


def held_out(path):
    """Per-text ids, held-out cost, gold level and held-out level (NaN / -1 for texts never held out)."""
    rows = data.read_jsonl(path)
    C = np.array([r["probs"] for r in rows])[:, 5:]
    gold = np.array([data.LEVELS.index(r["level"]) for r in rows])
    writer = np.array([r["writer"] for r in rows])
    if len(set(writer) - {"real"}) < 2:
        sys.exit(f"{path}: fewer than two corpus writers, so none can be held out")
    lv, _ = calibrate.held_out_levels(C, gold, writer)
    held = lv >= 0
    cost = np.full(len(rows), np.nan)
    cost[held] = calibrate.COST[gold[held], lv[held]]
    return [r["id"] for r in rows], cost, gold, lv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="the incumbent's scores-calib.jsonl")
    ap.add_argument("b", help="the candidate's scores-calib.jsonl")
    a = ap.parse_args()
    ids_a, cost_a, gold, lv_a = held_out(a.a)
    ids_b, cost_b, gold_b, lv_b = held_out(a.b)
    if ids_a != ids_b or not np.array_equal(gold, gold_b):
        sys.exit("the two files score different texts, or the same texts with other gold levels")
    held = ~np.isnan(cost_a)
    d = (cost_b - cost_a)[held]
    rng = np.random.default_rng(1)
    boot = [d[rng.integers(0, len(d), len(d))].sum() for _ in range(2000)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    print(f"{held.sum()} held-out texts: A {cost_a[held].sum():.0f}, B {cost_b[held].sum():.0f}, "
          f"B - A {d.sum():+.0f} (95 % {lo:+.0f} to {hi:+.0f})")
    g = gold[held]
    for name, lv in (("A", lv_a[held]), ("B", lv_b[held])):
        hg, hp = g >= 2, lv >= 2
        print(f"{name}: under-triage {(hg & ~hp).sum() / hg.sum():.3f}, false alarm {(~hg & hp).sum() / (~hg).sum():.3f}, "
              f"red recall {((g == 3) & (lv == 3)).sum() / (g == 3).sum():.3f}")


if __name__ == "__main__":
    main()
