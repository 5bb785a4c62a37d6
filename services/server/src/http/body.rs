//! `JsonBody<T>`: the request body read by hand, so that each way it can be
//! wrong gets its own stable code (axum's `Json` answers in plain text).

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::header;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use triage_proto::ErrorCode;

use super::error::ApiError;
use super::AppState;

pub struct JsonBody<T>(pub T);

/// How much of an oversized body is read (and dropped) before answering 413:
/// a client still sending when the server answers and closes would see a
/// connection reset instead of the error.
const DRAIN_FACTOR: usize = 4;

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let json = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|ct| {
            let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        });
        if json == Some(false) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
        }
        let limit = state.max_body_bytes;
        let too_large = || {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than the service accepts ({limit} bytes)"),
            )
        };
        let declared =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            // Refused on the header alone. A client that waits for `100 Continue`
            // never sends the body; one that is already sending it has it read
            // and dropped behind the answer, so it sees the 413 and not a reset.
            let expects = req.headers().contains_key(header::EXPECT);
            if !expects {
                tokio::spawn(drain(req.into_body(), limit.saturating_mul(DRAIN_FACTOR), state.body_timeout));
            }
            return Err(too_large());
        }
        let mut body = req.into_body();
        let mut bytes = Vec::new();
        let mut seen = 0usize;
        // One deadline for the whole body: a client sending a byte at a time
        // would otherwise hold the connection forever.
        let deadline = tokio::time::Instant::now() + state.body_timeout;
        let late = || {
            ApiError::new(
                ErrorCode::RequestTimeout,
                format!("the body did not arrive within {} s", state.body_timeout.as_secs_f64()),
            )
        };
        while let Some(frame) = tokio::time::timeout_at(deadline, body.frame()).await.map_err(|_| late())? {
            let frame =
                frame.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("could not read the body: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            seen += data.len();
            if seen <= limit {
                bytes.extend_from_slice(&data);
            } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
                break;
            }
        }
        if seen > limit {
            return Err(too_large());
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            ApiError::new(ErrorCode::InvalidUtf8, format!("the body is not valid UTF-8 (byte {})", e.valid_up_to()))
        })?;
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

/// Reads and drops up to `most` bytes of a refused body, for at most `within`.
async fn drain(mut body: axum::body::Body, most: usize, within: std::time::Duration) {
    let mut seen = 0usize;
    let _ = tokio::time::timeout(within, async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > most {
                break;
            }
        }
    })
    .await;
}
