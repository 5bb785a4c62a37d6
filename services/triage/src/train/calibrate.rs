//! Calibration: every threshold of the model, chosen on out-of-fold scores
//! of the training set (labels by F1, the threat bars by an under-triage
//! cap, red by fewest red/orange errors within a red-recall floor, yellow by
//! fewest errors).

use super::TrainConfig;
use crate::data::Example;
use crate::label::{Label, RiskLevel};
use crate::model::{decide, LevelThresholds, Scores, THREAT_LABEL_SUPPORT};

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
pub(super) fn calibrate(scores: &[Scores], ex: &[Example], cfg: &TrainConfig) -> ([f32; 5], LevelThresholds) {
    let mut thresholds = [0.5f32; 5];
    for l in Label::ALL {
        let i = l.index();
        thresholds[i] = label_threshold(scores.iter().map(|s| s.labels[i]).zip(ex.iter().map(|e| e.labels.contains(&l))), cfg.label_tolerance);
    }
    let (t_threat, t_nocue) = threat_thresholds(scores, ex, thresholds, cfg.max_under_triage, cfg.alarm_tolerance);
    let t_red = red_threshold(scores, ex, cfg.max_missed_red);
    let t_yellow = yellow_threshold(scores, ex);
    (thresholds, LevelThresholds { threat: t_threat, threat_without_cue: t_nocue, red: t_red, yellow: t_yellow, label_support: THREAT_LABEL_SUPPORT })
}

/// A label's bar from its out-of-fold (score, gold) pairs: of the grid points
/// whose F1 is within `tolerance` of the best, the one nearest half the best
/// F1 (ties to the higher bar). See `TrainConfig::label_tolerance`.
fn label_threshold(pairs: impl Iterator<Item = (f32, bool)>, tolerance: f64) -> f32 {
    let pairs: Vec<(f32, bool)> = pairs.collect();
    let curve: Vec<(f32, f64)> = grid()
        .map(|t| {
            let (mut tp, mut fp, mut fn_) = (0, 0, 0);
            for &(s, gold) in &pairs {
                match (s >= t, gold) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    _ => {}
                }
            }
            (t, f1(tp, fp, fn_))
        })
        .collect();
    let best = curve.iter().map(|&(_, f)| f).fold(0.0, f64::max);
    let target = best / 2.0;
    curve
        .iter()
        .filter(|&&(_, f)| f >= best - tolerance - 1e-12)
        .min_by(|a, b| (f64::from(a.0) - target).abs().total_cmp(&(f64::from(b.0) - target).abs()).then(b.0.total_cmp(&a.0)))
        .map_or(0.5, |&(t, _)| t)
}

/// The yellow bar, among texts that are no threat: the fewest errors between
/// yellow and blue (ties to the lowest bar).
fn yellow_threshold(scores: &[Scores], ex: &[Example]) -> f32 {
    let errors = |t: f32| {
        scores
            .iter()
            .zip(ex)
            .filter(|(s, e)| e.level <= RiskLevel::Yellow && (s.yellow >= t) != (e.level == RiskLevel::Yellow))
            .count()
    };
    grid().min_by_key(|&t| errors(t)).unwrap_or(0.5)
}

