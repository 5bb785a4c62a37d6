//! The shipped model (fine-tuned encoder and heads) on the real encoder files
//! (run `triage model fetch` first).

use std::sync::{Arc, OnceLock};

use triage_encoder::{Encoder, EncoderOptions, MODEL_FILE};
use triage_risk::{CueLexicon, Label, RiskLevel, RiskModel, Triage, TriageError, BUILTIN_DELTA};

fn triage() -> &'static Triage {
    static T: OnceLock<Triage> = OnceLock::new();
    T.get_or_init(|| {
        let dir = triage_fetch::model_dir_from_env();
        assert!(dir.join(MODEL_FILE).is_file(), "model missing in {}: run `triage model fetch`", dir.display());
        let encoder = Encoder::load_tuned(&dir, EncoderOptions::default(), BUILTIN_DELTA).unwrap();
        let model = RiskModel::builtin().unwrap();
        Triage::new(Arc::new(encoder), CueLexicon::builtin().unwrap(), model).unwrap()
    })
}

fn flagged(j: &triage_risk::Judgement) -> Vec<Label> {
    j.flagged_labels()
}

/// No threat: yellow or blue, no threat label.
fn is_low(j: &triage_risk::Judgement) -> bool {
    j.level <= RiskLevel::Yellow && !flagged(j).iter().any(|l| l.is_threat())
}

/// Judges `text` and checks it is no threat.
fn judged_low(text: &str) -> triage_risk::Judgement {
    let j = triage().judge(text).unwrap();
    assert!(is_low(&j), "{text}: {:?} {:?}", j.level, flagged(&j));
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

/// Figurative 砍价/杀价 in a short chatty text: no threat, though the words
/// look like violence.
#[test]
fn figurative_chat_is_not_a_threat() {
    let j = triage().judge("今天去菜市场砍价砍到了五折，老板说我是杀价高手，笑死了").unwrap();
    assert!(j.level <= RiskLevel::Yellow, "{:?} {:?}", j.level, flagged(&j));
}

/// Implicit threats to a home, cattle or a car: the encoder has to read them,
/// since no threat phrase of the lexicon occurs.
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
/// concrete act are a threat."
#[test]
fn vague_warnings_are_yellow_unless_an_act_is_named() {
    for text in [
        "欠了我三个月工资，天天躲着不见，我已经够克制了，别逼我。",
        // labels.md's own list of vague warnings.
        "你等着瞧",
        "押金不退是吧，行，咱们走着瞧。",
    ] {
        let vague = judged_low(text);
        assert!(vague.evidence.iter().any(|e| e.kind == triage_risk::CueKind::VagueWarning), "{text}");
    }
    // Despair names no act either; with one named it is a threat.
    let jump = triage().judge("我真的崩溃了，再不给钱我就从厂房顶上跳下去。").unwrap();
    assert!(
        jump.level >= RiskLevel::Orange && flagged(&jump).contains(&Label::SelfHarm),
        "{:?} {:?}",
        jump.level,
        flagged(&jump)
    );
    let act = triage().judge("物业把我的车位租给别人，协商五次都没用，别逼我，再不还我就把他们办公室砸了。").unwrap();
    assert!(act.level >= RiskLevel::Orange, "{:?} {:?}", act.level, flagged(&act));
    assert!(flagged(&act).contains(&Label::Violence), "{:?}", flagged(&act));
}

/// labels.md: "a hint at harm to someone's child, home or property
/// (我知道他孩子在哪上学) is violence + retaliation".
#[test]
fn a_hint_at_someones_child_is_violence_and_retaliation() {
    let j = triage()
        .judge("那个开发商欠我们的房款一直不还，他家住哪个小区我已经打听清楚了，他儿子每天几点放学我也知道。")
        .unwrap();
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
    let renewed =
        triage().judge("上个月两家已经和解了，可他昨天又把垃圾扔到我家门口，这回抓到了我非弄死他不可。").unwrap();
    assert!(renewed.level >= RiskLevel::Orange, "{:?} {:?}", renewed.level, flagged(&renewed));
    // The writer taking their own words back, in the same call.
    judged_low("刚才我说要跳楼是气话，我不会做傻事的，就想问问住院费医保怎么报");
    // Calm is not a withdrawal: grid reports end so while the threat stands.
    let calm =
        triage().judge("网格员上报：村民李某扬言明天上午带汽油去镇政府自焚，目前情绪稳定，网格员持续关注。").unwrap();
    assert!(calm.level >= RiskLevel::Orange, "{:?} {:?}", calm.level, flagged(&calm));
}

/// labels.md's own examples of what is and is not a threat, each in a short
/// context: plain anger and rhetorical death name no act; a vague warning
/// tied to an act is a threat (those the shipped model misses are in
/// `known_failures`).
#[test]
fn the_standards_examples_are_judged_as_it_says() {
    for text in ["物业又把我家车位卖给别人了，太气人了！", "太气人了", "拆迁款一分没给，我们老两口反正就是等死了"]
    {
        judged_low(text);
    }
}

/// labels.md: "a threat to someone's peace without physical harm ('这个年他
/// 家别想过安稳') is retaliation alone." A named harm adds violence.
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
    }
    let j = triage().judge("他骗走了我家的拆迁款，我跟他没完，哪天我就拿刀去他家砍了他").unwrap();
    assert!(flagged(&j).contains(&Label::Violence), "{:?}", flagged(&j));
}

