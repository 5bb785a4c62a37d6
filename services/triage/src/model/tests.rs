use super::*;

/// Level bars for the decision tests: a threat at 0.5 with a cue, 0.6
/// without; red and yellow at 0.5.
const BARS: LevelThresholds = LevelThresholds { threat: 0.5, threat_without_cue: 0.6, red: 0.5, yellow: 0.5, label_support: THREAT_LABEL_SUPPORT };

/// A threat the heads are sure of, in a text with a threat cue.
fn sure_threat() -> Scores {
    Scores {
        threat_cue: true,
        vague_warning_only: false,
        withdrawn: false,
        joking: false,
        warning_with_act: false,
        intent_with_act: false,
        threat_with_specific: true,
        brawl_without_grievance: false,
        cue_labels: [false; 4],
        labels: [0.9, 0.8, 0.1, 0.1, 0.2],
        threat: 0.95,
        red: 0.9,
        yellow: 0.2,
    }
}

#[test]
fn a_vague_warning_without_an_act_is_never_a_threat() {
    let t = BARS;
    let thresholds = [0.5f32; 5];
    let s = Scores { threat_cue: false, labels: [0.9, 0.1, 0.1, 0.1, 0.2], red: 0.1, yellow: 0.9, ..sure_threat() };
    let d = decide(s, thresholds, t);
    assert_eq!(d.level, RiskLevel::Orange);
    assert!(d.flagged[Label::Violence.index()]);
    let d = decide(Scores { vague_warning_only: true, ..s }, thresholds, t);
    assert_eq!(d.level, RiskLevel::Yellow);
    assert!(!d.flagged[..4].iter().any(|&f| f), "no threat label below orange: {:?}", d.flagged);
    // Yellow even where the yellow head leans blue; blue once withdrawn.
    let d = decide(Scores { vague_warning_only: true, yellow: 0.1, ..s }, thresholds, t);
    assert_eq!(d.level, RiskLevel::Yellow);
    let d = decide(Scores { vague_warning_only: true, yellow: 0.1, withdrawn: true, ..s }, thresholds, t);
    assert_eq!(d.level, RiskLevel::Blue);
}

#[test]
fn a_forced_threat_label_comes_from_the_fired_cues() {
    let t = BARS;
    // No label over its threshold; self_harm leans highest.
    let s = Scores { labels: [0.1, 0.2, 0.4, 0.1, 0.2], red: 0.1, ..sure_threat() };
    assert_eq!(decide(s, [0.5; 5], t).forced_label, Some(Label::SelfHarm));
    let d = decide(Scores { cue_labels: [false, true, false, false], ..s }, [0.5; 5], t);
    assert_eq!(d.forced_label, Some(Label::Retaliation));
    assert!(d.flagged[Label::Retaliation.index()] && !d.flagged[Label::SelfHarm.index()]);
}

#[test]
fn harm_to_oneself_and_to_others_each_need_their_own_cue_where_the_other_fired() {
    let t = BARS;
    let s = Scores { labels: [0.9, 0.8, 0.7, 0.1, 0.2], ..sure_threat() };
    // Only violence's cue fired: the self-harm score is the threat's tone.
    let d = decide(Scores { cue_labels: [true, false, false, false], ..s }, [0.5; 5], t);
    assert!(d.flagged[Label::Violence.index()] && !d.flagged[Label::SelfHarm.index()], "{:?}", d.flagged);
    // With its own cue, or with no cue at all, the head decides.
    let d = decide(Scores { cue_labels: [true, false, true, false], ..s }, [0.5; 5], t);
    assert!(d.flagged[Label::SelfHarm.index()]);
    assert!(decide(s, [0.5; 5], t).flagged[Label::SelfHarm.index()]);
    // Only a self-harm cue fired: violence and retaliation need their own.
    let d = decide(Scores { cue_labels: [false, false, true, false], ..s }, [0.5; 5], t);
    assert_eq!(d.flagged[..3], [false, false, true], "{:?}", d.flagged);
    // A text whose only flagged threat label was self-harm stays a threat
    // when the threat head says so, named after the cue that fired.
    let lone = Scores { labels: [0.1, 0.1, 0.7, 0.1, 0.2], cue_labels: [false, true, false, false], ..sure_threat() };
    let d = decide(lone, [0.5; 5], t);
    assert_eq!((d.level, d.forced_label), (RiskLevel::Red, Some(Label::Retaliation)));
}

