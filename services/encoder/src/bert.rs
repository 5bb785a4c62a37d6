//! BERT encoder (multilingual-e5-small) in candle, built from the `E5S1` blob.
//!
//! Linear layers run either as candle quantized matmuls on the Q4_0 weights
//! (activations are quantized to Q8_0 on the fly) or on weights dequantized to
//! f32 at load time; `MatmulMode` picks. The default, `Int8`, does not use this
//! graph: see `int8_bert`.
//! The 250k-row word-embedding table stays Q4_0 in the memory map in both modes:
//! only the rows a batch needs are dequantized (54 MB instead of 384 MB of f32).

use std::sync::Arc;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor, D};
use half::f16;
use memmap2::Mmap;

use crate::blob::{BertConfig, Blob, BlobDType, Q4_BLOCK, Q4_BLOCK_BYTES};
use crate::delta::Delta;
use crate::EncoderError;

/// How the Q4_0 linear weights are multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatmulMode {
    /// candle's Q4_0 x Q8_0 kernels on the packed weights (smaller in memory,
    /// slower on CPU for batches: candle quantizes activations row by row).
    Quantized,
    /// Weights dequantized to f32 once at load; f32 GEMM (the reference the
    /// int8 path is checked against).
    F32,
    /// int8 weights (per output channel, from the merged f32 weights) and
    /// per-token u8 activations on the crate's own kernels ([`crate::int8`]),
    /// with tokens packed across texts (no padding). Several times faster
    /// than f32 at cosine ≥ 0.995 to it (BENCHMARKS.md), so the default.
    #[default]
    Int8,
}

impl std::str::FromStr for MatmulMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "quantized" | "q4" => Ok(Self::Quantized),
            "f32" => Ok(Self::F32),
            "int8" => Ok(Self::Int8),
            _ => Err(format!("unknown matmul mode {s:?} (quantized | f32 | int8)")),
        }
    }
}

struct Linear {
    weight: QMatMul,
    bias: Tensor,
}

impl Linear {
    fn load(
        blob: &Blob,
        prefix: &str,
        out: usize,
        inp: usize,
        mode: MatmulMode,
        delta: Option<&Delta>,
    ) -> Result<Self, EncoderError> {
        let weight = match mode {
            MatmulMode::Quantized => {
                let raw = blob.bytes(&format!("{prefix}.w"), BlobDType::Q4_0, out * inp)?;
                let q = qtensor_from_ggml(GgmlDType::Q4_0, raw, vec![out, inp], &Device::Cpu)?;
                match delta.map(|d| d.low_rank(prefix, out, inp)).transpose()?.flatten() {
                    None => QMatMul::QTensor(Arc::new(q)),
                    // The merged weight is re-packed as Q8_0 (finer than the
                    // Q4_0 it came from, so the delta is not rounded away).
                    Some(ba) => {
                        let merged = (q.dequantize(&Device::Cpu)? + ba)?;
                        QMatMul::QTensor(Arc::new(QTensor::quantize(&merged, GgmlDType::Q8_0)?))
                    }
                }
            }
            _ => QMatMul::Tensor(merged_weight(blob, prefix, out, inp, delta)?),
        };
        let bias = Tensor::from_vec(blob.f32s(&format!("{prefix}.b"), out)?, out, &Device::Cpu)?;
        Ok(Self { weight, bias })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.weight.forward(x)?.broadcast_add(&self.bias)
    }
}

/// The f32 weight `[out, inp]` of linear layer `prefix`: the registry's Q4_0
/// weight dequantized, plus the fine-tuned delta's `B·A` where it has one.
pub(crate) fn merged_weight(
    blob: &Blob,
    prefix: &str,
    out: usize,
    inp: usize,
    delta: Option<&Delta>,
) -> Result<Tensor, EncoderError> {
    let raw = blob.bytes(&format!("{prefix}.w"), BlobDType::Q4_0, out * inp)?;
    let w = qtensor_from_ggml(GgmlDType::Q4_0, raw, vec![out, inp], &Device::Cpu)?.dequantize(&Device::Cpu)?;
    Ok(match delta.map(|d| d.low_rank(prefix, out, inp)).transpose()?.flatten() {
        Some(ba) => (w + ba)?,
        None => w,
    })
}

