//! Metric code against values computed by hand (worked in the comments).

use triage_eval::{compute, Scored};
use triage_risk::{Label, RiskLevel};

fn item(id: &str, gold: &[Label], gold_level: RiskLevel, pred: &[Label], level: RiskLevel, source: &str) -> Scored {
    let mut flagged = [false; 5];
    let mut scores = [0.1f32; 5];
    for l in pred {
        flagged[l.index()] = true;
        scores[l.index()] = 0.9;
    }
    Scored {
        id: id.into(),
        source: source.into(),
        persona: Some(if id.parse::<u32>().unwrap_or(0) % 2 == 0 { "farmer" } else { "lawyer" }.into()),
        form: None,
        text: format!("text {id}"),
        gold_labels: gold.to_vec(),
        gold_level,
        scores,
        flagged,
        level,
        evidence: Vec::new(),
    }
}

fn six() -> Vec<Scored> {
    use Label::*;
    use RiskLevel::*;
    vec![
        item("1", &[Violence], Red, &[Violence], Red, "hotline"),
        item("2", &[Violence, Retaliation], Orange, &[Violence], Yellow, "hotline"),
        item("3", &[], Blue, &[Retaliation], Orange, "petition"),
        item("4", &[Livelihood], Yellow, &[Livelihood], Yellow, "petition"),
        item("5", &[SelfHarm], Red, &[SelfHarm], Orange, "chat"),
        item("6", &[Livelihood], Blue, &[], Blue, "chat"),
    ]
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn per_label_and_macro_f1() {
    let m = compute(&six());
    assert_eq!(m.n, 6);
    // violence: tp 2 → 1/1/1; retaliation: tp 0, fp 1, fn 1 → 0; self_harm 1;
    // collective: no gold, no prediction → 0; livelihood: tp 1, fn 1 → P 1, R .5, F1 2/3.
    close(m.labels["violence"].f1, 1.0);
    close(m.labels["retaliation"].f1, 0.0);
    close(m.labels["self_harm"].f1, 1.0);
    close(m.labels["collective"].f1, 0.0);
    close(m.labels["livelihood"].precision, 1.0);
    close(m.labels["livelihood"].recall, 0.5);
    close(m.labels["livelihood"].f1, 2.0 / 3.0);
    assert_eq!(m.labels["livelihood"].support, 2);
    close(m.macro_f1, (1.0 + 0.0 + 1.0 + 0.0 + 2.0 / 3.0) / 5.0);
}

#[test]
fn level_metrics() {
    let m = compute(&six());
    assert_eq!(m.level_confusion, [[1, 0, 1, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]]);
    close(m.level_accuracy, 0.5);
    // Gold red/orange: 1, 2, 5; item 2 fell to yellow.
    close(m.under_triage, 1.0 / 3.0);
    // Gold red: 1, 5; only 1 predicted red.
    close(m.red_recall, 0.5);
    // Gold blue/yellow: 3, 4, 6; item 3 raised to orange.
    close(m.false_alarm, 1.0 / 3.0);
    // QWK: observed weighted disagreement (4 + 1 + 1)/9 = 6/9; expected
    // sum (i-j)^2 r_i c_j / (9 n) with r = [2,1,1,2], c = [1,2,2,1] is 90/54;
    // 1 - (6/9)/(90/54) = 0.6.
    close(m.level_qwk, 0.6);
    assert_eq!(m.worst_misses.len(), 1);
    assert_eq!(m.worst_misses[0].id, "2");
}

#[test]
fn sweep_and_sources() {
    let m = compute(&six());
    let v = &m.threshold_sweep["violence"];
    assert_eq!(v.len(), 19);
    // Scores are 0.9 for flagged, 0.1 otherwise: everything flagged at 0.05,
    // the predictions themselves from 0.15 to 0.9, nothing at 0.95.
    close(v[0].recall, 1.0);
    close(v[0].precision, 2.0 / 6.0);
    close(v[10].precision, 1.0);
    assert_eq!(v[18].recall, 0.0);
    assert_eq!(m.by_source.len(), 3);
    close(m.by_source["hotline"].level_accuracy, 0.5);
    assert_eq!(m.by_source["chat"].n, 2);
}

#[test]
fn report_is_self_contained_html() {
    let m = compute(&six());
    let html = triage_eval::report::html(&m, "t <&>", "v1");
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<svg") && html.contains("t &lt;&amp;&gt;"));
    for forbidden in ["<script", "http://", "https://", "<link"] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    assert!(html.contains("text 2"), "worst miss listed");
}

#[test]
fn groups_by_persona_and_none_without_forms() {
    let m = compute(&six());
    // Even ids are farmers: 2 (orange→yellow), 4 (yellow ok), 6 (blue ok).
    assert_eq!(m.by_persona["farmer"].n, 3);
    close(m.by_persona["farmer"].level_accuracy, 2.0 / 3.0);
    close(m.by_persona["farmer"].under_triage, 1.0);
    // Odd ids are lawyers: 1 (red ok), 3 (blue→orange), 5 (red→orange).
    close(m.by_persona["lawyer"].false_alarm, 1.0);
    close(m.by_persona["lawyer"].under_triage, 0.0);
    assert!(m.by_form.is_empty(), "no form keys, no form table");
}

#[test]
fn bootstrap_intervals_hold_the_point_value_and_tighten_with_more_texts() {
    let small = six();
    let big: Vec<Scored> = (0..40).flat_map(|_| six()).collect();
    let m_small = compute(&small);
    let m_big = compute(&big);
    // Same proportions, so the same point values.
    close(m_small.under_triage, m_big.under_triage);
    for m in [&m_small, &m_big] {
        let i = m.intervals.under_triage;
        assert!(i.low <= m.under_triage && m.under_triage <= i.high, "{i:?} vs {}", m.under_triage);
        let f = m.intervals.macro_f1;
        assert!(f.low <= m.macro_f1 + 1e-9 && m.macro_f1 <= f.high + 1e-9, "{f:?}");
    }
    let width = |i: triage_eval::Interval| i.high - i.low;
    assert!(width(m_big.intervals.under_triage) < width(m_small.intervals.under_triage) / 2.0);
    // Fixed seed: the same set gives the same interval.
    assert_eq!(compute(&big).intervals.red_recall, m_big.intervals.red_recall);
}

#[test]
fn a_mean_interval_holds_the_mean_and_tightens_with_more_values() {
    use triage_eval::metrics::{mean_interval, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
    let small: Vec<f64> = (0..20).map(|i| (i % 5) as f64 / 5.0).collect();
    let big: Vec<f64> = (0..2000).map(|i| (i % 5) as f64 / 5.0).collect();
    let mean = 0.4;
    let (a, b) = (
        mean_interval(&small, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
        mean_interval(&big, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
    );
    for i in [a, b] {
        assert!(i.low < mean && mean < i.high, "{i:?}");
    }
    assert!(b.high - b.low < (a.high - a.low) / 5.0, "{a:?} {b:?}");
    // Constant values leave nothing to resample.
    assert_eq!(mean_interval(&[0.5; 30], 100, 1), triage_eval::Interval { low: 0.5, high: 0.5 });
    assert_eq!(mean_interval(&[], 100, 1), triage_eval::Interval { low: 0.0, high: 0.0 });
}
