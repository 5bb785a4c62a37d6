"""The labelled sets the fine-tuning reads, and how they are split.

Splits are fixed by writer (a corpus part is one writer) and, for the real
board messages, by a hash of the id, so no split depends on a model's output:

| split | what |
|---|---|
| train | shared train.jsonl (with models/overrides.toml), corpus parts w1 w2 w3 w5 w8-w15 w18 w19, real messages with hash bucket 0-4 |
| calib | corpus parts w7 w16 w17, real messages in buckets 5-6: thresholds and every other choice are made here |
| test  | corpus parts w4 w6, real messages in buckets 7-9: reported once per shipped model, never used for a choice |
| dev   | shared dev.jsonl: reported, never used for a choice |
"""
import hashlib
import json
import os
import tomllib

REPO = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("TRIAGE_DATA", os.path.join(REPO, "..", "shared", "data"))
CORPUS = os.path.join(REPO, "models", "corpus")

LABELS = ["violence", "retaliation", "self_harm", "collective", "livelihood"]
LEVELS = ["blue", "yellow", "orange", "red"]
# Every part written after risk-2.0 goes to train, except w16 and w17,
# written as two more calibration voices so that the thresholds rest on
# three writers, not one. Test stays w4 and w6.
WRITERS = {
    "train": ["w1", "w2", "w3", "w5", "w8", "w9", "w10", "w11", "w12", "w13", "w14", "w15", "w18", "w19"],
    "calib": ["w7", "w16", "w17"],
    "test": ["w4", "w6"],
}


def real_bucket(msg_id):
    """0-9 from the id alone (sha256), so the split never moves."""
    return hashlib.sha256(msg_id.encode()).digest()[0] % 10


def real_split(msg_id):
    b = real_bucket(msg_id)
    return "train" if b < 5 else "calib" if b < 7 else "test"


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def shared_set(name):
    rows = read_jsonl(os.path.join(SHARED, f"{name}.jsonl"))
    for r in rows:
        r.setdefault("part", "shared")
        r["writer"] = f"shared-{name}"
    if name == "train":
        over = tomllib.load(open(os.path.join(REPO, "models", "overrides.toml"), "rb"))
        fix = {o["id"]: o for o in over.get("override", [])}
        for o in fix.values():
            if not set(o["labels"]) <= set(LABELS) or o["level"] not in LEVELS:
                raise ValueError(f"models/overrides.toml: {o['id']} has labels or a level outside the standard")
        for r in rows:
            if r["id"] in fix:
                r["labels"], r["level"] = fix[r["id"]]["labels"], fix[r["id"]]["level"]
    return rows


def corpus_part(writer):
    rows = read_jsonl(os.path.join(CORPUS, "parts", f"{writer}.jsonl"))
    for r in rows:
        r["writer"] = writer
    return rows


def real_messages(split):
    """Labelled real board messages of one split; the text comes from shared/."""
    labels = {r["id"]: r for r in read_jsonl(os.path.join(CORPUS, "real_labels.jsonl"))}
    out, seen = [], set()
    for m in read_jsonl(os.path.join(SHARED, "real", "gov_messages.jsonl")):
        if m["id"] in seen or m["id"] not in labels or real_split(m["id"]) != split:
            continue
        seen.add(m["id"])
        lab = labels[m["id"]]
        text = (m.get("title", "") + "\n" + m["text"]).strip()
        out.append({"id": m["id"], "text": text, "labels": lab["labels"], "level": lab["level"],
                    "source": "message", "persona": "citizen", "form": "real_board", "part": "real",
                    "writer": "real", "category": m.get("category")})
    return out


def split(name, writers=None):
    """One split's rows; `writers` replaces the split's corpus parts (a trial on other data)."""
    if name == "dev":
        return shared_set("dev")
    if writers is not None:
        if name != "train":
            raise ValueError("only the train split's writers can be chosen")
        held = sorted(set(writers) & set(WRITERS["calib"] + WRITERS["test"]))
        if held:
            raise ValueError(f"{', '.join(held)}: calibration or test writers cannot be trained on")
    rows = shared_set("train") if name == "train" else []
    for w in WRITERS[name] if writers is None else writers:
        if writers is not None or os.path.exists(os.path.join(CORPUS, "parts", f"{w}.jsonl")):
            rows += corpus_part(w)
    return rows + real_messages(name)
