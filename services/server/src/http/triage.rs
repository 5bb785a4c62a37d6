//! `POST /v1/triage` and `POST /v1/triage/batch`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use triage_proto::{BatchRequest, BatchResponse, ErrorBody, ErrorCode, TriageRequest, TriageResponse, MAX_BATCH};

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::service::{check_case_id, check_text, response, where_, Context};
use super::AppState;

/// Checks one item before any work is queued.
fn check(req: &TriageRequest, state: &AppState, index: Option<usize>) -> ApiResult<Context> {
    check_text(&req.text, index)?;
    if let Some(id) = &req.case_id {
        check_case_id(id, index)?;
    }
    if req.store && req.case_id.is_none() {
        return Err(ApiError::new(ErrorCode::MissingCaseId, format!("{}store: true needs a case_id", where_(index))));
    }
    state.service.context(req.context.as_ref(), index)
}

async fn finish(
    state: &AppState,
    req: TriageRequest,
    ctx: Context,
    j: triage_risk::Judgement,
) -> ApiResult<TriageResponse> {
    let a = state.service.assess(&j, req.case_id.as_deref(), &ctx).await?;
    let stored = match (&req.case_id, req.store) {
        (Some(id), true) => {
            let rec = state.service.record(id, &req.text, &j, a.filing(None, None), &ctx);
            state.service.store().upsert(vec![rec]).await?;
            true
        }
        _ => false,
    };
    Ok(response(j, a, req.case_id, stored))
}

/// Judge one text: labels with scores, level after escalation, evidence, similar past cases.
#[utoipa::path(post, path = "/v1/triage", tag = "triage", request_body = TriageRequest,
    responses((status = 200, body = TriageResponse), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody, description = "overloaded (with Retry-After) or not ready")),
    security(("bearer" = [])))]
pub async fn triage_one(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<TriageRequest>,
) -> ApiResult<Json<TriageResponse>> {
    let ctx = check(&req, &state, None)?;
    let j = state.service.judge(vec![req.text.clone()]).await?.remove(0);
    Ok(Json(finish(&state, req, ctx, j).await?))
}

/// Judge up to 64 texts costing at most `--max-request-tokens` together; answers in the order of the items. Any bad item fails the whole call, naming the item.
#[utoipa::path(post, path = "/v1/triage/batch", tag = "triage", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn triage_batch(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<BatchRequest>,
) -> ApiResult<Json<BatchResponse>> {
    if req.items.is_empty() {
        return Err(ApiError::new(ErrorCode::EmptyBatch, "items is empty"));
    }
    if req.items.len() > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!("{} items; the limit is {MAX_BATCH}", req.items.len()),
        ));
    }
    let ctxs = req.items.iter().enumerate().map(|(i, r)| check(r, &state, Some(i))).collect::<ApiResult<Vec<_>>>()?;
    let texts: Vec<String> = req.items.iter().map(|r| r.text.clone()).collect();
    let cost = state.service.cost(&texts);
    if texts.len() > 1 && cost > state.limits.max_request_tokens {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "the items cost {cost} encoder tokens; the limit is {}: send fewer or shorter texts",
                state.limits.max_request_tokens
            ),
        ));
    }
    let judgements = state.service.judge(texts).await?;
    let mut items = Vec::with_capacity(judgements.len());
    // In order, each stored before the next is assessed: a repeat petition
    // inside one batch is seen as one.
    for ((r, ctx), j) in req.items.into_iter().zip(ctxs).zip(judgements) {
        items.push(finish(&state, r, ctx, j).await?);
    }
    Ok(Json(BatchResponse { items }))
}
