//! The case store: past cases with their vectors, searched by similarity
//! with filters. One trait, two real backends:
//!
//! - [`EdgeStore`]: Qdrant's in-process engine (`qdrant-edge`) in a local
//!   directory, the default;
//! - [`QdrantStore`]: a Qdrant server or cluster through `qdrant-client`.
//!
//! Both keep the same payload (see [`CasePayload`]) and filters, and both
//! acknowledge a write only once it is durable (edge: flushed to disk;
//! Qdrant: `wait=true`).

mod edge;
pub mod expand;
mod payload;
mod reindex;
mod remote;
pub mod terms;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use triage_proto::{Label, RiskLevel};

pub use edge::EdgeStore;
pub use expand::{Feedback, Profile, Refine, StoreProfile, FEEDBACK, HYBRID};
pub use payload::CasePayload;
pub use reindex::{add_sparse_vectors, ReindexSummary};
pub use remote::QdrantStore;
pub use terms::{SparseVector, SPARSE_VECTOR};

/// One stored case. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRecord {
    pub case_id: String,
    pub text: Option<String>,
    pub labels: Vec<Label>,
    /// The level it is filed under: after escalation, or people's decision.
    pub level: RiskLevel,
    /// The level the model read from the text alone.
    pub base_level: Option<RiskLevel>,
    /// The text's level raised by risk rules only, or people's level: what a
    /// later similar case's `similar_escalated` rule reads (see [`CaseRecord::risk`]).
    pub risk_level: Option<RiskLevel>,
    /// The rule ids of the raises from `base_level` to `level`, in order.
    pub escalations: Vec<String>,
    pub district: Option<String>,
    pub reporter_hash: Option<String>,
    pub received_at: Option<i64>,
    pub model_version: Option<String>,
    pub indexed_at: i64,
    /// Empty when read back without vectors.
    pub vector: Vec<f32>,
    /// The text's term weights ([`terms::document`]); empty when read back
    /// without vectors, for a case stored before they were kept, or for a
    /// text with no kept term.
    pub sparse: SparseVector,
}

impl CaseRecord {
    /// A case with its vectors and nothing else: blue, no labels, no origin,
    /// no text. For scratch stores (`triage eval-search`) and tests.
    pub fn bare(case_id: impl Into<String>, vector: Vec<f32>, sparse: SparseVector) -> Self {
        Self {
            case_id: case_id.into(),
            text: None,
            labels: Vec::new(),
            level: RiskLevel::Blue,
            base_level: None,
            risk_level: None,
            escalations: Vec::new(),
            district: None,
            reporter_hash: None,
            received_at: None,
            model_version: None,
            indexed_at: 0,
            vector,
            sparse,
        }
    }

    /// The level this case's risk reached. Cases stored before the risk level
    /// was kept are read at their filed level, as they were then.
    pub fn risk(&self) -> RiskLevel {
        self.risk_level.unwrap_or(self.level)
    }
}

/// Conditions every hit must meet. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFilter {
    pub district: Option<String>,
    /// Every one of these labels.
    pub labels: Vec<Label>,
    pub min_level: Option<RiskLevel>,
    pub received_from: Option<i64>,
    pub received_to: Option<i64>,
    pub reporter_hash: Option<String>,
    /// Leave this case out (a case is always most similar to itself).
    pub exclude_case_id: Option<String>,
    /// Only these cases, when given (the second round of [`expand::query`]).
    pub within: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub case: CaseRecord,
    /// Cosine similarity of the dense vectors, whatever ranked the hit.
    pub score: f32,
    /// The score hits are ordered by: the cosine, the sparse dot product
    /// (with IDF), or the fused score, by [`Ranking`].
    pub rank_score: f32,
}