/// labels.md: "a brawl, or a threat used to coerce a spouse or parent with no
/// grievance behind it, is violence alone." (The shipped model adds
/// retaliation to the first: `known_failures`.)
#[test]
fn a_drunk_threat_at_home_is_violence_alone() {
    for text in ["我老公又喝多了，拿着菜刀在屋里追着我，喊着要弄死我", "隔壁那个男的喝醉了在楼道里砸门，说要砍死他老婆"]
    {
        let j = triage().judge(text).unwrap();
        let f = flagged(&j);
        assert!(j.level >= RiskLevel::Orange && f.contains(&Label::Violence), "{text}: {:?} {f:?}", j.level);
    }
}

/// A threat laughed off after the fact is a joke; laughter before a threat,
/// or a bitter laugh from a roof, takes nothing back.
#[test]
fn a_threat_laughed_off_is_a_joke() {
    judged_low("跟室友说再偷吃我的零食我就跟他拼了 结果他今天买了一箱还我 哈哈");
    let j = triage().judge("哈哈 你们就拖着吧，明天我就带汽油去他家，让他付出代价").unwrap();
    assert!(j.level >= RiskLevel::Orange, "{:?} {:?}", j.level, flagged(&j));
    // Nor does a laugh take back self-harm: a bitter laugh from a roof is no joke.
    let j = triage().judge("拖了我三年的工资，我已经站在工地楼顶上了 哈哈 这下你们满意了吧").unwrap();
    assert!(j.level >= RiskLevel::Orange && flagged(&j).contains(&Label::SelfHarm), "{:?} {:?}", j.level, flagged(&j));
}

/// A heated family quarrel over an inheritance names no act: no threat.
#[test]
fn a_threat_no_label_head_backs_is_no_threat() {
    judged_low(
        "尊敬的调委会：我父亲去年去世，留下一套老房子和八万元存款。二哥说父亲生前口头答应全给他，把房产证拿走不给我们看，\
         我们兄妹四个吵了好几次，亲戚们也劝不住，请调委会帮我们主持公道。",
    );
}

/// A threat against someone else is no threat to oneself: with violence and
/// revenge and no self-harm named, self_harm is not flagged.
#[test]
fn a_threat_against_others_is_not_self_harm() {
    let j =
        triage().judge("他害死了我儿子只判了一年。刀我已经揣身上了，今晚我就去他家找他算账，你们爱来不来。").unwrap();
    let f = flagged(&j);
    assert!(j.level >= RiskLevel::Orange, "{:?} {f:?}", j.level);
    assert!(f.contains(&Label::Violence) || f.contains(&Label::Retaliation), "{f:?}");
    assert!(!f.contains(&Label::SelfHarm), "{f:?}");
}

/// The standard's typical text for each level (labels.md, "Risk levels").
#[test]
fn the_standards_level_examples_get_their_levels() {
    for (text, level) in [
        ("明天上午我就带汽油去镇政府", RiskLevel::Red),
        ("已经有三十多人堵在厂门口", RiskLevel::Red),
        ("再不给钱我就跟老板拼了", RiskLevel::Orange),
        ("这是我第五次反映了，还是没人管", RiskLevel::Yellow),
        ("咨询一下新农合报销比例", RiskLevel::Blue),
    ] {
        let j = triage().judge(text).unwrap();
        assert_eq!(j.level, level, "{text}: {:?}", flagged(&j));
    }
}

