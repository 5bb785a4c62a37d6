#!/usr/bin/env python3
"""PyTorch and ONNX Runtime side of the encoder benchmark, and reference vectors.

The same weights as triage's candle encoder (the E5S1 blob, dequantized to
f32), the same tokenizer.json, the same `query: ` prefix, mean pooling and L2
normalisation, run by `transformers.BertModel` on CPU, or exported from it to
ONNX and quantized by ONNX Runtime's dynamic quantization (int8 weights,
activations quantized at run time).

  e5_torch.py reference --model-dir DIR --out FILE.json TEXT...
  e5_torch.py bench --model-dir DIR --texts FILE.jsonl [--real FILE.jsonl] --threads N --out FILE.json
  e5_torch.py onnx-export --model-dir DIR --out MODEL-int8.onnx
  e5_torch.py bench --onnx MODEL-int8.onnx --model-dir DIR --texts ... (ONNX Runtime; torch is not imported)
"""
import argparse, json, os, resource, struct, sys, time

import numpy as np


def read_blob(path):
    b = open(path, "rb").read()
    assert b[:4] == b"E5S1", "bad magic"
    p = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, p); p += 28
    eps, = struct.unpack_from("<f", b, p); p += 8
    n_pieces, = struct.unpack_from("<i", b, p); p += 20
    bl, = struct.unpack_from("<Q", b, p); p += 8
    p += (n_pieces + 1) * 4 + n_pieces * 4 + bl
    _, nmb = struct.unpack_from("<iI", b, p); p += 8 + nmb
    nd, = struct.unpack_from("<i", b, p); p += 4
    tensors = {}
    for _ in range(nd):
        nl, = struct.unpack_from("<H", b, p); p += 2
        name = b[p:p + nl].decode(); p += nl
        dt = b[p]; p += 1
        n, = struct.unpack_from("<I", b, p); p += 4
        off, nb = struct.unpack_from("<QQ", b, p); p += 16
        raw = np.frombuffer(b, dtype=np.uint8, count=nb, offset=off)
        if dt == 0:
            tensors[name] = raw.view(np.float32).copy()
        else:  # Q4_0: f16 scale + 16 bytes, low nibbles = weights 0..15, high = 16..31
            blocks = raw.reshape(-1, 18)
            d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
            q = blocks[:, 2:]
            lo = (q & 0x0F).astype(np.int8) - 8
            hi = (q >> 4).astype(np.int8) - 8
            tensors[name] = (np.concatenate([lo, hi], axis=1).astype(np.float32) * d).reshape(-1)
    cfg = dict(hidden_size=H, num_hidden_layers=NL, num_attention_heads=NH, intermediate_size=FF,
               vocab_size=VOC, max_position_embeddings=MAXP, type_vocab_size=TVS, layer_norm_eps=float(eps),
               hidden_act="gelu", pad_token_id=1)
    return cfg, tensors


def load_model(model_dir):
    import torch
    from transformers import BertConfig, BertModel
    cfg, t = read_blob(os.path.join(model_dir, "e5-small-q4.bin"))
    H, FF = cfg["hidden_size"], cfg["intermediate_size"]
    model = BertModel(BertConfig(**cfg), add_pooling_layer=False).eval()
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    parts = {"q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
             "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
             "fi": ("intermediate.dense", FF, H), "fo": ("output.dense", H, FF)}
    for l in range(cfg["num_hidden_layers"]):
        for k, (name, o, i) in parts.items():
            sd[f"encoder.layer.{l}.{name}.weight"] = t[f"l{l}.{k}.w"].reshape(o, i)
            sd[f"encoder.layer.{l}.{name}.bias"] = t[f"l{l}.{k}.b"]
        for k, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[f"encoder.layer.{l}.{name}.weight"] = t[f"l{l}.{k}.w"]
            sd[f"encoder.layer.{l}.{name}.bias"] = t[f"l{l}.{k}.b"]
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids") and not m.endswith("token_type_ids")]
    assert not missing and not unexpected, (missing, unexpected)
    return model


def tokenizer(model_dir):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding(); tok.no_truncation()
    return tok


def encode_ids(tok, text):
    ids = tok.encode("query: " + text).ids
    return ids[:511] + [2] if len(ids) > 512 else ids


def embed(model, batch_ids):
    import torch
    seq = max(len(i) for i in batch_ids)
    ids = torch.full((len(batch_ids), seq), 1, dtype=torch.long)
    mask = torch.zeros((len(batch_ids), seq), dtype=torch.long)
    for r, i in enumerate(batch_ids):
        ids[r, :len(i)] = torch.tensor(i); mask[r, :len(i)] = 1
    with torch.inference_mode():
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        v = (h * m).sum(1) / m.sum(1)
        return torch.nn.functional.normalize(v, dim=-1)