/// The red bar: of the grid points that leave at most `max_missed` of the
/// gold red texts that may be red below it, the one with the fewest errors
/// between red and orange (gold reds below it and gold oranges that may be
/// red at or above it), ties to the highest; the lowest point if none is
/// within the cap.
///
/// Up to risk-1.10's first build the bar was simply the highest within the
/// cap. A lexicon change that read one more red well then let it rise from
/// 0.19 to 0.20, a step that out of fold dropped two gold reds (both at
/// 0.197) to spare one orange: the cap allowed it, and nobody running the
/// service would take that trade. Counting both errors alike keeps every
/// step up that spares at least as many oranges as it drops reds.
fn red_threshold(scores: &[Scores], ex: &[Example], max_missed: f64) -> f32 {
    // Texts that may not be red (`Scores::may_be_red`) stay orange whatever
    // the bar, so they say nothing about where it should sit.
    let red_scores = |level: RiskLevel| -> Vec<f32> {
        scores.iter().zip(ex).filter(|(s, e)| e.level == level && s.may_be_red()).map(|(s, _)| s.red).collect()
    };
    let (reds, oranges) = (red_scores(RiskLevel::Red), red_scores(RiskLevel::Orange));
    let missed = |t: f32| reds.iter().filter(|&&r| r < t).count();
    let total = reds.len().max(1) as f64;
    let errors = |t: f32| missed(t) + oranges.iter().filter(|&&r| r >= t).count();
    grid()
        .filter(|&t| missed(t) as f64 / total <= max_missed + 1e-9)
        .min_by(|&a, &b| errors(a).cmp(&errors(b)).then(b.total_cmp(&a)))
        .unwrap_or(0.05)
}

