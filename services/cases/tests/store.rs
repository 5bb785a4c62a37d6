//! The same contract for both backends: the embedded store always, a Qdrant
//! server whenever `QDRANT_URL` is set (e.g. `QDRANT_URL=http://localhost:6334`).

use triage_cases::{
    add_sparse_vectors, expand, normalized, terms, CaseFilter, CaseQuery, CaseRecord, CaseStore, EdgeStore, Feedback,
    Profile, QdrantStore, Ranking, Redacted, Refine, SparseVector, StoreError, DEFAULT_RANKING, HYBRID,
};
use triage_proto::{Label, RiskLevel};

const DIM: usize = 8;

fn unit(i: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[i] = 1.0;
    v[(i + 1) % DIM] = tilt;
    v
}

fn case(
    id: &str,
    v: Vec<f32>,
    labels: &[Label],
    level: RiskLevel,
    district: &str,
    reporter: &str,
    received: i64,
) -> CaseRecord {
    CaseRecord {
        case_id: id.into(),
        text: Some(format!("text of {id}")),
        labels: labels.to_vec(),
        level,
        base_level: Some(level),
        risk_level: Some(level),
        escalations: Vec::new(),
        district: Some(district.into()),
        reporter_hash: Some(reporter.into()),
        received_at: Some(received),
        model_version: Some("test".into()),
        indexed_at: 1_700_000_000,
        vector: v,
        sparse: SparseVector::default(),
    }
}

/// A case with a real text and its term weights.
fn texted(id: &str, v: Vec<f32>, text: &str, labels: &[Label], district: &str, received: i64) -> CaseRecord {
    let mut c = case(id, v, labels, RiskLevel::Yellow, district, "r5", received);
    c.text = Some(text.into());
    c.sparse = terms::document(text);
    c
}

fn ids(hits: &[triage_cases::Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.case.case_id.as_str()).collect()
}