def cmd_reference(a):
    model, tok = load_model(a.model_dir), tokenizer(a.model_dir)
    out = [{"text": t, "vector": [round(float(x), 6) for x in embed(model, [encode_ids(tok, t)])[0]]} for t in a.texts]
    json.dump({"generated_by": "eval/bench/e5_torch.py reference (transformers BertModel, f32)", "items": out},
              open(a.out, "w"), ensure_ascii=False)


def read_texts(path):
    return [json.loads(l)["text"] for l in open(path, encoding="utf-8") if l.strip()]


def pool(hidden, mask):
    m = mask[..., None].astype(np.float32)
    v = (hidden * m).sum(1) / m.sum(1)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def pad(batch_ids):
    seq = max(len(i) for i in batch_ids)
    ids = np.ones((len(batch_ids), seq), dtype=np.int64)
    mask = np.zeros((len(batch_ids), seq), dtype=np.int64)
    for r, i in enumerate(batch_ids):
        ids[r, :len(i)] = i; mask[r, :len(i)] = 1
    return ids, mask


def cmd_onnx_export(a):
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Hidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__(); self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    f32 = a.out + ".f32.onnx"
    ids = torch.ones((2, 16), dtype=torch.long)
    torch.onnx.export(Hidden(load_model(a.model_dir)), (ids, ids), f32, input_names=["input_ids", "attention_mask"],
                      output_names=["hidden"], opset_version=17, dynamo=False,
                      dynamic_axes={k: {0: "batch", 1: "seq"} for k in ("input_ids", "attention_mask", "hidden")})
    quantize_dynamic(f32, a.out, weight_type=QuantType.QInt8)
    os.remove(f32)


def cmd_bench(a):
    if a.onnx:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = a.threads, 1
        sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])

        def run(batch_ids):
            ids, mask = pad(batch_ids)
            return pool(sess.run(["hidden"], {"input_ids": ids, "attention_mask": mask})[0], mask)
        engine = "onnxruntime " + ort.__version__ + " int8 (dynamic)"
    else:
        import torch
        torch.set_num_threads(a.threads)
        model = load_model(a.model_dir)

        def run(batch_ids):
            return embed(model, batch_ids).numpy()
        engine = "pytorch " + torch.__version__ + " f32"
    tok = tokenizer(a.model_dir)
    texts = read_texts(a.texts)
    single = [t for t in texts if 120 <= len(t) <= 180][: a.single]
    lat, vectors = [], []
    for t in single[:5]:
        run([encode_ids(tok, t)])  # warm-up
    for t in single:
        s = time.perf_counter(); v = run([encode_ids(tok, t)]); lat.append((time.perf_counter() - s) * 1e3)
        vectors.append([round(float(x), 6) for x in v[0]])

    def batch(texts):
        # tokenize, sort by length, batches of 32 (as the candle encoder does)
        s = time.perf_counter()
        ids = sorted((encode_ids(tok, t) for t in texts), key=len, reverse=True)
        for k in range(0, len(ids), 32):
            run(ids[k:k + 32])
        return time.perf_counter() - s, sum(len(i) for i in ids)
    el, ntok = batch(texts)
    lat.sort()
    res = {"engine": engine, "threads": a.threads, "single_n": len(lat),
           "p50_ms": lat[len(lat) // 2], "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
           "batch_texts": len(texts), "batch_tokens": ntok, "batch_seconds": el,
           "texts_per_s": len(texts) / el, "tokens_per_s": ntok / el, "single_vectors": vectors}
    if a.real:
        real = read_texts(a.real)
        el, ntok = batch(real)
        res.update({"real_texts": len(real), "real_tokens": ntok, "real_seconds": el, "real_texts_per_s": len(real) / el})
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(res, open(a.out, "w"), indent=1)
    print(json.dumps({k: v for k, v in res.items() if k != "single_vectors"}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reference"); r.add_argument("--model-dir", required=True); r.add_argument("--out", required=True)
    r.add_argument("texts", nargs="+")
    b = sub.add_parser("bench"); b.add_argument("--model-dir", required=True); b.add_argument("--texts", required=True)
    b.add_argument("--real"); b.add_argument("--onnx", help="an int8 model from onnx-export: run ONNX Runtime")
    b.add_argument("--threads", type=int, default=2); b.add_argument("--single", type=int, default=100)
    b.add_argument("--out", required=True)
    x = sub.add_parser("onnx-export"); x.add_argument("--model-dir", required=True); x.add_argument("--out", required=True)
    a = ap.parse_args()
    {"reference": cmd_reference, "bench": cmd_bench, "onnx-export": cmd_onnx_export}[a.cmd](a)