/// The threat thresholds for texts with and without a threat cue, chosen
/// together: of the pairs whose out-of-fold under-triage is within
/// `max_under_triage`, those whose false alarms are within `tolerance` (a
/// share of the gold blue/yellow texts) of the fewest, and that miss no more
/// than the fewest-alarm pairs do, are tied; of those, the highest cue bar,
/// then the lowest no-cue bar, the fewest false alarms and the least
/// under-triage. If no pair is within the cap, the pair with the least
/// under-triage (then alarms, then the lower thresholds).
///
/// The alarm count is flat across a wide range of pairs, and the single
/// fewest moved on a one-text difference: risk-1.6's lexicon (a handful of
/// texts' cues changed) moved it from 0.52 / 0.26 to 0.34 / 0.30, one false
/// alarm apart out of fold, while real message-board posts, where threats
/// are far rarer than in the training set, went from 17 to 23 of 495 at
/// orange or red. Among pairs the training set cannot tell apart, the higher
/// cue bar is the one a lower base rate of threats calls for.
///
/// A cost ratio between the two errors was used before (risk-1.1); on a flat
/// cost curve a small change in the data moved it between operating points
/// far apart, while a cap names the point the service is held to.
///
/// The bar without a cue is never above the bar with one, and among tied
/// pairs it is the lowest. Texts without a cue are where threats worded
/// unlike the lexicon land (other writers' implicit threats), and the more of
/// the training threats the lexicon names, the fewer are left there to
/// calibrate on (12 of 371 in risk-1.4's set, 4 in risk-1.7's): the
/// alarm-fewest bar then sits just under those few. Risk-1.4's came out at
/// 0.54 against 0.40 with a cue and missed the standard's kind of implicit
/// threat ("…冬天天干物燥，哪天出点什么事可别赖我"); risk-1.7's, taking the highest
/// tied no-cue bar, came out at the cue bar (0.51) and missed "包工头欠了我两年工资
/// 不给，他新买的那辆车就停在小区楼下，晚上也没人看着". So the alarm tolerance is
/// spent on that side: the cue bar as high as the tie allows, the no-cue
/// bar as low.
///
/// The bars are searched on the threat head's own calls, before the label
/// support rule (`THREAT_LABEL_SUPPORT`) vetoes the unsupported ones. Searched
/// with the veto, the alarms it removes widened the tie, and risk-1.10's
/// first training spent them on a no-cue bar of 0.14 and a cue bar of 0.66:
/// by writer that missed 1.6 % of the threats against 0.5 % at the bars found
/// without it (0.54 / 0.35), with more false alarms too (4.2 % against 3.6 %;
/// EVALUATION.md, risk-1.10).
fn threat_thresholds(scores: &[Scores], ex: &[Example], thresholds: [f32; 5], max_under_triage: f64, tolerance: f64) -> (f32, f32) {
    let high = |l: RiskLevel| l >= RiskLevel::Orange;
    let n_high = ex.iter().filter(|e| high(e.level)).count();
    let (gold_high, gold_low) = (n_high.max(1) as f64, (ex.len() - n_high) as f64);
    // A text's threat call depends on one of the two thresholds only (which
    // one, by whether a cue fired), so each group's misses and false alarms
    // are counted per threshold once and the pairs are sums.
    let counts = |with_cue: bool| -> Vec<(f32, usize, usize)> {
        grid()
            .map(|t| {
                let lt = LevelThresholds { threat: t, threat_without_cue: t, red: 0.5, yellow: 0.5, label_support: 0.0 };
                let (mut missed, mut alarms) = (0, 0);
                for (s, e) in scores.iter().zip(ex).filter(|(s, _)| s.threat_cue == with_cue) {
                    match (high(e.level), high(decide(*s, thresholds, lt).level)) {
                        (true, false) => missed += 1,
                        (false, true) => alarms += 1,
                        _ => {}
                    }
                }
                (t, missed, alarms)
            })
            .collect()
    };
    let (cue, no_cue) = (counts(true), counts(false));
    // Every pair (cue bar, no-cue bar, misses, alarms), the no-cue bar no higher.
    let pairs: Vec<(f32, f32, usize, usize)> = cue
        .iter()
        .flat_map(|&(tc, mc, ac)| no_cue.iter().filter(move |(tn, _, _)| *tn <= tc).map(move |&(tn, mn, an)| (tc, tn, mc + mn, ac + an)))
        .collect();
    let within: Vec<_> = pairs.iter().filter(|p| p.2 as f64 / gold_high <= max_under_triage + 1e-9).collect();
    let Some(fewest) = within.iter().map(|p| p.3).min() else {
        // Nothing within the cap: the fewest misses, then alarms, then the lower bars.
        let key = |p: &&(f32, f32, usize, usize)| (p.2, p.3);
        return pairs.iter().min_by_key(key).map_or((0.5, 0.5), |p| (p.0, p.1));
    };
    // The misses of the fewest-alarm pairs: a tied pair may not miss more
    // (the tolerance spends no under-triage), nor is it there to buy fewer
    // misses with more alarms.
    let misses = within.iter().filter(|p| p.3 == fewest).map(|p| p.2).min().unwrap_or(0);
    let tied = within.into_iter().filter(|p| (p.3 - fewest) as f64 <= tolerance * gold_low + 1e-9 && p.2 <= misses);
    // The highest cue bar, then the lowest no-cue bar, fewest alarms, fewest misses.
    tied.max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)).then(b.3.cmp(&a.3)).then(b.2.cmp(&a.2)))
        .map_or((0.5, 0.5), |p| (p.0, p.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tests::{close, example, scores, texts};

    /// Best F1 0.952 for bars 0.11–0.30, and 0.947 (one text less) for
    /// 0.61–0.90: within the tolerance the bar nearest half the best F1
    /// (0.476) is 0.61; with none, the best points' nearest, 0.30.
    #[test]
    fn a_label_bar_is_near_half_the_best_f1_among_near_ties() {
        let mut pairs = vec![(0.9f32, true); 9];
        pairs.extend([(0.3, true), (0.6, false)]);
        pairs.extend(vec![(0.1, false); 10]);
        let (near, best) = (label_threshold(pairs.iter().copied(), 0.01), label_threshold(pairs.iter().copied(), 0.0));
        assert!(close(near, 0.61) && close(best, 0.30), "{near} {best}");
    }

    #[test]
    fn the_red_bar_keeps_red_recall_within_the_cap_and_rises_only_to_spare_oranges() {
        // 20 gold red at 0.10, 0.20, …, (two at each), 10 orange at 0.90.
        let mut s = Vec::new();
        let mut ex = Vec::new();
        for k in 0..20 {
            s.push(Scores { red: 0.1 * (1 + k / 2) as f32, ..scores(0.9, true) });
            ex.push(example(RiskLevel::Red));
        }
        for _ in 0..10 {
            s.push(Scores { red: 0.9, ..scores(0.9, true) });
            ex.push(example(RiskLevel::Orange));
        }
        // Cap 0: every red kept, so the bar sits at the lowest red score.
        assert!(close(red_threshold(&s, &ex, 0.0), 0.10), "{}", red_threshold(&s, &ex, 0.0));
        // Cap 10 %: two reds may fall below, but rising past them spares no
        // orange (all at 0.90, above every bar within the cap): it stays.
        assert!(close(red_threshold(&s, &ex, 0.1), 0.10), "{}", red_threshold(&s, &ex, 0.1));
        // One orange at 0.15: rising to 0.20 drops two reds to spare it, a
        // trade the bar does not take.
        let mut s2 = s.clone();
        let mut ex2 = ex.clone();
        s2.push(Scores { red: 0.15, ..scores(0.9, true) });
        ex2.push(example(RiskLevel::Orange));
        assert!(close(red_threshold(&s2, &ex2, 0.1), 0.10), "{}", red_threshold(&s2, &ex2, 0.1));
        // Three there: the step spares three for two, and the bar rises as
        // far as the cap lets it (to the next red score).
        for _ in 0..2 {
            s2.push(Scores { red: 0.15, ..scores(0.9, true) });
            ex2.push(example(RiskLevel::Orange));
        }
        assert!(close(red_threshold(&s2, &ex2, 0.1), 0.20), "{}", red_threshold(&s2, &ex2, 0.1));
        // The cap still binds: cap 0 keeps every red whatever the oranges.
        assert!(close(red_threshold(&s2, &ex2, 0.0), 0.10), "{}", red_threshold(&s2, &ex2, 0.0));
        // Reds with no specific stay orange whatever the bar, so they do not
        // pull it down either: without the two at 0.10, cap 0 sits at 0.20.
        for x in &mut s[..2] {
            x.threat_with_specific = false;
        }
        assert!(close(red_threshold(&s, &ex, 0.0), 0.20), "{}", red_threshold(&s, &ex, 0.0));
    }

    #[test]
    fn threat_thresholds_keep_under_triage_within_the_cap_with_fewest_alarms_then_the_highest_cue_bar() {
        // Without a cue: threats score 0.70 / 0.60 / 0.40 / 0.20 (10 texts at
        // each), non-threats 0.50 (10) and 0.10 (60). With a cue: 10 threats
        // at 0.90, 10 non-threats at 0.30.
        let (mut s, mut ex) = texts(&[
            (0.70, RiskLevel::Orange, false, 10),
            (0.60, RiskLevel::Red, false, 10),
            (0.40, RiskLevel::Orange, false, 10),
            (0.20, RiskLevel::Orange, false, 10),
            (0.50, RiskLevel::Yellow, false, 10),
            (0.10, RiskLevel::Blue, false, 60),
            (0.90, RiskLevel::Red, true, 10),
            (0.30, RiskLevel::Blue, true, 10),
        ]);
        let t = [0.99f32; 5];
        // 50 gold threats. Cap 0: every threat caught, so the no-cue bar is at
        // most 0.20 and lets the ten 0.50 non-threats through. Every cue bar
        // from 0.31 to 0.90 clears the 0.30 non-threats and keeps the 0.90
        // threats: tied, the highest is taken, and the lowest no-cue bar that
        // adds no alarm (0.11, over the 0.10 non-threats).
        let (tc, tn) = threat_thresholds(&s, &ex, t, 0.0, 0.0);
        assert!(close(tn, 0.11) && close(tc, 0.90), "{tc} {tn}");
        // Cap 20 %: missing the 0.20 threats would not remove an alarm, so
        // nothing changes.
        assert_eq!(threat_thresholds(&s, &ex, t, 0.2, 0.0), (tc, tn));
        // Cap 40 %: missing the 0.20 and 0.40 threats (20 of 50) removes all
        // ten alarms; the no-cue bar sits just over the 0.50 non-threats, and
        // the cue bar stays above it.
        let (tc, tn) = threat_thresholds(&s, &ex, t, 0.4, 0.0);
        assert!(close(tn, 0.51) && close(tc, 0.90), "{tc} {tn}");
        // With cue threats at 0.45 the cue bar cannot rise past them within a
        // 40 % cap that is already spent, so the no-cue bar stays at or below
        // it, and of the pairs with the fewest alarms the ones that miss
        // nothing win over higher cue bars that would miss the 0.45 threats.
        let mut s2 = s.clone();
        let mut ex2 = ex.clone();
        for _ in 0..10 {
            s2.push(scores(0.45, true));
            ex2.push(example(RiskLevel::Orange));
        }
        let (tc, tn) = threat_thresholds(&s2, &ex2, t, 0.4, 0.0);
        assert!(close(tc, 0.45) && close(tn, 0.11), "{tc} {tn}");
        // A cue threat scoring 0.05: with cap 0 the cue bar comes down to it,
        // alarms and all.
        s.push(scores(0.05, true));
        ex.push(example(RiskLevel::Red));
        let (tc, _) = threat_thresholds(&s, &ex, t, 0.0, 0.0);
        assert!(close(tc, 0.05), "{tc}");
        // A threat below every bar makes cap 0 unreachable: the pair with the
        // fewest misses (then alarms) is taken instead, the no-cue bar no
        // higher than the cue bar.
        s.push(scores(0.01, false));
        ex.push(example(RiskLevel::Orange));
        let (tc, tn) = threat_thresholds(&s, &ex, t, 0.0, 0.0);
        assert!(close(tc, 0.05) && close(tn, 0.05), "{tc} {tn}");
    }

    #[test]
    fn near_tied_threat_bars_go_to_the_higher_cue_bar() {
        // With a cue: one threat at 0.40, nine at 0.90, twenty non-threats at
        // 0.20. Without: one threat at 0.25, nine at 0.70, three non-threats
        // at 0.28, forty at 0.10. A cap of 5 % (one of twenty) lets one
        // threat go: the 0.25 one (no-cue bar over 0.28, no alarm at all) or
        // the 0.40 one (cue bar over 0.40, the no-cue bar at most 0.25 to
        // keep the 0.25 threat, three alarms).
        let (s, ex) = texts(&[
            (0.40, RiskLevel::Orange, true, 1),
            (0.90, RiskLevel::Red, true, 9),
            (0.20, RiskLevel::Blue, true, 20),
            (0.25, RiskLevel::Orange, false, 1),
            (0.70, RiskLevel::Orange, false, 9),
            (0.28, RiskLevel::Yellow, false, 3),
            (0.10, RiskLevel::Blue, false, 40),
        ]);
        let t = [0.99f32; 5];
        // No tolerance: the fewest alarms (none), so the cue bar at 0.40 and
        // the no-cue bar just over the 0.28 non-threats.
        let (tc, tn) = threat_thresholds(&s, &ex, t, 0.05, 0.0);
        assert!(close(tc, 0.40) && close(tn, 0.29), "{tc} {tn}");
        // Three alarms of 63 non-threats (5 %) tie the two, with the same one
        // miss: the higher cue bar wins, and the no-cue bar goes as low as the
        // tie allows (over the 0.10 non-threats).
        let (tc, tn) = threat_thresholds(&s, &ex, t, 0.05, 0.05);
        assert!(close(tc, 0.90) && close(tn, 0.11), "{tc} {tn}");
        // Two alarms (3 %) do not.
        let (tc, tn) = threat_thresholds(&s, &ex, t, 0.05, 0.03);
        assert!(close(tc, 0.40) && close(tn, 0.29), "{tc} {tn}");
    }
}
