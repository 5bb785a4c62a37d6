//! The web console at `/`: three static files compiled into the binary (no
//! CDN, no build step, works offline), and `GET /v1/whoami`, which tells the
//! page what the key's role may do. The page talks to the same `/v1` routes
//! with the key from `sessionStorage`; the routes, not the page, enforce the roles.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use triage_proto::{ErrorBody, WhoAmI};

use super::auth::Permission;
use super::error::ApiResult;
use super::AppState;

const INDEX: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const APP_CSS: &str = include_str!("../../console/app.css");

/// Scripts and styles from this origin only, none inline; no frames, no
/// plugins, no form posts elsewhere. An injected `<script>` or `onerror=` does not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Each permission by the name the page reads.
const NAMED: [(Permission, &str); 6] = [
    (Permission::Triage, "triage"),
    (Permission::Index, "index"),
    (Permission::Search, "search"),
    (Permission::Read, "read"),
    (Permission::Metrics, "metrics"),
    (Permission::Evaluate, "evaluate"),
];

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The files change with the binary; a stale script against a newer API would mislead.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { page("text/html; charset=utf-8", INDEX) }))
        .route("/console/app.js", get(|| async { page("text/javascript; charset=utf-8", APP_JS) }))
        .route("/console/app.css", get(|| async { page("text/css; charset=utf-8", APP_CSS) }))
}

/// The key's name, role and what the role may do (any valid key).
#[utoipa::path(get, path = "/v1/whoami", tag = "ops",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn whoami(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<WhoAmI>> {
    let caller = state.keys.check(&headers, Permission::Describe)?;
    Ok(Json(WhoAmI {
        name: caller.name,
        role: caller.role.as_str().to_string(),
        permissions: NAMED.iter().filter(|(p, _)| caller.role.allows(*p)).map(|(_, n)| n.to_string()).collect(),
    }))
}
