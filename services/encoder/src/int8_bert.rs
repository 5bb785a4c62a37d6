//! The encoder on int8 linear layers ([`crate::int8`]) with its own glue:
//! tokens of all texts in a batch packed into one matrix (no padding) for the
//! linear layers, attention per text and head in parallel, one fused QKV
//! matmul, and the attention scale folded into the query weights.

use rayon::prelude::*;

use crate::bert::{merged_weight, position_and_type, LayerNorm, QuantizedEmbedding};
use crate::blob::{BertConfig, Blob};
use crate::delta::Delta;
use crate::int8::{
    attention_scores, attention_values, softmax_numerator, Epilogue, Kernel, PackedLinear, QuantizedRows, AB, QB,
};
use crate::EncoderError;

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(blob: &Blob, prefix: &str, delta: Option<&Delta>) -> Result<Self, EncoderError> {
        let c = &blob.config;
        let ln = LayerNorm::load(blob, prefix, c.hidden, c.ln_eps, delta)?;
        Ok(Self { weight: ln.weight.to_vec1()?, bias: ln.bias.to_vec1()?, eps: ln.eps })
    }

    /// Normalises every row of `x` in place.
    fn apply(&self, x: &mut [f32]) {
        let h = self.weight.len();
        x.par_chunks_mut(h).with_min_len(16).for_each(|row| {
            let mean = row.iter().sum::<f32>() / h as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        });
    }
}

struct Layer {
    /// Query, key and value in one `[3·hidden, hidden]` matmul.
    qkv: PackedLinear,
    attn_out: PackedLinear,
    attn_ln: Norm,
    ffn_in: PackedLinear,
    ffn_out: PackedLinear,
    out_ln: Norm,
}

pub(crate) struct Int8Bert {
    pub(crate) config: BertConfig,
    kernel: Kernel,
    word: QuantizedEmbedding,
    /// `[max_positions, hidden]`, row-major.
    pos_type: Vec<f32>,
    emb_ln: Norm,
    layers: Vec<Layer>,
}

impl Int8Bert {
    /// Quantizes the (merged) weights for the kernel this CPU runs, or the one
    /// `TRIAGE_INT8_KERNEL` names.
    pub(crate) fn load(blob: &Blob, delta: Option<&Delta>) -> Result<Self, EncoderError> {
        let kernel = Kernel::select().map_err(EncoderError::Config)?;
        let c = blob.config.clone();
        if !(c.hidden / c.heads).is_multiple_of(16) {
            return Err(EncoderError::BadModel(format!(
                "int8 path: head size {} is not a multiple of 16",
                c.hidden / c.heads
            )));
        }
        let (h, f) = (c.hidden, c.ffn);
        let linear = |prefix: &str, out: usize, inp: usize| -> Result<(Vec<f32>, Vec<f32>), EncoderError> {
            let w = merged_weight(blob, prefix, out, inp, delta)?.flatten_all()?.to_vec1()?;
            Ok((w, blob.f32s(&format!("{prefix}.b"), out)?))
        };
        // Scores are q·k/√d: scaling the query's weights and bias by 1/√d (a
        // power of two for d = 64) folds the scale into the matmul for free.
        let q_scale = 1.0 / ((h / c.heads) as f32).sqrt();
        let layers = (0..c.layers)
            .map(|l| {
                let p = |s: &str| format!("l{l}.{s}");
                let (mut w, mut b) = linear(&p("q"), h, h)?;
                w.iter_mut().chain(b.iter_mut()).for_each(|v| *v *= q_scale);
                for part in ["k", "v"] {
                    let (pw, pb) = linear(&p(part), h, h)?;
                    w.extend(pw);
                    b.extend(pb);
                }
                let packed = |prefix: &str, out: usize, inp: usize| -> Result<PackedLinear, EncoderError> {
                    let (w, b) = linear(prefix, out, inp)?;
                    Ok(PackedLinear::new(kernel, &w, &b, out, inp))
                };
                Ok(Layer {
                    qkv: PackedLinear::new(kernel, &w, &b, 3 * h, h),
                    attn_out: packed(&p("ao"), h, h)?,
                    attn_ln: Norm::load(blob, &p("aln"), delta)?,
                    ffn_in: packed(&p("fi"), f, h)?,
                    ffn_out: packed(&p("fo"), h, f)?,
                    out_ln: Norm::load(blob, &p("oln"), delta)?,
                })
            })
            .collect::<Result<Vec<_>, EncoderError>>()?;
        Ok(Self {
            kernel,
            word: QuantizedEmbedding::load(blob)?,
            pos_type: position_and_type(blob)?.flatten_all()?.to_vec1()?,
            emb_ln: Norm::load(blob, "emb.ln", delta)?,
            layers,
            config: c,
        })
    }

