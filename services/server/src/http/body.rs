//! `JsonBody<T>`: the request body read by hand, so that each way it can be
//! wrong gets its own stable code (axum's `Json` answers in plain text).

use std::sync::Arc;
use std::time::Duration;

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
        read_json(req, state.limits.max_body_bytes, state.limits.body_timeout).await.map(JsonBody)
    }
}

/// The body as JSON of `T`, read under a size limit (bytes) and a deadline.
async fn read_json<T: DeserializeOwned>(req: Request, limit: usize, timeout: Duration) -> Result<T, ApiError> {
    let json = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|ct| {
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        mime == "application/json" || mime.ends_with("+json")
    });
    if json == Some(false) {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
    }
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
            tokio::spawn(drain(req.into_body(), limit.saturating_mul(DRAIN_FACTOR), timeout));
        }
        return Err(too_large());
    }
    let mut body = req.into_body();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    // One deadline for the whole body: a client sending a byte at a time
    // would otherwise hold the connection forever.
    let deadline = tokio::time::Instant::now() + timeout;
    let late = || {
        ApiError::new(ErrorCode::RequestTimeout, format!("the body did not arrive within {} s", timeout.as_secs_f64()))
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
    serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::new(ErrorCode::InvalidRequest, e.to_string()),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::new(ErrorCode::InvalidJson, format!("the body is not valid JSON: {e}"))
            }
        }
    })
}

/// Reads and drops up to `most` bytes of a refused body, for at most `within`.
async fn drain(mut body: axum::body::Body, most: usize, within: Duration) {
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use proptest::prelude::*;
    use triage_proto::TriageRequest;

    use super::*;

    const LIMIT: usize = 256;

    /// What the reader answers for a body sent in `parts`, with a content type and a declared length.
    fn read(
        parts: Vec<Vec<u8>>,
        content_type: Option<&str>,
        declared: Option<usize>,
    ) -> Result<TriageRequest, ErrorCode> {
        let mut b = Request::builder().method("POST").uri("/v1/triage");
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        if let Some(n) = declared {
            b = b.header(header::CONTENT_LENGTH, n);
        }
        let frames =
            parts.into_iter().map(|p| Ok::<_, std::io::Error>(hyper::body::Frame::data(axum::body::Bytes::from(p))));
        let body = Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(frames)));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(read_json::<TriageRequest>(b.body(body).unwrap(), LIMIT, Duration::from_secs(5)))
            .map_err(|e| e.code)
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            (any::<String>(), any::<bool>())
                .prop_map(|(t, s)| serde_json::to_vec(&serde_json::json!({"text": t, "store": s})).unwrap()),
            any::<String>().prop_map(|t| format!("{{\"text\": {t:?}, \"x\": 1}}").into_bytes()),
        ]
    }

    proptest! {
        #[test]
        fn every_body_gets_its_code(bytes in body(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
                                    ct in prop_oneof![Just(None), Just(Some("application/json")), Just(Some("application/x+json; charset=utf-8")), Just(Some("text/plain"))],
                                    declare in any::<bool>()) {
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut parts = Vec::new();
            let mut from = 0;
            for a in at.into_iter().chain([bytes.len()]) {
                parts.push(bytes[from..a].to_vec());
                from = a;
            }
            let got = read(parts, ct, declare.then_some(bytes.len()));
            let want = if ct == Some("text/plain") {
                Err(ErrorCode::UnsupportedMediaType)
            } else if bytes.len() > LIMIT {
                Err(ErrorCode::PayloadTooLarge)
            } else {
                match std::str::from_utf8(&bytes) {
                    Err(_) => Err(ErrorCode::InvalidUtf8),
                    Ok(t) => match serde_json::from_str::<TriageRequest>(t) {
                        Ok(r) => Ok(r.text),
                        Err(e) if e.is_data() => Err(ErrorCode::InvalidRequest),
                        Err(_) => Err(ErrorCode::InvalidJson),
                    },
                }
            };
            prop_assert_eq!(got.map(|r| r.text), want);
        }
    }
}
