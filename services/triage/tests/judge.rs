//! The trained model on the real encoder (run `triage model fetch` first).

use std::sync::{Arc, OnceLock};

use triage_encoder::{Encoder, EncoderOptions, MODEL_FILE};
use triage_risk::{CueLexicon, Label, RiskLevel, RiskModel, Triage, TriageError};

fn triage() -> &'static Triage {
    static T: OnceLock<Triage> = OnceLock::new();
    T.get_or_init(|| {
        let dir = triage_fetch::model_dir_from_env();
        assert!(dir.join(MODEL_FILE).is_file(), "model missing in {}: run `triage model fetch`", dir.display());
        let encoder = Encoder::load(&dir, EncoderOptions::default()).unwrap();
        let model = RiskModel::builtin().unwrap();
        Triage::new(Arc::new(encoder), CueLexicon::builtin().unwrap(), model).unwrap()
    })
}

fn flagged(j: &triage_risk::Judgement) -> Vec<Label> {
    j.flagged_labels()
}

/// Judges `text` and checks it is no threat: yellow or blue, no threat label.
fn judged_low(text: &str) -> triage_risk::Judgement {
    let j = triage().judge(text).unwrap();
    assert!(j.level <= RiskLevel::Yellow, "{text}: {:?} {:?}", j.level, flagged(&j));
    assert!(!flagged(&j).iter().any(|l| l.is_threat()), "{text}: {:?}", flagged(&j));
    j
}

#[test]
fn explicit_threat_with_means_and_time_is_red_with_evidence() {
    let j = triage().judge("拆迁补偿一直不给，明天上午我就带上汽油去镇政府，让他们付出代价！").unwrap();
    assert_eq!(j.level, RiskLevel::Red, "{j:?}");
    // Petrol taken to a government office is read as violence or self-harm in
    // the labelled sets alike; a threat label must be flagged either way.
    assert!(flagged(&j).iter().any(|l| l.is_threat()), "{:?}", flagged(&j));
    assert!(j.evidence.iter().any(|e| e.cue == "汽油"));
    assert!(!j.reasons.is_empty() && j.reasons.last().unwrap().starts_with("红色"));
    assert_eq!(j.model_version, triage().model().version);
}

#[test]
fn routine_and_figurative_texts_stay_low() {
    for text in [
        "你好，想咨询一下新农合住院报销比例是多少，需要带哪些材料？",
        "我准备和装修公司打官司，想问问去哪里申请法律援助",
    ] {
        judged_low(text);
    }
}

#[test]
fn negated_self_harm_is_not_flagged() {
    let j = triage().judge("你们放心，我绝不会做傻事，就是想问问低保申请为什么还没批下来").unwrap();
    assert!(!flagged(&j).contains(&Label::SelfHarm), "{:?} {:?}", flagged(&j), j.labels);
    assert!(j.level <= RiskLevel::Yellow);
}

/// The cue lexicon drops 砍价/杀价, but the sentence vector of this short
/// chatty text sits near retaliation: risk-1.0 (e5 and cues only) judged it a
/// threat; risk-1.1's character n-gram reader does not.
#[test]
fn figurative_chat_is_not_a_threat() {
    let j = triage().judge("今天去菜市场砍价砍到了五折，老板说我是杀价高手，笑死了").unwrap();
    assert!(j.level <= RiskLevel::Yellow, "{:?} {:?}", j.level, flagged(&j));
}

/// Without a threat cue the heads on frozen e5-small vectors alone
/// (risk-1.0) missed the first of these implicit threats; risk-1.1 caught it.
/// The other two were written for risk-1.3 before it was run on them. This
/// stays near the bar: an intermediate risk-1.3 left a fourth (now a cue
/// pattern, next test) at yellow when its no-cue bar moved from 0.33 to 0.38.
#[test]
fn implicit_threats_without_lexicon_cues_are_caught_by_the_model() {
    // None of these contains a threat phrase of the lexicon; the encoder has to read them.
    for text in [
        "姓刘的村干部把我家低保名额给了他亲戚，他家新盖的房子是木头梁的，冬天天干物燥，哪天出点什么事可别赖我。",
        "村主任把我家的地批给了他侄子，他家那几头牛天天在山上放，山上可没人看着。",
        "包工头欠了我两年工资不给，他新买的那辆车就停在小区楼下，晚上也没人看着。",
    ] {
        let r = CueLexicon::builtin().unwrap().analyse(text);
        assert!(r.evidence.iter().all(|e| e.kind != triage_risk::CueKind::Threat), "{text}: {:?}", r.evidence);
        let j = triage().judge(text).unwrap();
        assert!(j.level >= RiskLevel::Orange, "{text}: {:?} {:?}", j.level, j.labels);
    }
}

