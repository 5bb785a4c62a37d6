//! `ApiError`: every failure answered as `{"error": {"code", "message"}}`
//! with the code's HTTP status. Messages never quote the request's text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use triage_proto::{ErrorBody, ErrorCode};

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds, for `overloaded` and `not_ready`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None }
    }

    pub fn overloaded(retry_after: u64) -> Self {
        Self {
            code: ErrorCode::Overloaded,
            message: "the inference queue is full; retry later".into(),
            retry_after: Some(retry_after),
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        // The detail goes to the log (it holds no request text); the client gets the code.
        tracing::error!(error = %what, "internal error");
        Self::new(ErrorCode::Internal, "internal error; see the service log")
    }
}

impl From<triage_cases::StoreError> for ApiError {
    fn from(e: triage_cases::StoreError) -> Self {
        tracing::error!(error = %e, "case store error");
        Self::new(ErrorCode::StoreError, "the case store failed; see the service log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(ErrorBody::new(self.code, self.message))).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
