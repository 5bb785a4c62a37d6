//! `triage eval`: the model on a labelled set, as JSON and an HTML report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use triage_eval::{report, Scored};
use triage_risk::data::read_labelled;

use super::{risk, ModelArgs};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Labelled JSON Lines (default: dev.jsonl in --data-root).
    #[arg(long, env = "TRIAGE_EVAL_DATA")]
    pub data: Option<PathBuf>,
    /// Directory of the shared labelled sets.
    #[arg(long, env = "TRIAGE_DATA", default_value = "../shared/data")]
    pub data_root: PathBuf,
    /// Write the metrics as JSON here.
    #[arg(long, env = "TRIAGE_EVAL_JSON")]
    pub json: Option<PathBuf>,
    /// Write the self-contained HTML report here.
    #[arg(long, env = "TRIAGE_EVAL_REPORT")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub risk: risk::RiskModelArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let path = args.data.clone().unwrap_or_else(|| args.data_root.join("dev.jsonl"));
    // Read and validate the whole file before loading the model: a malformed
    // line fails fast with its line number.
    let examples = read_labelled(&path)?;
    let triage = risk::load_triage(&args.model, &args.risk)?;
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let judged = risk::judge_all(&triage, &texts, "evaluating")?;
    let scored: Vec<Scored> = examples.iter().zip(&judged).map(|(e, j)| Scored::new(e, j)).collect();
    let m = triage_eval::compute(&scored);
    let seconds = started.elapsed().as_secs_f64();
    if let Some(p) = &args.json {
        let v = report::json(&m, &triage.model().version, &path.display().to_string(), seconds)?;
        std::fs::write(p, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.report {
        let title = format!("triage evaluation: {}", path.file_name().map(|s| s.to_string_lossy()).unwrap_or_default());
        std::fs::write(p, report::html(&m, &title, &triage.model().version))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    println!("model {}  data {}  n {}", triage.model().version, path.display(), m.n);
    println!(
        "macro-F1 {:.3}  level accuracy {:.3}  QWK {:.3}  under-triage {:.3}  red recall {:.3}  false alarm {:.3}",
        m.macro_f1, m.level_accuracy, m.level_qwk, m.under_triage, m.red_recall, m.false_alarm
    );
    let iv = &m.intervals;
    println!(
        "95% bootstrap intervals: macro-F1 {:.3}-{:.3}  red recall {:.3}-{:.3}  under-triage {:.3}-{:.3}  false alarm {:.3}-{:.3}",
        iv.macro_f1.low,
        iv.macro_f1.high,
        iv.red_recall.low,
        iv.red_recall.high,
        iv.under_triage.low,
        iv.under_triage.high,
        iv.false_alarm.low,
        iv.false_alarm.high
    );
    for (l, p) in &m.labels {
        println!("  {l:<12} P {:.3}  R {:.3}  F1 {:.3}  n {}", p.precision, p.recall, p.f1, p.support);
    }
    for (title, groups) in [("source", &m.by_source), ("persona", &m.by_persona), ("form", &m.by_form)] {
        for (k, g) in groups {
            println!(
                "  {title} {k:<22} n {:>4}  macro-F1 {:.3}  level acc. {:.3}  under-triage {:.3}  false alarm {:.3}",
                g.n, g.macro_f1, g.level_accuracy, g.under_triage, g.false_alarm
            );
        }
    }
    println!("eval time {seconds:.1}s");
    Ok(ExitCode::SUCCESS)
}