#[test]
fn input_limits() {
    assert!(matches!(triage().judge("  "), Err(TriageError::EmptyText { .. })));
    assert!(matches!(triage().judge(&"长".repeat(5001)), Err(TriageError::TextTooLong { chars: 5001, .. })));
    // A long text within the limit is read whole, in chunks.
    let long = "我们小区的电梯坏了三个月没人修。".repeat(250);
    assert!(long.chars().count() <= 5000);
    let j = triage().judge(&long).unwrap();
    assert!(flagged(&j).contains(&Label::Livelihood));
}

/// labels.md: "Vague warnings with no act named (别逼我, 到时候别怪我, 你等着瞧,
/// 后果自负) are yellow with no threat label; the same words tied to a
/// concrete act are a threat." Both readers take the anger for a threat:
/// without the decision rule, risk-1.3's heads judge both of these orange.
#[test]
fn vague_warnings_are_yellow_unless_an_act_is_named() {
    for text in [
        "欠了我三个月工资，天天躲着不见，我已经够克制了，别逼我。",
        "物业把我家车库改成了仓库，找了五次都不管，我跟你们说，别把我惹急了。",
        // labels.md's own list of vague warnings (risk-1.4 judged these orange retaliation).
        "你等着瞧",
        "押金不退是吧，行，咱们走着瞧。",
    ] {
        let vague = judged_low(text);
        assert!(vague.evidence.iter().any(|e| e.kind == triage_risk::CueKind::VagueWarning), "{text}");
    }
    // Bare, the standard's vague warnings are yellow, not blue (risk-1.4: 后果自负 blue).
    for text in ["你等着瞧", "后果自负"] {
        assert_eq!(triage().judge(text).unwrap().level, RiskLevel::Yellow, "{text}");
    }
    // Despair names no act either; with one named it is a threat.
    let despair = triage().judge("拆迁款被村里扣了两年，老母亲住在漏雨的棚子里，你们这是不给我活路，我被逼得没路走了。").unwrap();
    assert!(despair.level <= RiskLevel::Yellow && !flagged(&despair).contains(&Label::SelfHarm), "{:?} {:?}", despair.level, flagged(&despair));
    assert!(despair.evidence.iter().any(|e| e.kind == triage_risk::CueKind::VagueWarning), "{:?}", despair.evidence);
    let jump = triage().judge("我真的崩溃了，再不给钱我就从厂房顶上跳下去。").unwrap();
    assert!(jump.level >= RiskLevel::Orange && flagged(&jump).contains(&Label::SelfHarm), "{:?} {:?}", jump.level, flagged(&jump));
    let act = triage().judge("物业把我的车位租给别人，协商五次都没用，别逼我，再不还我就把他们办公室砸了。").unwrap();
    assert!(act.level >= RiskLevel::Orange, "{:?} {:?}", act.level, flagged(&act));
    assert!(flagged(&act).contains(&Label::Violence), "{:?}", flagged(&act));
}

/// labels.md: "a hint at harm to someone's child, home or property
/// (我知道他孩子在哪上学) is violence + retaliation". The hint is a cue
/// pattern now; risk-1.3 before it judged this text yellow.
#[test]
fn a_hint_at_someones_child_is_violence_and_retaliation() {
    let j = triage().judge("那个开发商欠我们的房款一直不还，他家住哪个小区我已经打听清楚了，他儿子每天几点放学我也知道。").unwrap();
    assert!(j.level >= RiskLevel::Orange, "{:?} {:?}", j.level, j.labels);
    for l in [Label::Violence, Label::Retaliation] {
        assert!(flagged(&j).contains(&l), "{l:?}: {:?}", j.labels);
        assert!(j.evidence.iter().any(|e| e.label == Some(l) && e.cue.contains("放学")), "{l:?}: {:?}", j.evidence);
    }
}

