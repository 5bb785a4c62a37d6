//! The payload a case is stored with, the same JSON in both backends.

use serde::{Deserialize, Serialize};
use triage_proto::{Label, RiskLevel};

use crate::{CaseFilter, CaseRecord, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CasePayload {
    pub case_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub labels: Vec<Label>,
    pub level: RiskLevel,
    /// The level as a number (blue 0 … red 3), for `min_level` range filters.
    pub level_rank: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_level: Option<RiskLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_level: Option<RiskLevel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// Salted hash of the reporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    pub indexed_at: i64,
}

impl CasePayload {
    pub fn of(c: &CaseRecord) -> Self {
        Self {
            case_id: c.case_id.clone(),
            text: c.text.clone(),
            labels: c.labels.clone(),
            level: c.level,
            level_rank: c.level.index() as i64,
            base_level: c.base_level,
            risk_level: c.risk_level,
            escalations: c.escalations.clone(),
            district: c.district.clone(),
            reporter: c.reporter_hash.clone(),
            received_at: c.received_at,
            model_version: c.model_version.clone(),
            indexed_at: c.indexed_at,
        }
    }

    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            // A struct of plain fields always serialises to an object.
            _ => serde_json::Map::new(),
        }
    }

    pub fn from_json(v: serde_json::Value) -> Result<Self, StoreError> {
        let case_id = v.get("case_id").and_then(|x| x.as_str()).unwrap_or("?").to_string();
        serde_json::from_value(v).map_err(|e| StoreError::Payload { case_id, message: e.to_string() })
    }

    pub fn into_record(self, vector: Vec<f32>, sparse: crate::SparseVector) -> CaseRecord {
        CaseRecord {
            case_id: self.case_id,
            text: self.text,
            labels: self.labels,
            level: self.level,
            base_level: self.base_level,
            risk_level: self.risk_level,
            escalations: self.escalations,
            district: self.district,
            reporter_hash: self.reporter,
            received_at: self.received_at,
            model_version: self.model_version,
            indexed_at: self.indexed_at,
            vector,
            sparse,
        }
    }
}

/// The filter in Qdrant's JSON filter language; the edge backend reads it
/// directly, the server backend builds the same conditions in protobuf.
pub fn filter_json(f: &CaseFilter) -> serde_json::Value {
    use serde_json::json;
    let mut must = Vec::new();
    if let Some(d) = &f.district {
        must.push(json!({"key": "district", "match": {"value": d}}));
    }
    for l in &f.labels {
        must.push(json!({"key": "labels", "match": {"value": l.as_str()}}));
    }
    if let Some(l) = f.min_level {
        must.push(json!({"key": "level_rank", "range": {"gte": l.index()}}));
    }
    if f.received_from.is_some() || f.received_to.is_some() {
        let mut r = serde_json::Map::new();
        if let Some(a) = f.received_from {
            r.insert("gte".into(), json!(a));
        }
        if let Some(b) = f.received_to {
            r.insert("lte".into(), json!(b));
        }
        must.push(json!({"key": "received_at", "range": r}));
    }
    if let Some(h) = &f.reporter_hash {
        must.push(json!({"key": "reporter", "match": {"value": h}}));
    }
    if let Some(ids) = &f.within {
        must.push(json!({"has_id": ids.iter().map(|id| crate::point_uuid(id)).collect::<Vec<_>>()}));
    }
    let mut filter = json!({ "must": must });
    if let Some(id) = &f.exclude_case_id {
        filter["must_not"] = json!([{"has_id": [crate::point_uuid(id)]}]);
    }
    filter
}
