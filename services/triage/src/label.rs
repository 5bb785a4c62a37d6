//! The labelling standard's vocabulary lives in the wire contract (`proto/`);
//! re-exported here so the risk code reads `crate::label::Label`.

pub use triage_proto::{Label, RiskLevel, UnknownName};
