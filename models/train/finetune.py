#!/usr/bin/env python3
"""Fine-tunes multilingual-e5-small as the risk classifier, on the CPU.

The base weights are the registry's (the E5S1 Q4_0 blob, dequantized to f32,
exactly what the candle encoder computes with). Every linear layer of all 12
blocks gets a rank-r LoRA adapter; the LayerNorms and the heads are trained
in full; everything else stays frozen. On the pooled, L2-normalised sentence
vector sit five label heads (independent sigmoids) and an ordinal level head
(three cumulative sigmoids: >= yellow, >= orange, >= red).

The same pass gives the service's search vector, so fine-tuning must not
wreck the base model's neighbourhoods (classification alone pulls paraphrases
of one complaint apart and unrelated ones together): a distillation term holds
each chunk's tuned vector near its base vector, weight --distill.

A text longer than one chunk is read as the service reads it: cut into chunks
of at most 400 chars at sentence ends, each chunk encoded, and every head
takes the maximum logit over the chunks (so a threat at the end of a long
letter counts, and training matches serving).

  python3 models/train/finetune.py --model-dir DIR [--epochs 3] [--out models/delta]

Writes to --out (shipped): e5-lora.safetensors (the delta, f16 adapters + f32
norms) and fixture.json (vectors and logits of a few texts from this framework,
for the Rust merge test). Writes to --scores-dir (work files, not shipped):
heads.json (head weights, no thresholds yet), the calibration, test and dev
splits' probabilities (scores-<split>.jsonl, for calibrate.py and the error
analysis), and train-log.json (time, peak memory, losses).
"""
import argparse
import hashlib
import json
import math
import os
import random
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "eval", "bench"))
import data  # noqa: E402
from e5_torch import read_blob  # noqa: E402

CHUNK_CHARS = 400  # triage_risk::judge::CHUNK_CHARS
SENTENCE_ENDS = set("。！？!?\n；")
LINEARS = ["q", "k", "v", "ao", "fi", "fo"]


def chunks(text, limit=CHUNK_CHARS):
    """Port of triage_risk::judge::chunks: sentence-end cuts, pieces of <= limit chars."""
    sentences, cur = [], ""
    for c in text:
        cur += c
        if c in SENTENCE_ENDS:
            sentences.append(cur)
            cur = ""
    sentences.append(cur)
    out, piece = [], ""
    for s in sentences:
        if len(piece) + len(s) > limit and piece:
            out.append(piece)
            piece = ""
        if len(s) > limit:
            out += [s[i:i + limit] for i in range(0, len(s), limit)]
            continue
        piece += s
    out.append(piece)
    out = [p for p in out if p.strip()]
    return out or [text]


class LoRALinear(nn.Module):
    def __init__(self, w, b, rank, alpha):
        super().__init__()
        out, inp = w.shape
        self.register_buffer("weight", w)
        self.register_buffer("bias", b)
        self.a = nn.Parameter(torch.randn(rank, inp) / math.sqrt(inp))
        self.b = nn.Parameter(torch.zeros(out, rank))
        self.scale = alpha / rank

    def forward(self, x):
        return F.linear(x, self.weight, self.bias) + F.linear(F.linear(x, self.a), self.b) * self.scale


class Encoder(nn.Module):
    def __init__(self, cfg, t, rank, alpha):
        super().__init__()
        h, ff = cfg["hidden_size"], cfg["intermediate_size"]
        self.h, self.heads, self.eps = h, cfg["num_attention_heads"], cfg["layer_norm_eps"]
        self.register_buffer("word", torch.from_numpy(t["emb.word"].reshape(-1, h)))
        pos = torch.from_numpy(t["emb.pos"].reshape(-1, h))
        self.register_buffer("pos_type", pos + torch.from_numpy(t["emb.type"].reshape(-1, h))[0])
        self.emb_ln = self._ln(t, "emb.ln", h)
        shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
        self.layers = nn.ModuleList()
        for l in range(cfg["num_hidden_layers"]):
            m = nn.Module()
            for k, (o, i) in shapes.items():
                w = torch.from_numpy(t[f"l{l}.{k}.w"].reshape(o, i).copy())
                setattr(m, k, LoRALinear(w, torch.from_numpy(t[f"l{l}.{k}.b"].copy()), rank, alpha))
            m.aln, m.oln = self._ln(t, f"l{l}.aln", h), self._ln(t, f"l{l}.oln", h)
            self.layers.append(m)

    def _ln(self, t, name, h):
        ln = nn.LayerNorm(h, eps=self.eps if hasattr(self, "eps") else 1e-12)
        with torch.no_grad():
            ln.weight.copy_(torch.from_numpy(t[f"{name}.w"].copy()))
            ln.bias.copy_(torch.from_numpy(t[f"{name}.b"].copy()))
        return ln

    def forward(self, ids, mask):
        b, s = ids.shape
        x = self.emb_ln(F.embedding(ids, self.word) + self.pos_type[:s])
        bias = (1.0 - mask[:, None, None, :].float()) * -1e9
        hd = self.h // self.heads
        split = lambda t: t.view(b, s, self.heads, hd).transpose(1, 2)
        for m in self.layers:
            q, k, v = split(m.q(x)), split(m.k(x)), split(m.v(x))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(b, s, self.h)
            x = m.aln(m.ao(ctx) + x)
            x = m.oln(m.fo(F.gelu(m.fi(x))) + x)
        mf = mask.unsqueeze(-1).float()
        pooled = (x * mf).sum(1) / mf.sum(1)
        return F.normalize(pooled, dim=-1)


