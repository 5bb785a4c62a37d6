//! Embedded backend: one qdrant-edge shard in a local directory.
//!
//! qdrant-edge is synchronous, so every call runs on tokio's blocking pool,
//! never on the runtime's worker threads. Its `load` does not replay the WAL,
//! so a write is acknowledged only after the shard has been flushed to disk:
//! what the API acknowledged survives `kill -9`. Writes are serialised by one
//! mutex because `EdgeShard::flush` expects to be the only holder of the WAL.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{
    CountRequest, CreateIndex, Distance, EdgeConfigBuilder, EdgeShard, EdgeSparseVectorParams, EdgeVectorParams,
    FieldIndexOperations, Filter, Fusion, JsonPath, Modifier, NamedQuery, PayloadFieldSchema, PayloadSchemaType,
    PointId, PointInsertOperations, PointOperations, PointStruct, PointVectorsPersisted, Prefetch, QueryEnum,
    QueryRequest, ScoringQuery, ScrollRequest, SearchParams, UpdateOperation, UpdateVectorsOp, Vector, VectorInternal,
    VectorOperations, VectorPersisted, VectorStructInternal, VectorStructPersisted, Vectors, WithPayloadInterface,
    WithVector,
};

use crate::payload::{filter_json, CasePayload};
use crate::{
    cosine, point_uuid, CaseFilter, CaseQuery, CaseRecord, CaseStore, Hit, IndexKind, Ranking, Redacted, SparseVector,
    StoreError, HNSW_EF, INDEXED_FIELDS, SPARSE_VECTOR,
};

const CONFIG_FILE: &str = "edge_config.json";
const LOCK_FILE: &str = ".lock";
/// Points read and written at a time while a redaction rewrites the store.
const REDACT_PAGE: usize = 256;

/// `dir` with a suffix, beside it: where a redaction builds the new store
/// (`redact-new`) and parks the old one (`redact-old`) until the swap is done.
fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

pub struct EdgeStore {
    inner: Arc<Inner>,
}

