//! The learned risk model: heads on the fine-tuned encoder's sentence vector,
//! with thresholds calibrated on held-out writers.
//!
//! Two files make a model, both written by `models/train/` and compiled in:
//! - `models/delta/e5-lora.safetensors`: the encoder's fine-tuned delta, merged
//!   into the registry weights at load (see `triage_encoder::Delta`);
//! - `models/heads/risk.json`: eight linear heads on the unit sentence vector
//!   (five labels; three cumulative level cuts: >= yellow, >= orange, >= red),
//!   the thresholds, and the sha256 of the delta it was trained with.
//!
//! The level follows the standard's structure: a text is orange or red only
//! with a threat label, and a threat label is named only on an orange or red
//! text. The level head decides whether the text is a threat; the label heads
//! say which.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::label::{Label, RiskLevel};

/// The shipped heads (`models/heads/risk.json`), compiled in.
pub const BUILTIN_MODEL: &str = include_str!("../../../models/heads/risk.json");
/// The shipped encoder delta (`models/delta/e5-lora.safetensors`), compiled in.
pub const BUILTIN_DELTA: &[u8] = include_bytes!("../../../models/delta/e5-lora.safetensors");

/// The heads' outputs, in the order the file must list them: the typed
/// contract between training and serving, checked at load.
pub const OUTPUTS: [&str; 8] = [
    "violence",
    "retaliation",
    "self_harm",
    "collective",
    "livelihood",
    "level_ge_yellow",
    "level_ge_orange",
    "level_ge_red",
];
const N_LABELS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("risk model is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("risk model lists outputs {found:?}; this build reads {expected:?}")]
    Outputs { found: Vec<String>, expected: Vec<&'static str> },
    #[error("risk model: {0}")]
    Shape(String),
    #[error("encoder delta has sha256 {actual}; the risk model was trained with {expected}")]
    DeltaMismatch { expected: String, actual: String },
}

/// Per-label and per-level-cut thresholds on probabilities.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Thresholds {
    /// In `Label::ALL` order.
    pub labels: [f32; N_LABELS],
    /// `>= yellow`, `>= orange`, `>= red`.
    pub level: [f32; 3],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RiskModel {
    /// Reported with every answer.
    pub version: String,
    /// Calendar date the model was trained (YYYY-MM-DD).
    pub date: String,
    pub embedding_dim: usize,
    /// sha256 (hex) of the encoder delta these heads were trained on.
    pub delta_sha256: String,
    pub outputs: Vec<String>,
    /// `[8][embedding_dim]`, applied to the unit sentence vector.
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
    pub thresholds: Thresholds,
    /// How it was trained and calibrated (data, splits, cost); informational.
    #[serde(default)]
    pub training: serde_json::Value,
}

/// Probabilities of one text: the maximum over its chunks of each head.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Scores {
    pub labels: [f32; N_LABELS],
    /// P(level >= yellow), P(>= orange), P(>= red).
    pub level: [f32; 3],
}

/// What the model decided for one text, with what it decided from.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub scores: Scores,
    pub thresholds: [f32; N_LABELS],
    pub flagged: [bool; N_LABELS],
    pub level: RiskLevel,
    /// A threat whose label heads were all under their bars: the closest
    /// label (highest score relative to its bar) is named, since the
    /// standard gives every orange or red text a threat label.
    pub forced_label: Option<Label>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl RiskModel {
    pub fn builtin() -> Result<Self, ModelError> {
        Self::from_json(BUILTIN_MODEL)
    }

    /// Parses and checks a model file: the output list must be this build's,
    /// and every shape must fit, so a file from another contract is refused
    /// instead of misread.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let m: RiskModel = serde_json::from_str(text)?;
        if m.outputs != OUTPUTS {
            return Err(ModelError::Outputs { found: m.outputs, expected: OUTPUTS.to_vec() });
        }
        if m.weights.len() != OUTPUTS.len() || m.bias.len() != OUTPUTS.len() {
            return Err(ModelError::Shape(format!(
                "{} weight rows and {} biases for 8 outputs",
                m.weights.len(),
                m.bias.len()
            )));
        }
        if let Some(row) = m.weights.iter().find(|r| r.len() != m.embedding_dim) {
            return Err(ModelError::Shape(format!("a weight row of {} for a {}-d vector", row.len(), m.embedding_dim)));
        }
        let t = &m.thresholds;
        let values = m.weights.iter().flatten().chain(&m.bias).chain(&t.labels).chain(&t.level);
        if values.clone().any(|x| !x.is_finite()) {
            return Err(ModelError::Shape("a weight, bias or threshold is not finite".into()));
        }
        if t.labels.iter().chain(&t.level).any(|x| !(0.0..=1.0).contains(x)) {
            return Err(ModelError::Shape("thresholds must lie in [0, 1]".into()));
        }
        Ok(m)
    }

    /// Refuses a delta other than the one these heads were trained with.
    pub fn check_delta(&self, delta: &[u8]) -> Result<(), ModelError> {
        let actual = sha256_hex(delta);
        if actual != self.delta_sha256 {
            return Err(ModelError::DeltaMismatch { expected: self.delta_sha256.clone(), actual });
        }
        Ok(())
    }

    /// The eight logits for one unit sentence vector.
    pub fn logits(&self, v: &[f32]) -> [f32; 8] {
        let mut out = [0f32; 8];
        for (o, (w, b)) in out.iter_mut().zip(self.weights.iter().zip(&self.bias)) {
            *o = b + w.iter().zip(v).map(|(a, x)| a * x).sum::<f32>();
        }
        out
    }

    /// Scores of a text from its chunks' vectors: each head's maximum logit
    /// over the chunks (a threat anywhere in a long letter counts), as trained.
    pub fn scores<'a>(&self, chunks: impl IntoIterator<Item = &'a [f32]>) -> Scores {
        let mut best = [f32::NEG_INFINITY; 8];
        for v in chunks {
            for (b, l) in best.iter_mut().zip(self.logits(v)) {
                *b = b.max(l);
            }
        }
        let p = best.map(sigmoid);
        Scores { labels: [p[0], p[1], p[2], p[3], p[4]], level: [p[5], p[6], p[7]] }
    }

    pub fn decide(&self, s: Scores) -> Decision {
        decide(s, &self.thresholds)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Level first (the highest cut whose probability reaches its bar), then the
/// labels: threat labels only on orange or red, livelihood on its own bar.
pub fn decide(s: Scores, t: &Thresholds) -> Decision {
    let level = if s.level[2] >= t.level[2] {
        RiskLevel::Red
    } else if s.level[1] >= t.level[1] {
        RiskLevel::Orange
    } else if s.level[0] >= t.level[0] {
        RiskLevel::Yellow
    } else {
        RiskLevel::Blue
    };
    let threat = level >= RiskLevel::Orange;
    let mut flagged = [false; N_LABELS];
    for l in Label::ALL {
        let i = l.index();
        flagged[i] = s.labels[i] >= t.labels[i] && (threat || !l.is_threat());
    }
    let mut forced_label = None;
    if threat && !Label::ALL.iter().any(|l| l.is_threat() && flagged[l.index()]) {
        let closest = Label::ALL
            .into_iter()
            .filter(|l| l.is_threat())
            .max_by(|a, b| {
                let r = |l: &Label| s.labels[l.index()] / t.labels[l.index()].max(1e-6);
                r(a).total_cmp(&r(b))
            })
            .expect("four threat labels");
        flagged[closest.index()] = true;
        forced_label = Some(closest);
    }
    Decision { scores: s, thresholds: t.labels, flagged, level, forced_label }
}

#[cfg(test)]
mod tests;
