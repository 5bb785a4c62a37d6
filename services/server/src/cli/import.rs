//! `triage import FILE.jsonl`: index past cases in bulk, with a progress bar
//! and a summary of what was imported and what was skipped, and why.
//!
//! Each line is a JSON object with `case_id` (or `id`) and `text`; a `title`
//! is put before the text. Optional: `district`, `reporter`, `received_at`
//! (or `time`), `labels` and `level` (people's decisions; otherwise the
//! model's). Past cases are stored with their text-alone level: escalation
//! is for incoming cases.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use triage_proto::time::Timestamp;
use triage_proto::{Label, RiskLevel};
use triage_risk::TriageError;
use triage_server::filing::{self, Filing, ModelView, Origin};

use super::risk::{load_triage, progress, RiskModelArgs};
use super::store::StoreArgs;
use super::ModelArgs;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// JSON Lines file of past cases.
    pub file: PathBuf,
    /// Cases judged and written per batch.
    #[arg(long, env = "TRIAGE_IMPORT_BATCH", default_value_t = 32)]
    pub batch: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub risk: RiskModelArgs,
}

#[derive(Deserialize)]
struct Line {
    #[serde(alias = "id")]
    case_id: Option<String>,
    text: Option<String>,
    title: Option<String>,
    district: Option<String>,
    reporter: Option<String>,
    #[serde(alias = "time")]
    received_at: Option<String>,
    labels: Option<Vec<String>>,
    level: Option<String>,
}

struct Ready {
    case_id: String,
    text: String,
    district: Option<String>,
    reporter_hash: Option<String>,
    received_at: Option<i64>,
    labels: Option<Vec<Label>>,
    level: Option<RiskLevel>,
}

#[derive(Default, serde::Serialize)]
struct Summary {
    read: usize,
    imported: usize,
    skipped: usize,
    /// Skips by reason.
    reasons: BTreeMap<String, usize>,
    /// The first skipped lines (line number and reason).
    examples: Vec<(usize, String)>,
}

impl Summary {
    fn skip(&mut self, line: usize, reason: &str, detail: String) {
        self.skipped += 1;
        *self.reasons.entry(reason.to_string()).or_default() += 1;
        if self.examples.len() < 20 {
            self.examples.push((line, detail));
        }
    }
}

fn check(l: Line, salt: &[u8]) -> Result<Ready, (&'static str, String)> {
    let case_id =
        l.case_id.filter(|s| !s.trim().is_empty()).ok_or(("missing case_id", "no case_id or id".to_string()))?;
    let body = l.text.unwrap_or_default();
    let text = match l.title.filter(|t| !t.trim().is_empty()) {
        Some(t) if !body.trim().is_empty() => format!("{}。{}", t.trim(), body),
        Some(t) => t,
        None => body,
    };
    if let Err(e) = triage_risk::judge::validate(0, &text) {
        let reason = match e {
            TriageError::TextTooLong { .. } => "text too long",
            _ => "empty text",
        };
        return Err((reason, format!("case {case_id}: {e}")));
    }
    let received_at = match l.received_at.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => {
            Some(s.trim().parse::<Timestamp>().map_err(|e| ("invalid date", format!("case {case_id}: {e}")))?.unix())
        }
    };
    let labels = match l.labels {
        None => None,
        Some(v) => Some(
            v.iter()
                .map(|s| s.parse::<Label>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ("unknown label", format!("case {case_id}: {e}")))?,
        ),
    };
    let level = match l.level {
        None => None,
        Some(s) => Some(s.parse::<RiskLevel>().map_err(|e| ("unknown level", format!("case {case_id}: {e}")))?),
    };
    let reporter_hash = l.reporter.filter(|r| !r.trim().is_empty()).map(|r| triage_cases::reporter_hash(salt, &r));
    Ok(Ready {
        case_id,
        text,
        district: l.district.filter(|d| !d.trim().is_empty()),
        reporter_hash,
        received_at,
        labels,
        level,
    })
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch >= 1, "--batch must be at least 1");
    let file = std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    args.store.private_data_dir()?;
    let salt = args.store.salt()?;
    let mut summary = Summary::default();
    let mut cases = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                summary.read += 1;
                summary.skip(n, "unreadable line", format!("line {n}: {e}"));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        summary.read += 1;
        let parsed: Line = match serde_json::from_str(&line) {
            Ok(l) => l,
            Err(e) => {
                summary.skip(n, "invalid JSON", format!("line {n}: {e}"));
                continue;
            }
        };
        match check(parsed, &salt) {
            Ok(r) if !seen.insert(r.case_id.clone()) => summary.skip(
                n,
                "duplicate case_id",
                format!("line {n}: case {} appears earlier; the first is kept", r.case_id),
            ),
            Ok(r) => cases.push(r),
            Err((reason, detail)) => summary.skip(n, reason, format!("line {n}: {detail}")),
        }
    }

    let triage = load_triage(&args.model, &args.risk)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let store = rt.block_on(args.store.open(triage.encoder().dim()))?;
    let bar = progress(cases.len(), "importing");
    let now = Timestamp::now().unix();
    for chunk in cases.chunks(args.batch) {
        let texts: Vec<&str> = chunk.iter().map(|c| c.text.as_str()).collect();
        let judged = triage.judge_batch(&texts)?;
        let records = chunk
            .iter()
            .zip(judged)
            .map(|(c, j)| {
                // Imports run no escalation: the model's side is the text's level.
                let flagged = j.flagged_labels();
                let model = ModelView { flagged: &flagged, level: j.level, risk_level: j.level, escalations: &[] };
                let filing = Filing::new(model, c.labels.clone(), c.level);
                let origin = Origin {
                    district: c.district.clone(),
                    reporter_hash: c.reporter_hash.clone(),
                    received_at: c.received_at,
                };
                filing::record(&c.case_id, &c.text, args.store.store_text, &j, filing, origin, now)
            })
            .collect();
        rt.block_on(store.upsert(records))?;
        summary.imported += chunk.len();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    eprintln!("building the search index");
    rt.block_on(store.optimize())?;
    let total = rt.block_on(store.count())?;
    drop(store);
    eprintln!(
        "imported {}, skipped {} of {} lines; the store now holds {total} cases",
        summary.imported, summary.skipped, summary.read
    );
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