struct Inner {
    shard: EdgeShard,
    dim: usize,
    writes: Mutex<()>,
    /// Held open for the store's life: the OS releases the lock when the
    /// process ends, even by `kill -9`.
    _lock: File,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl EdgeStore {
    /// Opens the shard in `dir`, creating it (with payload indexes) if new.
    /// Fails if another process holds the directory.
    pub fn open(dir: &Path, dim: usize) -> Result<Self, StoreError> {
        Self::open_with(dir, Some(dim))
    }

    /// `dim` None: the size the existing store was made with.
    fn open_with(dir: &Path, dim: Option<usize>) -> Result<Self, StoreError> {
        if beside(dir, "redact-old").exists() {
            return Err(backend(format!(
                "{} is left from an interrupted `triage cases redact`: run it again to finish",
                beside(dir, "redact-old").display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| backend(format!("creating {}: {e}", dir.display())))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| backend(format!("opening the lock file in {}: {e}", dir.display())))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked { path: dir.display().to_string() });
        }
        let exists = dir.join(CONFIG_FILE).exists();
        let shard = if exists {
            EdgeShard::load(dir, None).map_err(backend)?
        } else {
            let dim = dim.ok_or_else(|| backend(format!("no case store in {}", dir.display())))?;
            let config = EdgeConfigBuilder::new()
                .vector("", EdgeVectorParams::builder(dim, Distance::Cosine).on_disk(true).build())
                .sparse_vector(
                    SPARSE_VECTOR,
                    EdgeSparseVectorParams::builder().modifier(Modifier::Idf).on_disk(true).build(),
                )
                .on_disk_payload(true)
                .build();
            let shard = EdgeShard::new(dir, config).map_err(backend)?;
            for (field, kind) in INDEXED_FIELDS {
                let schema = match kind {
                    IndexKind::Keyword => PayloadSchemaType::Keyword,
                    IndexKind::Integer => PayloadSchemaType::Integer,
                };
                shard
                    .update(UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name: JsonPath::try_from(field)
                            .map_err(|_| backend(format!("bad field name {field}")))?,
                        field_schema: Some(PayloadFieldSchema::FieldType(schema)),
                    })))
                    .map_err(backend)?;
            }
            shard.flush();
            shard
        };
        let have = shard.config().vectors.get("").map(|v| v.size);
        let dim = match (dim, have) {
            (Some(d), Some(h)) if d != h => return Err(StoreError::Dimension { got: d, want: h }),
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) => return Err(backend(format!("the case store in {} has no vector size", dir.display()))),
        };
        if !shard.config().sparse_vectors.contains_key(SPARSE_VECTOR) {
            add_sparse_vector(&shard)?;
        }
        Ok(Self { inner: Arc::new(Inner { shard, dim, writes: Mutex::new(()), _lock: lock }) })
    }

    /// Removes every case's text by writing the store anew without it, then
    /// swapping the new directory in: deleting a payload field only marks its
    /// bytes free, and they stay readable in the old files. Needs the store
    /// closed (it takes the directory's lock). An interrupted run is finished
    /// by the next one.
    pub fn redact(dir: &Path) -> Result<Redacted, StoreError> {
        let (new_dir, old_dir) = (beside(dir, "redact-new"), beside(dir, "redact-old"));
        let io = |what: &str, p: &Path, e: std::io::Error| backend(format!("{what} {}: {e}", p.display()));
        if old_dir.exists() {
            // The old store was parked; the new one is complete once parking began.
            if !dir.exists() {
                std::fs::rename(&new_dir, dir).map_err(|e| io("moving in", &new_dir, e))?;
            }
            std::fs::remove_dir_all(&old_dir).map_err(|e| io("removing", &old_dir, e))?;
        }
        if new_dir.exists() {
            // An unfinished copy: build it again.
            std::fs::remove_dir_all(&new_dir).map_err(|e| io("removing", &new_dir, e))?;
        }
        if !dir.join(CONFIG_FILE).exists() {
            return Ok(Redacted { cases: 0, texts: 0 });
        }
        let old = Self::open_with(dir, None)?;
        let new = Self::open(&new_dir, old.inner.dim)?;
        let mut done = Redacted { cases: 0, texts: 0 };
        let mut offset = None;
        loop {
            let (records, next) = old
                .inner
                .shard
                .scroll(ScrollRequest {
                    offset,
                    limit: Some(REDACT_PAGE),
                    filter: None,
                    with_payload: Some(WithPayloadInterface::Bool(true)),
                    with_vector: WithVector::Bool(true),
                    order_by: None,
                })
                .map_err(backend)?;
            let mut points = Vec::with_capacity(records.len());
            for r in records {
                let mut c = record(r.payload, r.vector)?;
                done.cases += 1;
                done.texts += u64::from(c.text.take().is_some());
                let payload = serde_json::Value::Object(CasePayload::of(&c).to_json());
                // Both vectors travel: the term weights are not the text.
                points.push(PointStruct::new(r.id, vectors(&c), payload).into());
            }
            if !points.is_empty() {
                new.inner.write(UpdateOperation::PointOperation(PointOperations::UpsertPoints(
                    PointInsertOperations::PointsList(points),
                )))?;
            }
            match next {
                Some(n) => offset = Some(n),
                None => break,
            }
        }
        // Both flushed and unlocked before the swap.
        drop((old, new));
        std::fs::rename(dir, &old_dir).map_err(|e| io("parking", dir, e))?;
        std::fs::rename(&new_dir, dir).map_err(|e| io("moving in", &new_dir, e))?;
        std::fs::remove_dir_all(&old_dir).map_err(|e| io("removing", &old_dir, e))?;
        Ok(done)
    }

    pub fn dir(&self) -> PathBuf {
        self.inner.shard.path().to_path_buf()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| backend(format!("store task failed: {e}")))?
    }
}

