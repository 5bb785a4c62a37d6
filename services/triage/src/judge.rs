//! The library call: text in, labels with scores, level, evidence and reasons out.

use std::sync::Arc;

use serde::Serialize;
use triage_encoder::{Encoder, EncoderError};

use crate::cues::{CueKind, CueLexicon, CueReport, Evidence};
use crate::label::{Label, RiskLevel};
use crate::model::{Decision, RiskModel, Thresholds};
pub use triage_proto::LabelScore;

/// Longest accepted text, in Unicode chars: the wire contract's limit.
pub const MAX_CHARS: usize = triage_proto::MAX_TEXT_CHARS;
/// Texts are encoded in chunks of at most this many chars, cut at sentence
/// ends, so a long text is read whole (the encoder stops at 512 tokens) and a
/// short threat in a long letter is not averaged away (the heads take each
/// output's maximum over the chunks).
pub const CHUNK_CHARS: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error("text is empty")]
    EmptyText { index: usize },
    #[error("text has {chars} characters; the limit is {max}")]
    TextTooLong { index: usize, chars: usize, max: usize },
    #[error("model: {0}")]
    Model(String),
    #[error(transparent)]
    Encoder(#[from] EncoderError),
}

#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub labels: Vec<LabelScore>,
    pub level: RiskLevel,
    /// Why the labels and the level are what they are, in Chinese.
    pub reasons: Vec<String>,
    pub evidence: Vec<Evidence>,
    pub model_version: String,
    /// The text's sentence vector (for similar-case search); not part of the wire answer.
    #[serde(skip)]
    pub embedding: Vec<f32>,
    #[serde(skip)]
    pub decision: Decision,
}

/// What the heads read for one text.
pub struct TextFeatures {
    /// One unit vector per chunk.
    pub chunks: Vec<Vec<f32>>,
    /// The text's search vector: the chunk vectors' length-weighted mean, re-normalised.
    pub embedding: Vec<f32>,
    pub cues: CueReport,
}

pub struct Triage {
    encoder: Arc<Encoder>,
    lexicon: CueLexicon,
    model: RiskModel,
}

impl Judgement {
    /// The labels whose score passed their threshold, in `Label::ALL` order.
    pub fn flagged_labels(&self) -> Vec<Label> {
        self.labels.iter().filter(|l| l.flagged).map(|l| l.label).collect()
    }
}

impl Triage {
    pub fn new(encoder: Arc<Encoder>, lexicon: CueLexicon, model: RiskModel) -> Result<Self, TriageError> {
        if model.embedding_dim != encoder.dim() {
            return Err(TriageError::Model(format!(
                "risk model expects {}-d embeddings, encoder gives {}",
                model.embedding_dim,
                encoder.dim()
            )));
        }
        Ok(Self { encoder, lexicon, model })
    }

    pub fn model(&self) -> &RiskModel {
        &self.model
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    pub fn lexicon(&self) -> &CueLexicon {
        &self.lexicon
    }

    pub fn judge(&self, text: &str) -> Result<Judgement, TriageError> {
        Ok(self.judge_batch(&[text])?.remove(0))
    }

    /// Encoder tokens judging `text` takes: its chunks' tokens as encoded (at
    /// most the encoder's 512 each), summed. Inference time grows with it.
    pub fn cost(&self, text: &str) -> usize {
        chunks(text, CHUNK_CHARS).iter().map(|c| self.encoder.tokenize(c).map_or(0, |t| t.ids.len())).sum()
    }

    pub fn judge_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Judgement>, TriageError> {
        let feats = features(&self.encoder, &self.lexicon, texts)?;
        Ok(feats.into_iter().map(|f| self.judgement(f)).collect())
    }

    fn judgement(&self, f: TextFeatures) -> Judgement {
        let decision = self.model.decide(self.model.scores(f.chunks.iter().map(Vec::as_slice)));
        let labels = Label::ALL
            .iter()
            .map(|&l| {
                let i = l.index();
                LabelScore {
                    label: l,
                    score: decision.scores.labels[i],
                    threshold: decision.thresholds[i],
                    flagged: decision.flagged[i],
                }
            })
            .collect();
        Judgement {
            labels,
            level: decision.level,
            reasons: reasons(&decision, &self.model.thresholds, &f.cues.evidence),
            evidence: f.cues.evidence,
            model_version: self.model.version.clone(),
            embedding: f.embedding,
            decision,
        }
    }
}

/// What turns validated texts into judgements: the trained model, or, in
/// tests of what sits around it (queue, routes, store), a stand-in that
/// answers at once. Texts reach it already validated (`validate`).
pub trait Judge: Send + Sync + 'static {
    /// Judges texts in one pass, answering in their order.
    fn judge_batch(&self, texts: &[&str]) -> Result<Vec<Judgement>, TriageError>;
    /// What judging `text` costs, in encoder tokens; inference time grows with it.
    fn cost(&self, text: &str) -> usize;
    /// Reported with every answer and by readiness.
    fn model_version(&self) -> &str;
}