/// Texts of the forms that break a lexicon, written for risk-2.0's tests
/// and judged by both models: risk-1.10 (cues, rules and heads on frozen
/// vectors) got each of these wrong; the fine-tuned model gets them right.
#[test]
fn hard_forms_the_lexicon_model_got_wrong() {
    // Threats: an implicit one (knowing a family's routine) and sarcasm
    // whose act is arson. risk-1.10: blue, blue.
    for text in [
        "工头欠钱跑了，我打听到他老婆在镇上开了个超市，每天几点关门、走哪条路回家我都摸清楚了。",
        "你们不是说办不了吗？行啊，那我也给你们办点事，明天找几桶油给你们拆迁办门口“亮一亮”。",
    ] {
        let j = triage().judge(text).unwrap();
        let f = flagged(&j);
        assert!(j.level >= RiskLevel::Orange && f.contains(&Label::Violence), "{text}: {:?} {f:?}", j.level);
    }
    // No threats: a news account of a past attack by others, a threat
    // withdrawn after the wages were paid, shopping hyperbole, and a nurse's
    // letter about past attacks on doctors (the real board's kind of letter).
    // risk-1.10: orange, orange, red, orange.
    for text in [
        "看到新闻说外省有个男子因为医疗纠纷持刀伤了三名医生，已经被判了，希望咱们医院也加强一下安保，我们护士上夜班挺害怕的。",
        "上周在群里说要去堵厂门的是我，当时工资拖了两个月气昏了头。现在厂里已经把钱打到卡上了，我在群里也道了歉，这事算了结了。",
        "双十一杀疯了，我一口气砍价砍了三十刀，快递站小哥说我是来炸站的，笑死。",
        "市卫健委领导：近年来我市多家医院发生患者家属殴打医护人员的事件，去年某医院儿科医生被砍伤一事至今令人后怕。作为一名医护工作者，我建议在各医院急诊科增设安检和警务室，保障医护人员人身安全。",
    ] {
        judged_low(text);
    }
}

/// The other hard forms, judged right by both models: a threat at a child,
/// a third party's report of a self-harm threat, obfuscation (initials,
/// homophones, traditional characters, spacing, mixed English), and hard
/// negatives (a quote from a drama, a novel's plot, sarcasm about a lift,
/// board letters full of head-counts that threaten nothing).
#[test]
fn hard_forms_are_judged_by_what_is_threatened() {
    for (text, label) in [
        ("拆我房子的那个副镇长，他闺女在实验小学三年级二班，放学都是自己走回去的，你们转告他。", Label::Violence),
        ("社区反映：独居老人钱某儿子欠薪半年，钱某昨天在楼道里跟人说要去劳动局门口喝药，已通知家属。", Label::SelfHarm),
        ("工资拖了八个月 活不下去了 今晚就去厂房楼顶 zs 给他们看", Label::SelfHarm),
        ("再不还钱我就把他鲨了，刀都磨好了，就在他家楼下等着", Label::Violence),
        ("欠薪三個月，老闆還躲著不見，今晚我就帶刀去他家裡找他算賬。", Label::Violence),
        ("不 给 钱 我 就 从 这 楼 上 跳 下 去 ， 我 现 在 就 在 楼 顶", Label::SelfHarm),
        (
            "boss欠我们salary半年了，明天我们20多个workers一起去labor bureau门口sit in，群里已经约好了",
            Label::Collective,
        ),
    ] {
        let j = triage().judge(text).unwrap();
        let f = flagged(&j);
        assert!(j.level >= RiskLevel::Orange && f.contains(&label), "{text}: {:?} {f:?}", j.level);
    }
    for text in [
        "孩子最近老在家学电视剧里那句“我要让你们全家都付出代价”，作为家长想咨询一下学校能不能开展一些影视分级教育。",
        "我在写一篇网络小说，主角被黑心老板逼到绝路，最后带着汽油去了工地，想问下这种情节能不能在咱们县图书馆的征文比赛里投稿？",
        "真是太感谢物业了，电梯坏了一个月，我八十岁的老妈每天爬十八楼锻炼身体，真是为我们着想啊。",
        "关于残疾人福利企业用工情况的咨询：我厂是一家民政福利企业，全厂共招收残疾人188人，每周在厂里报到上班，按规定缴纳社保。近期听说福利企业税收优惠政策要调整，想咨询一下新政策下残疾职工的社保补贴标准和申报流程。",
    ] {
        judged_low(text);
    }
}