async fn contract(store: &dyn CaseStore) {
    let mut a = case("a", unit(0, 0.0), &[Label::Violence, Label::Retaliation], RiskLevel::Red, "东城", "r1", 1_000);
    // Raised from orange by a risk rule, then capped: the escalation history travels with the case.
    a.base_level = Some(RiskLevel::Orange);
    a.escalations = vec!["collective_livelihood".into()];
    let b = case("b", unit(0, 0.5), &[Label::Livelihood], RiskLevel::Yellow, "西城", "r1", 2_000);
    let c = case("c", unit(3, 0.0), &[Label::Collective, Label::Livelihood], RiskLevel::Orange, "东城", "r2", 3_000);
    store.upsert(vec![a.clone(), b.clone(), c.clone()]).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(store.count_with_text().await.unwrap(), 3);
    // Replaced without its text, a case no longer counts as holding one.
    store.upsert(vec![CaseRecord { text: None, ..c.clone() }]).await.unwrap();
    assert_eq!(store.count_with_text().await.unwrap(), 2);
    store.upsert(vec![c.clone()]).await.unwrap();

    // Read back whole, vector included (cosine stores it normalised).
    let got = store.get("a", true).await.unwrap().expect("a is stored");
    assert_eq!(got.labels, a.labels);
    assert_eq!(got.level, RiskLevel::Red);
    assert_eq!((got.base_level, got.risk_level), (Some(RiskLevel::Orange), Some(RiskLevel::Red)));
    assert_eq!(got.escalations, ["collective_livelihood"]);
    assert_eq!(got.text.as_deref(), Some("text of a"));
    assert_eq!(got.received_at, Some(1_000));
    assert_eq!(got.vector.len(), DIM);
    assert!((got.vector[0] - 1.0).abs() < 1e-5);
    assert!(store.get("nope", false).await.unwrap().is_none());

    // Nearest first, scores are cosines.
    let all = CaseFilter::default();
    let hits = store.search(&unit(0, 0.1), &all, 3, None).await.unwrap();
    assert_eq!(ids(&hits), ["a", "b", "c"]);
    assert!(
        hits[0].score > 0.99 && hits[2].score.abs() < 0.01,
        "{:?}",
        hits.iter().map(|h| h.score).collect::<Vec<_>>()
    );
    let hits = store.search(&unit(0, 0.1), &all, 3, Some(0.5)).await.unwrap();
    assert_eq!(ids(&hits), ["a", "b"]);

    // Each filter holds.
    let cases = [
        (CaseFilter { district: Some("东城".into()), ..Default::default() }, vec!["a", "c"]),
        (CaseFilter { labels: vec![Label::Livelihood], ..Default::default() }, vec!["b", "c"]),
        (CaseFilter { labels: vec![Label::Collective, Label::Livelihood], ..Default::default() }, vec!["c"]),
        (CaseFilter { min_level: Some(RiskLevel::Orange), ..Default::default() }, vec!["a", "c"]),
        (CaseFilter { received_from: Some(1_500), received_to: Some(2_500), ..Default::default() }, vec!["b"]),
        (CaseFilter { reporter_hash: Some("r1".into()), ..Default::default() }, vec!["a", "b"]),
        (CaseFilter { exclude_case_id: Some("a".into()), ..Default::default() }, vec!["b", "c"]),
    ];
    for (filter, want) in cases {
        let hits = store.search(&unit(0, 0.1), &filter, 10, None).await.unwrap();
        assert_eq!(ids(&hits), want, "{filter:?}");
    }

    // Upsert by the same id replaces.
    let mut b2 = b.clone();
    b2.level = RiskLevel::Blue;
    b2.vector = unit(5, 0.0);
    store.upsert(vec![b2]).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(store.get("b", false).await.unwrap().unwrap().level, RiskLevel::Blue);
    assert_eq!(ids(&store.search(&unit(5, 0.0), &all, 1, None).await.unwrap()), ["b"]);

    // Delete says whether the case was there.
    assert!(store.delete("c").await.unwrap());
    assert!(!store.delete("c").await.unwrap());
    assert!(store.get("c", false).await.unwrap().is_none());
    assert_eq!(store.count().await.unwrap(), 2);

    // A vector of the wrong size is refused, not stored.
    let bad = case("d", vec![1.0; DIM + 1], &[], RiskLevel::Blue, "东城", "r3", 0);
    assert!(matches!(store.upsert(vec![bad]).await, Err(StoreError::Dimension { .. })));
    assert!(matches!(store.search(&[1.0; 3], &all, 1, None).await, Err(StoreError::Dimension { .. })));
    assert_eq!(store.count().await.unwrap(), 2);

    hybrid(store).await;
}