    pub(crate) fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Mean-pooled, L2-normalised vectors for texts whose token ids are
    /// concatenated in `ids`, `lens[i]` tokens for text `i`.
    pub(crate) fn embed_packed(&self, ids: &[u32], lens: &[usize]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let c = &self.config;
        let (h, f) = (c.hidden, c.ffn);
        if let Some(&l) = lens.iter().find(|&&l| l == 0 || l > c.max_positions) {
            return Err(EncoderError::BadModel(format!("sequence of {l} tokens (1 to {})", c.max_positions)));
        }
        assert_eq!(lens.iter().sum::<usize>(), ids.len(), "lens do not cover ids");
        let starts: Vec<usize> = lens.iter().scan(0, |s, &l| Some(std::mem::replace(s, *s + l))).collect();

        let mut x = self.word.gather(ids)?;
        for (&start, &len) in starts.iter().zip(lens) {
            let rows = &mut x[start * h..(start + len) * h];
            rows.iter_mut().zip(&self.pos_type[..len * h]).for_each(|(v, p)| *v += p);
        }
        self.emb_ln.apply(&mut x);

        let t = ids.len();
        let (mut qkv, mut ctx, mut tmp, mut mid) =
            (vec![0f32; t * 3 * h], vec![0f32; t * h], x.clone(), vec![0f32; t * f]);
        let mut q = QuantizedRows::default();
        for layer in &self.layers {
            q.quantize(&x, h, self.kernel);
            layer.qkv.forward(&q, Epilogue::Bias, &mut qkv);
            attention(self.kernel, &qkv, &starts, lens, c.heads, h, &mut ctx);
            q.quantize(&ctx, h, self.kernel);
            layer.attn_out.forward(&q, Epilogue::Residual(&x), &mut tmp);
            layer.attn_ln.apply(&mut tmp);
            std::mem::swap(&mut x, &mut tmp);
            q.quantize(&x, h, self.kernel);
            layer.ffn_in.forward(&q, Epilogue::Gelu, &mut mid);
            q.quantize(&mid, f, self.kernel);
            layer.ffn_out.forward(&q, Epilogue::Residual(&x), &mut tmp);
            layer.out_ln.apply(&mut tmp);
            std::mem::swap(&mut x, &mut tmp);
        }

        Ok(starts
            .iter()
            .zip(lens)
            .map(|(&start, &len)| {
                let mut v = vec![0f32; h];
                for row in x[start * h..(start + len) * h].chunks_exact(h) {
                    v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
                let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|a| *a /= norm);
                v
            })
            .collect())
    }
}

/// Self-attention of every text over its own tokens only, one task per
/// (text, head); `qkv` rows are `[q | k | v]` with the scale already in q.
fn attention(kernel: Kernel, qkv: &[f32], starts: &[usize], lens: &[usize], heads: usize, h: usize, ctx: &mut [f32]) {
    let hd = h / heads;
    let tasks: Vec<(usize, usize)> = (0..lens.len()).flat_map(|s| (0..heads).map(move |j| (s, j))).collect();
    let outs: Vec<Vec<f32>> =
        tasks.par_iter().map(|&(s, head)| head_attention(kernel, qkv, starts[s], lens[s], head * hd, hd, h)).collect();
    for (&(s, head), out) in tasks.iter().zip(&outs) {
        for (i, o) in out.chunks_exact(hd).enumerate() {
            let row = (starts[s] + i) * h + head * hd;
            ctx[row..row + hd].copy_from_slice(o);
        }
    }
}

/// One head over one text: `softmax(q·kᵀ)·v` for its `len` tokens, returned
/// as `len × hd`, `QB` query rows at a time. Keys are transposed and
/// zero-padded first so that the score product reads contiguous rows.
#[allow(clippy::too_many_arguments)]
fn head_attention(kernel: Kernel, qkv: &[f32], start: usize, len: usize, col: usize, hd: usize, h: usize) -> Vec<f32> {
    let w = 3 * h;
    let row = |i: usize, part: usize| &qkv[(start + i) * w + part * h + col..][..hd];
    let lp = len.next_multiple_of(AB);
    let mut kt = vec![0f32; hd * lp];
    for j in 0..len {
        for (d, &k) in row(j, 1).iter().enumerate() {
            kt[d * lp + j] = k;
        }
    }
    let values = &qkv[start * w + 2 * h + col..(start + len - 1) * w + 2 * h + col + hd];
    let mut out = vec![0f32; len * hd];
    let mut scores = vec![0f32; QB * lp];
    let mut q = vec![0f32; QB * hd];
    let mut block = vec![0f32; QB * hd];
    for i0 in (0..len).step_by(QB) {
        let rows = QB.min(len - i0);
        for r in 0..rows {
            q[r * hd..(r + 1) * hd].copy_from_slice(row(i0 + r, 0));
        }
        attention_scores(kernel, &q, &kt, hd, lp, rows, &mut scores);
        let mut inv = [0f32; QB];
        for (r, inv) in inv.iter_mut().enumerate().take(rows) {
            // Only the text's keys: the value product reads no further.
            let s = &mut scores[r * lp..r * lp + len];
            *inv = softmax_numerator(kernel, s);
        }
        attention_values(kernel, &scores, lp, len, values, w, hd, rows, &mut block);
        // The softmax's division, on hd outputs per row instead of len scores.
        for (r, inv) in inv.iter().enumerate().take(rows) {
            let dst = &mut out[(i0 + r) * hd..(i0 + r + 1) * hd];
            dst.iter_mut().zip(&block[r * hd..(r + 1) * hd]).for_each(|(o, b)| *o = b * inv);
        }
    }
    out
}
