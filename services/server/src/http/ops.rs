//! Health, readiness, metrics and the API description.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use triage_proto::{Health, Ready};
use utoipa::OpenApi;

use super::AppState;

/// Alive (no key needed).
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// Ready: model loaded and case store answering (no key needed).
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let store_ok = state.store.count().await.is_ok();
    let body = Ready {
        ready: store_ok,
        model_version: state.triage.model().version.clone(),
        store: state.store.kind().to_string(),
    };
    let status = if store_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

/// Prometheus text format. The queue depth gauge is read here, at scrape
/// time, rather than kept current on every request.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain")), security(("bearer" = [])))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    metrics::gauge!("triage_queue_depth").set(state.queue.depth() as f64);
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