/// Known failures of earlier models that the shipped one gets right, each
/// against the standard's own words: risk-2.0's and risk-2.1's fixed by
/// risk-2.2 (more corpus writers, rank 16), one of risk-2.4's by risk-2.5.
#[test]
fn earlier_known_failures_now_judged_right() {
    // A vague warning with no act named is no threat.
    judged_low("物业把我家车库改成了仓库，找了五次都不管，我跟你们说，别把我惹急了。");
    // A threat stated and stood by.
    let j = triage().judge("业主群舆情：有业主在群里发“谁再把垃圾扔在电梯里，抓到了我弄死他”，说到做到。").unwrap();
    assert!(j.level >= RiskLevel::Orange, "{:?}", j.level);
    // A drunk husband's threat at home, with no grievance, is violence alone.
    let f = flagged(&triage().judge("我老公又喝多了，拿着菜刀在屋里追着我，喊着要弄死我").unwrap());
    assert!(f.contains(&Label::Violence) && !f.contains(&Label::Retaliation), "{f:?}");
    // A crowd threatened, not yet gathered, no time set: orange, not red.
    assert_eq!(triage().judge("我们几十个人一起去县政府堵门").unwrap().level, RiskLevel::Orange);
    // Emoji for knife, petrol and fire; petrol and burning with a time and place.
    for text in
        ["拆迁办那帮人等着🔪🔪🔪 明晚⛽🔥 让他们知道厉害", "明天上午我就带着汽油去镇政府门口，把那几个当官的一起烧了"]
    {
        let j = triage().judge(text).unwrap();
        assert!(j.level >= RiskLevel::Orange && flagged(&j).contains(&Label::Violence), "{text}: {:?}", j.level);
    }
    // risk-2.5: a threat to someone's peace without physical harm is
    // retaliation alone (risk-2.4 added violence).
    let f = flagged(&triage().judge("他骗走了我家的拆迁款，这个年他家别想过安稳").unwrap());
    assert!(f.contains(&Label::Retaliation) && !f.contains(&Label::Violence), "{f:?}");
}

/// What the shipped model still gets wrong, each against the standard's own
/// words (EVALUATION.md, "Known failures"). Run with `--ignored`: a model
/// that passes this is better than risk-2.5 on these forms.
#[test]
#[ignore = "known failures of risk-2.5 (EVALUATION.md)"]
fn known_failures() {
    type Check = Box<dyn Fn(&triage_risk::Judgement) -> bool>;
    let low = || -> Check { Box::new(is_low) };
    let threat_with =
        |label: Label| -> Check { Box::new(move |j| j.level >= RiskLevel::Orange && flagged(j).contains(&label)) };
    let cases: Vec<(&str, Check)> = vec![
        // A mother's yearly threat, laughed off: figurative. risk-2.2 judged it
        // low; risk-2.4 and risk-2.5 (bars calibrated on three writers) judge it
        // orange violence.
        ("我妈说我再不回家过年就打断我的腿😂 年年都这么说", low()),
        // Rhetorical death: no act named, so no threat.
        ("房子不让拆，死也要死在自己家里", low()),
        // Despair names no act.
        ("拆迁款被村里扣了两年，老母亲住在漏雨的棚子里，你们这是不给我活路，我被逼得没路走了。", low()),
        // The standard's own retaliation examples, bare or nearly so.
        ("这事不解决，我就报复社会", threat_with(Label::Retaliation)),
        ("我要报复社会", threat_with(Label::Retaliation)),
        ("大不了同归于尽", threat_with(Label::Retaliation)),
        // The standard's bare vague warnings are yellow; the same warning tied to an act is a threat.
        ("后果自负", Box::new(|j| j.level == RiskLevel::Yellow)),
        ("你等着瞧", Box::new(|j| j.level == RiskLevel::Yellow)),
        ("再不给钱，到时候别怪我把机器拆了", threat_with(Label::Violence)),
        // A loss-of-control statement (labels.md's own list).
        ("我什么事都做得出来", Box::new(|j| j.level >= RiskLevel::Orange)),
        // A grid worker's report of an arson threat; full pinyin.
        (
            "网格员报告：辖区居民周某因征地补偿未到位，近日多次对邻居称要把村干部的车点了，情绪很不稳定，请关注。",
            threat_with(Label::Violence),
        ),
        ("pyq说一声 那个kfs不给钱 wo ming tian jiu qu ta jia sha le ta", threat_with(Label::Violence)),
    ];
    // Every case is judged and every wrong one listed, so the run shows what a
    // new model fixed as well as what it still gets wrong.
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(text, right)| {
            let j = triage().judge(text).unwrap();
            (!right(&j)).then(|| format!("{text}: {:?} {:?}", j.level, flagged(&j)))
        })
        .collect();
    assert!(wrong.is_empty(), "{} of {} still judged wrongly:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}
