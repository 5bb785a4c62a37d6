#!/usr/bin/env python3
"""Averages fine-tuned models into one (a "model soup"), still one encoder pass.

  python3 models/train/soup.py --from RUN_A --from RUN_B [--out target/soup] [--scores-dir target/soup]

(`train.sh` writes the shipped soup with `--out models/delta --scores-dir
target/finetune`, where `calibrate.py` reads it.)

Each RUN is a directory holding one finetune.py run: its delta
(e5-lora.safetensors), heads (heads.json) and training log (train-log.json).
Every run must start from the same weights and the same adapter
initialisation (finetune.py's seed), so that their fine-tuned weights lie in
one basin and their mean is a model of its own, not a blur of two.

The mean is exact and stays a low-rank delta: for n runs with adapters
(A_i, B_i), the mean of the merged updates B_i A_i is

    (1/n) sum_i B_i A_i = [B_1/n ... B_n/n] [A_1; ...; A_n]

so the soup is one adapter of rank sum(r_i), merged at load like any other.
Where that rank is over --max-rank, each layer's mean update is cut to its
largest singular directions (the share of its energy kept is printed), so
the delta stays under 8 MB. LayerNorms and heads are averaged. The output is what finetune.py writes
(delta, merge fixture, heads, scored splits, a training log naming every
ingredient), so calibrate.py and the service take it as they take one run.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
import finetune  # noqa: E402
from finetune import LINEARS  # noqa: E402


def cut(a, b, rank):
    """(A, B) with B·A the best rank-`rank` approximation of the given B·A.

    Through QR of the thin factors, so the SVD is of an r x r matrix, never of
    the full [out, in] update. Also returns the share of the update's squared
    Frobenius norm that is kept."""
    qa, ra = torch.linalg.qr(a.T.double())  # a.T = qa ra: [in, r], [r, r]
    qb, rb = torch.linalg.qr(b.double())  # b = qb rb: [out, r], [r, r]
    u, s, vh = torch.linalg.svd(rb @ ra.T)
    kept = float((s[:rank] ** 2).sum() / (s ** 2).sum().clamp_min(1e-30))
    root = s[:rank].sqrt()
    return (root[:, None] * (vh[:rank] @ qa.T)).float(), ((qb @ u[:, :rank]) * root).float(), kept


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="runs", action="append", required=True,
                    help="a finetune.py run directory (delta, heads.json, train-log.json), once per run; "
                         "a single run is written out as it is (to score it again on changed splits)")
    ap.add_argument("--model-dir", default=os.path.expanduser("~/.cache/triage/models/multilingual-e5-small"))
    # Not models/delta by default: a soup is a trial until it is chosen.
    ap.add_argument("--out", default=os.path.join(finetune.data.REPO, "target", "soup"))
    ap.add_argument("--scores-dir", default=os.path.join(finetune.data.REPO, "target", "soup"))
    ap.add_argument("--splits", default="calib",
                    help="splits to score (calib, test, dev); a trial scores calib only, so test stays unseen")
    ap.add_argument("--max-rank", type=int, default=40,
                    help="cut each layer's averaged update to this rank (its largest singular values), so the delta stays small")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    finetune.check_splits(ap, a.splits)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.scores_dir, exist_ok=True)

    deltas = [load_file(os.path.join(r, "e5-lora.safetensors")) for r in a.runs]
    heads = [json.load(open(os.path.join(r, "heads.json"))) for r in a.runs]
    logs = [json.load(open(os.path.join(r, "train-log.json"))) for r in a.runs]
    if len({tuple(h["outputs"]) for h in heads}) != 1:
        sys.exit("the runs' heads name different outputs")
    # The seed draws the adapters' A matrices, whose shapes the rank sets.
    if len({(l["seed"], l["rank"], l["alpha"]) for l in logs}) != 1:
        sys.exit("the runs differ in seed, rank or alpha: they did not start from the same initialisation")
    n = len(a.runs)
    ranks = [d["l0.q.lora_a"].shape[0] for d in deltas]
    rank = min(sum(ranks), a.max_rank)

    # alpha = rank: scale 1, so B holds the (already scaled) stored B's as they are.
    tok, model = finetune.load(a.model_dir, rank, rank)
    kept = []
    with torch.no_grad():
        for l, m in enumerate(model.enc.layers):
            for k in LINEARS:
                lin = getattr(m, k)
                a_ = torch.cat([d[f"l{l}.{k}.lora_a"].float() for d in deltas], 0)
                b_ = torch.cat([d[f"l{l}.{k}.lora_b"].float() / n for d in deltas], 1)
                # Under the cap the concatenation is kept as it is (exact; one run
                # comes back byte for byte); over it, the best low-rank cut.
                share = 1.0
                if a_.shape[0] > rank:
                    a_, b_, share = cut(a_, b_, rank)
                kept.append(share)
                lin.a.copy_(a_)
                lin.b.copy_(b_)
            for k in ("aln", "oln"):
                ln = getattr(m, k)
                ln.weight.copy_(sum(d[f"l{l}.{k}.w"].float() for d in deltas) / n)
                ln.bias.copy_(sum(d[f"l{l}.{k}.b"].float() for d in deltas) / n)
        model.enc.emb_ln.weight.copy_(sum(d["emb.ln.w"].float() for d in deltas) / n)
        model.enc.emb_ln.bias.copy_(sum(d["emb.ln.b"].float() for d in deltas) / n)
        # heads.json holds weight x gain; the module holds the weight.
        w = sum(torch.tensor(h["weights"]) for h in heads) / n
        model.heads.weight.copy_(w / model.gain)
        model.heads.bias.copy_(sum(torch.tensor(h["bias"]) for h in heads) / n)
    model.eval()
    print(f"rank {rank}: the least share of an update's energy kept is {min(kept):.5f}", flush=True)
    finetune.round_adapters_to_f16(model)
    delta = finetune.export(model, a.out, a.scores_dir, rank, rank)
    finetune.write_fixture(model, tok, a.out)
    finetune.score_splits(model, tok, a.splits.split(","), a.scores_dir)

    for l in logs:
        l.pop("losses", None)
    log = {
        "soup_of": logs,
        "texts_largest_run": max(l["texts"] for l in logs),
        "train_seconds": round(sum(l["train_seconds"] for l in logs), 1),
        "peak_rss_mb": max(max(l["peak_rss_mb"] for l in logs),
                           round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)),
        "rank": rank,
        "alpha": rank,
        "seed": logs[0]["seed"],
        "delta_bytes": os.path.getsize(delta),
        "soup_cpu_seconds": round(time.process_time(), 1),
    }
    json.dump(log, open(os.path.join(a.scores_dir, "train-log.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in log.items() if k != "soup_of"}))


if __name__ == "__main__":
    main()