#[test]
fn a_brawl_with_no_grievance_behind_it_is_violence_alone() {
    let t = BARS;
    let s = Scores { cue_labels: [true, false, false, false], ..sure_threat() };
    assert!(decide(s, [0.5; 5], t).flagged[Label::Retaliation.index()]);
    let brawl = Scores { brawl_without_grievance: true, ..s };
    let d = decide(brawl, [0.5; 5], t);
    assert_eq!(d.flagged[..2], [true, false], "{:?}", d.flagged);
    // A revenge cue of its own keeps it.
    let d = decide(Scores { cue_labels: [true, true, false, false], ..brawl }, [0.5; 5], t);
    assert!(d.flagged[Label::Retaliation.index()]);
    // Where the heads leaned only to retaliation, the threat stays and is
    // named after another label.
    let lone = Scores { labels: [0.3, 0.9, 0.1, 0.1, 0.2], cue_labels: [false; 4], ..brawl };
    let d = decide(lone, [0.5; 5], t);
    assert_eq!((d.level, d.forced_label), (RiskLevel::Red, Some(Label::Violence)));
}

#[test]
fn a_warning_tied_to_an_act_is_a_threat_whatever_the_heads_say() {
    let t = BARS;
    let s = Scores { labels: [0.3, 0.1, 0.1, 0.1, 0.2], threat: 0.1, red: 0.1, ..sure_threat() };
    assert_eq!(decide(s, [0.5; 5], t).level, RiskLevel::Blue);
    let d = decide(Scores { warning_with_act: true, cue_labels: [true, false, false, false], ..s }, [0.5; 5], t);
    assert_eq!((d.level, d.forced_label), (RiskLevel::Orange, Some(Label::Violence)));
    // A withdrawal after it still wins: judged as it stands now.
    let d = decide(Scores { warning_with_act: true, withdrawn: true, ..s }, [0.5; 5], t);
    assert_eq!(d.level, RiskLevel::Blue);
}

#[test]
fn a_withdrawn_threat_is_judged_as_it_stands_now() {
    let t = BARS;
    let s = sure_threat();
    assert_eq!(decide(s, [0.5; 5], t).level, RiskLevel::Red);
    let d = decide(Scores { withdrawn: true, ..s }, [0.5; 5], t);
    assert_eq!(d.level, RiskLevel::Blue);
    assert!(!d.flagged[..4].iter().any(|&f| f), "{:?}", d.flagged);
}

#[test]
fn a_threat_laughed_off_is_a_joke() {
    let t = BARS;
    let d = decide(Scores { joking: true, ..sure_threat() }, [0.5; 5], t);
    assert_eq!(d.level, RiskLevel::Blue);
    assert!(!d.flagged[..4].iter().any(|&f| f), "{:?}", d.flagged);
    // A vague warning laughed off is not yellow by rule either.
    let s = Scores { threat_cue: false, vague_warning_only: true, joking: true, yellow: 0.1, ..sure_threat() };
    assert_eq!(decide(s, [0.5; 5], t).level, RiskLevel::Blue);
}

