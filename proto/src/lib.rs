//! The wire contract of triage, version 1: the standard's vocabulary (labels,
//! levels), evidence spans, the JSON bodies of every `/v1` route and the
//! error codes. Changing a name here changes the product's contract; the
//! server's OpenAPI document (`/openapi.json`) is generated from these types.
//!
//! Evidence offsets are Unicode scalar (char) offsets, end exclusive.

pub mod api;
pub mod error;
pub mod evidence;
pub mod time;
pub mod vocab;

pub use api::*;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use evidence::{CueKind, Evidence};
pub use vocab::{Label, RiskLevel, UnknownName};

/// Most items in one `/v1/triage/batch` call.
pub const MAX_BATCH: usize = 64;
/// Longest accepted text, in Unicode chars.
pub const MAX_TEXT_CHARS: usize = 5000;
/// Most hits one search returns.
pub const MAX_TOP_K: usize = 100;
