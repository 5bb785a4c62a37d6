//! Metrics over labelled sets. Every number here has the meaning written in
//! the operator docs (README, "Evaluation"); tests check them by hand.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use triage_risk::data::Example;
use triage_risk::{Evidence, Judgement, Label, RiskLevel};

/// One gold example next to the model's answer.
#[derive(Debug, Clone)]
pub struct Scored {
    pub id: String,
    pub source: String,
    pub persona: Option<String>,
    pub form: Option<String>,
    pub text: String,
    pub gold_labels: Vec<Label>,
    pub gold_level: RiskLevel,
    /// Score per label, in `Label::ALL` order.
    pub scores: [f32; 5],
    pub flagged: [bool; 5],
    pub level: RiskLevel,
    /// The cue spans the judge found in the text (char offsets), shown with the misses.
    pub evidence: Vec<Evidence>,
}

impl Scored {
    /// A labelled example next to the model's judgement of it.
    pub fn new(e: &Example, j: &Judgement) -> Self {
        let d = &j.decision;
        Self {
            id: e.id.clone(),
            source: e.source.clone(),
            persona: e.persona.clone(),
            form: e.form.clone(),
            text: e.text.clone(),
            gold_labels: e.labels.clone(),
            gold_level: e.level,
            scores: d.scores.labels,
            flagged: d.flagged,
            level: d.level,
            evidence: j.evidence.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

impl Prf {
    /// From counts; an empty denominator gives 0 (sklearn's zero_division=0).
    pub fn from_counts(tp: usize, fp: usize, fn_: usize) -> Self {
        let div = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = div(tp, tp + fp);
        let recall = div(tp, tp + fn_);
        let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        Self { precision, recall, f1, support: tp + fn_ }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// The headline figures of one group of texts (a source, a persona, a form).
#[derive(Debug, Clone, Serialize)]
pub struct GroupMetrics {
    pub n: usize,
    pub macro_f1: f64,
    pub level_accuracy: f64,
    pub under_triage: f64,
    pub false_alarm: f64,
}

/// A bootstrap 95 % interval: the 2.5th and 97.5th percentiles over
/// resamples of the texts (with replacement, same size, fixed seed).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Intervals {
    pub resamples: usize,
    pub macro_f1: Interval,
    pub red_recall: Interval,
    pub under_triage: Interval,
    pub false_alarm: Interval,
}

#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub id: String,
    pub source: String,
    pub gold_level: RiskLevel,
    pub level: RiskLevel,
    pub gold_labels: Vec<Label>,
    pub predicted_labels: Vec<Label>,
    pub text: String,
    /// What the judge saw in the text: why it was not raised higher.
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub n: usize,
    pub macro_f1: f64,
    pub labels: BTreeMap<&'static str, Prf>,
    pub level_accuracy: f64,
    pub level_qwk: f64,
    pub under_triage: f64,
    pub red_recall: f64,
    pub false_alarm: f64,
    /// Gold rows x predicted columns, order blue, yellow, orange, red.
    pub level_confusion: [[usize; 4]; 4],
    pub threshold_sweep: BTreeMap<&'static str, Vec<SweepPoint>>,
    pub intervals: Intervals,
    pub by_source: BTreeMap<String, GroupMetrics>,
    /// Empty when the set has no `persona` (or `form`) keys.
    pub by_persona: BTreeMap<String, GroupMetrics>,
    pub by_form: BTreeMap<String, GroupMetrics>,
    /// Gold red/orange predicted yellow/blue, worst (largest drop) first.
    pub worst_misses: Vec<Miss>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

pub fn label_prf(items: &[&Scored], label: Label, flag: impl Fn(&Scored) -> bool) -> Prf {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for s in items {
        let gold = s.gold_labels.contains(&label);
        match (gold, flag(s)) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            _ => {}
        }
    }
    Prf::from_counts(tp, fp, fn_)
}

fn macro_f1(items: &[&Scored]) -> f64 {
    Label::ALL.iter().map(|&l| label_prf(items, l, |s| s.flagged[l.index()]).f1).sum::<f64>() / 5.0
}

/// Quadratic weighted kappa over the ordinal levels.
pub fn quadratic_kappa(confusion: &[[usize; 4]; 4]) -> f64 {
    let n: usize = confusion.iter().flatten().sum();
    if n == 0 {
        return 0.0;
    }
    let rows: Vec<f64> = confusion.iter().map(|r| r.iter().sum::<usize>() as f64).collect();
    let cols: Vec<f64> = (0..4).map(|j| confusion.iter().map(|r| r[j]).sum::<usize>() as f64).collect();
    let (mut observed, mut expected) = (0.0, 0.0);
    for i in 0..4 {
        for j in 0..4 {
            let w = ((i as f64 - j as f64).powi(2)) / 9.0;
            observed += w * confusion[i][j] as f64;
            expected += w * rows[i] * cols[j] / n as f64;
        }
    }
    if expected == 0.0 {
        1.0
    } else {
        1.0 - observed / expected
    }
}

fn high(l: RiskLevel) -> bool {
    l >= RiskLevel::Orange
}

/// The figures the targets are stated in, for any subset of the texts.
#[derive(Debug, Clone, Copy)]
pub struct Headline {
    pub macro_f1: f64,
    pub level_accuracy: f64,
    pub under_triage: f64,
    pub red_recall: f64,
    pub false_alarm: f64,
}

pub fn headline(items: &[&Scored]) -> Headline {
    let count = |f: &dyn Fn(&Scored) -> bool| items.iter().filter(|s| f(s)).count();
    let gold_high = count(&|s| high(s.gold_level));
    let gold_red = count(&|s| s.gold_level == RiskLevel::Red);
    Headline {
        macro_f1: macro_f1(items),
        level_accuracy: ratio(count(&|s| s.level == s.gold_level), items.len()),
        under_triage: ratio(count(&|s| high(s.gold_level) && !high(s.level)), gold_high),
        red_recall: ratio(count(&|s| s.gold_level == RiskLevel::Red && s.level == RiskLevel::Red), gold_red),
        false_alarm: ratio(count(&|s| !high(s.gold_level) && high(s.level)), items.len() - gold_high),
    }
}

fn groups(items: &[Scored], key: impl Fn(&Scored) -> Option<String>) -> BTreeMap<String, GroupMetrics> {
    let mut by: BTreeMap<String, Vec<&Scored>> = BTreeMap::new();
    for s in items {
        if let Some(k) = key(s) {
            by.entry(k).or_default().push(s);
        }
    }
    by.into_iter()
        .map(|(k, v)| {
            let h = headline(&v);
            let g = GroupMetrics {
                n: v.len(),
                macro_f1: h.macro_f1,
                level_accuracy: h.level_accuracy,
                under_triage: h.under_triage,
                false_alarm: h.false_alarm,
            };
            (k, g)
        })
        .collect()
}

pub const BOOTSTRAP_RESAMPLES: usize = 1000;
pub const BOOTSTRAP_SEED: u64 = 20261207;

/// Percentile bootstrap over texts: each resample draws `items.len()` texts
/// with replacement and recomputes the headline figures.
pub fn bootstrap(items: &[&Scored], resamples: usize, seed: u64) -> Intervals {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draws: [Vec<f64>; 4] = Default::default();
    let n = items.len();
    for _ in 0..resamples {
        if n == 0 {
            break;
        }
        let sample: Vec<&Scored> = (0..n).map(|_| items[rng.random_range(0..n)]).collect();
        let h = headline(&sample);
        for (d, v) in draws.iter_mut().zip([h.macro_f1, h.red_recall, h.under_triage, h.false_alarm]) {
            d.push(v);
        }
    }
    let [f, r, u, a] = draws;
    Intervals {
        resamples,
        macro_f1: percentile_interval(f),
        red_recall: percentile_interval(r),
        under_triage: percentile_interval(u),
        false_alarm: percentile_interval(a),
    }
}

/// The 2.5th and 97.5th percentiles of a bootstrap's draws (0–0 for none).
fn percentile_interval(mut draws: Vec<f64>) -> Interval {
    if draws.is_empty() {
        return Interval { low: 0.0, high: 0.0 };
    }
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((draws.len() - 1) as f64 * q).round() as usize];
    Interval { low: at(0.025), high: at(0.975) }
}

/// Percentile bootstrap of a mean over per-item values (per query, per
/// text): the 95 % interval of the mean of `values.len()` draws with
/// replacement.
pub fn mean_interval(values: &[f64], resamples: usize, seed: u64) -> Interval {
    let n = values.len();
    if n == 0 {
        return Interval { low: 0.0, high: 0.0 };
    }
    let mut rng = StdRng::seed_from_u64(seed);
    percentile_interval(
        (0..resamples).map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64).collect(),
    )
}

pub fn compute(items: &[Scored]) -> Metrics {
    let all: Vec<&Scored> = items.iter().collect();
    let mut labels = BTreeMap::new();
    let mut threshold_sweep = BTreeMap::new();
    for l in Label::ALL {
        labels.insert(l.as_str(), label_prf(&all, l, |s| s.flagged[l.index()]));
        let sweep = (1..20)
            .map(|k| {
                let t = k as f64 * 0.05;
                let p = label_prf(&all, l, |s| s.scores[l.index()] as f64 >= t);
                SweepPoint { threshold: t, precision: p.precision, recall: p.recall, f1: p.f1 }
            })
            .collect();
        threshold_sweep.insert(l.as_str(), sweep);
    }
    let mut level_confusion = [[0usize; 4]; 4];
    for s in items {
        level_confusion[s.gold_level.index()][s.level.index()] += 1;
    }
    let gold_high: Vec<&Scored> = items.iter().filter(|s| high(s.gold_level)).collect();
    let h = headline(&all);

    let by_source = groups(items, |s| Some(s.source.clone()));
    let by_persona = groups(items, |s| s.persona.clone());
    let by_form = groups(items, |s| s.form.clone());

    let mut misses: Vec<&Scored> = gold_high.iter().copied().filter(|s| !high(s.level)).collect();
    misses.sort_by_key(|s| std::cmp::Reverse(s.gold_level.index() as i32 - s.level.index() as i32));
    let worst_misses = misses
        .into_iter()
        .map(|s| Miss {
            id: s.id.clone(),
            source: s.source.clone(),
            gold_level: s.gold_level,
            level: s.level,
            gold_labels: s.gold_labels.clone(),
            predicted_labels: Label::ALL.into_iter().filter(|l| s.flagged[l.index()]).collect(),
            text: s.text.clone(),
            evidence: s.evidence.clone(),
        })
        .collect();

    Metrics {
        n: items.len(),
        macro_f1: h.macro_f1,
        labels,
        level_accuracy: h.level_accuracy,
        level_qwk: quadratic_kappa(&level_confusion),
        under_triage: h.under_triage,
        red_recall: h.red_recall,
        false_alarm: h.false_alarm,
        level_confusion,
        threshold_sweep,
        intervals: bootstrap(&all, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
        by_source,
        by_persona,
        by_form,
        worst_misses,
    }
}