/// How [`CaseStore::query`] ranks cases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ranking {
    /// The e5 vector alone.
    Dense,
    /// The term weights alone (BM25 with Qdrant's IDF).
    Sparse,
    /// Reciprocal rank fusion of both lists: `Σ w / (k + rank)`, the sparse
    /// list weighing 1 and the dense list `dense_weight`.
    Rrf { k: u32, dense_weight: f32 },
    /// Qdrant's distribution-based score fusion (scores normalised by each
    /// list's mean ± 3σ, then summed).
    Dbsf,
}

/// The ranking search uses unless told otherwise: chosen on the real board
/// messages with `triage eval-search` (EVALUATION.md, "Search: hybrid").
pub const DEFAULT_RANKING: Ranking = Ranking::Dbsf;

/// HNSW beam width at query time: recall@10 against exact search ≥ 0.98 with
/// and without filters on the benchmark store (BENCHMARKS.md, "Search at scale").
pub const HNSW_EF: usize = 128;

/// Candidates each list gives the fusion, at least.
const PREFETCH_MIN: usize = 50;

/// How many candidates each list hands to the fusion for `top_k` hits.
pub fn prefetch_limit(top_k: usize) -> usize {
    (top_k * 4).max(PREFETCH_MIN)
}

/// What [`CaseStore::query`] searches with.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseQuery {
    pub dense: Vec<f32>,
    /// Query term weights ([`terms::query`]); empty: the dense list alone.
    pub sparse: SparseVector,
    pub ranking: Ranking,
    /// HNSW beam width; `None`: [`HNSW_EF`].
    pub ef: Option<usize>,
    /// Exact search instead of the HNSW graph (the benchmark's ground truth).
    pub exact: bool,
    /// Subtracted from `dense` before ranking by it ([`expand`]); the hits'
    /// `score` stays the cosine with `dense` itself.
    pub centre: Option<Vec<f32>>,
    /// Candidates each list hands the fusion; `None`: [`prefetch_limit`].
    pub prefetch: Option<usize>,
}

impl CaseQuery {
    pub fn new(dense: Vec<f32>, sparse: SparseVector, ranking: Ranking) -> Self {
        Self { dense, sparse, ranking, ef: None, exact: false, centre: None, prefetch: None }
    }

    /// The vector the dense list ranks by: `dense`, less `centre` if given.
    pub fn ranking_vector(&self) -> Vec<f32> {
        match &self.centre {
            Some(c) if c.len() == self.dense.len() => self.dense.iter().zip(c).map(|(a, b)| a - b).collect(),
            _ => self.dense.clone(),
        }
    }

    /// Candidates each list hands the fusion for `top_k` hits.
    pub fn prefetch_for(&self, top_k: usize) -> usize {
        self.prefetch.unwrap_or_else(|| prefetch_limit(top_k))
    }
}

/// The inverse document frequency the store gives each term dimension, as
/// its IDF modifier scores it: a one-term sparse query scores a case
/// `idf · weight`, so its best hit tells the IDF. Terms in no case are left
/// out. `dense` is any vector of the store's size (it only passes the check).
pub async fn idf(
    store: &dyn CaseStore,
    dense: &[f32],
    ids: &[u32],
) -> Result<std::collections::HashMap<u32, f32>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for &id in ids {
        let q = CaseQuery::new(dense.to_vec(), SparseVector { indices: vec![id], values: vec![1.0] }, Ranking::Sparse);
        let hit = store.query(&q, &CaseFilter::default(), 1).await?.into_iter().next();
        if let Some(h) = hit {
            if let Some(w) = h.case.sparse.get(id).filter(|w| *w > 0.0) {
                out.insert(id, h.rank_score / w);
            }
        }
    }
    Ok(out)
}

/// `v` scaled to unit length (a zero vector stays zero), as stored vectors are.
pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Cosine of a query vector with a stored (unit) vector.
pub(crate) fn cosine(query: &[f32], stored: &[f32]) -> f32 {
    let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 || stored.len() != query.len() {
        return 0.0;
    }
    query.iter().zip(stored).map(|(a, b)| a * b).sum::<f32>() / norm
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("case store directory {path} is in use by another process")]
    Locked { path: String },
    #[error("vector has {got} dimensions, the store holds {want}")]
    Dimension { got: usize, want: usize },
    #[error("case store: {0}")]
    Backend(String),
    #[error("case store payload for {case_id}: {message}")]
    Payload { case_id: String, message: String },
}

