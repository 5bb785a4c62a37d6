//! Request and answer bodies of the `/v1` routes.
//!
//! Labels, levels and dates arrive as strings and are checked by the server,
//! so that an unknown label or a bad date gets its own error code
//! (`unknown_label`, `unknown_level`, `invalid_date`) instead of a generic
//! JSON error; the OpenAPI schema still lists the allowed values.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::evidence::Evidence;
use crate::vocab::{Label, RiskLevel};

/// One label's score against its calibrated threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LabelScore {
    pub label: Label,
    pub score: f32,
    pub threshold: f32,
    pub flagged: bool,
}

/// What the platform knows about a case besides its text. Every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseContext {
    /// Who filed it (ID number, phone, account). Hashed with the service's salt
    /// before it is compared or stored; never logged.
    pub reporter: Option<String>,
    pub district: Option<String>,
    /// When the case was received (RFC 3339, or a date read as 00:00 UTC+8).
    #[schema(format = DateTime)]
    pub received_at: Option<String>,
    /// 受理: when the case was accepted.
    #[schema(format = DateTime)]
    pub accepted_at: Option<String>,
    /// 见面/联系: when the handler met or contacted the petitioner.
    #[schema(format = DateTime)]
    pub met_at: Option<String>,
    /// 解决: when the matter was resolved.
    #[schema(format = DateTime)]
    pub resolved_at: Option<String>,
    /// 结案: when the case was closed.
    #[schema(format = DateTime)]
    pub closed_at: Option<String>,
    /// The moment to judge time limits at (default: now). For replays and imports.
    #[schema(format = DateTime)]
    pub as_of: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriageRequest {
    /// 1 to 5,000 characters.
    pub text: String,
    pub case_id: Option<String>,
    pub context: Option<CaseContext>,
    /// Also index the case for similar-case search (needs `case_id`).
    #[serde(default)]
    pub store: bool,
}

/// A raise of the level by an escalation rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Escalation {
    pub from: RiskLevel,
    pub to: RiskLevel,
    /// The rule's id in the policy file (`models/policy.toml`).
    pub rule: String,
    /// Why, in Chinese.
    pub reason: String,
    /// The past cases that caused the raise (empty for rules that read none),
    /// so the platform can show the chain and an operator can undo a raise.
    pub case_ids: Vec<String>,
    /// Whether the raise counts towards the case's risk level (time limits do
    /// not): only risk raises make a stored case raise its near-duplicates.
    pub risk: bool,
}

/// A past case the judgement looked at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SimilarCase {
    pub case_id: String,
    /// Cosine similarity of the two texts' vectors.
    pub score: f32,
    /// The level it is filed under.
    pub level: RiskLevel,
    /// Its risk level: what the `similar_escalated` rule compares (see `Case`).
    pub risk_level: RiskLevel,
    /// Rule ids of the raises it was filed with.
    pub escalations: Vec<String>,
    pub labels: Vec<Label>,
    pub district: Option<String>,
    #[schema(format = DateTime)]
    pub received_at: Option<String>,
    /// Filed by the same reporter (compared by hash).
    pub same_reporter: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TriageResponse {
    pub case_id: Option<String>,
    pub labels: Vec<LabelScore>,
    /// The level after escalation.
    pub level: RiskLevel,
    /// The level from the text alone.
    pub base_level: RiskLevel,
    pub escalations: Vec<Escalation>,
    /// Why the labels and base level are what they are, in Chinese.
    pub reasons: Vec<String>,
    /// Which characters triggered which cue (char offsets, end exclusive).
    pub evidence: Vec<Evidence>,
    /// Past cases the escalation rules looked at.
    pub similar: Vec<SimilarCase>,
    /// Whether the case was indexed by this call.
    pub stored: bool,
    pub model_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 64 items.
    pub items: Vec<TriageRequest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// In the order of the request's items.
    pub items: Vec<TriageResponse>,
}

/// Index (or replace) a case by its id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    pub case_id: String,
    pub text: String,
    pub context: Option<CaseContext>,
    /// Labels decided by people; when absent the model's labels are stored.
    #[schema(value_type = Option<Vec<Label>>)]
    pub labels: Option<Vec<String>>,
    /// Level decided by people; when absent the model's level (after escalation) is stored.
    #[schema(value_type = Option<RiskLevel>)]
    pub level: Option<String>,
}