/// Adds the sparse vector to a store made before it was kept: a change of
/// configuration only; `triage reindex` then fills it. qdrant-edge 0.7 does
/// not export the operation's type, so it is built from its JSON form.
fn add_sparse_vector(shard: &EdgeShard) -> Result<(), StoreError> {
    let op = serde_json::json!({"create_vector_name": {"vector_name": SPARSE_VECTOR, "config": {"sparse": {"modifier": "idf"}}}});
    let op: UpdateOperation = serde_json::from_value(op).map_err(backend)?;
    shard.update(op).map_err(backend)?;
    shard.flush();
    Ok(())
}

fn point_id(case_id: &str) -> Result<PointId, StoreError> {
    let u = Uuid::parse_str(&point_uuid(case_id)).map_err(backend)?;
    Ok(PointId::Uuid(u))
}

/// The dense and sparse vectors of a read-back point (empty where absent).
fn vectors_of(v: Option<VectorStructInternal>) -> (Vec<f32>, SparseVector) {
    match v {
        Some(VectorStructInternal::Single(v)) => (v, SparseVector::default()),
        Some(VectorStructInternal::Named(mut m)) => {
            let dense = match m.remove("") {
                Some(VectorInternal::Dense(v)) => v,
                _ => Vec::new(),
            };
            let sparse = match m.remove(SPARSE_VECTOR) {
                Some(VectorInternal::Sparse(v)) => SparseVector { indices: v.indices, values: v.values },
                _ => SparseVector::default(),
            };
            (dense, sparse)
        }
        _ => (Vec::new(), SparseVector::default()),
    }
}

fn sparse_edge(v: &SparseVector) -> qdrant_edge::SparseVector {
    qdrant_edge::SparseVector { indices: v.indices.clone(), values: v.values.clone() }
}

fn vectors(c: &CaseRecord) -> Vectors {
    let mut named = vec![(String::new(), Vector::new_dense(c.vector.clone()))];
    if !c.sparse.is_empty() {
        named.push((SPARSE_VECTOR.to_string(), Vector(VectorInternal::Sparse(sparse_edge(&c.sparse)))));
    }
    Vectors::new_named(named)
}

fn record(payload: Option<qdrant_edge::Payload>, v: Option<VectorStructInternal>) -> Result<CaseRecord, StoreError> {
    let (dense, sparse) = vectors_of(v);
    Ok(CasePayload::from_json(payload_value(payload))?.into_record(dense, sparse))
}

fn params(q: &CaseQuery) -> SearchParams {
    SearchParams { hnsw_ef: Some(q.ef.unwrap_or(HNSW_EF)), exact: q.exact, ..Default::default() }
}

fn nearest(q: &CaseQuery, sparse: bool) -> ScoringQuery {
    let (query, using) = if sparse {
        (VectorInternal::Sparse(sparse_edge(&q.sparse)), Some(SPARSE_VECTOR.to_string()))
    } else {
        (VectorInternal::Dense(q.ranking_vector()), None)
    };
    ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery { query, using }))
}

fn payload_value(p: Option<qdrant_edge::Payload>) -> serde_json::Value {
    serde_json::Value::Object(p.map(|p| p.0.into_iter().collect()).unwrap_or_default())
}

impl Inner {
    fn check_dim(&self, v: &[f32]) -> Result<(), StoreError> {
        if v.len() != self.dim {
            return Err(StoreError::Dimension { got: v.len(), want: self.dim });
        }
        Ok(())
    }

    fn write(&self, op: UpdateOperation) -> Result<(), StoreError> {
        let _guard = self.writes.lock().map_err(|_| backend("write lock poisoned"))?;
        self.shard.update(op).map_err(backend)?;
        self.shard.flush();
        Ok(())
    }

    fn get(&self, case_id: &str, with_vector: bool) -> Result<Option<CaseRecord>, StoreError> {
        let id = point_id(case_id)?;
        let mut recs = self
            .shard
            .retrieve(&[id], Some(WithPayloadInterface::Bool(true)), Some(WithVector::Bool(with_vector)))
            .map_err(backend)?;
        match recs.pop() {
            None => Ok(None),
            Some(r) => Ok(Some(record(r.payload, r.vector)?)),
        }
    }
}

