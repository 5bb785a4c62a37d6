//! Metrics over labelled sets. Every number here has the meaning written in
//! the operator docs (README, "Evaluation"); tests check them by hand.

use std::collections::BTreeMap;

use serde::Serialize;
use triage_risk::data::Example;
use triage_risk::model::Decision;
use triage_risk::{Label, RiskLevel};

/// One gold example next to the model's answer.
#[derive(Debug, Clone)]
pub struct Scored {
    pub id: String,
    pub source: String,
    pub text: String,
    pub gold_labels: Vec<Label>,
    pub gold_level: RiskLevel,
    /// Score per label, in `Label::ALL` order.
    pub scores: [f32; 5],
    pub flagged: [bool; 5],
    pub level: RiskLevel,
}

impl Scored {
    /// A labelled example next to the model's decision on it.
    pub fn new(e: &Example, d: &Decision) -> Self {
        Self {
            id: e.id.clone(),
            source: e.source.clone(),
            text: e.text.clone(),
            gold_labels: e.labels.clone(),
            gold_level: e.level,
            scores: d.scores.labels,
            flagged: d.flagged,
            level: d.level,
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

#[derive(Debug, Clone, Serialize)]
pub struct SourceMetrics {
    pub n: usize,
    pub macro_f1: f64,
    pub level_accuracy: f64,
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
    pub by_source: BTreeMap<String, SourceMetrics>,
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
    let high = |l: RiskLevel| l >= RiskLevel::Orange;
    let gold_high: Vec<&Scored> = items.iter().filter(|s| high(s.gold_level)).collect();
    let gold_low: Vec<&Scored> = items.iter().filter(|s| !high(s.gold_level)).collect();
    let gold_red = items.iter().filter(|s| s.gold_level == RiskLevel::Red).count();
    let red_hit = items.iter().filter(|s| s.gold_level == RiskLevel::Red && s.level == RiskLevel::Red).count();

    let mut by_source_items: BTreeMap<String, Vec<&Scored>> = BTreeMap::new();
    for s in items {
        by_source_items.entry(s.source.clone()).or_default().push(s);
    }
    let by_source = by_source_items
        .into_iter()
        .map(|(k, v)| {
            let acc = ratio(v.iter().filter(|s| s.level == s.gold_level).count(), v.len());
            (k, SourceMetrics { n: v.len(), macro_f1: macro_f1(&v), level_accuracy: acc })
        })
        .collect();

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
        })
        .collect();

    Metrics {
        n: items.len(),
        macro_f1: macro_f1(&all),
        labels,
        level_accuracy: ratio(items.iter().filter(|s| s.level == s.gold_level).count(), items.len()),
        level_qwk: quadratic_kappa(&level_confusion),
        under_triage: ratio(gold_high.iter().filter(|s| !high(s.level)).count(), gold_high.len()),
        red_recall: ratio(red_hit, gold_red),
        false_alarm: ratio(gold_low.iter().filter(|s| high(s.level)).count(), gold_low.len()),
        level_confusion,
        threshold_sweep,
        by_source,
        worst_misses,
    }
}
