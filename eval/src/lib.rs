//! Evaluation for operators: metrics over labelled sets and the HTML report.

pub mod metrics;
pub mod pairs;
pub mod report;

pub use metrics::{bootstrap, compute, headline, GroupMetrics, Interval, Intervals, Metrics, Scored};
