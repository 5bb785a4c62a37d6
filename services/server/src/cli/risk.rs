//! The risk model the subcommands share: the heads file and the encoder
//! delta (both compiled in unless overridden), data paths, progress bars.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use triage_encoder::Encoder;
use triage_risk::model::{BUILTIN_DELTA, BUILTIN_MODEL};
use triage_risk::{CueLexicon, Judgement, RiskModel, Triage};

use super::ModelArgs;

#[derive(Args, Debug, Clone)]
pub struct RiskModelArgs {
    /// Risk model heads JSON (default: the one compiled in, models/heads/risk.json).
    #[arg(long, env = "TRIAGE_RISK_MODEL")]
    pub risk_model: Option<PathBuf>,
    /// Encoder delta the heads were trained with (default: the one compiled in,
    /// models/delta/e5-lora.safetensors); its sha256 must match the heads file's.
    #[arg(long, env = "TRIAGE_DELTA")]
    pub delta: Option<PathBuf>,
}

impl RiskModelArgs {
    /// The heads and the delta bytes, checked against each other.
    pub fn load(&self) -> anyhow::Result<(RiskModel, Cow<'static, [u8]>)> {
        let text = match &self.risk_model {
            Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            None => BUILTIN_MODEL.to_string(),
        };
        let model = RiskModel::from_json(&text)?;
        let delta = match &self.delta {
            Some(p) => Cow::Owned(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
            None => Cow::Borrowed(BUILTIN_DELTA),
        };
        model.check_delta(&delta)?;
        Ok((model, delta))
    }
}

/// The fine-tuned encoder (fetched if missing) with its heads.
pub fn load_tuned(model: &ModelArgs, risk: &RiskModelArgs) -> anyhow::Result<(Encoder, RiskModel)> {
    let (heads, delta) = risk.load()?;
    Ok((super::model::load_encoder(model, Some(&delta))?, heads))
}

/// Fine-tuned encoder, built-in lexicon and the chosen risk model.
pub fn load_triage(model: &ModelArgs, risk: &RiskModelArgs) -> anyhow::Result<Triage> {
    let (encoder, heads) = load_tuned(model, risk)?;
    Ok(Triage::new(Arc::new(encoder), CueLexicon::builtin()?, heads)?)
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

/// Judgements for all texts, 64 at a time, with a progress bar on a terminal;
/// a bad text is named by its 1-based item number.
pub fn judge_all(triage: &Triage, texts: &[&str], what: &str) -> anyhow::Result<Vec<Judgement>> {
    let bar = progress(texts.len(), what);
    let mut out = Vec::with_capacity(texts.len());
    for (k, chunk) in texts.chunks(64).enumerate() {
        let j = triage.judge_batch(chunk).map_err(|e| match e {
            triage_risk::TriageError::EmptyText { index } | triage_risk::TriageError::TextTooLong { index, .. } => {
                anyhow::anyhow!("item {}: {e}", k * 64 + index + 1)
            }
            other => other.into(),
        })?;
        out.extend(j);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}
