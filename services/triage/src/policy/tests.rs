use super::*;

const NOW: i64 = 1_800_000_000;

fn facts(base: RiskLevel) -> Facts {
    Facts {
        base_level: base,
        flagged: vec![],
        now: NOW,
        workflow: Workflow::default(),
        similar: vec![],
        same_reporter: vec![],
    }
}

fn past(id: &str, score: f32, risk_level: RiskLevel, days_ago: i64) -> PastCase {
    PastCase { case_id: id.into(), score, risk_level, received_at: Some(NOW - days_ago * DAY) }
}

/// The final level and the raises, as the older tests read them.
fn run(p: &Policy, f: &Facts) -> (RiskLevel, Vec<Escalation>) {
    let o = p.escalate(f);
    (o.level, o.escalations)
}

fn rules(e: &[Escalation]) -> Vec<&str> {
    e.iter().map(|x| x.rule.as_str()).collect()
}

#[test]
fn the_shipped_policy_parses_and_asks_for_its_lookups() {
    let p = Policy::builtin().unwrap();
    let l = p.lookups();
    assert_eq!(l.similar_top_k, 5);
    assert_eq!(l.repeat, Some((90, threshold(&p, "repeat_petition"), 10)));
    // The similar list must reach down to every rule that reads it.
    assert!(l.similar_min_score <= threshold(&p, "similar_escalated"));
}

#[test]
fn nothing_fires_without_context() {
    let p = Policy::builtin().unwrap();
    for base in RiskLevel::ALL {
        let (level, e) = run(&p, &facts(base));
        assert_eq!(level, base);
        assert!(e.is_empty());
    }
}

#[test]
fn repeat_petitions_need_enough_recent_similar_cases() {
    let p = Policy::builtin().unwrap();
    let mut f = facts(RiskLevel::Blue);
    f.same_reporter = vec![past("a", 0.95, RiskLevel::Blue, 10)];
    assert!(run(&p, &f).1.is_empty(), "one earlier case is not a repeat under min_cases = 2");
    f.same_reporter.push(past("b", 0.80, RiskLevel::Blue, 5));
    assert!(run(&p, &f).1.is_empty(), "a dissimilar case does not count");
    f.same_reporter.push(past("c", 0.97, RiskLevel::Blue, 200));
    assert!(run(&p, &f).1.is_empty(), "a case older than within_days does not count");
    f.same_reporter.push(past("d", 0.96, RiskLevel::Blue, 30));
    let (level, e) = run(&p, &f);
    assert_eq!(level, RiskLevel::Yellow);
    assert_eq!(rules(&e), ["repeat_petition"]);
    assert_eq!((e[0].from, e[0].to), (RiskLevel::Blue, RiskLevel::Yellow));
    assert!(e[0].reason.contains("重复信访"));
}

#[test]
fn a_similar_case_that_escalated_raises_but_not_past_its_cap() {
    let p = Policy::builtin().unwrap();
    let s = threshold(&p, "similar_escalated");
    let mut f = facts(RiskLevel::Yellow);
    f.similar = vec![past("x", 0.99, RiskLevel::Yellow, 3), past("y", s - 0.01, RiskLevel::Red, 3)];
    assert!(run(&p, &f).1.is_empty(), "the red case is below min_similarity, the close one never escalated");
    f.similar.push(past("z", s + 0.01, RiskLevel::Red, 3));
    let (level, e) = run(&p, &f);
    assert_eq!((level, rules(&e)), (RiskLevel::Orange, vec!["similar_escalated"]));
    assert!(e[0].reason.contains('z'));
    // Already at the cap: no raise, and never a lowering.
    f.base_level = RiskLevel::Red;
    assert_eq!(run(&p, &f), (RiskLevel::Red, vec![]));
}

#[test]
fn only_the_latest_overdue_time_limit_raises() {
    let p = Policy::builtin().unwrap();
    let mut f = facts(RiskLevel::Blue);
    f.workflow.received_at = Some(NOW - 10 * DAY);
    f.workflow.accepted_at = Some(NOW - 10 * DAY + 3600);
    // Accepted in time, not met, not resolved after 10 days: `resolve` (7 days) is the latest passed.
    let (level, e) = run(&p, &f);
    assert_eq!((level, rules(&e)), (RiskLevel::Yellow, vec!["time_limit_resolve"]));
    assert!(e[0].reason.contains("7日内解决"));
    // Inside every limit: nothing.
    f.workflow.received_at = Some(NOW - 12 * 3600);
    assert!(run(&p, &f).1.is_empty());
    // Accepted late (2 days after receipt) but everything else still in time.
    f.workflow.received_at = Some(NOW - 2 * DAY - 3600);
    f.workflow.accepted_at = Some(NOW - 3600);
    assert_eq!(rules(&run(&p, &f).1), ["time_limit_accept"]);
}

#[test]
fn collective_action_on_livelihood_raises_to_red_and_rules_stack_in_order() {
    let p = Policy::builtin().unwrap();
    let mut f = facts(RiskLevel::Orange);
    f.flagged = vec![Label::Collective];
    assert!(run(&p, &f).1.is_empty());
    f.flagged.push(Label::Livelihood);
    let (level, e) = run(&p, &f);
    assert_eq!((level, rules(&e)), (RiskLevel::Red, vec!["collective_livelihood"]));
    // A repeat petition first takes blue to yellow, then the collective rule brings it to at least orange.
    f.base_level = RiskLevel::Blue;
    f.same_reporter = vec![past("a", 0.95, RiskLevel::Blue, 1), past("b", 0.95, RiskLevel::Blue, 2)];
    let (level, e) = run(&p, &f);
    assert_eq!(rules(&e), ["repeat_petition", "collective_livelihood"]);
    assert_eq!(level, RiskLevel::Orange);
    assert!(e.windows(2).all(|w| w[0].to == w[1].from && w[1].to > w[1].from));
}

