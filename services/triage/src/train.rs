//! Training: fit the heads on feature rows, and calibrate every threshold on
//! out-of-fold predictions of k-fold cross-validation over the training set
//! (never on the development set).

use crate::data::Example;
use crate::label::{Label, RiskLevel};
use crate::logreg::{LogReg, LogRegConfig};
use crate::model::{decide, Decision, Head, Heads, LevelThresholds, Scores, Standardiser};

#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    pub seed: u64,
    pub folds: usize,
    pub logreg: LogRegConfig,
    /// Cost of a gold orange/red text predicted blue/yellow, relative to a false alarm.
    pub under_triage_cost: f64,
    /// Cost of a gold red predicted orange, relative to an orange predicted red.
    pub missed_red_cost: f64,
    /// Under-triage cost for texts in which no threat cue fired.
    pub no_cue_under_triage_cost: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self { seed: 20261129, folds: 5, logreg: LogRegConfig::default(), under_triage_cost: 3.0, missed_red_cost: 2.0, no_cue_under_triage_cost: 3.0 }
    }
}

pub struct TrainOutput {
    pub heads: Heads,
    /// Out-of-fold decisions with the calibrated thresholds, in input order.
    pub oof: Vec<Decision>,
}

/// Deterministic shuffle (splitmix64) so a seed reproduces the folds anywhere.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx
}

/// The k folds of `n` rows from `seed`: for each, the rows to fit on
/// (ascending) and the rows held out (every row is held out exactly once).
pub(crate) fn folds(n: usize, k: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let order = shuffled(n, seed);
    let k = k.clamp(2, n.max(2));
    (0..k)
        .map(|f| {
            let held: Vec<usize> = order.iter().copied().skip(f).step_by(k).collect();
            let is_held: std::collections::HashSet<usize> = held.iter().copied().collect();
            let fit_on = (0..n).filter(|i| !is_held.contains(i)).collect();
            (fit_on, held)
        })
        .collect()
}

fn is_threat(e: &Example) -> bool {
    e.labels.iter().any(|l| l.is_threat())
}

/// Fits all heads on the rows `idx` (thresholds left at 0.5).
fn fit(rows: &[Vec<f32>], ex: &[Example], idx: &[usize], cfg: &TrainConfig) -> Heads {
    let standardiser = Standardiser::fit(&idx.iter().map(|&i| rows[i].clone()).collect::<Vec<_>>());
    let xs: Vec<Vec<f32>> = idx.iter().map(|&i| standardiser.apply(&rows[i])).collect();
    let head = |sel: &dyn Fn(&Example) -> Option<bool>| {
        let (x, y): (Vec<Vec<f32>>, Vec<bool>) =
            idx.iter().zip(&xs).filter_map(|(&i, x)| sel(&ex[i]).map(|y| (x.clone(), y))).unzip();
        Head { model: LogReg::fit(&x, &y, cfg.logreg), threshold: 0.5 }
    };
    let labels = Label::ALL.iter().map(|l| head(&|e| Some(e.labels.contains(l)))).collect();
    Heads {
        labels,
        threat: head(&|e| Some(is_threat(e))),
        red: head(&|e| is_threat(e).then_some(e.level == RiskLevel::Red)),
        yellow: head(&|e| (!is_threat(e)).then_some(e.level == RiskLevel::Yellow)),
        threat_without_cue: 0.5,
        standardiser,
    }
}

fn grid() -> impl Iterator<Item = f32> {
    (5..=95).map(|k| k as f32 / 100.0)
}

fn f1(tp: usize, fp: usize, fn_: usize) -> f64 {
    if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    }
}

