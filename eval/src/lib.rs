//! Evaluation for operators: metrics over labelled sets and the HTML report.

pub mod metrics;
pub mod report;

pub use metrics::{compute, Metrics, Scored};
