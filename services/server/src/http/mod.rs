//! The HTTP service: state, routes, keys and roles, metrics, shutdown.

mod auth;
mod body;
mod cases;
mod conn;
mod console;
mod error;
mod evals;
mod ops;
#[cfg(test)]
mod props;
mod service;
mod triage;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use triage_proto::ErrorCode;

pub use auth::{new_key, Keys, KeysError, Permission, Role};
pub use conn::ConnLimits;
pub use evals::{Evals, EvalsError};
pub use service::{Service, ServiceConfig};

use error::ApiError;

/// Request limits; see the `serve` flags.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most encoder tokens one batch request may cost (a single text is bounded by its length).
    pub max_request_tokens: usize,
    /// From the end of the head to the last byte of the body.
    pub body_timeout: Duration,
    /// From the end of the head to the answer, queue wait and inference included.
    pub request_timeout: Duration,
}

/// What the routes share: the service, and what HTTP adds to it (keys,
/// limits, the metrics to render, the evaluation jobs).
pub struct AppState {
    service: Service,
    keys: Keys,
    limits: Limits,
    metrics: PrometheusHandle,
    evals: Evals,
}

impl AppState {
    pub fn new(service: Service, keys: Keys, limits: Limits, metrics: PrometheusHandle, evals: Evals) -> Self {
        Self { service, keys, limits, metrics, evals }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }
}

/// Every route but the health checks needs a key whose role allows `need`.
async fn guard(State((state, need)): State<(Arc<AppState>, Permission)>, req: Request, next: Next) -> Response {
    match state.keys.check(req.headers(), need) {
        Ok(caller) => {
            tracing::debug!(caller = %caller.name, role = caller.role.as_str(), "authorised");
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The method as a metric label: any other method is a client's free text
/// (hyper accepts any token), and each new label value is a new series kept for good.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Request count and latency by route template and status, and one log line
/// per request. Only the route template is logged: never a body, a query or a case id.
async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    metrics::counter!("triage_http_requests_total", "route" => route.clone(), "method" => method, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("triage_http_request_duration_seconds", "route" => route.clone()).record(secs);
    tracing::info!(method, %route, status, ms = (secs * 1000.0).round() as u64, "request");
    resp
}

/// Answers that axum or tower-http write themselves (an extractor's
/// rejection in plain text, the request timeout's empty 408) get the
/// documented JSON error body. Their own text is dropped: it can quote the request.
async fn one_error_shape(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "method not allowed on this route"),
        StatusCode::REQUEST_TIMEOUT => (ErrorCode::RequestTimeout, "the request took longer than the service allows"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::UnsupportedMediaType, "send the body as application/json"),
        s if s.is_server_error() => (ErrorCode::Internal, "internal error; see the service log"),
        _ => (ErrorCode::InvalidRequest, "the request could not be read"),
    };
    tracing::debug!(status = status.as_u16(), "a plain-text answer replaced by the JSON error body");
    ApiError::new(code, message).into_response()
}

pub fn router(state: Arc<AppState>) -> Router {
    let request_timeout = state.limits.request_timeout;
    let with = |p: Permission| middleware::from_fn_with_state((state.clone(), p), guard);
    let api = Router::new()
        .route("/v1/triage", post(triage::triage_one).route_layer(with(Permission::Triage)))
        .route("/v1/triage/batch", post(triage::triage_batch).route_layer(with(Permission::Triage)))
        .route("/v1/cases", post(cases::put_case).route_layer(with(Permission::Index)))
        .route("/v1/cases/search", post(cases::search).route_layer(with(Permission::Search)))
        .route(
            "/v1/cases/{case_id}",
            get(cases::get_case)
                .route_layer(with(Permission::Read))
                .merge(axum::routing::delete(cases::delete_case).route_layer(with(Permission::Index))),
        )
        .route("/v1/evals", post(evals::create).get(evals::list).route_layer(with(Permission::Evaluate)))
        .route("/v1/evals/{id}", get(evals::get).route_layer(with(Permission::Evaluate)))
        .route("/v1/whoami", get(console::whoami).route_layer(with(Permission::Describe)))
        .route("/metrics", get(ops::metrics).route_layer(with(Permission::Metrics)))
        .route("/openapi.json", get(ops::openapi).route_layer(with(Permission::Describe)));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .merge(console::routes())
        .merge(api)
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this route")
        })
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
        .layer(middleware::from_fn(observe))
        .layer(middleware::from_fn(one_error_shape))
        // `JsonBody` enforces `max_body_bytes` itself, draining what it refuses.
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .with_state(state)
}

/// Serves until SIGINT or SIGTERM, then stops accepting and finishes the
/// requests in flight. SIGHUP reloads the escalation policy.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>, limits: ConnLimits) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let s = state.clone();
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                s.service.reload_policy();
            }
        });
    }
    let app = router(state);
    conn::serve(listener, app, limits, shutdown_signal()).await?;
    tracing::info!("stopped accepting; requests in flight finished");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