#[async_trait]
impl CaseStore for EdgeStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn upsert(&self, cases: Vec<CaseRecord>) -> Result<(), StoreError> {
        if cases.is_empty() {
            return Ok(());
        }
        self.blocking(move |inner| {
            let mut points = Vec::with_capacity(cases.len());
            for c in &cases {
                inner.check_dim(&c.vector)?;
                let payload = serde_json::Value::Object(CasePayload::of(c).to_json());
                points.push(PointStruct::new(point_id(&c.case_id)?, vectors(c), payload).into());
            }
            inner.write(UpdateOperation::PointOperation(PointOperations::UpsertPoints(
                PointInsertOperations::PointsList(points),
            )))
        })
        .await
    }

    async fn get(&self, case_id: &str, with_vector: bool) -> Result<Option<CaseRecord>, StoreError> {
        let case_id = case_id.to_string();
        self.blocking(move |inner| inner.get(&case_id, with_vector)).await
    }

    async fn delete(&self, case_id: &str) -> Result<bool, StoreError> {
        let case_id = case_id.to_string();
        self.blocking(move |inner| {
            if inner.get(&case_id, false)?.is_none() {
                return Ok(false);
            }
            inner.write(UpdateOperation::PointOperation(PointOperations::DeletePoints {
                ids: vec![point_id(&case_id)?],
            }))?;
            Ok(true)
        })
        .await
    }

    async fn search(
        &self,
        vector: &[f32],
        filter: &CaseFilter,
        top_k: usize,
        min_score: Option<f32>,
    ) -> Result<Vec<Hit>, StoreError> {
        self.inner.check_dim(vector)?;
        let filter: Filter = serde_json::from_value(filter_json(filter)).map_err(backend)?;
        let vector = vector.to_vec();
        self.blocking(move |inner| {
            let request = QueryRequest {
                prefetches: vec![],
                query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: VectorInternal::Dense(vector),
                    using: None,
                }))),
                filter: Some(filter),
                score_threshold: min_score.map(OrderedFloat),
                limit: top_k,
                offset: 0,
                params: Some(SearchParams { hnsw_ef: Some(HNSW_EF), ..Default::default() }),
                with_vector: WithVector::Bool(false),
                with_payload: WithPayloadInterface::Bool(true),
            };
            let points = inner.shard.query(request).map_err(backend)?;
            points
                .into_iter()
                .map(|p| Ok(Hit { case: record(p.payload, None)?, score: p.score, rank_score: p.score }))
                .collect()
        })
        .await
    }

    async fn query(&self, q: &CaseQuery, filter: &CaseFilter, top_k: usize) -> Result<Vec<Hit>, StoreError> {
        self.inner.check_dim(&q.dense)?;
        let filter: Filter = serde_json::from_value(filter_json(filter)).map_err(backend)?;
        let q = q.clone();
        self.blocking(move |inner| {
            let prefetch = |sparse: bool| Prefetch {
                prefetches: vec![],
                query: Some(nearest(&q, sparse)),
                limit: q.prefetch_for(top_k),
                params: Some(params(&q)),
                filter: Some(filter.clone()),
                score_threshold: None,
            };
            let fused = |fusion: Fusion| (vec![prefetch(false), prefetch(true)], Some(ScoringQuery::Fusion(fusion)));
            let (prefetches, query) = match q.ranking {
                _ if q.sparse.is_empty() && q.ranking != Ranking::Sparse => (vec![], Some(nearest(&q, false))),
                Ranking::Dense => (vec![], Some(nearest(&q, false))),
                Ranking::Sparse => (vec![], Some(nearest(&q, true))),
                Ranking::Rrf { k, dense_weight } => fused(Fusion::Rrf {
                    k: k as usize,
                    weights: Some(vec![OrderedFloat(dense_weight), OrderedFloat(1.0)]),
                }),
                Ranking::Dbsf => fused(Fusion::Dbsf),
            };
            let request = QueryRequest {
                prefetches,
                query,
                filter: Some(filter.clone()),
                score_threshold: None,
                limit: top_k,
                offset: 0,
                params: Some(params(&q)),
                with_vector: WithVector::Bool(true),
                with_payload: WithPayloadInterface::Bool(true),
            };
            let points = inner.shard.query(request).map_err(backend)?;
            points
                .into_iter()
                .map(|p| {
                    let case = record(p.payload, p.vector)?;
                    Ok(Hit { score: cosine(&q.dense, &case.vector), rank_score: p.score, case })
                })
                .collect()
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.blocking(|inner| {
            inner.shard.count(CountRequest { filter: None, exact: true }).map(|n| n as u64).map_err(backend)
        })
        .await
    }

    async fn count_with_text(&self) -> Result<u64, StoreError> {
        let filter: Filter = serde_json::from_value(serde_json::json!({"must_not": [{"is_empty": {"key": "text"}}]}))
            .map_err(backend)?;
        self.blocking(move |inner| {
            inner.shard.count(CountRequest { filter: Some(filter), exact: true }).map(|n| n as u64).map_err(backend)
        })
        .await
    }

    async fn scroll(
        &self,
        from: Option<String>,
        limit: usize,
    ) -> Result<(Vec<CaseRecord>, Option<String>), StoreError> {
        self.blocking(move |inner| {
            let offset = from.map(|u| Uuid::parse_str(&u).map(PointId::Uuid).map_err(backend)).transpose()?;
            let (recs, next) = inner
                .shard
                .scroll(ScrollRequest {
                    offset,
                    limit: Some(limit),
                    filter: None,
                    with_payload: Some(WithPayloadInterface::Bool(true)),
                    with_vector: WithVector::Selector(vec![SPARSE_VECTOR.to_string()]),
                    order_by: None,
                })
                .map_err(backend)?;
            let cases = recs.into_iter().map(|r| record(r.payload, r.vector)).collect::<Result<Vec<_>, _>>()?;
            Ok((cases, next.map(|id| id.to_string())))
        })
        .await
    }

    async fn sample_vectors(&self, limit: usize) -> Result<Vec<Vec<f32>>, StoreError> {
        self.blocking(move |inner| {
            let (recs, _) = inner
                .shard
                .scroll(ScrollRequest {
                    offset: None,
                    limit: Some(limit),
                    filter: None,
                    with_payload: Some(WithPayloadInterface::Bool(false)),
                    with_vector: WithVector::Selector(vec![String::new()]),
                    order_by: None,
                })
                .map_err(backend)?;
            Ok(recs.into_iter().map(|r| vectors_of(r.vector).0).collect())
        })
        .await
    }

    async fn fill_sparse(&self, cases: Vec<(String, SparseVector)>) -> Result<(), StoreError> {
        if cases.is_empty() {
            return Ok(());
        }
        self.blocking(move |inner| {
            let mut points = Vec::with_capacity(cases.len());
            for (case_id, v) in &cases {
                let named =
                    [(SPARSE_VECTOR.to_string(), VectorPersisted::Sparse(sparse_edge(v)))].into_iter().collect();
                points.push(PointVectorsPersisted {
                    id: point_id(case_id)?,
                    vector: VectorStructPersisted::Named(named),
                });
            }
            // Only points that still have no sparse vector: a case replaced meanwhile came with its own.
            let unfilled = serde_json::json!({"must_not": [{"has_vector": SPARSE_VECTOR}]});
            let update_filter = Some(serde_json::from_value(unfilled).map_err(backend)?);
            inner.write(UpdateOperation::VectorOperation(VectorOperations::UpdateVectors(UpdateVectorsOp {
                points,
                update_filter,
            })))
        })
        .await
    }

    async fn optimize(&self) -> Result<(), StoreError> {
        self.blocking(|inner| {
            let _guard = inner.writes.lock().map_err(|_| backend("write lock poisoned"))?;
            inner.shard.optimize().map_err(backend)?;
            inner.shard.flush();
            Ok(())
        })
        .await
    }
}
