//! Shared pieces of `triage train` and `triage eval`: data paths, feature
//! extraction with a progress bar, the risk model file.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use triage_encoder::Encoder;
use triage_risk::judge::{features, TextFeatures};
use triage_risk::model::BUILTIN_MODEL;
use triage_risk::{CueLexicon, RiskModel, Triage};

use super::ModelArgs;

#[derive(Args, Debug, Clone)]
pub struct RiskModelArgs {
    /// Risk model JSON (default: the one compiled in, models/heads/risk.json).
    #[arg(long, env = "TRIAGE_RISK_MODEL")]
    pub risk_model: Option<PathBuf>,
}

impl RiskModelArgs {
    pub fn load(&self) -> anyhow::Result<RiskModel> {
        let text = match &self.risk_model {
            Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            None => BUILTIN_MODEL.to_string(),
        };
        serde_json::from_str(&text).context("parsing the risk model")
    }
}

/// Encoder (fetched if missing), built-in lexicon and the chosen risk model.
pub fn load_triage(model: &ModelArgs, risk: &RiskModelArgs) -> anyhow::Result<Triage> {
    let encoder = Arc::new(super::model::load_encoder(model)?);
    Ok(Triage::new(encoder, CueLexicon::builtin()?, risk.load()?)?)
}

/// Labelled data directory: `TRIAGE_DATA`, or ../shared/data.
pub fn data_dir() -> PathBuf {
    std::env::var_os("TRIAGE_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared/data"))
}

/// A progress bar of `len` items labelled `what` on a terminal; hidden
/// otherwise (logs and pipes get no control characters).
pub fn progress(len: usize, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b.set_message(what.to_string());
    b
}

/// Feature rows for all texts, 64 at a time, with a progress bar on a terminal.
pub fn extract(encoder: &Encoder, lexicon: &CueLexicon, texts: &[&str], what: &str) -> anyhow::Result<Vec<TextFeatures>> {
    let bar = progress(texts.len(), what);
    let mut out = Vec::with_capacity(texts.len());
    for (k, chunk) in texts.chunks(64).enumerate() {
        let f = features(encoder, lexicon, chunk).map_err(|e| match e {
            triage_risk::TriageError::EmptyText { index } | triage_risk::TriageError::TextTooLong { index, .. } => {
                anyhow::anyhow!("item {}: {e}", k * 64 + index + 1)
            }
            other => other.into(),
        })?;
        out.extend(f);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}