/// Hybrid search: an exact-term match outranks a merely topical neighbour,
/// hits carry their term weights, and every filter holds on every ranking.
async fn hybrid(store: &dyn CaseStore) {
    // The query's dense vector sits nearest the topical case; only the exact case shares its rare terms.
    let topical =
        texted("h-topical", unit(6, 0.05), "小区物业服务差，垃圾没人清理。", &[Label::Livelihood], "北城", 10);
    let exact = texted("h-exact", unit(6, 0.6), "锦绣花园业主反映电梯停运三个月。", &[Label::Livelihood], "北城", 20);
    let other = texted("h-other", unit(2, 0.0), "工地夜间施工噪音扰民。", &[Label::Collective], "南城", 30);
    store.upsert(vec![topical.clone(), exact.clone(), other.clone()]).await.unwrap();
    let text = "锦绣花园电梯停运";
    let q = |ranking| CaseQuery::new(unit(6, 0.0), terms::query(text), ranking);
    let only_h = CaseFilter { received_from: Some(5), received_to: Some(100), ..Default::default() };

    let dense = store.query(&q(Ranking::Dense), &only_h, 3).await.unwrap();
    assert_eq!(ids(&dense)[0], "h-topical", "the dense vector alone prefers the topical case");
    let hyb = store.query(&q(DEFAULT_RANKING), &only_h, 3).await.unwrap();
    assert_eq!(ids(&hyb)[0], "h-exact", "hybrid puts the exact-term match first");
    let sparse = store.query(&q(Ranking::Sparse), &only_h, 3).await.unwrap();
    assert_eq!(ids(&sparse), ["h-exact"], "only the exact case shares a term");
    // The word score is Σ query weight × stored weight × IDF over the shared
    // words: what each hit's explanation lists, word by word.
    let query = terms::query(text);
    let shared: Vec<u32> = query.indices.iter().copied().filter(|i| exact.sparse.get(*i).is_some()).collect();
    let idf = triage_cases::idf(store, &unit(6, 0.0), &shared).await.unwrap();
    assert_eq!(idf.len(), shared.len(), "every shared word has an IDF");
    let explained: f32 = shared.iter().map(|i| query.get(*i).unwrap() * exact.sparse.get(*i).unwrap() * idf[i]).sum();
    assert!((sparse[0].rank_score - explained).abs() < 1e-3 * explained, "{} vs {explained}", sparse[0].rank_score);
    for rk in [DEFAULT_RANKING, Ranking::Dbsf, Ranking::Dense] {
        let hits = store.query(&q(rk), &only_h, 3).await.unwrap();
        let e = hits.iter().find(|h| h.case.case_id == "h-exact").unwrap();
        // Hits come back with both vectors: the cosine and the terms to explain them by.
        assert!((e.score - 1.0 / 0.6f32.hypot(1.0)).abs() < 1e-3, "{rk:?} cosine {}", e.score);
        assert_eq!(e.case.sparse, exact.sparse, "{rk:?}");
    }

    // Every filter holds under hybrid ranking.
    let filters = [
        (
            CaseFilter {
                district: Some("南城".into()),
                received_from: Some(5),
                received_to: Some(100),
                ..Default::default()
            },
            vec!["h-other"],
        ),
        (
            CaseFilter {
                labels: vec![Label::Livelihood],
                received_from: Some(5),
                received_to: Some(100),
                ..Default::default()
            },
            vec!["h-exact", "h-topical"],
        ),
        (CaseFilter { received_from: Some(15), received_to: Some(25), ..Default::default() }, vec!["h-exact"]),
        (
            CaseFilter {
                min_level: Some(RiskLevel::Orange),
                received_from: Some(5),
                received_to: Some(100),
                ..Default::default()
            },
            vec![],
        ),
        (
            CaseFilter {
                reporter_hash: Some("r5".into()),
                exclude_case_id: Some("h-exact".into()),
                ..Default::default()
            },
            vec!["h-topical", "h-other"],
        ),
    ];
    for (filter, want) in filters {
        for rk in [DEFAULT_RANKING, Ranking::Sparse, Ranking::Dbsf] {
            let mut got =
                ids(&store.query(&q(rk), &filter, 10).await.unwrap()).into_iter().map(String::from).collect::<Vec<_>>();
            let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            if rk == Ranking::Sparse {
                // The sparse list holds only cases sharing a term.
                want.retain(|w| w == "h-exact");
            }
            got.sort();
            want.sort();
            assert_eq!(got, want, "{rk:?} {filter:?}");
        }
    }
    for id in ["h-topical", "h-exact", "h-other"] {
        store.delete(id).await.unwrap();
    }
}

