//! `/v1/cases`: index or replace, read, delete, and similar-case search.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use std::collections::{BTreeSet, HashMap};

use triage_cases::{
    expand, terms, CaseFilter, CaseQuery, CaseRecord, Hit, Ranking, Refine, SparseVector, DEFAULT_RANKING, HYBRID,
};
use triage_proto::time::Timestamp;
use triage_proto::{
    Case, CaseRequest, DeleteResponse, ErrorBody, ErrorCode, SearchHit, SearchQuery, SearchRequest, SearchResponse,
    Shared, SharedTerm, MAX_TOP_K,
};

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::service::{check_case_id, check_text, parse_labels, parse_level, parse_time};
use super::AppState;

const DEFAULT_TOP_K: usize = 10;
/// Shared words shown per hit.
const MAX_SHARED_TERMS: usize = 10;

fn wire(c: CaseRecord) -> Case {
    let risk_level = c.risk();
    Case {
        case_id: c.case_id,
        text: c.text,
        labels: c.labels,
        level: c.level,
        base_level: c.base_level,
        risk_level,
        escalations: c.escalations,
        district: c.district,
        reporter_hash: c.reporter_hash,
        received_at: c.received_at.and_then(Timestamp::from_unix).map(|t| t.to_string()),
        model_version: c.model_version,
        indexed_at: Timestamp::from_unix(c.indexed_at).map(|t| t.to_string()).unwrap_or_default(),
    }
}

/// The case id from the path; one that does not decode (`%ff`) is answered like any other bad request.
fn path_id(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    p.map(|Path(id)| id)
        .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "the case id in the path is not percent-encoded UTF-8"))
}

fn unknown(id: &str) -> ApiError {
    ApiError::new(ErrorCode::UnknownCase, format!("no case with id {id:?}"))
}

