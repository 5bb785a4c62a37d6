//! `triage policy calibrate`: the escalation policy's similarity thresholds,
//! measured on the labelled case pairs with the service's own vectors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;
use triage_eval::pairs::{self, Pair, PairKind, Point, Question};
use triage_risk::policy::Policy;

use super::risk::{judge_all, load_triage, RiskModelArgs};
use super::ModelArgs;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Measure each similarity threshold on the pairs set: precision and recall
    /// per threshold, the shipped value against its stated precision, and the
    /// lowest threshold that reaches it. Re-run whenever the encoder or its delta changes.
    Calibrate(CalibrateArgs),
}

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// Labelled pairs, JSON Lines {"id","kind","a","b"} (kind: reworded | same_matter | different_matter).
    #[arg(long, env = "TRIAGE_PAIRS", default_value = "models/pairs/pairs.jsonl")]
    pub pairs: PathBuf,
    /// The policy whose thresholds are measured (and rewritten with --write).
    #[arg(long, env = "TRIAGE_POLICY", default_value = "models/policy.toml")]
    pub policy: PathBuf,
    /// Write the chosen thresholds into the policy file, keeping its comments.
    #[arg(long, env = "TRIAGE_CALIBRATE_WRITE", conflicts_with = "check")]
    pub write: bool,
    /// Exit 1 when a shipped threshold gives less than its stated precision on the pairs.
    #[arg(long, env = "TRIAGE_CALIBRATE_CHECK")]
    pub check: bool,
    /// Also write every sweep as JSON here.
    #[arg(long, env = "TRIAGE_CALIBRATE_JSON")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub risk: RiskModelArgs,
}

/// One threshold of the policy and what the pairs say of it.
#[derive(Debug, Serialize)]
struct Setting {
    /// `similar.min_score` or `rule.<id>.min_similarity`.
    name: String,
    /// The rule it belongs to; none for the `[similar]` list.
    #[serde(skip)]
    rule: Option<String>,
    question: Question,
    shipped: f32,
    target_precision: f64,
    at_shipped: Point,
    chosen: Option<Point>,
    sweep: Vec<Point>,
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Calibrate(a) => calibrate(a),
    }
}

fn read_pairs(path: &PathBuf) -> anyhow::Result<Vec<Pair>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: Pair = serde_json::from_str(line).with_context(|| format!("{} line {}", path.display(), n + 1))?;
        if p.kind == PairKind::OtherTopic || p.a.trim().is_empty() || p.b.trim().is_empty() {
            bail!(
                "{} line {}: other_topic pairs are derived, not stored, and texts may not be empty",
                path.display(),
                n + 1
            );
        }
        out.push(p);
    }
    if out.is_empty() {
        bail!("{} holds no pairs", path.display());
    }
    Ok(out)
}

