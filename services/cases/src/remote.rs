//! Scale-out backend: a Qdrant server or cluster through `qdrant-client`
//! (gRPC). Same payload and filters as the embedded store; writes use
//! `wait=true`, so an acknowledged write is in Qdrant's WAL.

use async_trait::async_trait;
use std::collections::HashMap;

use qdrant_client::qdrant::{
    point_id::PointIdOptions, vector_output, Condition, CountPointsBuilder, CreateCollectionBuilder,
    CreateFieldIndexCollectionBuilder, CreateVectorNameRequestBuilder, DeletePayloadPointsBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, Fusion, GetPointsBuilder, Modifier, PointId, PointStruct, PointVectors, PointsIdsList,
    PrefetchQueryBuilder, Query, QueryPointsBuilder, Range, RetrievedPoint, Rrf, ScrollPointsBuilder,
    SearchParamsBuilder, SparseVectorCreationConfigBuilder, SparseVectorParamsBuilder, SparseVectorsConfigBuilder,
    UpdatePointVectorsBuilder, UpsertPointsBuilder, Vector, VectorInput, VectorParamsBuilder, VectorsOutput,
    VectorsSelector,
};
use qdrant_client::{Payload, Qdrant};

use crate::payload::CasePayload;
use crate::{
    cosine, point_uuid, CaseFilter, CaseQuery, CaseRecord, CaseStore, Hit, IndexKind, Ranking, SparseVector,
    StoreError, HNSW_EF, INDEXED_FIELDS, SPARSE_VECTOR,
};

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
            let mut sparse = SparseVectorsConfigBuilder::default();
            sparse.add_named_vector_params(SPARSE_VECTOR, SparseVectorParamsBuilder::default().modifier(Modifier::Idf));
            client
                .create_collection(
                    CreateCollectionBuilder::new(collection)
                        .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine).on_disk(true))
                        .sparse_vectors_config(sparse),
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
        } else {
            let info = client.collection_info(collection).await.map_err(backend)?;
            let has_sparse = info
                .result
                .and_then(|i| i.config)
                .and_then(|c| c.params)
                .and_then(|p| p.sparse_vectors_config)
                .is_some_and(|s| s.map.contains_key(SPARSE_VECTOR));
            if !has_sparse {
                // A collection made before sparse vectors were kept: add the
                // vector (a configuration change, served throughout);
                // `triage reindex` fills it.
                client
                    .create_vector_name(
                        CreateVectorNameRequestBuilder::new(
                            collection,
                            SPARSE_VECTOR,
                            SparseVectorCreationConfigBuilder::new().modifier(Modifier::Idf),
                        )
                        .wait(true),
                    )
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

fn vectors_of(v: Option<&VectorsOutput>) -> (Vec<f32>, SparseVector) {
    let Some(v) = v else { return (Vec::new(), SparseVector::default()) };
    let dense = match v.get_vector_by_name("") {
        Some(vector_output::Vector::Dense(d)) => d.data,
        _ => Vec::new(),
    };
    let sparse = match v.get_vector_by_name(SPARSE_VECTOR) {
        Some(vector_output::Vector::Sparse(s)) => SparseVector::from_pairs(s.indices.into_iter().zip(s.values)),
        _ => SparseVector::default(),
    };
    (dense, sparse)
}

fn record(p: RetrievedPoint) -> Result<CaseRecord, StoreError> {
    let (dense, sparse) = vectors_of(p.vectors.as_ref());
    Ok(payload_of(p.payload)?.into_record(dense, sparse))
}

fn nearest(q: &CaseQuery, sparse: bool) -> (Query, Option<&'static str>) {
    if sparse {
        let v = VectorInput::new_sparse(q.sparse.indices.clone(), q.sparse.values.clone());
        (Query::new_nearest(v), Some(SPARSE_VECTOR))
    } else {
        (Query::new_nearest(q.ranking_vector()), None)
    }
}

fn params(q: &CaseQuery) -> SearchParamsBuilder {
    SearchParamsBuilder::default().hnsw_ef(q.ef.unwrap_or(HNSW_EF) as u64).exact(q.exact)
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
    if let Some(ids) = &f.within {
        must.push(Condition::has_id(ids.iter().map(|id| PointId::from(point_uuid(id)))));
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
            let mut vectors = HashMap::from([(String::new(), Vector::new_dense(c.vector.clone()))]);
            if !c.sparse.is_empty() {
                vectors.insert(
                    SPARSE_VECTOR.to_string(),
                    Vector::new_sparse(c.sparse.indices.clone(), c.sparse.values.clone()),
                );
            }
            points.push(PointStruct::new(point_uuid(&c.case_id), vectors, payload));
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
        Ok(Some(record(p)?))
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
            .params(SearchParamsBuilder::default().hnsw_ef(HNSW_EF as u64))
            .with_payload(true);
        if let Some(s) = min_score {
            q = q.score_threshold(s);
        }
        let res = self.client.query(q).await.map_err(backend)?;
        res.result
            .into_iter()
            .map(|p| {
                let case = payload_of(p.payload)?.into_record(Vec::new(), SparseVector::default());
                Ok(Hit { case, score: p.score, rank_score: p.score })
            })
            .collect()
    }

    async fn query(&self, q: &CaseQuery, filter: &CaseFilter, top_k: usize) -> Result<Vec<Hit>, StoreError> {
        self.check_dim(&q.dense)?;
        let filter = filter_of(filter);
        let mut b = QueryPointsBuilder::new(&self.collection)
            .filter(filter.clone())
            .limit(top_k as u64)
            .params(params(q))
            .with_payload(true)
            .with_vectors(true);
        let prefetch = |sparse: bool| {
            let (query, using) = nearest(q, sparse);
            let mut p = PrefetchQueryBuilder::default()
                .query(query)
                .limit(q.prefetch_for(top_k) as u64)
                .filter(filter.clone())
                .params(params(q));
            if let Some(u) = using {
                p = p.using(u);
            }
            p
        };
        let single = |b: QueryPointsBuilder, sparse: bool| {
            let (query, using) = nearest(q, sparse);
            let b = b.query(query);
            match using {
                Some(u) => b.using(u),
                None => b,
            }
        };
        b = match q.ranking {
            _ if q.sparse.is_empty() && q.ranking != Ranking::Sparse => single(b, false),
            Ranking::Dense => single(b, false),
            Ranking::Sparse => single(b, true),
            Ranking::Rrf { k, dense_weight } => b
                .add_prefetch(prefetch(false))
                .add_prefetch(prefetch(true))
                .query(Query::new_rrf(Rrf { k: Some(k), weights: vec![dense_weight, 1.0] })),
            Ranking::Dbsf => {
                b.add_prefetch(prefetch(false)).add_prefetch(prefetch(true)).query(Query::new_fusion(Fusion::Dbsf))
            }
        };
        let res = self.client.query(b).await.map_err(backend)?;
        res.result
            .into_iter()
            .map(|p| {
                let (dense, sparse) = vectors_of(p.vectors.as_ref());
                let case = payload_of(p.payload)?.into_record(dense, sparse);
                Ok(Hit { score: cosine(&q.dense, &case.vector), rank_score: p.score, case })
            })
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

    async fn scroll(
        &self,
        from: Option<String>,
        limit: usize,
    ) -> Result<(Vec<CaseRecord>, Option<String>), StoreError> {
        let mut b = ScrollPointsBuilder::new(&self.collection)
            .limit(limit as u32)
            .with_payload(true)
            .with_vectors(VectorsSelector { names: vec![SPARSE_VECTOR.to_string()] });
        if let Some(from) = from {
            b = b.offset(PointId::from(from));
        }
        let res = self.client.scroll(b).await.map_err(backend)?;
        let next = res.next_page_offset.and_then(|id| match id.point_id_options {
            Some(PointIdOptions::Uuid(u)) => Some(u),
            Some(PointIdOptions::Num(n)) => Some(n.to_string()),
            None => None,
        });
        let cases = res.result.into_iter().map(record).collect::<Result<Vec<_>, _>>()?;
        Ok((cases, next))
    }

    async fn sample_vectors(&self, limit: usize) -> Result<Vec<Vec<f32>>, StoreError> {
        let b = ScrollPointsBuilder::new(&self.collection)
            .limit(limit.min(u32::MAX as usize) as u32)
            .with_payload(false)
            .with_vectors(VectorsSelector { names: vec![String::new()] });
        let res = self.client.scroll(b).await.map_err(backend)?;
        Ok(res.result.into_iter().map(|p| vectors_of(p.vectors.as_ref()).0).collect())
    }

    async fn fill_sparse(&self, cases: Vec<(String, SparseVector)>) -> Result<(), StoreError> {
        if cases.is_empty() {
            return Ok(());
        }
        let points: Vec<PointVectors> = cases
            .into_iter()
            .map(|(id, v)| PointVectors {
                id: Some(point_uuid(&id).into()),
                vectors: Some(
                    HashMap::from([(SPARSE_VECTOR.to_string(), Vector::new_sparse(v.indices, v.values))]).into(),
                ),
            })
            .collect();
        // Only points that still have no sparse vector: a case replaced meanwhile came with its own.
        let unfilled = Filter::must_not([Condition::has_vector(SPARSE_VECTOR)]);
        self.client
            .update_vectors(UpdatePointVectorsBuilder::new(&self.collection, points).update_filter(unfilled).wait(true))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn optimize(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
