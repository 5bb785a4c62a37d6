//! A fine-tuned delta over the registry weights: low-rank adapters for the
//! linear layers and replacement LayerNorm parameters, in safetensors.
//!
//! Keys (written by `models/train/finetune.py`):
//! - `l{i}.{q|k|v|ao|fi|fo}.lora_a` `[r, in]` and `.lora_b` `[out, r]`: the
//!   merged weight is `W + B·A` (the LoRA scale is already folded into B);
//! - `l{i}.{aln|oln}.{w|b}` and `emb.ln.{w|b}` `[hidden]`: LayerNorm weight and
//!   bias, replacing the blob's.
//!
//! Every key must be one of these, adapters come in pairs, and shapes must
//! fit the blob's geometry; anything else is refused rather than half-applied.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::EncoderError;

const LINEARS: [&str; 6] = ["q", "k", "v", "ao", "fi", "fo"];
const NORMS: [&str; 2] = ["aln", "oln"];

pub struct Delta {
    tensors: HashMap<String, Tensor>,
}

fn bad(msg: String) -> EncoderError {
    EncoderError::BadModel(format!("delta: {msg}"))
}

impl Delta {
    /// Parses a safetensors buffer and checks its key set against `layers`.
    pub fn from_bytes(bytes: &[u8], layers: usize) -> Result<Self, EncoderError> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        for name in tensors.keys() {
            if !known_key(name, layers) {
                return Err(bad(format!("unknown tensor {name}")));
            }
        }
        for l in 0..layers {
            for k in LINEARS {
                let (a, b) = (format!("l{l}.{k}.lora_a"), format!("l{l}.{k}.lora_b"));
                if tensors.contains_key(&a) != tensors.contains_key(&b) {
                    return Err(bad(format!("l{l}.{k} has only one of lora_a and lora_b")));
                }
            }
        }
        Ok(Self { tensors })
    }

    /// Number of adapted linear layers.
    pub fn adapters(&self) -> usize {
        self.tensors.keys().filter(|k| k.ends_with(".lora_a")).count()
    }

    /// `B·A` for the linear layer `prefix` (`l3.fi`), shaped `[out, inp]`; `None`
    /// when the delta leaves that layer alone.
    pub(crate) fn low_rank(&self, prefix: &str, out: usize, inp: usize) -> Result<Option<Tensor>, EncoderError> {
        let (Some(a), Some(b)) =
            (self.tensors.get(&format!("{prefix}.lora_a")), self.tensors.get(&format!("{prefix}.lora_b")))
        else {
            return Ok(None);
        };
        let (a, b) = (a.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?);
        let (ra, ia) = a.dims2()?;
        let (ob, rb) = b.dims2()?;
        if ia != inp || ob != out || ra != rb {
            return Err(bad(format!(
                "{prefix}: adapter shapes [{ra}, {ia}] and [{ob}, {rb}] do not fit [{out}, {inp}]"
            )));
        }
        let ba = b.matmul(&a)?;
        finite(prefix, &ba)?;
        Ok(Some(ba))
    }

    /// Replacement LayerNorm `(weight, bias)` for `prefix` (`l3.aln`, `emb.ln`).
    pub(crate) fn norm(&self, prefix: &str, h: usize) -> Result<Option<(Tensor, Tensor)>, EncoderError> {
        let (w, b) = (self.tensors.get(&format!("{prefix}.w")), self.tensors.get(&format!("{prefix}.b")));
        match (w, b) {
            (None, None) => Ok(None),
            (Some(w), Some(b)) => {
                let (w, b) = (w.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?);
                if w.dims() != [h] || b.dims() != [h] {
                    return Err(bad(format!("{prefix}: norm of shape {:?}/{:?}, expected [{h}]", w.dims(), b.dims())));
                }
                finite(prefix, &w)?;
                finite(prefix, &b)?;
                Ok(Some((w, b)))
            }
            _ => Err(bad(format!("{prefix} has only one of weight and bias"))),
        }
    }
}

fn known_key(name: &str, layers: usize) -> bool {
    if matches!(name, "emb.ln.w" | "emb.ln.b") {
        return true;
    }
    let Some(rest) = name.strip_prefix('l') else { return false };
    let mut parts = rest.splitn(3, '.');
    let (Some(layer), Some(part), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let in_range = layer.parse::<usize>().is_ok_and(|l| l < layers);
    in_range
        && (LINEARS.contains(&part) && matches!(tail, "lora_a" | "lora_b")
            || NORMS.contains(&part) && matches!(tail, "w" | "b"))
}

fn finite(what: &str, t: &Tensor) -> Result<(), EncoderError> {
    let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(bad(format!("{what} holds a non-finite value")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_checked() {
        assert!(known_key("l0.q.lora_a", 12));
        assert!(known_key("l11.fo.lora_b", 12));
        assert!(known_key("l3.aln.w", 12));
        assert!(known_key("emb.ln.b", 12));
        assert!(!known_key("l12.q.lora_a", 12));
        assert!(!known_key("l0.q.w", 12));
        assert!(!known_key("l0.aln.lora_a", 12));
        assert!(!known_key("emb.word", 12));
    }

    #[test]
    fn a_lone_adapter_half_is_refused() {
        let a = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
        let bytes = safetensors_bytes(&[("l0.q.lora_a", &a)]);
        let err = Delta::from_bytes(&bytes, 12).err().expect("refused");
        assert!(err.to_string().contains("only one of lora_a"), "{err}");
        let unknown = safetensors_bytes(&[("l0.q.weight", &a)]);
        assert!(Delta::from_bytes(&unknown, 12).is_err());
        assert!(Delta::from_bytes(b"not safetensors", 12).is_err());
    }

    #[test]
    fn low_rank_product_has_the_layer_shape() {
        let a = Tensor::ones((2, 4), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::ones((3, 2), DType::F32, &Device::Cpu).unwrap();
        let d = Delta::from_bytes(&safetensors_bytes(&[("l0.q.lora_a", &a), ("l0.q.lora_b", &b)]), 12).unwrap();
        let ba = d.low_rank("l0.q", 3, 4).unwrap().unwrap();
        assert_eq!(ba.dims(), [3, 4]);
        assert_eq!(ba.to_vec2::<f32>().unwrap()[2][3], 2.0);
        assert!(d.low_rank("l0.q", 4, 4).is_err(), "a shape that does not fit is refused");
        assert!(d.low_rank("l1.q", 3, 4).unwrap().is_none());
    }

    fn safetensors_bytes(items: &[(&str, &Tensor)]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("triage-delta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let name: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
        let path = dir.join(format!("{}.safetensors", name.join("+")));
        let map: HashMap<String, Tensor> = items.iter().map(|(k, t)| (k.to_string(), (*t).clone())).collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        std::fs::read(&path).unwrap()
    }
}