fn calibrate(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let policy_text =
        std::fs::read_to_string(&args.policy).with_context(|| format!("reading {}", args.policy.display()))?;
    let policy = Policy::from_toml(&policy_text)?;
    let pairs = read_pairs(&args.pairs)?;
    let triage = load_triage(&args.model, &args.risk)?;
    let texts: Vec<&str> = pairs.iter().flat_map(|p| [p.a.as_str(), p.b.as_str()]).collect();
    let judged = judge_all(&triage, &texts, "embedding pairs")?;
    // Text 2i is pair i's a, 2i+1 its b.
    let cos = |x: usize, y: usize| triage_encoder::cosine(&judged[x].embedding, &judged[y].embedding);
    let mut scored: Vec<(PairKind, f32)> =
        pairs.iter().enumerate().map(|(i, p)| (p.kind, cos(2 * i, 2 * i + 1))).collect();
    scored.extend(pairs::other_topic(&pairs).into_iter().map(|(i, j)| (PairKind::OtherTopic, cos(2 * i, 2 * j + 1))));

    let grid = pairs::grid(0.80, 1.0, 0.005);
    let setting = |rule: Option<&str>, q: Question, shipped: f32, target: Option<f32>| -> anyhow::Result<Setting> {
        let name = rule.map_or("similar.min_score".to_string(), |id| format!("rule.{id}.min_similarity"));
        let target = target.with_context(|| format!("{name}: the policy states no precision for it"))? as f64;
        let sweep = pairs::sweep(&scored, q, &grid);
        Ok(Setting {
            name,
            rule: rule.map(str::to_string),
            question: q,
            shipped,
            target_precision: target,
            at_shipped: pairs::point(&scored, q, shipped),
            chosen: pairs::choose(&sweep, target),
            sweep,
        })
    };
    // Every threshold answers "same topic": within a topic the vector does not
    // tell one matter from another (the sweeps below show it), so no rule is
    // built on that question.
    let q = Question::SameTopic;
    let mut settings = vec![setting(None, q, policy.similar.min_score, policy.similar.precision)?];
    for r in &policy.rules {
        if let Some(shipped) = r.min_similarity() {
            settings.push(setting(Some(&r.id), q, shipped, r.precision)?);
        }
    }

    println!("{} pairs from {}; model {}", pairs.len(), args.pairs.display(), triage.model().version);
    println!("precision / recall of `cosine >= t`, by question:");
    print!("{:>6}", "t");
    for q in Question::ALL {
        print!(" {:>16}", format!("{q:?}"));
    }
    println!();
    for t in pairs::grid(0.85, 1.0, 0.01) {
        print!("{t:>6.2}");
        for q in Question::ALL {
            let p = pairs::point(&scored, q, t);
            print!(" {:>16}", format!("{:.3} / {:.3}", p.precision, p.recall));
        }
        println!();
    }
    println!();
    println!(
        "{:<36} {:>8} {:>7} {:>16} {:>8} {:>16}",
        "threshold", "shipped", "target", "P / R at shipped", "chosen", "P / R at chosen"
    );
    let mut failed = Vec::new();
    for s in &settings {
        let chosen = s.chosen.map_or("none".to_string(), |c| format!("{:.3}", c.threshold));
        let at_chosen = s.chosen.map_or("-".to_string(), |c| format!("{:.3} / {:.3}", c.precision, c.recall));
        println!(
            "{:<36} {:>8.3} {:>7.2} {:>16} {:>8} {:>16}",
            s.name,
            s.shipped,
            s.target_precision,
            format!("{:.3} / {:.3}", s.at_shipped.precision, s.at_shipped.recall),
            chosen,
            at_chosen
        );
        if s.at_shipped.precision < s.target_precision || s.at_shipped.true_pos == 0 {
            failed.push(s.name.clone());
        }
    }
    if let Some(p) = &args.json {
        let sweeps: Vec<_> = Question::ALL.iter().map(|&q| (q, pairs::sweep(&scored, q, &grid))).collect();
        let doc = serde_json::json!({"pairs": pairs.len(), "model_version": triage.model().version,
            "settings": settings, "sweeps": sweeps});
        std::fs::write(p, serde_json::to_vec_pretty(&doc)?).with_context(|| format!("writing {}", p.display()))?;
    }
    if args.write {
        let text = rewrite(&policy_text, &settings)?;
        Policy::from_toml(&text).context("the rewritten policy does not parse")?;
        std::fs::write(&args.policy, text).with_context(|| format!("writing {}", args.policy.display()))?;
        eprintln!("wrote the chosen thresholds into {}", args.policy.display());
    }
    if args.check && !failed.is_empty() {
        eprintln!("below the stated precision on the pairs (or passing no pair): {}", failed.join(", "));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The policy text with each setting's chosen threshold in place of the old one.
fn rewrite(text: &str, settings: &[Setting]) -> anyhow::Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse()?;
    let round = |t: f32| (t as f64 * 1000.0).round() / 1000.0;
    for s in settings {
        let Some(c) = s.chosen else { bail!("{}: no threshold reaches precision {}", s.name, s.target_precision) };
        let value = toml_edit::value(round(c.threshold));
        let Some(id) = s.rule.as_deref() else {
            doc["similar"]["min_score"] = value;
            continue;
        };
        let rules = doc["rule"].as_array_of_tables_mut().context("the policy has no [[rule]] tables")?;
        let rule = rules
            .iter_mut()
            .find(|t| t.get("id").and_then(|v| v.as_str()) == Some(id))
            .with_context(|| format!("rule {id} not found"))?;
        rule["min_similarity"] = value;
    }
    Ok(doc.to_string())
}