/// Index a case, or replace the one with the same `case_id`. Labels and level
/// default to the model's (after escalation); people's decisions win when sent.
#[utoipa::path(post, path = "/v1/cases", tag = "cases", request_body = CaseRequest,
    responses((status = 200, body = Case), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn put_case(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<CaseRequest>,
) -> ApiResult<Json<Case>> {
    check_case_id(&req.case_id, None)?;
    check_text(&req.text, None)?;
    let labels = req.labels.as_deref().map(parse_labels).transpose()?;
    let level = req.level.as_deref().map(parse_level).transpose()?;
    let ctx = state.service.context(req.context.as_ref(), None)?;
    let j = state.service.judge(vec![req.text.clone()]).await?.remove(0);
    let a = state.service.assess(&j, Some(&req.case_id), &ctx).await?;
    let filing = a.filing(labels, level);
    let rec = state.service.record(&req.case_id, &req.text, &j, filing, &ctx);
    state.service.store().upsert(vec![rec.clone()]).await?;
    Ok(Json(wire(CaseRecord { vector: Vec::new(), ..rec })))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}", tag = "cases", params(("case_id" = String, Path)),
    responses((status = 200, body = Case), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_case(
    State(state): State<Arc<AppState>>,
    case_id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Case>> {
    let case_id = path_id(case_id)?;
    let c = state.service.store().get(&case_id, false).await?.ok_or_else(|| unknown(&case_id))?;
    Ok(Json(wire(c)))
}

#[utoipa::path(delete, path = "/v1/cases/{case_id}", tag = "cases", params(("case_id" = String, Path)),
    responses((status = 200, body = DeleteResponse), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_case(
    State(state): State<Arc<AppState>>,
    case_id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<DeleteResponse>> {
    let case_id = path_id(case_id)?;
    if !state.service.store().delete(&case_id).await? {
        return Err(unknown(&case_id));
    }
    Ok(Json(DeleteResponse { case_id, deleted: true }))
}

/// Similar past cases to a text or to a stored case, with filters; each hit
/// says what it shares with the query.
#[utoipa::path(post, path = "/v1/cases/search", tag = "cases", request_body = SearchRequest,
    responses((status = 200, body = SearchResponse), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn search(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<SearchRequest>,
) -> ApiResult<Json<SearchResponse>> {
    let top_k = req.top_k.unwrap_or(DEFAULT_TOP_K);
    if top_k == 0 || top_k > MAX_TOP_K {
        return Err(ApiError::new(ErrorCode::InvalidRequest, format!("top_k must be 1 to {MAX_TOP_K}")));
    }
    let f = req.filters.unwrap_or_default();
    let mut filter = CaseFilter {
        district: f.district.filter(|d| !d.trim().is_empty()),
        labels: parse_labels(f.labels.as_deref().unwrap_or_default())?,
        min_level: f.min_level.as_deref().map(parse_level).transpose()?,
        received_from: parse_time("filters.received_from", &f.received_from, None)?,
        received_to: parse_time("filters.received_to", &f.received_to, None)?,
        reporter_hash: f.reporter.as_deref().map(|r| state.service.hash_reporter(r)),
        exclude_case_id: None,
        within: None,
    };
    let ranking = match req.ranking.as_deref() {
        None | Some("hybrid") => DEFAULT_RANKING,
        Some("dense") => Ranking::Dense,
        Some("sparse") => Ranking::Sparse,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("ranking must be hybrid, dense or sparse, not {other:?}"),
            ))
        }
    };
    let (vector, words, query) = match (req.text, req.case_id) {
        (Some(text), None) => {
            check_text(&text, None)?;
            let words = terms::query_terms(&text);
            let j = state.service.judge(vec![text]).await?.remove(0);
            let labels = j.flagged_labels();
            (j.embedding, words, SearchQuery { labels, level: j.level, district: None })
        }
        (None, Some(id)) => {
            let c = state.service.store().get(&id, true).await?.ok_or_else(|| unknown(&id))?;
            filter.exclude_case_id = Some(id);
            // A case stored without its text is searched by its stored term weights, unnamed.
            let words = match c.text.as_deref() {
                Some(t) => terms::query_terms(t),
                None => c
                    .sparse
                    .indices
                    .iter()
                    .zip(&c.sparse.values)
                    .map(|(&id, &weight)| terms::Term { term: String::new(), id, weight })
                    .collect(),
            };
            (c.vector, words, SearchQuery { labels: c.labels, level: c.level, district: c.district })
        }
        _ => return Err(ApiError::new(ErrorCode::InvalidRequest, "send exactly one of text and case_id")),
    };
    let sparse = SparseVector::from_pairs(words.iter().map(|t| (t.id, t.weight)));
    let store = state.service.store();
    // The refinements are hybrid search's; "dense" and "sparse" stay the lists alone.
    let (profile, refine) = if ranking == DEFAULT_RANKING {
        (state.service.store_profile().get(store).await?, HYBRID)
    } else {
        (Default::default(), Refine::NONE)
    };
    let q = CaseQuery::new(vector.clone(), sparse, ranking);
    let hits = expand::query(store, &profile, &q, &filter, top_k, refine).await?;
    let names: HashMap<u32, &terms::Term> = words.iter().filter(|t| !t.term.is_empty()).map(|t| (t.id, t)).collect();
    let shared_ids: BTreeSet<u32> =
        hits.iter().flat_map(|h| h.case.sparse.indices.iter().copied().filter(|i| names.contains_key(i))).collect();
    let idf = triage_cases::idf(store, &vector, &shared_ids.into_iter().collect::<Vec<_>>()).await?;
    let hits = hits
        .into_iter()
        .map(|h| {
            let shared = Shared {
                labels: h.case.labels.iter().copied().filter(|l| query.labels.contains(l)).collect(),
                level: h.case.level == query.level,
                district: query.district.is_some() && h.case.district == query.district,
                terms: shared_terms(&h, &names, &idf),
            };
            let Hit { case, score, rank_score } = h;
            SearchHit { case: wire(case), score, shared, rank_score }
        })
        .collect();
    Ok(Json(SearchResponse { query, hits }))
}

/// The query's words found in a hit, by what each adds to its word score:
/// the query's weight × the hit's stored weight × the store's IDF.
fn shared_terms(h: &Hit, names: &HashMap<u32, &terms::Term>, idf: &HashMap<u32, f32>) -> Vec<SharedTerm> {
    let sparse = &h.case.sparse;
    let mut shared: Vec<SharedTerm> = sparse
        .indices
        .iter()
        .zip(&sparse.values)
        .filter_map(|(id, w)| {
            let q = names.get(id)?;
            Some(SharedTerm { term: q.term.clone(), weight: q.weight * w * idf.get(id).copied().unwrap_or(0.0) })
        })
        .collect();
    shared.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.term.cmp(&b.term)));
    shared.truncate(MAX_SHARED_TERMS);
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str) -> Hit {
        let case = CaseRecord::bare("h", Vec::new(), terms::document(text));
        Hit { case, score: 0.9, rank_score: 0.03 }
    }

    #[test]
    fn shared_terms_are_the_words_in_both_weighted_by_idf() {
        let words = terms::query_terms("锦绣花园电梯停运，物业不管");
        let names: HashMap<u32, &terms::Term> = words.iter().map(|t| (t.id, t)).collect();
        let h = hit("锦绣花园的电梯又停运了，业主很着急。");
        let (garden, lift) = (terms::term_id("锦绣"), terms::term_id("电梯"));
        // 锦绣 is rare in the store, 电梯 common: the rarer word leads.
        let idf = HashMap::from([(garden, 3.0), (lift, 0.5)]);
        let shared = shared_terms(&h, &names, &idf);
        let got: Vec<&str> = shared.iter().map(|t| t.term.as_str()).collect();
        assert!(got.contains(&"锦绣") && got.contains(&"电梯") && got.contains(&"停运"), "{got:?}");
        assert!(!got.contains(&"物业") && !got.contains(&"业主"), "only words in both: {got:?}");
        assert_eq!(got[0], "锦绣", "{shared:?}");
        let w = |t: &str| shared.iter().find(|s| s.term == t).unwrap().weight;
        let qw = words.iter().find(|t| t.id == garden).unwrap().weight;
        assert!((w("锦绣") - qw * 3.0 * h.case.sparse.get(garden).unwrap()).abs() < 1e-6);
        // A word the store's IDF does not know adds nothing.
        assert_eq!(w("停运"), 0.0);
        assert!(shared.windows(2).all(|p| p[0].weight >= p[1].weight));
    }
}