pub(crate) struct LayerNorm {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    pub(crate) eps: f32,
}

impl LayerNorm {
    /// The blob's LayerNorm `prefix`, or the delta's replacement for it.
    pub(crate) fn load(
        blob: &Blob,
        prefix: &str,
        h: usize,
        eps: f64,
        delta: Option<&Delta>,
    ) -> Result<Self, EncoderError> {
        if let Some((w, b)) = delta.map(|d| d.norm(prefix, h)).transpose()?.flatten() {
            return Ok(Self { weight: w, bias: b, eps: eps as f32 });
        }
        let w = Tensor::from_vec(blob.f32s(&format!("{prefix}.w"), h)?, h, &Device::Cpu)?;
        let b = Tensor::from_vec(blob.f32s(&format!("{prefix}.b"), h)?, h, &Device::Cpu)?;
        Ok(Self { weight: w, bias: b, eps: eps as f32 })
    }
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    attn_out: Linear,
    attn_ln: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    out_ln: LayerNorm,
}

/// Word embeddings kept as Q4_0 rows in the memory map.
pub(crate) struct QuantizedEmbedding {
    map: Arc<Mmap>,
    offset: usize,
    rows: usize,
    dim: usize,
}

impl QuantizedEmbedding {
    fn row_bytes(&self) -> usize {
        self.dim / Q4_BLOCK * Q4_BLOCK_BYTES
    }

    /// The word table of `blob`, left in its memory map.
    pub(crate) fn load(blob: &Blob) -> Result<Self, EncoderError> {
        let c = &blob.config;
        let entry = blob.entry("emb.word")?;
        blob.bytes("emb.word", BlobDType::Q4_0, c.vocab * c.hidden)?;
        Ok(Self { map: blob.map(), offset: entry.offset, rows: c.vocab, dim: c.hidden })
    }