/// Centring, feedback, and what they rest on: the sample of vectors and the
/// restriction to given cases. Needs a store of its own (the mean is the
/// whole store's).
async fn refinements(store: &dyn CaseStore) {
    let mix = |parts: &[(usize, f32)]| {
        let mut v = vec![0.0; DIM];
        parts.iter().for_each(|&(i, w)| v[i] += w);
        normalized(v)
    };
    let words = |ids: &[u32]| SparseVector::from_pairs(ids.iter().map(|&i| (i, 1.0)));
    // Five typical cases near one direction, one atypical case off it.
    let mut cases: Vec<CaseRecord> = (0..5)
        .map(|k| {
            let mut c =
                case(&format!("t{k}"), mix(&[(0, 1.0), (4 + k % 4, 0.1)]), &[], RiskLevel::Blue, "东城", "r", 1);
            c.sparse = words(&[100 + k as u32]);
            c
        })
        .collect();
    let mut u = case("u", mix(&[(3, 1.0)]), &[], RiskLevel::Blue, "东城", "r", 1);
    u.sparse = words(&[200]);
    cases.push(u);
    // For the feedback: `a` matches the query in vector and word; `b` shares
    // only `a`'s other word and leans its way; `c` is nearer the query's
    // vector than `b` but like nothing else.
    for (id, v, w) in [
        ("a", mix(&[(1, 1.0), (2, 1.0)]), words(&[1, 2])),
        ("b", mix(&[(2, 1.0)]), words(&[2])),
        ("c", mix(&[(1, 0.3), (5, 1.0)]), words(&[300])),
    ] {
        let mut c = case(id, v, &[], RiskLevel::Blue, "西城", "r", 2);
        c.sparse = w;
        cases.push(c);
    }
    store.upsert(cases.clone()).await.unwrap();

    let sample = store.sample_vectors(100).await.unwrap();
    assert_eq!(sample.len(), cases.len(), "a sample larger than the store is the whole store");
    let limited = store.sample_vectors(3).await.unwrap();
    assert_eq!(limited.len(), 3);
    assert!(limited.iter().all(|v| v.len() == DIM));
    let profile = Profile::of(&sample);

    // Restricting to given cases holds under every ranking.
    let within = CaseFilter { within: Some(vec!["a".into(), "c".into()]), ..Default::default() };
    for rk in [Ranking::Dense, Ranking::Sparse, Ranking::Dbsf] {
        let q = CaseQuery::new(mix(&[(1, 1.0)]), words(&[1, 300]), rk);
        let mut got =
            ids(&store.query(&q, &within, 10).await.unwrap()).into_iter().map(String::from).collect::<Vec<_>>();
        got.sort();
        assert_eq!(got, ["a", "c"], "{rk:?}");
    }

    // Centring: the query leans towards the typical direction, so plain
    // cosine puts a typical case first; less the store's mean, the atypical
    // case it also leans to comes first. The score stays the cosine.
    let typical = CaseFilter { district: Some("东城".into()), ..Default::default() };
    let q = CaseQuery::new(mix(&[(0, 1.0), (3, 0.7)]), SparseVector::default(), Ranking::Dense);
    let plain = expand::query(store, &profile, &q, &typical, 6, Refine::NONE).await.unwrap();
    assert!(ids(&plain)[0].starts_with('t'), "{:?}", ids(&plain));
    let centred = Refine { centre: Some(1.0), ..Refine::NONE };
    let hits = expand::query(store, &profile, &q, &typical, 6, centred).await.unwrap();
    assert_eq!(ids(&hits)[0], "u", "{:?}", ids(&hits));
    assert!((hits[0].score - 0.7 / 0.7f32.hypot(1.0)).abs() < 1e-3, "{}", hits[0].score);
    let no_profile = expand::query(store, &Profile::default(), &q, &typical, 6, centred).await.unwrap();
    assert_eq!(ids(&no_profile), ids(&plain), "no mean, no centring");

    // Feedback: one round ranks `c` above `b` (nearer in vector, no shared
    // word); moved towards its best hit `a`, the second round ranks `b`,
    // `a`'s neighbour, above `c`.
    let fed = Refine { centre: None, feedback: Some(Feedback { candidates: 10, cases: 1, weight: 1.0, terms: 16 }) };
    let q = CaseQuery::new(mix(&[(1, 1.0)]), words(&[1]), Ranking::Dbsf);
    let at = |hits: &[triage_cases::Hit], id: &str| hits.iter().position(|h| h.case.case_id == id).unwrap();
    let one = expand::query(store, &profile, &q, &CaseFilter::default(), 10, Refine::NONE).await.unwrap();
    assert_eq!(ids(&one)[0], "a");
    assert!(at(&one, "c") < at(&one, "b"), "{:?}", ids(&one));
    let two = expand::query(store, &profile, &q, &CaseFilter::default(), 10, fed).await.unwrap();
    assert_eq!(ids(&two)[0], "a");
    assert!(at(&two, "b") < at(&two, "c"), "{:?}", ids(&two));
    assert!(two[at(&two, "b")].score.abs() < 1e-3, "b's score is its cosine with the query itself");
    // Both together, centred in both rounds, as hybrid search runs them.
    let both = Refine { centre: Some(0.5), ..fed };
    let hits = expand::query(store, &profile, &q, &CaseFilter::default(), 10, both).await.unwrap();
    assert_eq!(ids(&hits)[0], "a");
    assert!(at(&hits, "b") < at(&hits, "c"), "{:?}", ids(&hits));
    assert!((hits[0].score - 1.0 / 2f32.sqrt()).abs() < 1e-3, "{}", hits[0].score);
    let shipped = expand::query(store, &profile, &q, &CaseFilter::default(), 10, HYBRID).await.unwrap();
    assert_eq!(ids(&shipped)[0], "a", "{:?}", ids(&shipped));
    assert_eq!(shipped.len(), cases.len(), "every case is a candidate in a store this small");
    // Filters hold in both rounds.
    let west = CaseFilter { district: Some("西城".into()), exclude_case_id: Some("a".into()), ..Default::default() };
    let mut got = ids(&expand::query(store, &profile, &q, &west, 10, fed).await.unwrap())
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    got.sort();
    assert_eq!(got, ["b", "c"]);
}

