//! The local text encoder: multilingual-e5-small (Q4_0) in candle.
//!
//! `Encoder::embed` is the single-text path (no padding, no mask);
//! `Encoder::embed_batch` sorts texts by token length, pads per batch and runs
//! batches in parallel on the rayon pool (candle's kernels share that pool, so
//! the two cores stay busy without oversubscription).
//!
//! Input contract: a text must contain a non-whitespace character
//! (`EncoderError::EmptyText` otherwise). A text longer than 512 tokens
//! (prefix and specials included) is truncated to its first 511 tokens plus
//! `</s>`; `Embedding::truncated` and `Embedding::tokens` report it.

pub mod bert;
pub mod blob;
pub mod compact;
pub mod delta;
pub mod int8;
mod int8_bert;
pub mod tokenize;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use bert::Bert;
pub use bert::MatmulMode;
pub use blob::{BertConfig, Blob};
pub use delta::Delta;
use int8_bert::Int8Bert;
use tokenize::{TextTokenizer, Tokens};

/// Upper bound on the tokens of one packed int8 batch.
const INT8_BATCH_TOKENS: usize = 512;

/// File names inside a model directory (written by `triage model fetch`).
pub const MODEL_FILE: &str = "e5-small-q4.bin";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Derived from `tokenizer.json` at fetch or first load (see [`compact`]).
pub use compact::COMPACT_TOKENIZER_FILE;

#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("model file {path} is missing: run `triage model fetch --model-dir {dir}` (offline hosts: copy a fetched model directory there)")]
    MissingModel { path: String, dir: String },
    #[error("cannot read {0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("invalid model file: {0}")]
    BadModel(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("tokenizer {path}: {source}")]
    CompactTokenizer {
        path: String,
        #[source]
        source: compact::CompactError,
    },
    #[error("text {index} is empty")]
    EmptyText { index: usize },
    #[error("inference failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// A sentence vector and what it cost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Embedding {
    /// Unit-length vector (cosine similarity = dot product).
    pub vector: Vec<f32>,
    /// Tokens the full text needed, before any truncation.
    pub tokens: usize,
    pub truncated: bool,
}

#[derive(Debug, Clone)]
pub struct EncoderOptions {
    pub matmul: MatmulMode,
    /// Upper bound on padded tokens (rows x longest row) in one forward pass;
    /// bounds attention memory.
    pub max_batch_tokens: usize,
    pub max_batch_size: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self { matmul: MatmulMode::Int8, max_batch_tokens: 2048, max_batch_size: 32 }
    }
}

/// The candle graph (f32 or Q4_0 matmuls) or the int8 path.
enum Model {
    Candle(Bert),
    Int8(Int8Bert),
}

pub struct Encoder {
    model: Model,
    tokenizer: TextTokenizer,
    options: EncoderOptions,
}

impl Encoder {
    /// Loads `e5-small-q4.bin` and `tokenizer.json` from `dir` (the tokenizer
    /// through `tokenizer.compact`, written there first if missing or stale):
    /// the registry's weights as they are.
    pub fn load(dir: &Path, options: EncoderOptions) -> Result<Self, EncoderError> {
        Self::load_inner(dir, options, None)
    }

    /// Loads the registry's weights with a fine-tuned delta (safetensors bytes,
    /// see [`Delta`]) merged in once, so inference costs the same as the base.
    pub fn load_tuned(dir: &Path, options: EncoderOptions, delta: &[u8]) -> Result<Self, EncoderError> {
        Self::load_inner(dir, options, Some(delta))
    }

    fn load_inner(dir: &Path, options: EncoderOptions, delta: Option<&[u8]>) -> Result<Self, EncoderError> {
        let model_path = require(dir, MODEL_FILE)?;
        let tok_path = require(dir, TOKENIZER_FILE)?;
        let blob = Blob::open(&model_path)?;
        let delta = delta.map(|d| Delta::from_bytes(d, blob.config.layers)).transpose()?;
        let model = match options.matmul {
            MatmulMode::Int8 => Model::Int8(Int8Bert::load(&blob, delta.as_ref())?),
            mode => Model::Candle(Bert::load(&blob, mode, delta.as_ref())?),
        };
        let c = &blob.config;
        let tokenizer = TextTokenizer::load(&tok_path, c.max_positions, c.eos_id)?;
        if c.pad_id != 1 {
            return Err(EncoderError::BadModel(format!("unexpected pad id {}", c.pad_id)));
        }
        Ok(Self { model, tokenizer, options })
    }

    pub fn config(&self) -> &BertConfig {
        match &self.model {
            Model::Candle(m) => &m.config,
            Model::Int8(m) => &m.config,
        }
    }

    pub fn dim(&self) -> usize {
        self.config().hidden
    }

    pub fn matmul_mode(&self) -> MatmulMode {
        match &self.model {
            Model::Candle(m) => m.mode,
            Model::Int8(_) => MatmulMode::Int8,
        }
    }