/// labels.md: "A follow-up saying a threat was withdrawn and the parties
/// reconciled is judged as it stands now: usually blue." The same threat
/// without the follow-up, or renewed after it, is still a threat.
#[test]
fn a_withdrawn_threat_is_judged_as_it_stands_now() {
    let threat = "业主群舆情：有业主在群里发“谁再把垃圾扔在电梯里，抓到了我弄死他”";
    judged_low(&format!("{threat}。经网格员了解，系一时气话，已在群内道歉。"));
    let standing = triage().judge(&format!("{threat}，说到做到。")).unwrap();
    assert!(standing.level >= RiskLevel::Orange, "{:?} {:?}", standing.level, flagged(&standing));
    let renewed = triage().judge("上个月两家已经和解了，可他昨天又把垃圾扔到我家门口，这回抓到了我非弄死他不可。").unwrap();
    assert!(renewed.level >= RiskLevel::Orange, "{:?} {:?}", renewed.level, flagged(&renewed));
    // The writer taking their own words back, in the same call (session 6).
    judged_low("刚才我说要跳楼是气话，我不会做傻事的，就想问问住院费医保怎么报");
    // Calm is not a withdrawal: grid reports end so while the threat stands.
    let calm = triage().judge("网格员上报：村民李某扬言明天上午带汽油去镇政府自焚，目前情绪稳定，网格员持续关注。").unwrap();
    assert!(calm.level >= RiskLevel::Orange, "{:?} {:?}", calm.level, flagged(&calm));
}

/// labels.md's own examples of what is and is not a threat, each in a short
/// context: plain anger and rhetorical death name no act; a vague warning
/// tied to an act is a threat; "报复社会" stated as intent is retaliation
/// (risk-1.3 before the intent rule judged "我要报复社会" blue).
#[test]
fn the_standards_examples_are_judged_as_it_says() {
    for text in ["物业又把我家车位卖给别人了，太气人了！", "太气人了", "拆迁款一分没给，我们老两口反正就是等死了", "房子不让拆，死也要死在自己家里"] {
        judged_low(text);
    }
    let act = triage().judge("再不给钱，到时候别怪我把机器拆了").unwrap();
    assert!(act.level >= RiskLevel::Orange && flagged(&act).contains(&Label::Violence), "{:?} {:?}", act.level, flagged(&act));
    for text in ["这事不解决，我就报复社会", "我要报复社会", "我什么事都做得出来"] {
        let j = triage().judge(text).unwrap();
        assert!(j.level >= RiskLevel::Orange && flagged(&j).contains(&Label::Retaliation), "{text}: {:?} {:?}", j.level, flagged(&j));
    }
    // Listed under retaliation, not self-harm (risk-1.4 judged it self_harm).
    let j = triage().judge("大不了同归于尽").unwrap();
    assert!(j.level >= RiskLevel::Orange && flagged(&j).contains(&Label::Retaliation), "{:?} {:?}", j.level, flagged(&j));
    assert!(!flagged(&j).contains(&Label::SelfHarm), "{:?}", flagged(&j));
}

/// labels.md: "a threat to someone's peace without physical harm ('这个年他
/// 家别想过安稳') is retaliation alone." The heads learn violence from the
/// many revenge threats that carry both; where revenge cues fired and no
/// violence cue did, violence needs one of its own (risk-1.9; risk-1.8
/// flagged violence on the last two). A named harm keeps it.
#[test]
fn a_threat_to_someones_peace_is_retaliation_alone() {
    for text in [
        "他骗走了我家的拆迁款，这个年他家别想过安稳",
        "村支书把低保给了他亲戚，他不让我好过，我也不让他好过",
        "医院把我妈的病耽误了，我跟他们没完，那个医生我也不会让他好过",
    ] {
        let j = triage().judge(text).unwrap();
        let f = flagged(&j);
        assert!(j.level >= RiskLevel::Orange && f.contains(&Label::Retaliation), "{text}: {:?} {f:?}", j.level);
        assert!(!f.contains(&Label::Violence), "{text}: {f:?}");
    }
    let j = triage().judge("他骗走了我家的拆迁款，我跟他没完，哪天我就拿刀去他家砍了他").unwrap();
    assert!(flagged(&j).contains(&Label::Violence), "{:?}", flagged(&j));
}

