//! What a case is stored under, built one way for the HTTP routes and for
//! `triage import`: people's labels and level win where they are given, the
//! model's (after escalation) stand in for the rest.

use triage_cases::CaseRecord;
use triage_proto::{Escalation, Label, RiskLevel};
use triage_risk::Judgement;

pub struct Filing {
    pub labels: Vec<Label>,
    pub level: RiskLevel,
    /// What later similar cases read: the risk rules' level, or people's level.
    pub risk_level: RiskLevel,
    /// Rule ids of the raises behind `level` (none when people set it).
    pub escalations: Vec<String>,
    /// The model's judgement stands in for at least one of labels and level,
    /// so the record carries the model version.
    pub by_model: bool,
}

/// The model's side of a filing: flagged labels, final and risk levels, raises.
pub struct ModelView<'a> {
    pub flagged: &'a [Label],
    pub level: RiskLevel,
    pub risk_level: RiskLevel,
    pub escalations: &'a [Escalation],
}

impl Filing {
    pub fn new(model: ModelView<'_>, labels: Option<Vec<Label>>, level: Option<RiskLevel>) -> Self {
        let by_model = labels.is_none() || level.is_none();
        let (level, risk_level, escalations) = match level {
            Some(l) => (l, l, Vec::new()),
            None => (model.level, model.risk_level, model.escalations.iter().map(|e| e.rule.clone()).collect()),
        };
        Self { labels: labels.unwrap_or_else(|| model.flagged.to_vec()), level, risk_level, escalations, by_model }
    }
}

/// Where and when a case came from, as checked by the caller (reporter already hashed).
pub struct Origin {
    pub district: Option<String>,
    pub reporter_hash: Option<String>,
    pub received_at: Option<i64>,
}

/// The record for `text`; `keep_text` is `--store-text`. The term weights
/// are kept either way, so that search by words works on stores without text.
pub fn record(
    case_id: &str,
    text: &str,
    keep_text: bool,
    j: &Judgement,
    filing: Filing,
    origin: Origin,
    indexed_at: i64,
) -> CaseRecord {
    CaseRecord {
        case_id: case_id.to_string(),
        text: keep_text.then(|| text.to_string()),
        labels: filing.labels,
        level: filing.level,
        base_level: Some(j.level),
        risk_level: Some(filing.risk_level),
        escalations: filing.escalations,
        district: origin.district,
        reporter_hash: origin.reporter_hash,
        received_at: origin.received_at,
        model_version: filing.by_model.then(|| j.model_version.clone()),
        indexed_at,
        vector: j.embedding.clone(),
        sparse: triage_cases::terms::document(text),
    }
}
