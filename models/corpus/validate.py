#!/usr/bin/env python3
"""Check corpus files against the record contract of models/corpus/README.md.

Usage: python3 models/corpus/validate.py FILE.jsonl [FILE.jsonl ...]
Exits non-zero and names file:line for every bad record.
"""
import json
import sys

LABELS = {"violence", "retaliation", "self_harm", "collective", "livelihood"}
THREATS = LABELS - {"livelihood"}
LEVELS = {"red", "orange", "yellow", "blue"}
SOURCES = {"petition", "hotline", "message", "grid_report", "mediation", "chat"}
PARTS = {"mix", "threat"}
FORMS = {
    "plain", "implicit", "target_family_property", "third_party_report",
    "news_past", "quoted", "withdrawn", "hypothetical", "sarcasm",
    "fiction_lyrics", "figurative", "obfuscated", "board_letter",
    "vague_warning", "habitual_violence", "brawl", "in_progress",
}
KEYS = {"id", "text", "labels", "level", "source", "persona", "form", "part", "register"}


def check(path, seen):
    bad = 0
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.strip()
        if not line:
            continue
        where = f"{path}:{n}"
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"{where}: not JSON ({e})"); bad += 1; continue
        errs = []
        missing = KEYS - r.keys()
        if missing:
            errs.append(f"missing {sorted(missing)}")
        if r.get("id") in seen:
            errs.append(f"duplicate id {r.get('id')}")
        seen.add(r.get("id"))
        if not isinstance(r.get("text"), str) or not r["text"].strip():
            errs.append("empty text")
        labels = r.get("labels")
        if not isinstance(labels, list) or not set(labels) <= LABELS or len(set(labels)) != len(labels):
            errs.append(f"bad labels {labels}")
        lvl = r.get("level")
        if lvl not in LEVELS:
            errs.append(f"bad level {lvl}")
        elif isinstance(labels, list):
            has_threat = bool(set(labels) & THREATS)
            if lvl in ("red", "orange") and not has_threat:
                errs.append(f"{lvl} needs a threat label")
            if lvl in ("yellow", "blue") and has_threat:
                errs.append(f"{lvl} cannot carry a threat label")
        if r.get("source") not in SOURCES:
            errs.append(f"bad source {r.get('source')}")
        if r.get("form") not in FORMS:
            errs.append(f"bad form {r.get('form')}")
        if r.get("part") not in PARTS:
            errs.append(f"bad part {r.get('part')}")
        if errs:
            print(f"{where}: " + "; ".join(errs)); bad += 1
    return bad


if __name__ == "__main__":
    seen = set()
    total_bad = sum(check(p, seen) for p in sys.argv[1:])
    print(f"{len(seen)} records, {total_bad} bad")
    sys.exit(1 if total_bad else 0)