/// labels.md: "a brawl, or a threat used to coerce a spouse or parent with no
/// grievance behind it, is violence alone." 弄死 and 砍死 name harm, not
/// revenge, so they are violence cues only; under retaliation too they kept
/// risk-1.7's brawl rule from applying (risk-1.9's first candidate flagged
/// retaliation on the second text).
#[test]
fn a_drunk_threat_at_home_is_violence_alone() {
    for text in ["我老公又喝多了，拿着菜刀在屋里追着我，喊着要弄死我", "隔壁那个男的喝醉了在楼道里砸门，说要砍死他老婆"] {
        let j = triage().judge(text).unwrap();
        let f = flagged(&j);
        assert!(j.level >= RiskLevel::Orange && f.contains(&Label::Violence), "{text}: {:?} {f:?}", j.level);
        assert!(!f.contains(&Label::Retaliation), "{text}: {f:?}");
    }
}

/// Laughter after the threat words (哈哈, 😂) makes the text a joke: every
/// such text in the labelled sets is blue (risk-1.9; risk-1.8 judged the
/// second red). Laughter before a threat does not take it back.
#[test]
fn a_threat_laughed_off_is_a_joke() {
    for text in [
        "我妈说我再不回家过年就打断我的腿😂 年年都这么说",
        "跟室友说再偷吃我的零食我就跟他拼了 结果他今天买了一箱还我 哈哈",
    ] {
        judged_low(text);
    }
    let j = triage().judge("哈哈 你们就拖着吧，明天我就带汽油去他家，让他付出代价").unwrap();
    assert!(j.level >= RiskLevel::Orange, "{:?} {:?}", j.level, flagged(&j));
    // Nor does a laugh take back self-harm: a bitter laugh from a roof is no joke.
    let j = triage().judge("拖了我三年的工资，我已经站在工地楼顶上了 哈哈 这下你们满意了吧").unwrap();
    assert!(j.level >= RiskLevel::Orange && flagged(&j).contains(&Label::SelfHarm), "{:?} {:?}", j.level, flagged(&j));
}

/// A threat only the "any threat" head saw, with no threat cue, needs the
/// label it would be named after to back it (`THREAT_LABEL_SUPPORT`,
/// risk-1.10). This inheritance quarrel reads 0.38 on the threat head
/// against a no-cue bar of 0.35, while no threat label reaches a fifth of
/// its bar: without the rule it is orange. The answer says why it is not.
#[test]
fn a_threat_no_label_head_backs_is_no_threat() {
    let j = judged_low(
        "尊敬的调委会：我父亲去年去世，留下一套老房子和八万元存款。二哥说父亲生前口头答应全给他，把房产证拿走不给我们看，\
         我们兄妹四个吵了好几次，亲戚们也劝不住，请调委会帮我们主持公道。",
    );
    assert!(j.reasons.iter().any(|r| r.contains("不按威胁研判")), "{:?}", j.reasons);
}

/// A threat against someone else is no threat to oneself: with violence and
/// revenge cues and no self-harm cue, self_harm is not flagged however the
/// shared threat tone lifts its head (risk-1.4 flagged it on such texts).
#[test]
fn a_threat_against_others_is_not_self_harm() {
    let j = triage().judge("他害死了我儿子只判了一年。刀我已经揣身上了，今晚我就去他家找他算账，你们爱来不来。").unwrap();
    let f = flagged(&j);
    assert!(j.level >= RiskLevel::Orange, "{:?} {f:?}", j.level);
    assert!(f.contains(&Label::Violence) || f.contains(&Label::Retaliation), "{f:?}");
    assert!(!f.contains(&Label::SelfHarm), "{f:?}");
}

/// The standard's typical text for each level (labels.md, "Risk levels"),
/// and a crowd threatened but not yet gathered, with no time set: orange,
/// though the red head scores it 0.73 (red needs a specific; risk-1.6, before
/// which it was red).
#[test]
fn the_standards_level_examples_get_their_levels() {
    for (text, level) in [
        ("明天上午我就带汽油去镇政府", RiskLevel::Red),
        ("已经有三十多人堵在厂门口", RiskLevel::Red),
        ("再不给钱我就跟老板拼了", RiskLevel::Orange),
        ("我们几十个人一起去县政府堵门", RiskLevel::Orange),
        ("这是我第五次反映了，还是没人管", RiskLevel::Yellow),
        ("咨询一下新农合报销比例", RiskLevel::Blue),
    ] {
        let j = triage().judge(text).unwrap();
        assert_eq!(j.level, level, "{text}: {:?}", flagged(&j));
    }
}
