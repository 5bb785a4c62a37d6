//! Cue features for the classifier: log-counts of evidence by label and kind.
//! The order here is part of the trained model (`FEATURE_NAMES` is saved with it).

use crate::cues::{CueKind, CueReport, Suppression};
use crate::label::Label;

pub const FEATURE_NAMES: &[&str] = &[
    "threat_violence",
    "threat_retaliation",
    "threat_self_harm",
    "threat_collective",
    "mention_violence",
    "mention_retaliation",
    "mention_self_harm",
    "mention_collective",
    "topic_livelihood",
    "specific_time",
    "specific_means",
    "specific_gathering",
    "specific_in_progress",
    "specific_place",
    "vague_warning",
    "repeat",
    "survival",
    "suppressed_negated",
    "suppressed_figurative",
    "suppressed_past_or_media",
    "withdrawn",
    "warning_with_act",
    "intent_with_act",
    "threat_any",
    "threat_and_specific",
    "grievance",
    "brawl_without_grievance",
    "joking",
];

/// Position of a feature in `FEATURE_NAMES`, found at compile time, so a
/// renamed or reordered feature cannot leave a stale hand-counted index.
const fn position(name: &str) -> usize {
    let mut i = 0;
    while i < FEATURE_NAMES.len() {
        let (a, b) = (FEATURE_NAMES[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("no such cue feature")
}

const VAGUE_WARNING: usize = position("vague_warning");
const WITHDRAWN: usize = position("withdrawn");
const JOKING: usize = position("joking");
const WARNING_WITH_ACT: usize = position("warning_with_act");
const INTENT_WITH_ACT: usize = position("intent_with_act");
const THREAT_ANY: usize = position("threat_any");
const THREAT_AND_SPECIFIC: usize = position("threat_and_specific");
const BRAWL_WITHOUT_GRIEVANCE: usize = position("brawl_without_grievance");

/// Whether the cue feature at `index` (of `FEATURE_NAMES`) is non-zero in a
/// feature row; the cue features are the last `FEATURE_NAMES.len()` values.
fn fired(row: &[f32], index: usize) -> bool {
    row.len() >= FEATURE_NAMES.len() && row[row.len() - FEATURE_NAMES.len() + index] > 0.0
}

/// Whether a feature row has at least one fired threat cue.
pub fn has_threat_cue(row: &[f32]) -> bool {
    fired(row, THREAT_ANY)
}

/// Which threat labels (violence, retaliation, self_harm, collective) have a
/// fired threat cue of their own; the first four cue features, from the end.
pub fn threat_cue_labels(row: &[f32]) -> [bool; 4] {
    std::array::from_fn(|i| fired(row, i))
}

/// Whether a specific (a set time, means, gathering, an act in progress, a
/// place; labels.md: red needs one) fired together with a threat or mention
/// cue: the `threat_and_specific` feature, min(threat cues, specifics).
pub fn threat_with_specific(row: &[f32]) -> bool {
    fired(row, THREAT_AND_SPECIFIC)
}

/// Whether the text names a brawl, drink, a spouse or a mental illness and no
/// grievance (the `[context]` lists `brawl` and `grievance`).
pub fn brawl_without_grievance(row: &[f32]) -> bool {
    fired(row, BRAWL_WITHOUT_GRIEVANCE)
}

/// Whether a vague warning shares a sentence with a fired threat cue.
pub fn warning_with_act(row: &[f32]) -> bool {
    fired(row, WARNING_WITH_ACT)
}

/// Whether a threat cue is stated as the writer's own intent (我要…, 我就…).
pub fn intent_with_act(row: &[f32]) -> bool {
    fired(row, INTENT_WITH_ACT)
}

/// Whether the text ends withdrawn: a follow-up after its last threat or
/// mention cue says the threat was withdrawn or the parties reconciled
/// (labels.md: judged as it stands now, usually blue).
pub fn withdrawn(row: &[f32]) -> bool {
    fired(row, WITHDRAWN)
}

/// Whether the text laughs after its last threat or mention cue (哈哈, 😂):
/// the writer jokes about what came before.
pub fn joking(row: &[f32]) -> bool {
    fired(row, JOKING)
}

/// Whether the row's only sign of a threat is a vague warning (别逼我,
/// 后果自负, 你等着瞧) with no act named: no threat or mention cue fired.
/// The standard makes such texts yellow with no threat label.
pub fn vague_warning_only(row: &[f32]) -> bool {
    fired(row, VAGUE_WARNING) && !has_threat_cue(row)
}

pub fn cue_features(r: &CueReport) -> Vec<f32> {
    let count = |f: &dyn Fn(&crate::cues::Evidence) -> bool| r.evidence.iter().filter(|e| f(e)).count();
    let threat = |l: Label| count(&|e| e.kind == CueKind::Threat && e.label == Some(l));
    let mention = |l: Label| count(&|e| e.kind == CueKind::Mention && e.label == Some(l));
    let kind = |k: CueKind| count(&|e| e.kind == k);
    let sup = |s: &[Suppression]| r.suppressed.iter().filter(|(_, w)| s.contains(w)).count();
    // Mentions open the threat gate too: without them recall on the labelled
    // sets drops (dev under-triage 6.5 % -> 16 %), at the cost of false alarms
    // on real message-board posts (EVALUATION.md).
    let threats = count(&|e| matches!(e.kind, CueKind::Threat | CueKind::Mention));
    let specifics = count(&|e| e.kind.is_specific());
    let raw = [
        threat(Label::Violence),
        threat(Label::Retaliation),
        threat(Label::SelfHarm),
        threat(Label::Collective),
        mention(Label::Violence),
        mention(Label::Retaliation),
        mention(Label::SelfHarm),
        mention(Label::Collective),
        count(&|e| e.kind == CueKind::Topic),
        kind(CueKind::SpecificTime),
        kind(CueKind::SpecificMeans),
        kind(CueKind::SpecificGathering),
        kind(CueKind::SpecificInProgress),
        kind(CueKind::SpecificPlace),
        kind(CueKind::VagueWarning),
        kind(CueKind::Repeat),
        kind(CueKind::Survival),
        sup(&[Suppression::Negated]),
        sup(&[Suppression::Figurative, Suppression::InsideWord]),
        sup(&[Suppression::PastEvent, Suppression::Media, Suppression::Victim]),
        r.withdrawn,
        r.warning_with_act,
        r.intent_with_act,
        threats,
        threats.min(specifics),
        r.grievance,
        if r.grievance == 0 { r.brawl } else { 0 },
        r.joking,
    ];
    debug_assert_eq!(raw.len(), FEATURE_NAMES.len());
    raw.iter().map(|&n| (n as f32).ln_1p()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A feature row for `text`: a dummy sentence vector, then its cue features.
    fn row(text: &str) -> Vec<f32> {
        let lex = crate::CueLexicon::builtin().unwrap();
        let mut row = vec![0.5f32; 384];
        row.extend(cue_features(&lex.analyse(text)));
        row
    }

    #[test]
    fn threat_any_is_found_from_the_end_of_a_row() {
        assert_eq!(FEATURE_NAMES[THREAT_ANY], "threat_any");
        assert!(has_threat_cue(&row("我要弄死他")));
        assert!(!has_threat_cue(&row("咨询社保缴费")));
    }

    #[test]
    fn a_withdrawal_counts_only_after_the_last_threat() {
        assert_eq!(FEATURE_NAMES[WITHDRAWN], "withdrawn");
        assert_eq!(threat_cue_labels(&row("这事不解决，我就报复社会")), [false, true, false, false]);
        assert_eq!(FEATURE_NAMES[WARNING_WITH_ACT], "warning_with_act");
        assert!(warning_with_act(&row("再不给钱，到时候别怪我把机器拆了。")));
        assert!(!warning_with_act(&row("你们别逼我。上个月他把机器拆了。")));
        assert_eq!(FEATURE_NAMES[INTENT_WITH_ACT], "intent_with_act");
        assert!(intent_with_act(&row("我要报复社会")));
        assert!(!intent_with_act(&row("我要是报复他，孩子怎么办")));
        assert!(!intent_with_act(&row("我要求严惩打人的那几个人")));
        assert!(!intent_with_act(&row("我要反映一下，他报复我")));
        assert!(withdrawn(&row("业主在群里说要弄死他，经网格员了解系一时气话，已在群内道歉。")));
        assert!(!withdrawn(&row("上次的事已经和解了，可他昨天又来闹，我这回非弄死他不可。")));
        assert!(!withdrawn(&row("他再不赔钱，我就弄死他。")));
    }

    #[test]
    fn laughter_counts_only_after_the_last_threat() {
        assert_eq!(FEATURE_NAMES[JOKING], "joking");
        assert!(joking(&row("我跟我老公说再不戒烟我就跟他拼了 结果他今天真把烟扔了 哈哈")));
        assert!(joking(&row("我爸说我再不找对象就打断我的腿😂 这话都说了八百遍了")));
        assert!(!joking(&row("哈哈，你们等着，明天我就去把他家砸了")));
        // Never where self-harm is threatened, an act is under way, people
        // are gathering or means are in hand.
        assert!(!joking(&row("我已经站在楼顶上了 哈哈 这下你们满意了吧")));
        assert!(!joking(&row("他们正在砸我家的门 哈哈 这就是你们说的依法办事")));
        assert!(!joking(&row("厂门口已经有三十多人了 哈哈 看你们还拖不拖")));
        assert!(!joking(&row("汽油我已经买好了 哈哈 你们等着看吧")));
        assert!(!joking(&row("那个姓黄的吞了我家的补偿款 这笔账我记着呢 他儿子不是在镇上开了个超市吗 呵呵")));
    }

    #[test]
    fn a_brawl_counts_only_with_no_grievance_named() {
        assert_eq!(FEATURE_NAMES[BRAWL_WITHOUT_GRIEVANCE], "brawl_without_grievance");
        assert!(brawl_without_grievance(&row("他喝多了拿着菜刀在楼道里追他老婆")));
        assert!(!brawl_without_grievance(&row("包工头欠我工钱不给，我喝了酒就去找他拼了")));
        assert!(!brawl_without_grievance(&row("我要弄死他")));
    }

    #[test]
    fn a_vague_warning_counts_as_one_only_without_an_act() {
        assert_eq!(FEATURE_NAMES[VAGUE_WARNING], "vague_warning");
        assert!(vague_warning_only(&row("物业再拖着不修，你们别逼我。")));
        assert!(!vague_warning_only(&row("别逼我，明天我就带汽油去物业办公室。")));
        assert!(!vague_warning_only(&row("物业再拖着不修，我就天天打电话。")));
    }
}
