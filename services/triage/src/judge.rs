//! The library call: text in, labels with scores, level, evidence and reasons out.

use std::sync::Arc;

use serde::Serialize;
use triage_encoder::{Encoder, EncoderError};

use crate::cues::{CueKind, CueLexicon, CueReport, Evidence};
pub use triage_proto::LabelScore;
use crate::features::cue_features;
use crate::label::{Label, RiskLevel};
use crate::model::{Decision, RiskModel};

/// Longest accepted text, in Unicode chars: the wire contract's limit.
pub const MAX_CHARS: usize = triage_proto::MAX_TEXT_CHARS;
/// Texts are embedded in chunks of at most this many chars, cut at sentence
/// ends, so a long text is read whole (the encoder stops at 512 tokens) and a
/// short threat is not averaged away.
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

/// What the classifier reads for one text.
pub struct TextFeatures {
    pub row: Vec<f32>,
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

    pub fn judge_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Judgement>, TriageError> {
        let feats = features(&self.encoder, &self.lexicon, texts)?;
        Ok(feats.into_iter().zip(texts).map(|(f, t)| self.judgement(f, t.as_ref())).collect())
    }

    fn judgement(&self, f: TextFeatures, text: &str) -> Judgement {
        let heads = &self.model.heads;
        let decision = heads.decide(heads.scores(&self.model.row(text, &f.row)));
        let labels = Label::ALL
            .iter()
            .map(|&l| {
                let i = l.index();
                LabelScore { label: l, score: decision.scores.labels[i], threshold: decision.thresholds[i], flagged: decision.flagged[i] }
            })
            .collect();
        Judgement {
            labels,
            level: decision.level,
            reasons: reasons(&decision, &f.cues.evidence),
            evidence: f.cues.evidence,
            model_version: self.model.version.clone(),
            embedding: f.embedding,
            decision,
        }
    }
}

/// Checks the input contract: 1 to `MAX_CHARS` chars, not only whitespace.
pub fn validate(index: usize, text: &str) -> Result<(), TriageError> {
    if text.trim().is_empty() {
        return Err(TriageError::EmptyText { index });
    }
    let chars = text.chars().count();
    if chars > MAX_CHARS {
        return Err(TriageError::TextTooLong { index, chars, max: MAX_CHARS });
    }
    Ok(())
}

/// Feature rows for texts: chunked sentence embeddings (length-weighted mean,
/// re-normalised) followed by the cue features.
pub fn features<S: AsRef<str>>(encoder: &Encoder, lexicon: &CueLexicon, texts: &[S]) -> Result<Vec<TextFeatures>, TriageError> {
    for (i, t) in texts.iter().enumerate() {
        validate(i, t.as_ref())?;
    }
    let chunked: Vec<Vec<String>> = texts.iter().map(|t| chunks(&lexicon.neutralise(t.as_ref()), CHUNK_CHARS)).collect();
    let flat: Vec<&str> = chunked.iter().flatten().map(String::as_str).collect();
    let vectors = encoder.embed_batch(&flat)?;
    let mut it = vectors.into_iter();
    let mut out = Vec::with_capacity(texts.len());
    for (t, parts) in texts.iter().zip(&chunked) {
        let mut emb = vec![0f32; encoder.dim()];
        for p in parts {
            let v = it.next().expect("one vector per chunk");
            let w = p.chars().count() as f32;
            emb.iter_mut().zip(&v.vector).for_each(|(a, b)| *a += w * b);
        }
        let norm = emb.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        emb.iter_mut().for_each(|x| *x /= norm);
        let cues = lexicon.analyse(t.as_ref());
        let mut row = emb.clone();
        row.extend(cue_features(&cues));
        out.push(TextFeatures { row, embedding: emb, cues });
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
        out.push(text.to_string());
    }
    out
}

fn cue_list(evidence: &[Evidence], pred: impl Fn(&Evidence) -> bool) -> String {
    let mut cues: Vec<&str> = evidence.iter().filter(|e| pred(e)).map(|e| e.cue.as_str()).collect();
    cues.dedup();
    cues.truncate(5);
    cues.join("、")
}

fn reasons(d: &Decision, evidence: &[Evidence]) -> Vec<String> {
    let mut out = Vec::new();
    for l in Label::ALL {
        let i = l.index();
        if !d.flagged[i] {
            continue;
        }
        let cues = cue_list(evidence, |e| e.label == Some(l));
        let basis = if d.forced_label == Some(l) {
            "研判为威胁类文本，取最接近阈值的威胁标签".to_string()
        } else {
            format!("得分 {:.2} ≥ 阈值 {:.2}", d.scores.labels[i], d.thresholds[i])
        };
        let cue_part = if cues.is_empty() { String::new() } else { format!("（线索：{cues}）") };
        out.push(format!("{}：{basis}{cue_part}", l.zh()));
    }
    let specifics = cue_list(evidence, |e| e.kind.is_specific());
    let escalation = cue_list(evidence, |e| matches!(e.kind, CueKind::VagueWarning | CueKind::Repeat | CueKind::Survival));
    // The name of a low level, for the rules that keep a text out of the threats.
    let low = if d.level == RiskLevel::Yellow { "黄色（III级）" } else { "蓝色（IV级）" };
    let level = match d.level {
        RiskLevel::Red => format!(
            "红色（I级）：威胁指向明确，且有具体时间、手段、聚集或正在发生的迹象{}",
            if specifics.is_empty() { String::new() } else { format!("（{specifics}）") }
        ),
        RiskLevel::Orange => "橙色（II级）：存在明确的暴力、报复、自伤或群体性威胁或意图，尚无具体实施要素".to_string(),
        RiskLevel::Yellow | RiskLevel::Blue if d.scores.joking && !d.scores.withdrawn => {
            format!("{low}：威胁字眼之后以玩笑口吻收尾（哈哈、😂），按玩笑研判")
        }
        RiskLevel::Yellow | RiskLevel::Blue if d.scores.withdrawn => {
            format!("{low}：文末说明威胁已撤回或双方已和解，按现状研判")
        }
        RiskLevel::Yellow if d.scores.vague_warning_only => format!(
            "黄色（III级）：仅有含糊警告或情绪宣泄，未指明具体行为，按标准不属威胁（{escalation}）"
        ),
        RiskLevel::Yellow | RiskLevel::Blue if d.unsupported_threat => {
            format!("{low}：语气近似威胁，但未指明可归入任何威胁标签的行为（各威胁标签得分均不足其阈值的三成），不按威胁研判")
        }
        RiskLevel::Yellow => format!(
            "黄色（III级）：无明确威胁，但诉求有升级可能{}",
            if escalation.is_empty() { String::new() } else { format!("（{escalation}）") }
        ),
        RiskLevel::Blue => "蓝色（IV级）：常规咨询、求助或投诉".to_string(),
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
        assert!(matches!(validate(0, &"字".repeat(5001)), Err(TriageError::TextTooLong { chars: 5001, .. })));
        assert!(validate(0, &"字".repeat(5000)).is_ok());
    }
}
