//! `triage eval-search`: how well each ranking finds related real messages.
//!
//! Every message is indexed (the service's vector and term weights) in a
//! temporary embedded store, then searched for by its own text with itself
//! left out; the board's category stands in for "related". Prints, per
//! ranking, same-category precision@5 and nDCG@10 (binary gain; the ideal
//! ranking puts min(10, same-category messages) first), and chance.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use triage_cases::terms::{self, Bm25};
use triage_cases::{
    expand, CaseFilter, CaseQuery, CaseRecord, CaseStore, EdgeStore, Feedback, Ranking, Refine, SparseVector,
    StoreProfile, DEFAULT_RANKING, FEEDBACK, HYBRID,
};

use triage_eval::metrics::{mean_interval, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
use triage_eval::Interval;

use super::{risk, ModelArgs};

#[derive(Args, Debug)]
pub struct EvalSearchArgs {
    /// JSON Lines of messages with `id`, `text`, optional `title`, and `category`.
    #[arg(long, env = "TRIAGE_EVAL_SEARCH_DATA", default_value = "../shared/data/real/gov_messages.jsonl")]
    pub data: PathBuf,
    /// Write the figures as JSON here.
    #[arg(long, env = "TRIAGE_EVAL_SEARCH_JSON")]
    pub json: Option<PathBuf>,
    /// Keep the messages' vectors in this file and reuse them when it exists
    /// (re-runs that change only the term weights skip the encoder).
    #[arg(long, env = "TRIAGE_EVAL_SEARCH_VECTORS")]
    pub vectors: Option<PathBuf>,
    #[command(flatten)]
    pub risk: risk::RiskModelArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Deserialize)]
struct Message {
    id: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: String,
    category: String,
}

#[derive(Serialize)]
struct Row {
    ranking: String,
    p_at_5: f64,
    /// 95 % bootstrap interval of p@5 over the queries.
    p_at_5_interval: Interval,
    ndcg_at_10: f64,
    /// p@5 on the queries of half A (where choices are made) and half B.
    p_at_5_halves: [f64; 2],
    #[serde(skip)]
    p_at_5_per_query: Vec<f64>,
}

/// One way of ranking: a list or a fusion, with or without the refinements
/// of [`expand`].
#[derive(Debug, Clone, PartialEq)]
struct Variant {
    name: String,
    ranking: Ranking,
    refine: Refine,
}

impl Variant {
    fn new(name: impl Into<String>, ranking: Ranking, refine: Refine) -> Self {
        Self { name: name.into(), ranking, refine }
    }

    fn plain(name: impl Into<String>, ranking: Ranking) -> Self {
        Self::new(name, ranking, Refine::NONE)
    }
}

/// What the service searches with by default.
fn shipped() -> Variant {
    Variant::new("hybrid (the default)", DEFAULT_RANKING, HYBRID)
}

/// The rankings compared: the two lists alone, fusions of them, and the
/// refinements added one at a time, each swept around its chosen setting.
fn rankings() -> Vec<Variant> {
    let mut out = vec![Variant::plain("dense", Ranking::Dense), Variant::plain("sparse", Ranking::Sparse)];
    for k in [2, 10, 60] {
        for w in [0.5f32, 1.0, 2.0] {
            out.push(Variant::plain(format!("rrf k={k} dense×{w}"), Ranking::Rrf { k, dense_weight: w }));
        }
    }
    out.push(Variant::plain("dbsf", Ranking::Dbsf));
    for share in [0.3f32, 0.5, 0.7, 1.0] {
        let refine = Refine { centre: Some(share), ..Refine::NONE };
        out.push(Variant::new(format!("dense, centred × {share}"), Ranking::Dense, refine));
        out.push(Variant::new(format!("dbsf, centred × {share}"), Ranking::Dbsf, refine));
    }
    let centred = Refine { centre: HYBRID.centre, ..Refine::NONE };
    for cases in [3, 5, 10, 20] {
        for weight in [0.5f32, 1.0] {
            for terms in [16, 64, usize::MAX] {
                let feedback = Some(Feedback { candidates: 50, cases, weight, terms });
                let words = if terms == usize::MAX { "all".to_string() } else { terms.to_string() };
                let name = format!("dbsf, centred, feedback {cases} cases × {weight}, {words} words, lists of 50");
                out.push(Variant::new(name, Ranking::Dbsf, Refine { feedback, ..centred }));
            }
        }
    }
    for candidates in [10, 20, 30, 50] {
        let name = format!("dbsf, centred, feedback, lists of {candidates}");
        let refine = Refine { feedback: Some(Feedback { candidates, ..FEEDBACK }), ..centred };
        out.push(Variant::new(name, Ranking::Dbsf, refine));
    }
    out.push(Variant::new("hybrid, not centred", Ranking::Dbsf, Refine { centre: None, ..HYBRID }));
    out.push(Variant::new("hybrid, no feedback", Ranking::Dbsf, Refine { feedback: None, ..HYBRID }));
    out.push(shipped());
    out
}