#[tokio::test]
async fn embedded_store_refines_hybrid_search() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(dir.path(), DIM).unwrap();
    refinements(&store).await;
}

#[tokio::test]
async fn embedded_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(dir.path(), DIM).unwrap();
    contract(&store).await;
}

#[tokio::test]
async fn embedded_store_survives_reopening_and_locks_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EdgeStore::open(dir.path(), DIM).unwrap();
        store.upsert(vec![case("x", unit(2, 0.0), &[Label::SelfHarm], RiskLevel::Red, "南城", "r9", 5)]).await.unwrap();
        // A second opener is refused while the first holds the directory.
        assert!(matches!(EdgeStore::open(dir.path(), DIM), Err(StoreError::Locked { .. })));
    }
    let store = EdgeStore::open(dir.path(), DIM).unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
    let x = store.get("x", false).await.unwrap().unwrap();
    assert_eq!((x.level, x.labels.clone()), (RiskLevel::Red, vec![Label::SelfHarm]));
    let hits = store
        .search(&unit(2, 0.0), &CaseFilter { reporter_hash: Some("r9".into()), ..Default::default() }, 5, None)
        .await
        .unwrap();
    assert_eq!(ids(&hits), ["x"]);
    // Another dimension than the one the store was made with is refused.
    drop(store);
    assert!(matches!(EdgeStore::open(dir.path(), DIM * 2), Err(StoreError::Dimension { .. })));
}

/// A store written before sparse vectors were kept: opening it adds the
/// vector, the re-index fills it from the stored texts, and keeps every case.
#[tokio::test]
async fn reindex_adds_sparse_vectors_and_keeps_every_case() {
    use qdrant_edge::{
        Distance, EdgeConfigBuilder, EdgeShard, EdgeVectorParams, PointInsertOperations, PointOperations, PointStruct,
        UpdateOperation,
    };
    let dir = tempfile::tempdir().unwrap();
    let old = old_cases();
    {
        // The old layout: one unnamed dense vector, no sparse one.
        let config = EdgeConfigBuilder::new()
            .vector("", EdgeVectorParams::builder(DIM, Distance::Cosine).on_disk(true).build())
            .build();
        let shard = EdgeShard::new(dir.path(), config).unwrap();
        let points = old
            .iter()
            .map(|c| {
                let payload = serde_json::to_value(triage_cases::CasePayload::of(c)).unwrap();
                PointStruct::new(old_point_id(&c.case_id), c.vector.clone(), payload).into()
            })
            .collect();
        shard
            .update(UpdateOperation::PointOperation(PointOperations::UpsertPoints(PointInsertOperations::PointsList(
                points,
            ))))
            .unwrap();
        shard.flush();
    }
    reindex_keeps_every_case(&EdgeStore::open(dir.path(), DIM).unwrap(), &old).await;
}

/// Five cases of a store written before sparse vectors were kept; one kept
/// no text (`--store-text false`), so it stays dense-only.
fn old_cases() -> Vec<CaseRecord> {
    let texts = ["拆迁补偿款迟迟不发放", "物业费上涨业主不满", "工资拖欠半年", "", "学校门口交通拥堵"];
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut c = case(
                &format!("old-{i}"),
                unit(i % DIM, 0.2),
                &[Label::Livelihood],
                RiskLevel::Blue,
                "东城",
                "r",
                i as i64,
            );
            c.text = (!t.is_empty()).then(|| t.to_string());
            c
        })
        .collect()
}