/// A stored case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Case {
    pub case_id: String,
    /// Absent when the service is set not to store texts.
    pub text: Option<String>,
    pub labels: Vec<Label>,
    /// The level it is filed under: after escalation, or people's decision.
    pub level: RiskLevel,
    /// The level the model read from the text alone (absent on cases stored
    /// before it was kept).
    pub base_level: Option<RiskLevel>,
    /// The text's level raised by risk rules only, or people's level: what
    /// `similar_escalated` reads when this case is a later case's neighbour.
    pub risk_level: RiskLevel,
    /// Rule ids of the raises from `base_level` to `level`, in order.
    pub escalations: Vec<String>,
    pub district: Option<String>,
    /// Salted SHA-256 of the reporter, hex.
    pub reporter_hash: Option<String>,
    #[schema(format = DateTime)]
    pub received_at: Option<String>,
    /// Model that judged it; absent when labels and level came from people.
    pub model_version: Option<String>,
    #[schema(format = DateTime)]
    pub indexed_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeleteResponse {
    pub case_id: String,
    pub deleted: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchFilters {
    pub district: Option<String>,
    /// Cases that carry every one of these labels.
    #[schema(value_type = Option<Vec<Label>>)]
    pub labels: Option<Vec<String>>,
    /// Cases at this level or higher.
    #[schema(value_type = Option<RiskLevel>)]
    pub min_level: Option<String>,
    #[schema(format = DateTime)]
    pub received_from: Option<String>,
    #[schema(format = DateTime)]
    pub received_to: Option<String>,
    /// A reporter id in the clear; hashed by the service before matching.
    pub reporter: Option<String>,
}

/// Search by a text or by a stored case's id (exactly one of them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub text: Option<String>,
    pub case_id: Option<String>,
    pub filters: Option<SearchFilters>,
    /// 1 to 100; default 10.
    pub top_k: Option<usize>,
    /// `hybrid` (default: the e5 vector, centred on the store's mean, and the
    /// words, fused, then ranked again with the query moved towards its best
    /// hits), `dense` (the vector alone) or `sparse` (the words alone).
    pub ranking: Option<String>,
}

/// A word the hit shares with the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedTerm {
    pub term: String,
    /// What the word adds to the hit's word score: its weight in the query
    /// times its weight in the hit (each a BM25 frequency, saturated and
    /// length-normalised) times its inverse document frequency in the store.
    pub weight: f32,
}

/// What a hit has in common with the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Shared {
    pub labels: Vec<Label>,
    pub level: bool,
    pub district: bool,
    /// Shared words, heaviest first (at most 10); empty when searching by a
    /// case stored without its text.
    #[serde(default)]
    pub terms: Vec<SharedTerm>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    pub case: Case,
    /// Cosine similarity to the query.
    pub score: f32,
    pub shared: Shared,
    /// The score hits are ordered by: the second round's fused score for
    /// `hybrid`, the word score for `sparse`, the cosine for `dense`.
    #[serde(default)]
    pub rank_score: f32,
}

/// The query as the service read it: the labels and level the hits are compared with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchQuery {
    pub labels: Vec<Label>,
    pub level: RiskLevel,
    pub district: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub query: SearchQuery,
    pub hits: Vec<SearchHit>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    pub ready: bool,
    pub model_version: String,
    pub store: String,
}

/// The caller as the service knows it: what the console may show.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The key's name in the keys file (never the key).
    pub name: String,
    /// `platform`, `analyst`, `operator` or `admin`.
    pub role: String,
    /// What the role may do: `triage`, `index`, `search`, `read`, `metrics`, `evaluate`.
    pub permissions: Vec<String>,
}

/// Where an evaluation job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvalStatus {
    /// Waiting for the job before it to finish.
    Queued,
    Running,
    Done,
    /// It failed, or the service stopped before it finished (see `error`).
    Failed,
}

/// One evaluation job, without its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvalSummary {
    pub id: String,
    pub status: EvalStatus,
    /// The uploaded set's name (`?name=`), for people.
    pub name: String,
    /// The model that judges (or judged) the set.
    pub model_version: String,
    /// Labelled texts in the set.
    pub total: usize,
    /// Texts judged so far.
    pub done: usize,
    /// Jobs ahead of this one while it is queued.
    pub position: Option<usize>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    pub error: Option<String>,
    /// The headline figures of a finished job (as in its report).
    pub macro_f1: Option<f64>,
    pub red_recall: Option<f64>,
    pub under_triage: Option<f64>,
}

/// A job and, once it is done, the same JSON as `triage eval --json`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvalJob {
    #[serde(flatten)]
    pub summary: EvalSummary,
    /// Present when `status` is `done`: metrics, `model_version`, `data` (the set's name) and `seconds`.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

/// Earlier and current jobs, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvalList {
    pub evals: Vec<EvalSummary>,
}
