//! Health, readiness, metrics and the API description.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use triage_proto::{ErrorBody, ErrorCode, Health, Ready};
use triage_queue::Health as WorkerHealth;
use utoipa::OpenApi;

use super::error::{ApiError, ApiResult};
use super::AppState;

/// Alive (no key needed).
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// Ready: the inference worker running and the case store answering (no
/// key needed). Not ready is 503 `not_ready`, saying which.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Ready), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> ApiResult<Json<Ready>> {
    if let WorkerHealth::Stopped { reason } = state.service.worker_health() {
        return Err(ApiError::new(ErrorCode::NotReady, format!("the inference worker has stopped: {reason}")));
    }
    if let Err(e) = state.service.store().count().await {
        tracing::warn!(error = %e, "readiness: the case store is not answering");
        return Err(ApiError::new(ErrorCode::NotReady, "the case store is not answering"));
    }
    Ok(Json(Ready {
        ready: true,
        model_version: state.service.model_version().to_string(),
        store: state.service.store().kind().to_string(),
    }))
}

/// Prometheus text format. The queue depth and worker gauges are read here,
/// at scrape time, rather than kept current on every request.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain")), security(("bearer" = [])))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    metrics::gauge!("triage_queue_depth").set(state.service.queue().depth() as f64);
    let up = matches!(state.service.worker_health(), WorkerHealth::Running);
    metrics::gauge!("triage_inference_worker_up").set(if up { 1.0 } else { 0.0 });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, content_type = "application/json")), security(("bearer" = [])))]
pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "triage", description = "Risk triage for Chinese petition and dispute text. Every error is {\"error\": {\"code\", \"message\"}} with a stable code."),
    paths(
        super::triage::triage_one, super::triage::triage_batch,
        super::cases::put_case, super::cases::get_case, super::cases::delete_case, super::cases::search,
        super::evals::create, super::evals::get, super::evals::list, super::console::whoami,
        healthz, readyz, metrics, openapi
    ),
    components(schemas(triage_proto::ErrorCode)),
    modifiers(&Bearer),
    tags((name = "triage", description = "Judge texts"), (name = "cases", description = "Store and search past cases"), (name = "evals", description = "Evaluate the model on labelled sets (operator)"), (name = "ops", description = "Health, readiness, metrics"))
)]
pub struct ApiDoc;