impl Judge for Triage {
    fn judge_batch(&self, texts: &[&str]) -> Result<Vec<Judgement>, TriageError> {
        Triage::judge_batch(self, texts)
    }

    fn cost(&self, text: &str) -> usize {
        Triage::cost(self, text)
    }

    fn model_version(&self) -> &str {
        &self.model.version
    }
}

/// A char that carries no text: whitespace, controls, and the invisible
/// format characters (zero-width space and joiners, BOM, bidi marks).
fn is_blank(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}')
}

/// Checks the input contract: 1 to `MAX_CHARS` chars, at least one that is
/// not whitespace, a control or an invisible format character.
pub fn validate(index: usize, text: &str) -> Result<(), TriageError> {
    if text.chars().all(is_blank) {
        return Err(TriageError::EmptyText { index });
    }
    let chars = text.chars().count();
    if chars > MAX_CHARS {
        return Err(TriageError::TextTooLong { index, chars, max: MAX_CHARS });
    }
    Ok(())
}

/// Chunk vectors, search vector and cue evidence for each text. A text is cut
/// into chunks of at most `CHUNK_CHARS` at sentence ends and each chunk is
/// encoded once; training reads texts the same way (`models/train/finetune.py`).
pub fn features<S: AsRef<str>>(
    encoder: &Encoder,
    lexicon: &CueLexicon,
    texts: &[S],
) -> Result<Vec<TextFeatures>, TriageError> {
    for (i, t) in texts.iter().enumerate() {
        validate(i, t.as_ref())?;
    }
    let chunked: Vec<Vec<String>> = texts.iter().map(|t| chunks(t.as_ref(), CHUNK_CHARS)).collect();
    let flat: Vec<&str> = chunked.iter().flatten().map(String::as_str).collect();
    let vectors = encoder.embed_batch(&flat)?;
    let mut it = vectors.into_iter();
    let mut out = Vec::with_capacity(texts.len());
    for (t, parts) in texts.iter().zip(&chunked) {
        let mut emb = vec![0f32; encoder.dim()];
        let mut vs = Vec::with_capacity(parts.len());
        for p in parts {
            let v = it.next().expect("one vector per chunk").vector;
            let w = p.chars().count() as f32;
            emb.iter_mut().zip(&v).for_each(|(a, b)| *a += w * b);
            vs.push(v);
        }
        let norm = emb.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        emb.iter_mut().for_each(|x| *x /= norm);
        out.push(TextFeatures { chunks: vs, embedding: emb, cues: lexicon.analyse(t.as_ref()) });
    }
    Ok(out)
}

/// Splits at sentence ends into pieces of at most `max` chars (a single longer
/// sentence is cut hard). Whitespace-only pieces are dropped.
pub fn chunks(text: &str, max: usize) -> Vec<String> {
    let mut sentences: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if matches!(c, '。' | '！' | '？' | '!' | '?' | '\n' | '；') {
            sentences.push(std::mem::take(&mut cur));
        }
    }
    sentences.push(cur);
    let mut out: Vec<String> = Vec::new();
    let mut piece = String::new();
    let mut len = 0;
    for s in sentences {
        let n = s.chars().count();
        if len + n > max && len > 0 {
            out.push(std::mem::take(&mut piece));
            len = 0;
        }
        if n > max {
            let chars: Vec<char> = s.chars().collect();
            for part in chars.chunks(max) {
                out.push(part.iter().collect());
            }
            continue;
        }
        piece.push_str(&s);
        len += n;
    }
    out.push(piece);
    out.retain(|p| !p.trim().is_empty());
    if out.is_empty() {
        // A blank text (the service refuses those before judging) still gets one piece within the limit.
        out.push(text.chars().take(max).collect());
    }
    out
}