/// Which half a message's query falls in: the last bit of its id's SHA-256.
fn half(id: &str) -> usize {
    usize::from(Sha256::digest(id.as_bytes())[31] & 1)
}

fn ndcg(rel: &[bool], relevant: usize) -> f64 {
    let gain = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = rel.iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| gain(i)).sum();
    let ideal: f64 = (0..relevant.min(10)).map(gain).sum();
    if ideal == 0.0 {
        0.0
    } else {
        dcg / ideal
    }
}

pub fn run(args: EvalSearchArgs) -> anyhow::Result<ExitCode> {
    let raw = std::fs::read_to_string(&args.data).with_context(|| format!("reading {}", args.data.display()))?;
    let mut seen = HashSet::new();
    let mut msgs = Vec::new();
    for (i, line) in raw.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let m: Message = serde_json::from_str(line).with_context(|| format!("line {}", i + 1))?;
        let id = match &m.id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if seen.insert(id.clone()) {
            let text = match m.title.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(t) => format!("{t}。{}", m.text),
                None => m.text.clone(),
            };
            msgs.push((id, text, m.category));
        }
    }
    let n = msgs.len();
    anyhow::ensure!(n >= 2, "{} holds fewer than two messages", args.data.display());
    let mut per_cat: HashMap<&str, usize> = HashMap::new();
    for (_, _, c) in &msgs {
        *per_cat.entry(c.as_str()).or_default() += 1;
    }
    let chance = per_cat.values().map(|&k| k * (k - 1)).sum::<usize>() as f64 / (n * (n - 1)) as f64;
    let mean_len = msgs.iter().map(|(_, t, _)| terms::tokens(t).len()).sum::<usize>() as f64 / n as f64;

    let texts: Vec<&str> = msgs.iter().map(|(_, t, _)| t.as_str()).collect();
    let cached: Option<Vec<Vec<f32>>> = match &args.vectors {
        Some(p) if p.exists() => Some(serde_json::from_str(&std::fs::read_to_string(p)?)?),
        _ => None,
    };
    let vectors = match cached.filter(|v| v.len() == n) {
        Some(v) => v,
        None => {
            let triage = risk::load_triage(&args.model, &args.risk)?;
            let v: Vec<Vec<f32>> =
                risk::judge_all(&triage, &texts, "embedding")?.into_iter().map(|j| j.embedding).collect();
            if let Some(p) = &args.vectors {
                std::fs::write(p, serde_json::to_string(&v)?).with_context(|| format!("writing {}", p.display()))?;
            }
            v
        }
    };
    let dim = vectors.first().map_or(0, Vec::len);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let cat: HashMap<&str, &str> = msgs.iter().map(|(id, _, c)| (id.as_str(), c.as_str())).collect();
    let queries: Vec<SparseVector> = texts.iter().map(|t| terms::query(t)).collect();
    let unit_queries: Vec<SparseVector> = texts.iter().map(|t| terms::unit_query(t)).collect();
    let halves: Vec<usize> = msgs.iter().map(|(id, _, _)| half(id)).collect();
    let eval = |vectors: &[Vec<f32>],
                bm25: &Bm25,
                queries: &[SparseVector],
                rankings: &[Variant]|
     -> anyhow::Result<Vec<Row>> {
        let dir = tempfile::tempdir()?;
        let store = EdgeStore::open(dir.path(), dim)?;
        let records: Vec<CaseRecord> = msgs
            .iter()
            .zip(vectors)
            .map(|((id, text, _), v)| CaseRecord::bare(id.clone(), v.clone(), bm25.document(text)))
            .collect();
        rt.block_on(store.upsert(records))?;
        let profile = rt.block_on(StoreProfile::new().get(&store))?;
        let mut rows = Vec::new();
        for v in rankings {
            let (mut p5, mut nd) = (Vec::with_capacity(n), 0.0);
            for (i, (id, _, c)) in msgs.iter().enumerate() {
                let q = CaseQuery::new(vectors[i].clone(), queries[i].clone(), v.ranking);
                let filter = CaseFilter { exclude_case_id: Some(id.clone()), ..Default::default() };
                let hits = rt.block_on(expand::query(&store, &profile, &q, &filter, 10, v.refine))?;
                let rel: Vec<bool> =
                    hits.iter().map(|h| cat.get(h.case.case_id.as_str()) == Some(&c.as_str())).collect();
                p5.push(rel.iter().take(5).filter(|r| **r).count() as f64 / 5.0);
                nd += ndcg(&rel, per_cat[c.as_str()] - 1);
            }
            let b = format!("k1 {} b {} len {}", bm25.k1, bm25.b, bm25.avg_len);
            let on_half = |g: usize| {
                let (sum, k) =
                    p5.iter().zip(&halves).filter(|(_, h)| **h == g).fold((0.0, 0), |(s, k), (p, _)| (s + p, k + 1));
                sum / f64::from(k.max(1))
            };
            rows.push(Row {
                ranking: format!("{} ({b})", v.name),
                p_at_5_halves: [on_half(0), on_half(1)],
                p_at_5: p5.iter().sum::<f64>() / n as f64,
                p_at_5_interval: mean_interval(&p5, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
                ndcg_at_10: nd / n as f64,
                p_at_5_per_query: p5,
            });
        }
        Ok(rows)
    };
    let in_a = halves.iter().filter(|h| **h == 0).count();
    println!(
        "{n} messages ({in_a} in half A, {} in half B); chance {chance:.3}; mean kept terms per message {mean_len:.1}",
        n - in_a
    );
    println!("| ranking | p@5 (95 % interval over queries) | p@5 half A / half B | nDCG@10 |\n|---|---|---|---|");
    let mut rows = eval(&vectors, &terms::BM25, &queries, &rankings())?;
    // The plainer query weighting, for comparison: 1 per word, however often the query repeats it.
    let unit: Vec<Variant> =
        [Variant::plain("sparse", Ranking::Sparse), Variant::plain("dbsf", Ranking::Dbsf), shipped()]
            .into_iter()
            .map(|v| Variant { name: format!("{}, query words weighing 1", v.name), ..v })
            .collect();
    rows.extend(eval(&vectors, &terms::BM25, &unit_queries, &unit)?);
    // The word weights' parameters, swept for the word list alone and the default fusion.
    let swept = [Variant::plain("sparse", Ranking::Sparse), Variant::plain("dbsf", Ranking::Dbsf), shipped()];
    for k1 in [1.2f32, 2.0, 3.0] {
        for b in [0.75f32, 1.0] {
            for avg_len in [25.0f32, 50.0, 186.0] {
                let bm25 = Bm25 { k1, b, avg_len };
                if bm25 != terms::BM25 {
                    // Stored and query weights both follow the swept parameters.
                    let swept_queries: Vec<SparseVector> = texts.iter().map(|t| bm25.document(t)).collect();
                    rows.extend(eval(&vectors, &bm25, &swept_queries, &swept)?);
                }
            }
        }
    }
    for row in &rows {
        let i = row.p_at_5_interval;
        let [a, b] = row.p_at_5_halves;
        println!(
            "| {} | {:.3} ({:.3}–{:.3}) | {a:.3} / {b:.3} | {:.3} |",
            row.ranking, row.p_at_5, i.low, i.high, row.ndcg_at_10
        );
    }
    // Paired: the same queries under two rankings, so the difference's
    // interval is far narrower than either figure's.
    let shipped = &rows[rankings().iter().position(|v| *v == shipped()).expect("the default is compared")];
    println!("\nDifference in p@5, the default against each other ranking on the same queries (95 % interval):");
    for row in rows.iter().filter(|r| !std::ptr::eq(*r, shipped)) {
        let d: Vec<f64> = shipped.p_at_5_per_query.iter().zip(&row.p_at_5_per_query).map(|(a, b)| a - b).collect();
        let i = mean_interval(&d, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
        println!("  {:+.3} ({:+.3} to {:+.3}) against {}", shipped.p_at_5 - row.p_at_5, i.low, i.high, row.ranking);
    }
    if let Some(path) = &args.json {
        let out = serde_json::json!({"messages": n, "chance": chance, "mean_terms": mean_len, "rankings": rows});
        std::fs::write(path, serde_json::to_string_pretty(&out)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::ndcg;

    #[test]
    fn ndcg_is_one_for_an_ideal_ranking_and_less_otherwise() {
        assert!((ndcg(&[true, true, false], 2) - 1.0).abs() < 1e-9);
        assert!(ndcg(&[false, true, true], 2) < 1.0);
        assert_eq!(ndcg(&[false; 10], 0), 0.0);
    }
}
