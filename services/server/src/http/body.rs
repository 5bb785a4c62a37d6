//! `JsonBody<T>`: the request body read by hand, so that each way it can be
//! wrong gets its own stable code (axum's `Json` answers in plain text).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use triage_proto::ErrorCode;

use super::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        if json == Some(false) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the request body is larger than the service accepts")
            } else {
                ApiError::new(ErrorCode::InvalidRequest, format!("could not read the body: {}", e.body_text()))
            }
        })?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| ApiError::new(ErrorCode::InvalidUtf8, format!("the body is not valid UTF-8 (byte {})", e.valid_up_to())))?;
        serde_json::from_str(text).map(JsonBody).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::new(ErrorCode::InvalidRequest, e.to_string()),
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::new(ErrorCode::InvalidJson, format!("the body is not valid JSON: {e}"))
                }
            }
        })
    }
}