fn cue_list(evidence: &[Evidence], pred: impl Fn(&Evidence) -> bool) -> String {
    let mut cues: Vec<&str> = evidence.iter().filter(|e| pred(e)).map(|e| e.cue.as_str()).collect();
    cues.dedup();
    cues.truncate(5);
    cues.join("、")
}

fn in_brackets(s: String) -> String {
    if s.is_empty() {
        s
    } else {
        format!("（{s}）")
    }
}

/// Why, in Chinese: each named label with its score against its bar and the
/// lexicon's evidence for it, then the level with the level head's figure.
fn reasons(d: &Decision, t: &Thresholds, evidence: &[Evidence]) -> Vec<String> {
    let mut out = Vec::new();
    for l in Label::ALL {
        let i = l.index();
        if !d.flagged[i] {
            continue;
        }
        let cues = cue_list(evidence, |e| e.label == Some(l));
        let cues = if cues.is_empty() { cues } else { format!("（线索：{cues}）") };
        let basis = if d.forced_label == Some(l) {
            format!(
                "研判为威胁，各威胁标签得分均未达阈值，取相对最接近者（{:.2} / {:.2}）",
                d.scores.labels[i], d.thresholds[i]
            )
        } else {
            format!("得分 {:.2} ≥ 阈值 {:.2}", d.scores.labels[i], d.thresholds[i])
        };
        out.push(format!("{}：{basis}{cues}", l.zh()));
    }
    let [y, o, r] = d.scores.level;
    let level = match d.level {
        RiskLevel::Red => format!(
            "红色（I级）：模型判断威胁已有具体时间、手段、聚集或正在发生（红色概率 {r:.2} ≥ {:.2}）{}",
            t.level[2],
            in_brackets(cue_list(evidence, |e| e.kind.is_specific()))
        ),
        RiskLevel::Orange => format!(
            "橙色（II级）：存在明确的暴力、报复、自伤或群体性威胁或意图，尚无具体实施要素（橙色及以上概率 {o:.2} ≥ {:.2}，红色 {r:.2} < {:.2}）",
            t.level[1], t.level[2]
        ),
        RiskLevel::Yellow => format!(
            "黄色（III级）：无明确威胁，但诉求有升级可能（黄色及以上概率 {y:.2} ≥ {:.2}，威胁概率 {o:.2} < {:.2}）{}",
            t.level[0],
            t.level[1],
            in_brackets(cue_list(evidence, |e| matches!(e.kind, CueKind::VagueWarning | CueKind::Repeat | CueKind::Survival)))
        ),
        RiskLevel::Blue => format!("蓝色（IV级）：常规咨询、求助或投诉（黄色及以上概率 {y:.2} < {:.2}）", t.level[0]),
    };
    out.push(level);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_text_within_the_limit() {
        let text = "第一句话。".repeat(30) + &"长".repeat(450);
        let parts = chunks(&text, 100);
        assert!(parts.iter().all(|p| p.chars().count() <= 100));
        assert_eq!(parts.concat(), text);
        assert_eq!(chunks("短文本", 400), vec!["短文本".to_string()]);
    }

    #[test]
    fn input_contract() {
        assert!(matches!(validate(3, "  \n"), Err(TriageError::EmptyText { index: 3 })));
        assert!(matches!(validate(0, "\u{200b}\u{200d}\u{feff}"), Err(TriageError::EmptyText { .. })));
        assert!(matches!(validate(0, "\0\0\t"), Err(TriageError::EmptyText { .. })));
        assert!(validate(0, "\u{200b}好").is_ok());
        assert!(matches!(validate(0, &"字".repeat(5001)), Err(TriageError::TextTooLong { chars: 5001, .. })));
        assert!(validate(0, &"字".repeat(5000)).is_ok());
    }
}