class Classifier(nn.Module):
    """Five label logits and three cumulative level logits from the unit vector."""

    def __init__(self, enc, h):
        super().__init__()
        self.enc = enc
        self.heads = nn.Linear(h, len(data.LABELS) + 3)
        # Unit vectors have small coordinates; a fixed gain lets the heads' weights stay O(1).
        self.gain = 16.0

    def forward(self, ids, mask, owner, n_texts):
        v = self.enc(ids, mask)
        logits = self.heads(v * self.gain)
        # Max over each text's chunks.
        out = torch.full((n_texts, logits.shape[1]), -1e9)
        out = out.scatter_reduce(0, owner[:, None].expand_as(logits), logits, reduce="amax", include_self=True)
        return out, v


def targets(r):
    y = [1.0 if l in r["labels"] else 0.0 for l in data.LABELS]
    lv = data.LEVELS.index(r["level"])
    return y + [float(lv >= 1), float(lv >= 2), float(lv >= 3)]


def encode(tok, text, max_tokens):
    ids = tok.encode("query: " + text).ids
    return ids[: max_tokens - 1] + [2] if len(ids) > max_tokens else ids


def batches(rows, tok, max_tokens, budget, shuffle, rng):
    """Groups texts (with all their chunks) into batches of about `budget` padded tokens."""
    items = []
    for i, r in enumerate(rows):
        ch = [encode(tok, c, max_tokens) for c in chunks(r["text"])]
        items.append((i, ch))
    items.sort(key=lambda it: max(len(c) for c in it[1]))
    groups, cur, cur_len, cur_rows = [], [], 0, 0
    for it in items:
        n = len(it[1])
        longest = max(cur_len, max(len(c) for c in it[1]))
        if cur and longest * (cur_rows + n) > budget:
            groups.append(cur)
            cur, cur_len, cur_rows = [], 0, 0
            longest = max(len(c) for c in it[1])
        cur.append(it)
        cur_len, cur_rows = longest, cur_rows + n
    if cur:
        groups.append(cur)
    if shuffle:
        rng.shuffle(groups)
    for g in groups:
        flat, owner, keys = [], [], []
        for j, (i, ch) in enumerate(g):
            flat += ch
            owner += [j] * len(ch)
            keys += [(i, c) for c in range(len(ch))]
        s = max(len(c) for c in flat)
        ids = torch.full((len(flat), s), 1, dtype=torch.long)
        mask = torch.zeros((len(flat), s), dtype=torch.long)
        for r_, c in enumerate(flat):
            ids[r_, : len(c)] = torch.tensor(c)
            mask[r_, : len(c)] = 1
        yield [i for i, _ in g], ids, mask, torch.tensor(owner), keys


def loss_fn(logits, y, pos_weight):
    return F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)


def round_adapters_to_f16(model):
    """The shipped delta stores adapters in f16; train-time vectors must match it."""
    with torch.no_grad():
        for m in model.enc.layers:
            for k in LINEARS:
                lin = getattr(m, k)
                lin.a.copy_(lin.a.half().float())
                lin.b.copy_((lin.b * lin.scale).half().float() / lin.scale)


