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
    CountRequest, CreateIndex, Distance, EdgeConfigBuilder, EdgeShard, EdgeVectorParams, FieldIndexOperations, Filter,
    JsonPath, NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations, PointOperations,
    PointStruct, QueryEnum, QueryRequest, ScoringQuery, UpdateOperation, VectorInternal, VectorStructInternal,
    WithPayloadInterface, WithVector,
};

use crate::payload::{filter_json, CasePayload};
use crate::{point_uuid, CaseFilter, CaseRecord, CaseStore, Hit, IndexKind, StoreError, INDEXED_FIELDS};

const CONFIG_FILE: &str = "edge_config.json";
const LOCK_FILE: &str = ".lock";

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
            let config = EdgeConfigBuilder::new()
                .vector("", EdgeVectorParams::builder(dim, Distance::Cosine).on_disk(true).build())
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
        if let Some(have) = have {
            if have != dim {
                return Err(StoreError::Dimension { got: dim, want: have });
            }
        }
        Ok(Self { inner: Arc::new(Inner { shard, dim, writes: Mutex::new(()), _lock: lock }) })
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

fn point_id(case_id: &str) -> Result<PointId, StoreError> {
    let u = Uuid::parse_str(&point_uuid(case_id)).map_err(backend)?;
    Ok(PointId::Uuid(u))
}

fn dense(v: Option<VectorStructInternal>) -> Vec<f32> {
    match v {
        Some(VectorStructInternal::Single(v)) => v,
        Some(VectorStructInternal::Named(mut m)) => match m.remove("") {
            Some(VectorInternal::Dense(v)) => v,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
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
            Some(r) => Ok(Some(CasePayload::from_json(payload_value(r.payload))?.into_record(dense(r.vector)))),
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
                points.push(PointStruct::new(point_id(&c.case_id)?, c.vector.clone(), payload).into());
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
                params: None,
                with_vector: WithVector::Bool(false),
                with_payload: WithPayloadInterface::Bool(true),
            };
            let points = inner.shard.query(request).map_err(backend)?;
            points
                .into_iter()
                .map(|p| {
                    Ok(Hit {
                        case: CasePayload::from_json(payload_value(p.payload))?.into_record(Vec::new()),
                        score: p.score,
                    })
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
}
