//! Risk judgement for petition and dispute text: five labels, four levels,
//! evidence spans, following `shared/spec/labels.md`.
//!
//! `Triage::judge` is the library call. Evidence offsets are Unicode scalar
//! (char) offsets, end exclusive.

pub mod cues;
pub mod data;
pub mod judge;
pub mod label;
pub mod model;
pub mod policy;

pub use cues::{CueKind, CueLexicon, CueReport, Evidence, Suppression};
pub use judge::{Judge, Judgement, LabelScore, Triage, TriageError, MAX_CHARS};
pub use label::{Label, RiskLevel};
pub use model::{ModelError, RiskModel, BUILTIN_DELTA};
pub use policy::{Policy, PolicyError};
