#!/usr/bin/env python3
"""Chooses the thresholds on the calibration split and writes models/heads/risk.json.

  python3 models/train/calibrate.py --version risk-X.Y [--delta-dir models/delta] [--scores-dir target/finetune]

Reads the delta from --delta-dir, and from --scores-dir the heads (heads.json),
the training log and the calibration split's probabilities (scores-calib.jsonl, written by finetune.py: held-out
writers w7, w16 and w17 and the calibration buckets of the labelled real messages). Nothing
else is read: the test split and dev are never looked at here.

The decision rule is the service's (triage_risk::model::decide): the level is
the highest cut (red, orange, yellow) whose probability reaches its bar; threat
labels are named only on orange or red, the closest one forced if none passes;
livelihood passes its own bar.

Level bars minimise an expected cost over the calibration texts, in which
under-triage costs more than a false alarm (COST below, gold rows x predicted
columns); label bars maximise each label's F1 under the chosen levels. Among
equally good bars the middle of the tied run is taken, so a bar does not sit
on the edge of a plateau.

It also reports each calibration writer judged with bars fitted on the other
writers (`held_out_writers`, and their summed cost): the figure to compare
models by, since the in-sample cost rewards bars that fit these very texts.
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import data  # noqa: E402

# Gold level (rows: blue, yellow, orange, red) x predicted level (columns).
COST = np.array([
    [0, 1, 3, 4],   # blue
    [1, 0, 2, 3],   # yellow
    [5, 4, 0, 1],   # orange: a missed threat costs more than a false alarm
    [7, 6, 2, 0],   # red
], dtype=float)
GRID = np.round(np.arange(0.02, 0.985, 0.01), 2)


def levels(P, t):
    """P: [n, 3] level-cut probabilities; t: (yellow, orange, red) bars."""
    # The highest cut that reaches its bar: red, then orange, then yellow.
    return np.where(P[:, 2] >= t[2], 3, np.where(P[:, 1] >= t[1], 2, np.where(P[:, 0] >= t[0], 1, 0)))


def middle_of_best(values, scores, better):
    """The grid value in the middle of the best-scoring run."""
    best = better(scores)
    idx = np.flatnonzero(np.isclose(scores, best))
    # keep the longest contiguous run containing best values
    runs, cur = [], [idx[0]]
    for i in idx[1:]:
        if i == cur[-1] + 1:
            cur.append(i)
        else:
            runs.append(cur)
            cur = [i]
    runs.append(cur)
    run = max(runs, key=len)
    return float(values[run[len(run) // 2]])


def flags(L, lv, t_labels):
    """Threat labels only on orange/red; a threat with none over its bar names the closest."""
    f = L >= np.asarray(t_labels)
    threat = lv >= 2
    f[:, :4] &= threat[:, None]
    none = threat & ~f[:, :4].any(1)
    if none.any():
        ratio = L[:, :4] / np.maximum(np.asarray(t_labels[:4]), 1e-6)
        closest = ratio.argmax(1)
        f[np.flatnonzero(none), closest[none]] = True
    return f


def f1(gold, pred):
    tp = (gold & pred).sum()
    fp = (~gold & pred).sum()
    fn = (gold & ~pred).sum()
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def fit_levels(C, gold_lv):
    """Level bars: coordinate descent on the cost, from 0.5 each, until stable."""
    t = [0.5, 0.5, 0.5]
    for _ in range(6):
        before = list(t)
        for k in (1, 2, 0):
            costs = []
            for g in GRID:
                tt = list(t)
                tt[k] = g
                costs.append(COST[gold_lv, levels(C, tt)].sum())
            t[k] = middle_of_best(GRID, np.array(costs), np.min)
        if t == before:
            break
    return t


def fit_labels(L, lv, gold_lab):
    """Label bars: each label's F1 under the chosen levels."""
    tl = [0.5] * 5
    for _ in range(3):
        for k in range(5):
            scores = []
            for g in GRID:
                tt = list(tl)
                tt[k] = g
                scores.append(f1(gold_lab[:, k], flags(L, lv, tt)[:, k]))
            tl[k] = middle_of_best(GRID, np.array(scores), np.max)
    return tl


def figures(gold_lv, lv, gold_lab, fl):
    """Cost and the issue's figures for bars' levels `lv` and flags `fl` against the gold."""
    high_g, high_p = gold_lv >= 2, lv >= 2
    return {
        "mean_cost": round(float(COST[gold_lv, lv].mean()), 4),
        "macro_f1": round(float(np.mean([f1(gold_lab[:, k], fl[:, k]) for k in range(5)])), 4),
        "level_accuracy": round(float((lv == gold_lv).mean()), 4),
        "under_triage": round(float((high_g & ~high_p).sum() / max(high_g.sum(), 1)), 4),
        "false_alarm": round(float((~high_g & high_p).sum() / max((~high_g).sum(), 1)), 4),
        "red_recall": round(float(((gold_lv == 3) & (lv == 3)).sum() / max((gold_lv == 3).sum(), 1)), 4),
    }