def export(model, out_dir, work_dir, rank, alpha):
    from safetensors.torch import save_file
    t = {}
    for l, m in enumerate(model.enc.layers):
        for k in LINEARS:
            lin = getattr(m, k)
            t[f"l{l}.{k}.lora_a"] = lin.a.detach().half().contiguous()
            # The scale is folded into B so the delta is just B @ A.
            t[f"l{l}.{k}.lora_b"] = (lin.b.detach() * lin.scale).half().contiguous()
        for k in ("aln", "oln"):
            ln = getattr(m, k)
            t[f"l{l}.{k}.w"] = ln.weight.detach().float().contiguous()
            t[f"l{l}.{k}.b"] = ln.bias.detach().float().contiguous()
    t["emb.ln.w"] = model.enc.emb_ln.weight.detach().float().contiguous()
    t["emb.ln.b"] = model.enc.emb_ln.bias.detach().float().contiguous()
    path = os.path.join(out_dir, "e5-lora.safetensors")
    save_file(t, path, metadata={"format": "triage-lora-1", "rank": str(rank), "alpha": str(alpha)})
    w = model.heads.weight.detach() * model.gain
    heads = {
        "outputs": data.LABELS + ["level_ge_yellow", "level_ge_orange", "level_ge_red"],
        "weights": [[round(float(x), 7) for x in row] for row in w],
        "bias": [round(float(x), 7) for x in model.heads.bias.detach()],
    }
    json.dump(heads, open(os.path.join(work_dir, "heads.json"), "w"), indent=1)
    return path


@torch.no_grad()
def score(model, rows, tok, max_tokens):
    model.eval()
    out = [None] * len(rows)
    for idx, ids, mask, owner, _ in batches(rows, tok, max_tokens, 4096, False, None):
        logits, _ = model(ids, mask, owner, len(idx))
        for j, i in enumerate(idx):
            out[i] = torch.sigmoid(logits[j]).tolist()
    return out


def check_splits(ap, splits):
    """Refuses an unknown split name before any work starts."""
    unknown = sorted(set(splits.split(",")) - {"calib", "test", "dev"})
    if unknown:
        ap.error(f"--splits: unknown split(s) {', '.join(unknown)} (calib, test, dev)")