#[test]
fn bad_policies_are_refused() {
    let ok = DEFAULT_POLICY;
    assert!(Policy::from_toml(&ok.replace("id = \"similar_escalated\"", "id = \"repeat_petition\"")).is_err());
    assert!(Policy::from_toml(&ok.replace("days = 15", "days = 0")).is_err());
    assert!(Policy::from_toml(&ok.replace("at_least = \"orange\"", "at_least = \"purple\"")).is_err());
    assert!(Policy::from_toml(&ok.replace("kind = \"time_limit\"", "kind = \"phase_of_moon\"")).is_err());
    assert!(Policy::from_toml("version = 1").is_err());
}

/// The shipped `min_similarity` of a rule, so these tests follow the calibrated thresholds.
fn threshold(p: &Policy, id: &str) -> f32 {
    p.rules.iter().find(|r| r.id == id).and_then(Rule::min_similarity).unwrap()
}

#[test]
fn a_time_limit_raise_is_not_risk_and_is_not_passed_on() {
    let p = Policy::builtin().unwrap();
    let mut f = facts(RiskLevel::Yellow);
    f.workflow.received_at = Some(NOW - 6 * DAY);
    let o = p.escalate(&f);
    assert_eq!((o.level, o.risk_level), (RiskLevel::Orange, RiskLevel::Yellow));
    assert_eq!(rules(&o.escalations), ["time_limit_meet"]);
    assert!(!o.escalations[0].risk && o.escalations[0].case_ids.is_empty());

    // A near-duplicate of that case, read at its risk level (yellow), is not raised.
    let s = threshold(&p, "similar_escalated");
    let mut g = facts(RiskLevel::Yellow);
    g.similar = vec![past("late-1", (s + 0.01).min(1.0), o.risk_level, 1)];
    assert!(p.escalate(&g).escalations.is_empty());
}

#[test]
fn a_risk_raise_is_passed_on_and_names_its_past_cases() {
    let p = Policy::builtin().unwrap();
    // A yellow text raised to orange by a repeat petition: its risk level is orange.
    let r = threshold(&p, "repeat_petition");
    let mut f = facts(RiskLevel::Yellow);
    f.same_reporter =
        vec![past("r-1", r, RiskLevel::Yellow, 20), past("r-2", (r + 0.02).min(1.0), RiskLevel::Yellow, 10)];
    let o = p.escalate(&f);
    assert_eq!((o.level, o.risk_level), (RiskLevel::Orange, RiskLevel::Orange));
    assert_eq!(o.escalations[0].case_ids, ["r-1", "r-2"]);
    assert!(o.escalations[0].risk);

    let s = threshold(&p, "similar_escalated");
    let mut g = facts(RiskLevel::Yellow);
    g.similar = vec![past("r-3", s, o.risk_level, 1), past("other", (s - 0.05).max(-1.0), RiskLevel::Red, 1)];
    let o2 = p.escalate(&g);
    assert_eq!(rules(&o2.escalations), ["similar_escalated"]);
    assert_eq!(o2.escalations[0].case_ids, ["r-3"], "only past cases over the threshold are named");
    assert!(o2.escalations[0].reason.contains("r-3"));
    // One hop: that raise is not risk, so the raised case does not pass it on.
    assert_eq!((o2.level, o2.risk_level, o2.escalations[0].risk), (RiskLevel::Orange, RiskLevel::Yellow, false));
    let mut h = facts(RiskLevel::Yellow);
    h.similar = vec![past("raised-by-neighbour", 0.99, o2.risk_level, 1)];
    assert!(p.escalate(&h).escalations.is_empty());
}

#[test]
fn risk_rules_apply_before_time_limits_whatever_the_file_order() {
    // The time limit comes first in the file; the collective raise is still
    // part of the risk level, and the time limit raises on top of it.
    let p = Policy::from_toml(
        r#"
version = 1
[similar]
top_k = 5
min_score = 0.9
[[rule]]
id = "late"
kind = "time_limit"
stage = "close"
days = 15
at_most = "red"
[[rule]]
id = "crowd"
kind = "collective_livelihood"
at_most = "red"
"#,
    )
    .unwrap();
    let mut f = facts(RiskLevel::Yellow);
    f.flagged = vec![Label::Collective, Label::Livelihood];
    f.workflow.received_at = Some(NOW - 20 * DAY);
    let o = p.escalate(&f);
    assert_eq!(rules(&o.escalations), ["crowd", "late"]);
    assert_eq!((o.risk_level, o.level), (RiskLevel::Orange, RiskLevel::Red));
    assert_eq!(o.escalations.iter().map(|e| e.risk).collect::<Vec<_>>(), [true, false]);
}

#[test]
fn a_time_limit_cannot_be_declared_risk() {
    let meet = "stage = \"meet\"\ndays = 3\nraise_by = 1\nat_most = \"orange\"\nrisk = false";
    assert!(DEFAULT_POLICY.contains(meet));
    let bad = DEFAULT_POLICY.replace(meet, &meet.replace("risk = false", "risk = true"));
    assert!(Policy::from_toml(&bad).unwrap_err().to_string().contains("cannot count as risk"));
    let bad = DEFAULT_POLICY.replace("stage = \"meet\"", "stage = \"meet\"\nprecision = 0.9");
    assert!(Policy::from_toml(&bad).is_err());
}