#[test]
fn violence_needs_its_own_cue_where_only_revenge_cues_fired() {
    let t = BARS;
    let s = Scores { labels: [0.9, 0.8, 0.1, 0.1, 0.2], ..sure_threat() };
    // A revenge cue alone (不让他好过): the violence score is its tone.
    let d = decide(Scores { cue_labels: [false, true, false, false], ..s }, [0.5; 5], t);
    assert_eq!(d.flagged[..2], [false, true], "{:?}", d.flagged);
    // With a violence cue of its own, or no cue at all, the head decides.
    let d = decide(Scores { cue_labels: [true, true, false, false], ..s }, [0.5; 5], t);
    assert_eq!(d.flagged[..2], [true, true]);
    assert_eq!(decide(s, [0.5; 5], t).flagged[..2], [true, true]);
    // Nor is violence the label a threat is named after.
    let lone = Scores { labels: [0.45, 0.1, 0.1, 0.1, 0.2], cue_labels: [false, true, false, false], ..sure_threat() };
    assert_eq!(decide(lone, [0.5; 5], t).forced_label, Some(Label::Retaliation));
}

#[test]
fn a_threat_only_the_threat_head_saw_needs_a_label_head_behind_it() {
    let t = BARS;
    // The threat head is sure and a mention fired (`threat_cue`), no
    // threat cue; every threat label sits at 0.1 against a bar of 0.5 (a
    // fifth of it): no act is named, so no threat.
    let tone = Scores { labels: [0.1, 0.1, 0.1, 0.1, 0.2], ..sure_threat() };
    let d = decide(tone, [0.5; 5], t);
    assert!(d.unsupported_threat && d.level < RiskLevel::Orange && d.forced_label.is_none(), "{d:?}");
    assert!(!d.flagged[..4].contains(&true));
    // The same with no mention either (`threat_cue` off).
    let d = decide(Scores { threat_cue: false, ..tone }, [0.5; 5], t);
    assert!(d.unsupported_threat && d.level < RiskLevel::Orange);
    // One label at 0.16 (just over 0.3 of its bar) backs it: a threat,
    // named after that label.
    let d = decide(Scores { labels: [0.1, 0.16, 0.1, 0.1, 0.2], ..tone }, [0.5; 5], t);
    assert_eq!((d.level, d.forced_label, d.unsupported_threat), (RiskLevel::Red, Some(Label::Retaliation), false));
    // Support is read against each label's own bar: 0.1 is a third of 0.3.
    let d = decide(tone, [0.5, 0.3, 0.5, 0.5, 0.5], t);
    assert_eq!(d.forced_label, Some(Label::Retaliation));
    // A warning tied to an act is a threat whatever the label heads say.
    assert_eq!(decide(Scores { warning_with_act: true, ..tone }, [0.5; 5], t).level, RiskLevel::Red);
    // Where a threat cue fired, the lexicon has named the act: the
    // heads' low labels do not take the threat back.
    let d = decide(Scores { cue_labels: [false, true, false, false], ..tone }, [0.5; 5], t);
    assert_eq!((d.level, d.forced_label, d.unsupported_threat), (RiskLevel::Red, Some(Label::Retaliation), false));
    // A barred label does not back it: retaliation at 0.45 in a brawl
    // with no grievance and no revenge cue, the rest at 0.1.
    let brawl = Scores { labels: [0.1, 0.45, 0.1, 0.1, 0.2], brawl_without_grievance: true, ..tone };
    assert!(decide(brawl, [0.5; 5], t).unsupported_threat);
}

#[test]
fn red_needs_a_specific_where_the_lexicon_read_the_threat() {
    let t = BARS;
    let s = sure_threat();
    assert_eq!(decide(s, [0.5; 5], t).level, RiskLevel::Red);
    let d = decide(Scores { threat_with_specific: false, ..s }, [0.5; 5], t);
    assert_eq!(d.level, RiskLevel::Orange, "a threat with no time, means, gathering, act or place");
    // Where the lexicon read no threat, it has no say on specifics either.
    assert_eq!(decide(Scores { threat_with_specific: false, threat_cue: false, ..s }, [0.5; 5], t).level, RiskLevel::Red);
    // The gate only lowers: a specific does not make a low red score red.
    assert_eq!(decide(Scores { red: 0.2, ..s }, [0.5; 5], t).level, RiskLevel::Orange);
}