def held_out_levels(C, gold_lv, writer):
    """Each corpus writer's texts at the levels of bars fitted on the other
    writers (-1 for the real messages, which are in every fit and never held
    out), and those bars by writer."""
    lv, bars = np.full(len(gold_lv), -1), {}
    for w in sorted(set(writer) - {"real"}):
        fit, held = writer != w, writer == w
        bars[w] = fit_levels(C[fit], gold_lv[fit])
        lv[held] = levels(C[held], bars[w])
    return lv, bars


def held_out_writers(C, L, gold_lv, gold_lab, writer):
    """Each calibration writer judged with bars fitted on the others.

    The in-sample cost flatters a model whose bars fit these very texts; a
    writer the bars never saw is what the service meets. Used to choose
    between models (EVALUATION.md)."""
    # The real messages are too few (and nearly threat-free) to fit bars on
    # alone: they are in every fit and never held out.
    corpus = sorted(set(writer) - {"real"})
    if len(corpus) < 2:
        return {}
    out, total = {}, 0.0
    held_lv, bars = held_out_levels(C, gold_lv, writer)
    for w in corpus:
        fit, held = writer != w, writer == w
        t = bars[w]
        tl = fit_labels(L[fit], levels(C[fit], t), gold_lab[fit])
        lv = held_lv[held]
        total += float(COST[gold_lv[held], lv].sum())
        out[w] = {"texts": int(held.sum()), "level_bars": t,
                  **figures(gold_lv[held], lv, gold_lab[held], flags(L[held], lv, tl))}
    out["total_cost"] = round(total, 1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delta-dir", default=os.path.join(data.REPO, "models", "delta"))
    ap.add_argument("--scores-dir", default=os.path.join(data.REPO, "target", "finetune"))
    ap.add_argument("--out", default=os.path.join(data.REPO, "models", "heads", "risk.json"))
    ap.add_argument("--version", required=True, help="the version the heads file names, e.g. risk-2.5")
    a = ap.parse_args()

    rows = data.read_jsonl(os.path.join(a.scores_dir, "scores-calib.jsonl"))
    P = np.array([r["probs"] for r in rows])
    L, C = P[:, :5], P[:, 5:]
    gold_lv = np.array([data.LEVELS.index(r["level"]) for r in rows])
    gold_lab = np.array([[l in r["labels"] for l in data.LABELS] for r in rows])

    t = fit_levels(C, gold_lv)
    lv = levels(C, t)
    tl = fit_labels(L, lv, gold_lab)
    fl = flags(L, lv, tl)

    conf = np.zeros((4, 4), dtype=int)
    for g, p in zip(gold_lv, lv):
        conf[g, p] += 1
    calib = {
        "texts": len(rows),
        "writers": sorted({r["writer"] for r in rows}),
        "cost": COST.tolist(),
        **figures(gold_lv, lv, gold_lab, fl),
        "level_confusion": conf.tolist(),
        "held_out_writers": held_out_writers(C, L, gold_lv, gold_lab, np.array([r["writer"] for r in rows])),
    }

    heads = json.load(open(os.path.join(a.scores_dir, "heads.json")))
    delta = open(os.path.join(a.delta_dir, "e5-lora.safetensors"), "rb").read()
    sha = hashlib.sha256(delta).hexdigest()
    log = json.load(open(os.path.join(a.scores_dir, "train-log.json")))
    log.pop("losses", None)
    model = {
        "version": f"{a.version}+e5s-lora.{sha[:12]}",
        "date": datetime.date.today().isoformat(),
        "embedding_dim": len(heads["weights"][0]),
        "delta_sha256": sha,
        "outputs": heads["outputs"],
        "weights": heads["weights"],
        "bias": heads["bias"],
        "thresholds": {"labels": [round(x, 2) for x in tl], "level": [round(x, 2) for x in t]},
        "training": {"finetune": log, "calibration": calib,
                     "splits": {"train": data.WRITERS["train"], "calib": data.WRITERS["calib"],
                                "test": data.WRITERS["test"]}},
    }
    with open(a.out, "w") as f:
        json.dump(model, f, separators=(",", ":"))
        f.write("\n")
    # The manifest pins the same delta (checked by `triage model verify` and a test).
    manifest = os.path.join(data.REPO, "models", "manifest.toml")
    text = open(manifest).read()
    head, sep, tail = text.partition("[delta]")
    tail = re.sub(r'sha256 = "[0-9a-f]{64}"', f'sha256 = "{sha}"', tail, count=1)
    open(manifest, "w").write(head + sep + tail)
    print(json.dumps({"version": model["version"], "thresholds": model["thresholds"], "calibration": calib}, indent=1))


if __name__ == "__main__":
    main()