    /// Dequantizes the rows for `ids` into a `[ids.len(), dim]` f32 buffer.
    pub(crate) fn gather(&self, ids: &[u32]) -> Result<Vec<f32>, EncoderError> {
        let mut out = vec![0f32; ids.len() * self.dim];
        let rb = self.row_bytes();
        for (dst, &id) in out.chunks_exact_mut(self.dim).zip(ids) {
            let id = id as usize;
            if id >= self.rows {
                return Err(EncoderError::BadModel(format!("token id {id} outside vocabulary")));
            }
            let row = &self.map[self.offset + id * rb..self.offset + (id + 1) * rb];
            // Q4_0: f16 scale, then byte j holds weight j (low nibble) and j+16 (high).
            for (block, o) in row.chunks_exact(Q4_BLOCK_BYTES).zip(dst.chunks_exact_mut(Q4_BLOCK)) {
                let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
                for (j, &q) in block[2..].iter().enumerate() {
                    o[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
                    o[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        Ok(out)
    }
}

pub struct Bert {
    pub config: BertConfig,
    word: QuantizedEmbedding,
    /// position + token-type-0 embeddings, pre-summed: `[max_positions, hidden]`.
    pos_type: Tensor,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    pub mode: MatmulMode,
}

/// Position embeddings plus the token-type-0 embedding, `[max_positions, hidden]`.
pub(crate) fn position_and_type(blob: &Blob) -> Result<Tensor, EncoderError> {
    let c = &blob.config;
    let h = c.hidden;
    let pos = Tensor::from_vec(blob.f32s("emb.pos", c.max_positions * h)?, (c.max_positions, h), &Device::Cpu)?;
    let types = Tensor::from_vec(blob.f32s("emb.type", c.type_vocab * h)?, (c.type_vocab, h), &Device::Cpu)?;
    Ok(pos.broadcast_add(&types.get(0)?)?)
}

impl Bert {
    /// Builds the encoder from the registry blob, with a fine-tuned `delta`
    /// merged into its weights when one is given.
    pub fn load(blob: &Blob, mode: MatmulMode, delta: Option<&Delta>) -> Result<Self, EncoderError> {
        let c = blob.config.clone();
        let (h, f) = (c.hidden, c.ffn);
        let word = QuantizedEmbedding::load(blob)?;
        let pos_type = position_and_type(blob)?;
        let emb_ln = LayerNorm::load(blob, "emb.ln", h, c.ln_eps, delta)?;
        let layers = (0..c.layers)
            .map(|l| {
                let p = |s: &str| format!("l{l}.{s}");
                Ok(Layer {
                    q: Linear::load(blob, &p("q"), h, h, mode, delta)?,
                    k: Linear::load(blob, &p("k"), h, h, mode, delta)?,
                    v: Linear::load(blob, &p("v"), h, h, mode, delta)?,
                    attn_out: Linear::load(blob, &p("ao"), h, h, mode, delta)?,
                    attn_ln: LayerNorm::load(blob, &p("aln"), h, c.ln_eps, delta)?,
                    ffn_in: Linear::load(blob, &p("fi"), f, h, mode, delta)?,
                    ffn_out: Linear::load(blob, &p("fo"), h, f, mode, delta)?,
                    out_ln: LayerNorm::load(blob, &p("oln"), h, c.ln_eps, delta)?,
                })
            })
            .collect::<Result<Vec<_>, EncoderError>>()?;
        Ok(Self { config: c, word, pos_type, emb_ln, layers, mode })
    }

    /// Runs the encoder on a padded batch and returns mean-pooled, L2-normalised
    /// sentence vectors `[batch, hidden]`.
    ///
    /// `ids` is `batch x seq` row-major; `lens[i]` is the number of real tokens
    /// in row `i` (the rest is padding). With one row, or rows of equal length,
    /// no mask is built.
    pub fn embed_padded(&self, ids: &[u32], lens: &[usize], seq: usize) -> Result<Tensor, EncoderError> {
        let (b, h) = (lens.len(), self.config.hidden);
        if seq > self.config.max_positions {
            return Err(EncoderError::BadModel(format!("sequence of {seq} exceeds {}", self.config.max_positions)));
        }
        let words = Tensor::from_vec(self.word.gather(ids)?, (b, seq, h), &Device::Cpu)?;
        let x = words.broadcast_add(&self.pos_type.narrow(0, 0, seq)?)?;
        let mut x = self.emb_ln.forward(&x)?;

        let padded = lens.iter().any(|&l| l != seq);
        // Additive attention bias [b, 1, 1, seq]: 0 for tokens, -inf-ish for padding.
        let mask = if padded {
            let m: Vec<f32> =
                lens.iter().flat_map(|&l| (0..seq).map(move |j| if j < l { 0.0 } else { -1e9 })).collect();
            Some(Tensor::from_vec(m, (b, 1, 1, seq), &Device::Cpu)?)
        } else {
            None
        };
        let heads = self.config.heads;
        let hd = h / heads;
        let scale = 1.0 / (hd as f64).sqrt();
        let split = |t: Tensor| t.reshape((b, seq, heads, hd))?.transpose(1, 2)?.contiguous();
        for layer in &self.layers {
            let q = split(layer.q.forward(&x)?)?;
            let k = split(layer.k.forward(&x)?)?;
            let v = split(layer.v.forward(&x)?)?;
            let mut scores = (q.matmul(&k.t()?)? * scale)?;
            if let Some(m) = &mask {
                scores = scores.broadcast_add(m)?;
            }
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, seq, h))?;
            x = layer.attn_ln.forward(&(layer.attn_out.forward(&ctx)? + &x)?)?;
            let mid = layer.ffn_in.forward(&x)?.gelu_erf()?;
            x = layer.out_ln.forward(&(layer.ffn_out.forward(&mid)? + &x)?)?;
        }

        // Mean pooling over real tokens, then L2 normalisation.
        let pooled = if padded {
            let m: Vec<f32> = lens.iter().flat_map(|&l| (0..seq).map(move |j| (j < l) as u8 as f32)).collect();
            let m = Tensor::from_vec(m, (b, seq, 1), &Device::Cpu)?;
            let counts = Tensor::from_vec(lens.iter().map(|&l| l as f32).collect::<Vec<_>>(), (b, 1), &Device::Cpu)?;
            x.broadcast_mul(&m)?.sum(1)?.broadcast_div(&counts)?
        } else {
            x.mean(1)?
        };
        let norm = pooled.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(pooled.broadcast_div(&norm)?.to_dtype(DType::F32)?)
    }
}
