//! Errors on the wire: `{"error": {"code", "message"}}` with a stable code.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable error codes. Clients branch on these, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    EmptyText,
    TextTooLong,
    EmptyBatch,
    BatchTooLarge,
    InvalidJson,
    InvalidUtf8,
    InvalidRequest,
    UnsupportedMediaType,
    PayloadTooLarge,
    /// The request head, body or whole answer took longer than the service allows.
    RequestTimeout,
    UnknownLabel,
    UnknownLevel,
    InvalidDate,
    MissingCaseId,
    UnknownCase,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Overloaded,
    NotReady,
    StoreError,
    Internal,
    /// A labelled set with a malformed line; the message starts `line N:`.
    InvalidLine,
    UnknownEval,
    /// Too many evaluation jobs waiting or running (429 with `Retry-After`).
    TooManyEvals,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::EmptyText => "empty_text",
            ErrorCode::TextTooLong => "text_too_long",
            ErrorCode::EmptyBatch => "empty_batch",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidUtf8 => "invalid_utf8",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::UnknownLabel => "unknown_label",
            ErrorCode::UnknownLevel => "unknown_level",
            ErrorCode::InvalidDate => "invalid_date",
            ErrorCode::MissingCaseId => "missing_case_id",
            ErrorCode::UnknownCase => "unknown_case",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::StoreError => "store_error",
            ErrorCode::Internal => "internal",
            ErrorCode::InvalidLine => "invalid_line",
            ErrorCode::UnknownEval => "unknown_eval",
            ErrorCode::TooManyEvals => "too_many_evals",
        }
    }

    /// The HTTP status each code is answered with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::EmptyText
            | ErrorCode::TextTooLong
            | ErrorCode::EmptyBatch
            | ErrorCode::BatchTooLarge
            | ErrorCode::InvalidJson
            | ErrorCode::InvalidUtf8
            | ErrorCode::InvalidRequest
            | ErrorCode::UnknownLabel
            | ErrorCode::UnknownLevel
            | ErrorCode::InvalidDate
            | ErrorCode::MissingCaseId
            | ErrorCode::InvalidLine => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound | ErrorCode::UnknownCase | ErrorCode::UnknownEval => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::TooManyEvals => 429,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Overloaded | ErrorCode::NotReady => 503,
            ErrorCode::StoreError | ErrorCode::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people; may change between versions. Never contains the request's text.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code, message: message.into() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_names() {
        for code in [ErrorCode::EmptyText, ErrorCode::BatchTooLarge, ErrorCode::UnknownCase, ErrorCode::Overloaded] {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(code.as_str()));
        }
        let body = serde_json::to_value(ErrorBody::new(ErrorCode::Forbidden, "x")).unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(ErrorCode::Forbidden.http_status(), 403);
    }
}