#[async_trait]
pub trait CaseStore: Send + Sync {
    /// "embedded" or "qdrant", for readiness and logs.
    fn kind(&self) -> &'static str;
    /// Insert or replace cases by `case_id`; returns once they are durable.
    async fn upsert(&self, cases: Vec<CaseRecord>) -> Result<(), StoreError>;
    async fn get(&self, case_id: &str, with_vector: bool) -> Result<Option<CaseRecord>, StoreError>;
    /// Whether the case existed.
    async fn delete(&self, case_id: &str) -> Result<bool, StoreError>;
    /// Most similar first; only hits with `score >= min_score` when given.
    async fn search(
        &self,
        vector: &[f32],
        filter: &CaseFilter,
        top_k: usize,
        min_score: Option<f32>,
    ) -> Result<Vec<Hit>, StoreError>;
    /// Ranked by `query.ranking`, best first; hits carry both vectors (for
    /// the cosine and the shared terms).
    async fn query(&self, query: &CaseQuery, filter: &CaseFilter, top_k: usize) -> Result<Vec<Hit>, StoreError>;
    async fn count(&self) -> Result<u64, StoreError>;
    /// Cases stored with their text.
    async fn count_with_text(&self) -> Result<u64, StoreError>;
    /// A page of cases in point-id order with their sparse vectors (not the
    /// dense ones), from the cursor on; the next page's cursor, if any.
    async fn scroll(&self, from: Option<String>, limit: usize)
        -> Result<(Vec<CaseRecord>, Option<String>), StoreError>;
    /// The dense vectors of up to `limit` cases, the first in point-id order.
    /// Point ids are hashes of case ids, so these are a fair sample.
    async fn sample_vectors(&self, limit: usize) -> Result<Vec<Vec<f32>>, StoreError>;
    /// Sets the sparse vector of cases that still have none, by case id;
    /// a case written meanwhile (with its own) is left alone.
    async fn fill_sparse(&self, cases: Vec<(String, SparseVector)>) -> Result<(), StoreError>;
    /// Builds the search indexes for what was written in bulk (embedded:
    /// HNSW segments, blocking writes until done; a Qdrant server's
    /// optimizers do this on their own, so there it returns at once).
    async fn optimize(&self) -> Result<(), StoreError>;
}

/// The point id a case id maps to: a UUID made of the first 16 bytes of its
/// SHA-256 (version 8, "custom"), so an upsert by the same case id replaces
/// the point and every backend agrees on the id.
pub fn point_uuid(case_id: &str) -> String {
    let d = Sha256::digest(case_id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Salted SHA-256 of a reporter id, hex: equal ids match, the id itself is
/// never kept. The salt keeps a list of phone or ID numbers from reversing it.
pub fn reporter_hash(salt: &[u8], reporter: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update([0u8]);
    h.update(reporter.trim().as_bytes());
    hex::encode(h.finalize())
}

/// What a redaction found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redacted {
    pub cases: u64,
    /// Cases whose text was removed.
    pub texts: u64,
}

/// Payload fields with an index, and their types, shared by both backends.
pub const INDEXED_FIELDS: [(&str, IndexKind); 5] = [
    ("district", IndexKind::Keyword),
    ("labels", IndexKind::Keyword),
    ("level_rank", IndexKind::Integer),
    ("reporter", IndexKind::Keyword),
    ("received_at", IndexKind::Integer),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Keyword,
    Integer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_stable_uuids() {
        let a = point_uuid("case-1");
        assert_eq!(a, point_uuid("case-1"));
        assert_ne!(a, point_uuid("case-2"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
    }
}