/// The re-index on a store holding [`old_cases`]: every case kept as it was,
/// the sparse vector filled from each stored text, nothing left for a second
/// run, and the store then answers by its terms.
async fn reindex_keeps_every_case(store: &dyn CaseStore, old: &[CaseRecord]) {
    assert_eq!(store.count().await.unwrap(), 5);
    let mut seen = 0;
    let s = add_sparse_vectors(store, 2, |n| seen += n).await.unwrap();
    assert_eq!((s.cases, s.added, s.had, s.without_text, seen), (5, 4, 0, 1, 5), "{s:?}");
    assert_eq!(store.count().await.unwrap(), 5);
    for c in old {
        let got = store.get(&c.case_id, true).await.unwrap().expect("kept");
        assert_eq!((&got.text, &got.labels, got.level, got.received_at), (&c.text, &c.labels, c.level, c.received_at));
        assert_eq!(got.vector.len(), DIM);
        assert_eq!(got.sparse, c.text.as_deref().map(terms::document).unwrap_or_default(), "{}", c.case_id);
    }
    let again = add_sparse_vectors(store, 2, |_| {}).await.unwrap();
    assert_eq!((again.added, again.had, again.without_text), (0, 4, 1));
    let hits = store
        .query(&CaseQuery::new(unit(0, 0.0), terms::query("物业费"), Ranking::Sparse), &CaseFilter::default(), 3)
        .await
        .unwrap();
    assert_eq!(ids(&hits), ["old-1"]);
}

fn old_point_id(case_id: &str) -> qdrant_edge::PointId {
    let u = qdrant_edge::external::uuid::Uuid::parse_str(&triage_cases::point_uuid(case_id)).unwrap();
    qdrant_edge::PointId::Uuid(u)
}

#[tokio::test]
async fn redacting_rewrites_the_embedded_store_without_texts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases");
    assert_eq!(EdgeStore::redact(&path).unwrap(), Redacted { cases: 0, texts: 0 }, "no store, nothing to do");
    assert!(!path.exists());
    {
        let store = EdgeStore::open(&path, DIM).unwrap();
        let a = CaseRecord {
            sparse: terms::document("拆迁补偿款迟迟不发放"),
            ..case("a", unit(0, 0.0), &[Label::Violence], RiskLevel::Red, "东城", "r1", 1_000)
        };
        let b = CaseRecord { text: None, ..case("b", unit(1, 0.0), &[], RiskLevel::Blue, "西城", "r2", 2_000) };
        store.upsert(vec![a, b]).await.unwrap();
        // Refused while the store is open elsewhere.
        assert!(matches!(EdgeStore::redact(&path), Err(StoreError::Locked { .. })));
    }
    assert_eq!(EdgeStore::redact(&path).unwrap(), Redacted { cases: 2, texts: 1 });
    let store = EdgeStore::open(&path, DIM).unwrap();
    assert_eq!((store.count().await.unwrap(), store.count_with_text().await.unwrap()), (2, 0));
    let a = store.get("a", true).await.unwrap().unwrap();
    assert_eq!((a.text, a.level, a.received_at, a.vector.len()), (None, RiskLevel::Red, Some(1_000), DIM));
    // The term weights are not the text: they stay, so search by words still finds the case.
    assert_eq!(a.sparse, terms::document("拆迁补偿款迟迟不发放"));
    drop(store);
    // An interrupted run (the old store parked, the new one not yet moved in) is finished by the next.
    let parked = dir.path().join("cases.redact-old");
    std::fs::rename(&path, dir.path().join("cases.redact-new")).unwrap();
    std::fs::create_dir_all(&parked).unwrap();
    assert!(EdgeStore::open(&path, DIM).is_err(), "opening is refused while a redaction is unfinished");
    assert_eq!(EdgeStore::redact(&path).unwrap(), Redacted { cases: 2, texts: 0 });
    assert!(!parked.exists());
    assert_eq!(EdgeStore::open(&path, DIM).unwrap().count().await.unwrap(), 2);
}