/// Calibrates the thresholds on out-of-fold scores.
fn calibrate(scores: &[Scores], ex: &[Example], cfg: &TrainConfig) -> ([f32; 5], LevelThresholds) {
    let mut thresholds = [0.5f32; 5];
    for l in Label::ALL {
        let i = l.index();
        thresholds[i] = grid()
            .max_by(|&a, &b| {
                let score = |t: f32| {
                    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
                    for (s, e) in scores.iter().zip(ex) {
                        match (s.labels[i] >= t, e.labels.contains(&l)) {
                            (true, true) => tp += 1,
                            (true, false) => fp += 1,
                            (false, true) => fn_ += 1,
                            _ => {}
                        }
                    }
                    f1(tp, fp, fn_)
                };
                score(a).total_cmp(&score(b))
            })
            .unwrap_or(0.5);
    }
    let high = |l: RiskLevel| l >= RiskLevel::Orange;
    // Threat / no threat, with and without a threat cue: weighted under-triage
    // against false alarm on each group (ties go to the lower threshold).
    let threat_cost = |with_cue: bool, t: f32| {
        let lt = LevelThresholds { threat: t, threat_without_cue: t, red: 0.5, yellow: 0.5 };
        scores
            .iter()
            .zip(ex)
            .filter(|(s, _)| s.threat_cue == with_cue)
            .map(|(s, e)| match (high(e.level), high(decide(*s, thresholds, lt).level)) {
                // Texts without any threat cue get their own threshold and
                // cost (`no_cue_under_triage_cost`): lowering the cost trades
                // under-triage for fewer false alarms (EVALUATION.md).
                (true, false) if with_cue => cfg.under_triage_cost,
                (true, false) => cfg.no_cue_under_triage_cost,
                (false, true) => 1.0,
                _ => 0.0,
            })
            .sum::<f64>()
    };
    let pick = |with_cue: bool| {
        grid().min_by(|&a, &b| threat_cost(with_cue, a).total_cmp(&threat_cost(with_cue, b))).unwrap_or(0.5)
    };
    let (t_threat, t_nocue) = (pick(true), pick(false));
    let best = |gold_high: bool, pos: RiskLevel, neg: RiskLevel, miss_cost: f64| {
        grid()
            .min_by(|&a, &b| {
                let cost = |t: f32| {
                    scores
                        .iter()
                        .zip(ex)
                        .filter(|(_, e)| high(e.level) == gold_high)
                        .map(|(s, e)| {
                            let p = if gold_high { s.red } else { s.yellow } >= t;
                            match (e.level == pos, p) {
                                (true, false) => miss_cost,
                                (false, true) if e.level == neg => 1.0,
                                _ => 0.0,
                            }
                        })
                        .sum::<f64>()
                };
                cost(a).total_cmp(&cost(b))
            })
            .unwrap_or(0.5)
    };
    let t_red = best(true, RiskLevel::Red, RiskLevel::Orange, cfg.missed_red_cost);
    let t_yellow = best(false, RiskLevel::Yellow, RiskLevel::Blue, 1.0);
    (thresholds, LevelThresholds { threat: t_threat, threat_without_cue: t_nocue, red: t_red, yellow: t_yellow })
}

/// Cross-validates, calibrates, then fits the final heads on all rows.
pub fn train(rows: &[Vec<f32>], ex: &[Example], cfg: &TrainConfig) -> TrainOutput {
    assert_eq!(rows.len(), ex.len());
    let n = rows.len();
    let mut oof_scores: Vec<Option<Scores>> = vec![None; n];
    for (train_idx, held) in folds(n, cfg.folds, cfg.seed) {
        let heads = fit(rows, ex, &train_idx, cfg);
        for &i in &held {
            oof_scores[i] = Some(heads.scores(&rows[i]));
        }
    }
    let oof_scores: Vec<Scores> = oof_scores.into_iter().map(|s| s.expect("every row is held out once")).collect();
    let (thresholds, lt) = calibrate(&oof_scores, ex, cfg);
    let oof = oof_scores.iter().map(|&s| decide(s, thresholds, lt)).collect();

    let all: Vec<usize> = (0..n).collect();
    let mut heads = fit(rows, ex, &all, cfg);
    for (h, t) in heads.labels.iter_mut().zip(thresholds) {
        h.threshold = t;
    }
    heads.threat.threshold = lt.threat;
    heads.threat_without_cue = lt.threat_without_cue;
    heads.red.threshold = lt.red;
    heads.yellow.threshold = lt.yellow;
    TrainOutput { heads, oof }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_a_deterministic_permutation() {
        let a = shuffled(100, 7);
        assert_eq!(a, shuffled(100, 7));
        assert_ne!(a, shuffled(100, 8));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        let mut held: Vec<usize> = Vec::new();
        for (fit_on, out) in folds(100, 5, 7) {
            assert_eq!(fit_on.len() + out.len(), 100);
            assert!(fit_on.windows(2).all(|w| w[0] < w[1]) && out.iter().all(|i| !fit_on.contains(i)));
            held.extend(out);
        }
        held.sort();
        assert_eq!(held, (0..100).collect::<Vec<_>>());
    }
}