def load(model_dir, rank, alpha):
    """The tokenizer, and the classifier on the registry's weights with fresh rank-`rank` adapters."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    cfg, t = read_blob(os.path.join(model_dir, "e5-small-q4.bin"))
    return tok, Classifier(Encoder(cfg, t, rank, alpha), cfg["hidden_size"])


def write_fixture(model, tok, out_dir):
    """Vectors and logits of a few single-chunk texts, for the Rust merge test."""
    fixture_texts = ["明天上午我就带汽油去镇政府", "咨询一下新农合报销比例",
                     "再不给钱我就跟老板拼了", "这是我第五次反映了，还是没人管",
                     "小区门口的路灯坏了一个月，晚上出行不便，请尽快修复。"]
    items = []
    with torch.no_grad():
        for text in fixture_texts:
            ids = torch.tensor([encode(tok, text, 512)])
            logits, v = model(ids, torch.ones_like(ids), torch.zeros(1, dtype=torch.long), 1)
            items.append({"text": text, "vector": [round(float(x), 6) for x in v[0]],
                          "logits": [round(float(x), 5) for x in logits[0]]})
    json.dump({"generated_by": "models/train/finetune.py (PyTorch f32, merged-equivalent LoRA)", "items": items},
              open(os.path.join(out_dir, "fixture.json"), "w"), ensure_ascii=False, indent=0)


def score_splits(model, tok, splits, scores_dir):
    """Each split's probabilities, to scores-<split>.jsonl (for calibrate.py and the error analysis)."""
    for name in splits:
        rows = data.split(name)
        t0 = time.time()
        probs = score(model, rows, tok, 512)
        with open(os.path.join(scores_dir, f"scores-{name}.jsonl"), "w", encoding="utf-8") as f:
            for r, p in zip(rows, probs):
                keep = {k: r.get(k) for k in ("id", "labels", "level", "source", "persona", "form", "part", "writer")}
                f.write(json.dumps({**keep, "probs": [round(x, 5) for x in p]}, ensure_ascii=False) + "\n")
        print(f"scored {name}: {len(rows)} texts in {time.time() - t0:.0f}s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=os.path.expanduser("~/.cache/triage/models/multilingual-e5-small"))
    ap.add_argument("--out", default=os.path.join(data.REPO, "models", "delta"))
    ap.add_argument("--scores-dir", default=os.path.join(data.REPO, "target", "finetune"))
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-tokens", type=int, default=192, help="tokens per chunk in training (serving reads up to 512)")
    ap.add_argument("--batch-tokens", type=int, default=3072, help="padded tokens per step")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=13, help="adapter initialisation (and data order, unless --order-seed)")
    ap.add_argument("--order-seed", type=int, default=None,
                    help="data order only; runs that differ only here start alike, so soup.py can average them")
    ap.add_argument("--train-writers", default=",".join(data.WRITERS["train"]),
                    help="corpus parts to train on, besides the shared train set and the real messages' train buckets")
    ap.add_argument("--limit", type=int, default=0, help="train on the first N texts only (smoke runs)")
    ap.add_argument("--splits", default="calib,test,dev",
                    help="splits to score after training; a trial of settings scores calib only, so test stays unseen")
    ap.add_argument("--distill", type=float, default=2.0,
                    help="weight of the term holding each chunk's vector near the base model's (cosine), so search keeps its neighbours")
    a = ap.parse_args()
    # Checked before the hour of training, not after it.
    check_splits(ap, a.splits)

    torch.manual_seed(a.seed)
    rng = random.Random(a.seed if a.order_seed is None else a.order_seed)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.scores_dir, exist_ok=True)
    tok, model = load(a.model_dir, a.rank, a.alpha)

    train = data.split("train", writers=a.train_writers.split(","))
    if a.limit:
        rng.shuffle(train)
        train = train[: a.limit]
    y_all = torch.tensor([targets(r) for r in train])
    # Positives are rare for the four threat labels and the two upper level cuts:
    # weight them by sqrt(neg/pos), and a missed orange/red a little more (cost of under-triage).
    pos = y_all.mean(0).clamp(1e-3, 1 - 1e-3)
    pos_weight = ((1 - pos) / pos).sqrt()
    pos_weight[-2:] *= 1.5
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    # The search vector comes from the same pass as the judgement, so it must
    # keep the base model's neighbourhoods: each chunk's tuned vector is held
    # near its base vector (cosine), computed once here (LoRA's B starts at
    # zero, so the model before training is the base model).
    base = {}
    if a.distill > 0:
        t0 = time.time()
        model.eval()
        with torch.no_grad():
            for _, ids, mask, _, keys in batches(train, tok, a.max_tokens, 4096, False, None):
                v = model.enc(ids, mask)
                for k, row in zip(keys, v):
                    base[k] = row
        model.train()
        print(f"base vectors for {len(base)} chunks in {time.time() - t0:.0f}s", flush=True)
    steps_per_epoch = sum(1 for _ in batches(train, tok, a.max_tokens, a.batch_tokens, False, None))
    total = int(steps_per_epoch * a.epochs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=total, pct_start=0.1)
    n_params = sum(p.numel() for p in params)
    print(f"train {len(train)} texts, {steps_per_epoch} steps/epoch, {total} steps, {n_params} trainable params", flush=True)

    digest = hashlib.sha256()
    for r in train:
        digest.update(json.dumps([r["id"], r["text"], sorted(r["labels"]), r["level"]], ensure_ascii=False).encode())
    log = {"texts": len(train), "data_sha256": digest.hexdigest(), "distill": a.distill, "steps": total, "trainable_params": n_params, "epochs": a.epochs,
           "rank": a.rank, "alpha": a.alpha, "lr": a.lr, "max_tokens": a.max_tokens, "threads": a.threads,
           "seed": a.seed, "order_seed": a.order_seed, "writers": a.train_writers, "losses": []}
    start, step = time.time(), 0
    model.train()
    while step < total:
        for idx, ids, mask, owner, keys in batches(train, tok, a.max_tokens, a.batch_tokens, True, rng):
            logits, v = model(ids, mask, owner, len(idx))
            loss = loss_fn(logits, y_all[idx], pos_weight)
            if a.distill > 0:
                target = torch.stack([base[k] for k in keys])
                loss = loss + a.distill * (1 - (v * target).sum(-1)).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 20 == 0 or step == total:
                el = time.time() - start
                log["losses"].append([step, round(loss.item(), 4)])
                print(f"step {step}/{total} loss {loss.item():.4f} {el:.0f}s eta {el / step * (total - step):.0f}s", flush=True)
            if step >= total:
                break
    log["train_seconds"] = round(time.time() - start, 1)
    round_adapters_to_f16(model)
    model.eval()
    delta = export(model, a.out, a.scores_dir, a.rank, a.alpha)
    log["delta_bytes"] = os.path.getsize(delta)

    write_fixture(model, tok, a.out)
    score_splits(model, tok, a.splits.split(","), a.scores_dir)
    log["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    json.dump(log, open(os.path.join(a.scores_dir, "train-log.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in log.items() if k != "losses"}))


if __name__ == "__main__":
    main()