/// The Qdrant server at `QDRANT_URL` (gRPC), with `QDRANT_API_KEY` if set;
/// `None` (and the test skipped) when unset.
fn qdrant_server() -> Option<(String, Option<String>)> {
    match std::env::var("QDRANT_URL") {
        Ok(url) => Some((url, std::env::var("QDRANT_API_KEY").ok())),
        Err(_) => {
            eprintln!("QDRANT_URL is not set: skipping the Qdrant server test");
            None
        }
    }
}

fn qdrant_client(url: &str, key: Option<String>) -> qdrant_client::Qdrant {
    let mut b = qdrant_client::Qdrant::from_url(url).skip_compatibility_check();
    if let Some(k) = key {
        b = b.api_key(k);
    }
    b.build().unwrap()
}

/// A collection name no earlier run used (a failed run leaves its collection
/// behind, named `triage_test_*`, for a look).
fn fresh_collection(kind: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("triage_test_{kind}_{}_{nanos}", std::process::id())
}

#[tokio::test]
async fn qdrant_server_keeps_the_contract() {
    let Some((url, key)) = qdrant_server() else { return };
    let collection = fresh_collection("contract");
    let store = QdrantStore::connect(&url, key.clone(), &collection, DIM).await.unwrap();
    contract(&store).await;

    // Redaction drops every text and keeps every case and its term weights.
    let kept = texted("r-1", unit(1, 0.0), "拆迁补偿款迟迟不发放", &[Label::Livelihood], "东城", 7);
    store.upsert(vec![kept.clone()]).await.unwrap();
    let before = store.count().await.unwrap();
    let r = QdrantStore::redact(&url, key.clone(), &collection).await.unwrap();
    assert_eq!(r.cases, before);
    assert!(r.texts >= 1, "{r:?}");
    assert_eq!((store.count().await.unwrap(), store.count_with_text().await.unwrap()), (before, 0));
    let got = store.get("r-1", true).await.unwrap().unwrap();
    assert_eq!((got.text, got.sparse), (None, kept.sparse));
    qdrant_client(&url, key).delete_collection(&collection).await.unwrap();
}

#[tokio::test]
async fn qdrant_server_refines_hybrid_search() {
    let Some((url, key)) = qdrant_server() else { return };
    let collection = fresh_collection("refine");
    let store = QdrantStore::connect(&url, key.clone(), &collection, DIM).await.unwrap();
    refinements(&store).await;
    qdrant_client(&url, key).delete_collection(&collection).await.unwrap();
}

/// A collection written before sparse vectors were kept: connecting adds the
/// vector, the re-index fills it from the stored texts, and every case stays.
#[tokio::test]
async fn qdrant_server_reindex_adds_sparse_vectors_and_keeps_every_case() {
    use qdrant_client::qdrant::{
        CreateCollectionBuilder, Distance, PointStruct, UpsertPointsBuilder, VectorParamsBuilder,
    };
    let Some((url, key)) = qdrant_server() else { return };
    let collection = fresh_collection("reindex");
    let client = qdrant_client(&url, key.clone());
    // The old layout: one unnamed dense vector, no sparse one.
    client
        .create_collection(
            CreateCollectionBuilder::new(&collection)
                .vectors_config(VectorParamsBuilder::new(DIM as u64, Distance::Cosine)),
        )
        .await
        .unwrap();
    let old = old_cases();
    let points: Vec<PointStruct> = old
        .iter()
        .map(|c| {
            let payload = serde_json::to_value(triage_cases::CasePayload::of(c)).unwrap();
            let payload = qdrant_client::Payload::try_from(payload).unwrap();
            PointStruct::new(triage_cases::point_uuid(&c.case_id), c.vector.clone(), payload)
        })
        .collect();
    client.upsert_points(UpsertPointsBuilder::new(&collection, points).wait(true)).await.unwrap();

    reindex_keeps_every_case(&QdrantStore::connect(&url, key, &collection, DIM).await.unwrap(), &old).await;
    client.delete_collection(&collection).await.unwrap();
}
