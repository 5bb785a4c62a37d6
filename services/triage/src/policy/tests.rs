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

fn past(id: &str, score: f32, level: RiskLevel, days_ago: i64) -> PastCase {
    PastCase { case_id: id.into(), score, level, received_at: Some(NOW - days_ago * DAY) }
}

fn rules(e: &[Escalation]) -> Vec<&str> {
    e.iter().map(|x| x.rule.as_str()).collect()
}

#[test]
fn the_shipped_policy_parses_and_asks_for_its_lookups() {
    let p = Policy::builtin().unwrap();
    let l = p.lookups();
    assert_eq!(l.similar_top_k, 5);
    assert_eq!(l.repeat, Some((90, 0.94, 10)));
    assert!(l.similar_min_score <= 0.95);
}

#[test]
fn nothing_fires_without_context() {
    let p = Policy::builtin().unwrap();
    for base in RiskLevel::ALL {
        let (level, e) = p.escalate(&facts(base));
        assert_eq!(level, base);
        assert!(e.is_empty());
    }
}

#[test]
fn repeat_petitions_need_enough_recent_similar_cases() {
    let p = Policy::builtin().unwrap();
    let mut f = facts(RiskLevel::Blue);
    f.same_reporter = vec![past("a", 0.95, RiskLevel::Blue, 10)];
    assert!(p.escalate(&f).1.is_empty(), "one earlier case is not a repeat under min_cases = 2");
    f.same_reporter.push(past("b", 0.80, RiskLevel::Blue, 5));
    assert!(p.escalate(&f).1.is_empty(), "a dissimilar case does not count");
    f.same_reporter.push(past("c", 0.97, RiskLevel::Blue, 200));
    assert!(p.escalate(&f).1.is_empty(), "a case older than within_days does not count");
    f.same_reporter.push(past("d", 0.96, RiskLevel::Blue, 30));
    let (level, e) = p.escalate(&f);
    assert_eq!(level, RiskLevel::Yellow);
    assert_eq!(rules(&e), ["repeat_petition"]);
    assert_eq!((e[0].from, e[0].to), (RiskLevel::Blue, RiskLevel::Yellow));
    assert!(e[0].reason.contains("重复信访"));
}

#[test]
fn a_similar_case_that_escalated_raises_but_not_past_its_cap() {
    let p = Policy::builtin().unwrap();
    let mut f = facts(RiskLevel::Yellow);
    f.similar = vec![past("x", 0.98, RiskLevel::Yellow, 3), past("y", 0.93, RiskLevel::Red, 3)];
    assert!(p.escalate(&f).1.is_empty(), "the red case is below min_similarity, the close one never escalated");
    f.similar.push(past("z", 0.96, RiskLevel::Red, 3));
    let (level, e) = p.escalate(&f);
    assert_eq!((level, rules(&e)), (RiskLevel::Orange, vec!["similar_escalated"]));
    assert!(e[0].reason.contains('z'));
    // Already at the cap: no raise, and never a lowering.
    f.base_level = RiskLevel::Red;
    assert_eq!(p.escalate(&f), (RiskLevel::Red, vec![]));
}

#[test]
fn only_the_latest_overdue_time_limit_raises() {
    let p = Policy::builtin().unwrap();
    let mut f = facts(RiskLevel::Blue);
    f.workflow.received_at = Some(NOW - 10 * DAY);
    f.workflow.accepted_at = Some(NOW - 10 * DAY + 3600);
    // Accepted in time, not met, not resolved after 10 days: `resolve` (7 days) is the latest passed.
    let (level, e) = p.escalate(&f);
    assert_eq!((level, rules(&e)), (RiskLevel::Yellow, vec!["time_limit_resolve"]));
    assert!(e[0].reason.contains("7日内解决"));
    // Inside every limit: nothing.
    f.workflow.received_at = Some(NOW - 12 * 3600);
    assert!(p.escalate(&f).1.is_empty());
    // Accepted late (2 days after receipt) but everything else still in time.
    f.workflow.received_at = Some(NOW - 2 * DAY - 3600);
    f.workflow.accepted_at = Some(NOW - 3600);
    assert_eq!(rules(&p.escalate(&f).1), ["time_limit_accept"]);
}

#[test]
fn collective_action_on_livelihood_raises_to_red_and_rules_stack_in_order() {
    let p = Policy::builtin().unwrap();
    let mut f = facts(RiskLevel::Orange);
    f.flagged = vec![Label::Collective];
    assert!(p.escalate(&f).1.is_empty());
    f.flagged.push(Label::Livelihood);
    let (level, e) = p.escalate(&f);
    assert_eq!((level, rules(&e)), (RiskLevel::Red, vec!["collective_livelihood"]));
    // A repeat petition first takes blue to yellow, then the collective rule brings it to at least orange.
    f.base_level = RiskLevel::Blue;
    f.same_reporter = vec![past("a", 0.95, RiskLevel::Blue, 1), past("b", 0.95, RiskLevel::Blue, 2)];
    let (level, e) = p.escalate(&f);
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
