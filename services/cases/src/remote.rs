//! Scale-out backend: a Qdrant server or cluster through `qdrant-client`
//! (gRPC). Same payload and filters as the embedded store; writes use
//! `wait=true`, so an acknowledged write is in Qdrant's WAL.

use async_trait::async_trait;
use qdrant_client::qdrant::{
    vector_output, Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePayloadPointsBuilder, DeletePointsBuilder, Distance, FieldType, Filter, GetPointsBuilder, PointId,
    PointStruct, PointsIdsList, QueryPointsBuilder, Range, UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant};

use crate::payload::CasePayload;
use crate::{point_uuid, CaseFilter, CaseRecord, CaseStore, Hit, IndexKind, StoreError, INDEXED_FIELDS};

pub struct QdrantStore {
    client: Qdrant,
    collection: String,
    dim: usize,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl QdrantStore {
    /// Connects and creates the collection (cosine, `dim`) and its payload
    /// indexes if missing.
    pub async fn connect(url: &str, api_key: Option<String>, collection: &str, dim: usize) -> Result<Self, StoreError> {
        let client = client(url, api_key)?;
        if !client.collection_exists(collection).await.map_err(backend)? {
            client
                .create_collection(
                    CreateCollectionBuilder::new(collection)
                        .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine)),
                )
                .await
                .map_err(backend)?;
            for (field, kind) in INDEXED_FIELDS {
                let t = match kind {
                    IndexKind::Keyword => FieldType::Keyword,
                    IndexKind::Integer => FieldType::Integer,
                };
                client
                    .create_field_index(CreateFieldIndexCollectionBuilder::new(collection, field, t).wait(true))
                    .await
                    .map_err(backend)?;
            }
        }
        Ok(Self { client, collection: collection.to_string(), dim })
    }

    /// Removes every case's text (`wait=true`) from an existing collection;
    /// none is created. The server reclaims the space on its own schedule
    /// (its vacuum optimizer), not at once.
    pub async fn redact(url: &str, api_key: Option<String>, collection: &str) -> Result<crate::Redacted, StoreError> {
        let client = client(url, api_key)?;
        if !client.collection_exists(collection).await.map_err(backend)? {
            return Ok(crate::Redacted { cases: 0, texts: 0 });
        }
        // The vector size is not needed to delete a payload field.
        let store = Self { client, collection: collection.to_string(), dim: 0 };
        let cases = store.count().await?;
        let texts = store.count_with_text().await?;
        store
            .client
            .delete_payload(
                DeletePayloadPointsBuilder::new(collection, vec!["text".to_string()])
                    .points_selector(with_text())
                    .wait(true),
            )
            .await
            .map_err(backend)?;
        Ok(crate::Redacted { cases, texts })
    }

    fn check_dim(&self, v: &[f32]) -> Result<(), StoreError> {
        if v.len() != self.dim {
            return Err(StoreError::Dimension { got: v.len(), want: self.dim });
        }
        Ok(())
    }
}

fn payload_of(map: std::collections::HashMap<String, qdrant_client::qdrant::Value>) -> Result<CasePayload, StoreError> {
    CasePayload::from_json(serde_json::Value::from(Payload::from(map)))
}

fn client(url: &str, api_key: Option<String>) -> Result<Qdrant, StoreError> {
    let mut builder = Qdrant::from_url(url).skip_compatibility_check();
    if let Some(k) = api_key {
        builder = builder.api_key(k);
    }
    builder.build().map_err(backend)
}

fn with_text() -> Filter {
    Filter::must_not([Condition::is_empty("text")])
}

fn filter_of(f: &CaseFilter) -> Filter {
    let mut must = Vec::new();
    if let Some(d) = &f.district {
        must.push(Condition::matches("district", d.clone()));
    }
    for l in &f.labels {
        must.push(Condition::matches("labels", l.as_str().to_string()));
    }
    if let Some(l) = f.min_level {
        must.push(Condition::range("level_rank", Range { gte: Some(l.index() as f64), ..Default::default() }));
    }
    if f.received_from.is_some() || f.received_to.is_some() {
        must.push(Condition::range(
            "received_at",
            Range {
                gte: f.received_from.map(|x| x as f64),
                lte: f.received_to.map(|x| x as f64),
                ..Default::default()
            },
        ));
    }
    if let Some(h) = &f.reporter_hash {
        must.push(Condition::matches("reporter", h.clone()));
    }
    let mut filter = Filter::must(must);
    if let Some(id) = &f.exclude_case_id {
        filter.must_not = vec![Condition::has_id([PointId::from(point_uuid(id))])];
    }
    filter
}

#[async_trait]
impl CaseStore for QdrantStore {
    fn kind(&self) -> &'static str {
        "qdrant"
    }

    async fn upsert(&self, cases: Vec<CaseRecord>) -> Result<(), StoreError> {
        if cases.is_empty() {
            return Ok(());
        }
        let mut points = Vec::with_capacity(cases.len());
        for c in &cases {
            self.check_dim(&c.vector)?;
            let payload =
                Payload::try_from(serde_json::Value::Object(CasePayload::of(c).to_json())).map_err(backend)?;
            points.push(PointStruct::new(point_uuid(&c.case_id), c.vector.clone(), payload));
        }
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get(&self, case_id: &str, with_vector: bool) -> Result<Option<CaseRecord>, StoreError> {
        let ids: Vec<PointId> = vec![point_uuid(case_id).into()];
        let res = self
            .client
            .get_points(GetPointsBuilder::new(&self.collection, ids).with_payload(true).with_vectors(with_vector))
            .await
            .map_err(backend)?;
        let Some(p) = res.result.into_iter().next() else { return Ok(None) };
        let vector = match p.vectors.as_ref().and_then(|v| v.get_vector()) {
            Some(vector_output::Vector::Dense(d)) => d.data,
            _ => Vec::new(),
        };
        Ok(Some(payload_of(p.payload)?.into_record(vector)))
    }

    async fn delete(&self, case_id: &str) -> Result<bool, StoreError> {
        if self.get(case_id, false).await?.is_none() {
            return Ok(false);
        }
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(PointsIdsList { ids: vec![point_uuid(case_id).into()] })
                    .wait(true),
            )
            .await
            .map_err(backend)?;
        Ok(true)
    }

    async fn search(
        &self,
        vector: &[f32],
        filter: &CaseFilter,
        top_k: usize,
        min_score: Option<f32>,
    ) -> Result<Vec<Hit>, StoreError> {
        self.check_dim(vector)?;
        let mut q = QueryPointsBuilder::new(&self.collection)
            .query(vector.to_vec())
            .filter(filter_of(filter))
            .limit(top_k as u64)
            .with_payload(true);
        if let Some(s) = min_score {
            q = q.score_threshold(s);
        }
        let res = self.client.query(q).await.map_err(backend)?;
        res.result
            .into_iter()
            .map(|p| Ok(Hit { case: payload_of(p.payload)?.into_record(Vec::new()), score: p.score }))
            .collect()
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let res = self.client.count(CountPointsBuilder::new(&self.collection).exact(true)).await.map_err(backend)?;
        Ok(res.result.map(|r| r.count).unwrap_or(0))
    }

    async fn count_with_text(&self) -> Result<u64, StoreError> {
        let res = self
            .client
            .count(CountPointsBuilder::new(&self.collection).filter(with_text()).exact(true))
            .await
            .map_err(backend)?;
        Ok(res.result.map(|r| r.count).unwrap_or(0))
    }
}