    /// The int8 kernel in use (`None` for the candle modes).
    pub fn int8_kernel(&self) -> Option<int8::Kernel> {
        match &self.model {
            Model::Candle(_) => None,
            Model::Int8(m) => Some(m.kernel()),
        }
    }

    pub fn tokenize(&self, text: &str) -> Result<Tokens, EncoderError> {
        if text.trim().is_empty() {
            return Err(EncoderError::EmptyText { index: 0 });
        }
        self.tokenizer.encode(text)
    }

    /// Single-text path: one unpadded forward pass.
    pub fn embed(&self, text: &str) -> Result<Embedding, EncoderError> {
        let t = self.tokenize(text)?;
        let vector = match &self.model {
            Model::Candle(m) => m.embed_padded(&t.ids, &[t.ids.len()], t.ids.len())?.flatten_all()?.to_vec1()?,
            Model::Int8(m) => m.embed_packed(&t.ids, &[t.ids.len()])?.swap_remove(0),
        };
        Ok(Embedding { vector, tokens: t.full_len, truncated: t.truncated })
    }

    /// Embeds many texts; results are in input order.
    pub fn embed_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Embedding>, EncoderError> {
        let tokens = texts
            .par_iter()
            .enumerate()
            .map(|(i, t)| self.tokenize(t.as_ref()).map_err(|e| with_index(e, i)))
            .collect::<Result<Vec<_>, _>>()?;
        let max_tokens = match self.model {
            // Packed batches stay small enough for their activations to live in
            // L2; the two cores then take whole batches (measured: BENCHMARKS.md).
            Model::Int8(_) => self.options.max_batch_tokens.min(INT8_BATCH_TOKENS),
            Model::Candle(_) => self.options.max_batch_tokens,
        };
        let batches = plan_batches(&tokens, max_tokens, self.options.max_batch_size);
        let results = batches.par_iter().map(|rows| self.run_batch(&tokens, rows)).collect::<Result<Vec<_>, _>>()?;
        let mut out: Vec<Option<Embedding>> = vec![None; texts.len()];
        for (rows, vectors) in batches.iter().zip(results) {
            for (&i, vector) in rows.iter().zip(vectors) {
                out[i] = Some(Embedding { vector, tokens: tokens[i].full_len, truncated: tokens[i].truncated });
            }
        }
        Ok(out.into_iter().map(|e| e.expect("every row belongs to one batch")).collect())
    }

    fn run_batch(&self, tokens: &[Tokens], rows: &[usize]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let model = match &self.model {
            Model::Candle(m) => m,
            Model::Int8(m) => {
                // Packed, not padded: the rows' tokens back to back.
                let ids: Vec<u32> = rows.iter().flat_map(|&i| tokens[i].ids.iter().copied()).collect();
                let lens: Vec<usize> = rows.iter().map(|&i| tokens[i].ids.len()).collect();
                return m.embed_packed(&ids, &lens);
            }
        };
        let seq = rows.iter().map(|&i| tokens[i].ids.len()).max().unwrap_or(0);
        let pad = model.config.pad_id;
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut lens = Vec::with_capacity(rows.len());
        for &i in rows {
            let t = &tokens[i].ids;
            ids.extend_from_slice(t);
            ids.extend(std::iter::repeat_n(pad, seq - t.len()));
            lens.push(t.len());
        }
        Ok(model.embed_padded(&ids, &lens, seq)?.to_vec2()?)
    }
}

/// Groups text indices into batches of similar length: sorted longest first,
/// each batch bounded by padded tokens and rows.
fn plan_batches(tokens: &[Tokens], max_tokens: usize, max_rows: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].ids.len()));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut seq = 0;
    for i in order {
        let len = tokens[i].ids.len();
        let longest = seq.max(len);
        if !current.is_empty() && (current.len() >= max_rows || longest * (current.len() + 1) > max_tokens) {
            batches.push(std::mem::take(&mut current));
            seq = 0;
        }
        seq = seq.max(len);
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

fn with_index(e: EncoderError, index: usize) -> EncoderError {
    match e {
        EncoderError::EmptyText { .. } => EncoderError::EmptyText { index },
        other => other,
    }
}

fn require(dir: &Path, name: &str) -> Result<PathBuf, EncoderError> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(EncoderError::MissingModel { path: p.display().to_string(), dir: dir.display().to_string() })
    }
}

/// Cosine similarity of two vectors (the encoder's are unit length already).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(lens: &[usize]) -> Vec<Tokens> {
        lens.iter().map(|&n| Tokens { ids: vec![0; n], full_len: n, truncated: false }).collect()
    }

    #[test]
    fn batches_cover_every_text_once_and_respect_bounds() {
        let t = toks(&[10, 500, 30, 30, 200, 7, 512, 64]);
        let b = plan_batches(&t, 1024, 3);
        let mut seen: Vec<usize> = b.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..t.len()).collect::<Vec<_>>());
        for batch in &b {
            let longest = batch.iter().map(|&i| t[i].ids.len()).max().unwrap();
            assert!(batch.len() <= 3);
            assert!(batch.len() == 1 || longest * batch.len() <= 1024, "{batch:?}");
        }
    }
}
