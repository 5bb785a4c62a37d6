//! Cue spans on real sentences: what fires, where, and what must not fire.

use triage_risk::{CueKind, CueLexicon, Label, Suppression};

fn lexicon() -> CueLexicon {
    CueLexicon::builtin().unwrap()
}

fn threats(text: &str) -> Vec<(Label, String)> {
    lexicon()
        .analyse(text)
        .evidence
        .into_iter()
        .filter(|e| e.kind == CueKind::Threat)
        .map(|e| (e.label.unwrap(), e.cue))
        .collect()
}

/// Asserts that a threat cue of `label` fires in `text`.
#[track_caller]
fn assert_fires(text: &str, label: Label) {
    let found = threats(text);
    assert!(found.iter().any(|(l, _)| *l == label), "{text}: {found:?}");
}

/// Asserts that no threat cue fires in `text`.
#[track_caller]
fn assert_silent(text: &str) {
    let found = threats(text);
    assert!(found.is_empty(), "{text}: {found:?}");
}

#[test]
fn a_threat_fires_with_char_offsets() {
    let text = "老板拖欠工资三个月，明天上午我就带汽油去镇政府，跟他们同归于尽！";
    let r = lexicon().analyse(text);
    let chars: Vec<char> = text.chars().collect();
    let find = |cue: &str| {
        r.evidence.iter().find(|e| e.cue == cue).unwrap_or_else(|| panic!("{cue} missing: {:?}", r.evidence))
    };
    for e in &r.evidence {
        // Offsets are Unicode chars, end exclusive.
        assert_eq!(chars[e.start..e.end].iter().collect::<String>(), e.cue);
    }
    let petrol = find("汽油");
    assert_eq!((petrol.start, petrol.end), (17, 19));
    assert!(r.evidence.iter().any(|e| e.kind == CueKind::SpecificTime && e.cue.starts_with("明天")));
    assert!(r.evidence.iter().any(|e| e.kind == CueKind::SpecificMeans && e.cue == "汽油"));
    assert!(r.evidence.iter().any(|e| e.label == Some(Label::Retaliation) && e.cue.contains("同归于尽")));
    assert!(r.evidence.iter().any(|e| e.label == Some(Label::Livelihood) && e.kind == CueKind::Topic));
}

#[test]
fn figurative_and_everyday_usage_does_not_fire() {
    for text in [
        "今天去市场砍价，老板说我太会杀价了",
        "双十一秒杀抢到了一台电视",
        "我准备跟物业打官司，先打电话咨询一下律师",
        "疫情结束后大家都在报复性消费，报复性熬夜也很常见",
        "累死了，加班到十二点，饿死了，笑死我了",
        "电脑中毒了，要装个杀毒软件，顺便点了份炸鸡",
        "堵车堵得要命，气炸了",
        "他欠我的钱今天终于还了，以后打死都不借钱给朋友了",
        "在亲戚家吃杀猪菜，撑死了，疼死我了",
        "楼下的狗一晚上叫个不停，吵死了",
        "好久没见了，想死你们了",
        "砖厂停了，天天喝空气喝得我们想死的心都有了",
        "手机掉在地上摔得稀巴烂，出门前把门锁了",
        "全村300多户村民到现在还没用上自来水",
        // Taking medicine is no overdose; a result (分到, 拿到) is no march.
        "我妈每天按时吃药，血压一直稳定",
        "他吃了药就睡了，第二天好多了",
        "至今仍有52户没分到安置房",
        // The writer's own ruin is no threat; 等着瞧 alone is a vague warning.
        "那个骗子让我倾家荡产",
        "你等着瞧",
        "我婆婆说她拼了老命也给我们带孩子",
        // A space ends a chat clause: 把…炸了 does not reach across it.
        "大家别在那个团购群买菜了 群主还把我踢了 气炸了",
        // A price haggled over, and a simile: the act is a comparison.
        "在夜市跟摊主砍了好久的价 才便宜五块",
        "楼上每天早上剁排骨，咚咚的跟砍人似的，能不能管管",
    ] {
        assert_silent(text);
    }
    // A simile before the act leaves the act a threat.
    assert_fires("他拿着菜刀像疯了一样要砍人", Label::Violence);
    let r = lexicon().analyse("报复性消费");
    assert!(
        r.suppressed
            .iter()
            .any(|(e, why)| e.cue == "报复" && matches!(why, Suppression::Figurative | Suppression::InsideWord)),
        "{:?}",
        r.suppressed
    );
}

#[test]
fn negated_threats_do_not_fire_but_conditional_ones_do() {
    for text in [
        "我绝不会做傻事，请你们放心",
        "我不会跳楼的，就是想要个说法",
        "我从没想过报复谁",
        "我不是那种会报复人的人，就想要个公道",
    ] {
        assert_silent(text);
        assert!(lexicon().analyse(text).suppressed.iter().any(|(_, w)| *w == Suppression::Negated), "{text}");
    }
    // "再不……就……" names an act: it is a threat.
    assert_fires("再不给钱我就跳楼", Label::SelfHarm);
    assert_fires("如果再不解决，我就去把他家的车砸了", Label::Violence);
    // 别 in 别怪我 warns, it does not negate (labels.md: "到时候别怪我把机器拆了" is a threat).
    assert_fires("再不给钱，到时候别怪我把机器拆了", Label::Violence);
}

#[test]
fn finished_past_events_and_fiction_do_not_fire() {
    for past in [
        "去年他在村口跟人打架了，已经处理完，我想问问医药费怎么报销",
        // The cue is itself the completed act (砍了), and 前天 is past.
        "前天隔壁的老蒋说挡了他家的光，叫人来砍了二十多根竹子，我想让他按价赔",
        // A date with its year is the history of the case.
        "黄某2019年发病时曾砍伤其父，经治疗后病情稳定，目前按时服药",
        // 曾 right before the act: past and done, with no date (持刀 is a
        // means, not a completed act).
        "患者曾持刀伤人，经强制医疗后出院，家属负责看护",
        // A drill stages the act.
        "学校组织防暴演练，由保安扮演持刀歹徒闯入教学楼",
        // 会 inside 村委会 is no future tense for the act.
        "去年他在村委会门口跟人打架了，已经处理完了，我想问问医药费怎么报销",
    ] {
        assert_silent(past);
    }
    // The same act ahead is a threat, and a wish to die is not a finished act.
    assert!(!threats("昨天他又来闹，我今天就砍了他").is_empty());
    assert!(!threats("他说明天要去村委会把会计砍了").is_empty());
    assert_fires("上月低保被取消了，她多次说不如死了算了", Label::SelfHarm);
    // 曾 as a surname is no past marker.
    assert_fires("曾某扬言明天持刀去村委会", Label::Violence);
    assert_fires("老曾持刀冲进了村委会", Label::Violence);
    let fiction = "昨晚看的电视剧里，男主角说要报复社会，太吓人了";
    assert_silent(fiction);
    // Forwarded news and things seen on TV are about others.
    for news in [
        "转发：【某县男子持刀砍伤前妻被刑拘】来源：某某日报 —— 太吓人了 以后晚上都早点回家",
        "电视上看到有地方因为拆迁闹到有人自焚，想问问我们这边的补偿标准",
    ] {
        assert_silent(news);
    }
    // Forwarding a call to gather is mobilising, not news.
    assert_fires("转发给所有业主：明晚七点在小区南门集合，拉横幅", Label::Collective);
    // A party's own words quoted in a grid report still count.
    let reported = "网格员上报：当事人王某扬言“谁来量地我就跟谁拼命”。";
    assert!(!threats(reported).is_empty());
    // Habitual violence is not a finished past event.
    assert!(!threats("他以前就经常喝了酒砸东西，昨天又砸了").is_empty());
}

#[test]
fn the_victims_side_does_not_fire() {
    // A whistle-blower's fear of reprisal and a finished act done to someone
    // threaten nothing (labels.md: a past, finished assault reported only to
    // ask for compensation is not violence).
    for text in [
        "我想实名举报化工厂偷排废水，但我就住在厂子旁边，怕被他们报复",
        "我有点怕以后被报复，能不能匿名",
        "厂里的订单被砍了一半，下个月可能要放假",
        // A space ends a chat clause, so 要 in the next one is not this act's future.
        "厂里的订单被砍了一半 听说下个月要放假",
    ] {
        assert_silent(text);
        assert!(lexicon().analyse(text).suppressed.iter().any(|(_, w)| *w == Suppression::Victim), "{text}");
    }
    // The act done to the writer's side, finished: a victim's report.
    let stones = "这半个月每隔几天晚上就有人往我家院子里扔石头，前天把我家窗户玻璃砸了两块";
    assert_silent(stones);
    // The same act threatened is a threat.
    assert!(!threats("他说再来就把我家窗户砸了").is_empty());
    // Habitual violence still fires, and so do people gathering on someone.
    assert!(threats("我经常被他打伤，他一喝酒就动手").iter().any(|(_, c)| c == "打伤"));
    assert_fires("办公室被二十多个人围了，门堵着不让工作人员出去", Label::Collective);
    // 被 in 被申请人 (the respondent) is no passive.
    assert_fires("被申请人当场说要砍死他", Label::Violence);
}

#[test]
fn constructions_are_caught_by_patterns() {
    for (text, label) in [
        ("那个姓孙的我见他一次打他一次", Label::Violence),
        ("这个仇我记下了，早晚要讨回来", Label::Retaliation),
        ("房子不给我，我这条老命也不要了", Label::SelfHarm),
        ("工友们明天都去劳动局门口", Label::Collective),
        // Crowd sizes in Chinese numerals as well as digits.
        ("厂里六七十个工人正围着老板的车", Label::Collective),
        ("你们都逼我，我现在就跳", Label::SelfHarm),
        // labels.md's implicit threat: a hint at someone's child or home.
        ("他儿子每天几点放学我也知道", Label::Violence),
        ("我已经记住他家住哪了", Label::Retaliation),
        // Threat idioms read in mediation records.
        ("你敢动我家一块砖试试，我让你横着出去", Label::Violence),
        ("你要敢赖账，我让你全家都不得安生", Label::Retaliation),
        ("人挡着连人一块收拾", Label::Violence),
        ("你们再不管，我就开着这车去撞他们店门", Label::Violence),
        ("这个钱不给够，我也跟着他去了", Label::SelfHarm),
        ("他走到哪我跟到哪", Label::Retaliation),
        ("我就跟你们经理个人算这笔账", Label::Retaliation),
        ("非让那个老师丢了饭碗不可", Label::Retaliation),
        ("大家把清单发群里，人多了一起去医保局讨个说法", Label::Collective),
        // Self-harm said plainly, or by what is prepared.
        ("网贷把我逼得工作丢了，我真的想死", Label::SelfHarm),
        ("本月18号我就到民政局门口，当着你们的面把农药喝了", Label::SelfHarm),
        ("今天晚上我就把门窗封死，烧炭走了", Label::SelfHarm),
        ("我们就一起爬上工地那个塔吊，不给钱不下来", Label::SelfHarm),
        ("我们两口子已经把后事都想好了", Label::SelfHarm),
        // Violence, revenge and mobilisation in the forms the training texts use.
        ("再不还，我就带人去把他家砸个稀巴烂", Label::Violence),
        ("有人拿着镰刀在追，快派人来", Label::Violence),
        // Means in hand said object first or poured out, property wrecked,
        // a blood debt.
        ("刀我已经揣兜里了，今晚我就过去", Label::Violence),
        ("地上我泼了一桶汽油，打火机就在我手上", Label::Violence),
        ("再让我白跑一趟，我就把你们这个工地给毁了", Label::Violence),
        ("这笔血债，我要让他们血债血偿", Label::Violence),
        ("他对围观的人喊谁过来砸谁", Label::Violence),
        ("他再不圈起来，我就拌点药把他家鸡鸭全药死", Label::Violence),
        ("我迟早要把他家祖坟刨了", Label::Violence),
        ("她在哪上班我门儿清，我就让她在单位混不下去", Label::Retaliation),
        ("我会让他知道得罪我们这帮人是什么下场", Label::Retaliation),
        ("他家那个店，开得了今天，开不了明天", Label::Retaliation),
        ("现在两边各有三四十号人站在河滩上，已经有人在推搡", Label::Collective),
        ("清水湾小区约100名居民沿滨河路步行前往县政府", Label::Collective),
        ("过两天咱们凑齐人一起去住建局门口", Label::Collective),
        ("这次不给答复不走，横幅我来印", Label::Collective),
        // Who-ever-then-whom, taking others down along, peace, saved-up pills.
        ("谁敢拦着不让我进去，我就砍谁", Label::Violence),
        ("大不了拉上几个当官的垫背", Label::Violence),
        ("大不了拉上几个当官的垫背", Label::Retaliation),
        ("钱不退，我让他家这个年都过不安生", Label::Retaliation),
        ("他不让我过好年，我就让他这个年也过不成", Label::Retaliation),
        ("他骗了我这么多钱，让他吃不了兜着走", Label::Retaliation),
        ("我要让这个黑心中介身败名裂", Label::Retaliation),
        ("他怎么对我，我就怎么对他", Label::Retaliation),
        ("安眠药我已经攒了两个月了", Label::SelfHarm),
        ("要是连房子也没了，我也没脸活下去了", Label::SelfHarm),
        ("老人揣着一瓶敌敌畏去了村委会", Label::SelfHarm),
        ("当事人携带一把砍刀在他家楼下转", Label::Violence),
        // A weapon made ready, a life for a life, ruin of a
        // business, a height or the water already reached, affairs put in
        // order, people already gathered (the group named after its count).
        ("我已经准备好了刀，就等他下班", Label::Violence),
        ("他害死我儿子，我就跟他一命抵一命", Label::Retaliation),
        ("不给个说法，你这个店也别想开下去", Label::Retaliation),
        ("老人坐在五楼楼顶天台边缘，谁劝都不下来", Label::SelfHarm),
        ("该交代的都交代了，这个年我不打算过了", Label::SelfHarm),
        ("售楼部门口现有三十余名某某楼盘购房业主席地而坐", Label::Collective),
        ("明早所有拉货的车都开到收费站门口", Label::Collective),
        ("镇政府院子里现在坐满了人，都是来讨工钱的", Label::Collective),
        // A space ends a chat clause: 别 in 别劝了 negates nothing after it.
        ("别劝了 我已经在江边上了", Label::SelfHarm),
        // Violence in more forms than one phrase names (跟谁拼命 beside 跟他拼,
        // a hand cut off beside 卸他一条腿, 斧头 held and not only as a
        // means), and 让他后悔 with words between.
        ("拆我家房子？谁来我就跟谁拼命", Label::Violence),
        ("下回再让我撞见，我就剁他一只手", Label::Violence),
        ("他害我丢了一条腿，我也要他一条腿", Label::Violence),
        ("他提着斧头在村口转了一上午", Label::Violence),
        ("等我找到他，我让他下半辈子都后悔", Label::Retaliation),
    ] {
        assert_fires(text, label);
    }
}

/// Context words load from `[context]` lists and from `context.<list>`
/// patterns alike; a list no rule reads (as an older lexicon file may name)
/// is ignored and leaves the evidence as it is, and an unknown one is an error.
#[test]
fn context_lists_load_from_either_table() {
    let base = "[threat.violence]\nphrases = [\"砸了\"]\n[topic.livelihood]\nphrases = [\"工资\"]\n\
                [specific.time]\nphrases = [\"明天\"]\n[escalation.vague_warning]\nphrases = [\"别逼我\"]\n\
                [figurative]\nphrases = []\n";
    let text = "我从没想把他家砸了";
    let taken = |tables: &str| CueLexicon::from_toml(&format!("{base}{tables}")).unwrap().analyse(text).evidence.len();
    assert_eq!(taken("[context]\n"), 1);
    for tables in ["[context]\nnegator = [\"从没\"]\n", "[pattern]\n\"context.negator\" = [\"从没\"]\n[context]\n"]
    {
        assert_eq!(taken(tables), 0, "{tables}");
    }
    for tables in [
        "[context]\nintent_pattern = [\"我从\"]\nwithdrawn = [\"和解\"]\n",
        "[pattern]\n\"context.intent\" = [\"我从\"]\n[context]\n",
    ] {
        assert_eq!(taken(tables), 1, "{tables}");
    }
    assert!(CueLexicon::from_toml(&format!("{base}[pattern]\n\"context.nope\" = [\"x\"]\n[context]\n")).is_err());
    assert!(CueLexicon::from_toml(&format!("{base}[context]\nnope = [\"x\"]\n")).is_err());
}

/// Only phrases join jieba's dictionary: a regex source that happens to be
/// plain text (here a threat pattern) must not swallow a cue phrase into
/// one long word and so misalign it.
#[test]
fn regex_sources_do_not_join_the_word_dictionary() {
    let base = "[threat.violence]\nphrases = [\"砸了\"]\n[topic.livelihood]\nphrases = [\"工资\"]\n\
                [specific.time]\nphrases = [\"明天\"]\n[escalation.vague_warning]\nphrases = [\"别逼我\"]\n\
                [figurative]\nphrases = []\n[context]\n";
    let text = "明天就去他家砸了门窗";
    for tables in ["", "[pattern]\nviolence = [\"家砸了门\"]\n"] {
        let lex = CueLexicon::from_toml(&format!("{base}{tables}")).unwrap();
        let words = lex.jieba().cut(text, true);
        assert!(words.contains(&"砸了"), "{tables}: {words:?}");
    }
}

#[test]
fn never_panics_on_awkward_text() {
    let lex = lexicon();
    for text in ["", " ", "。。。", "“”", "把", "跟他", "a\u{0}b", "😡😡😡拼了", "把他砸了，。", "\n\n跳楼\n"]
    {
        let r = lex.analyse(text);
        for e in &r.evidence {
            assert!(e.start < e.end && e.end <= text.chars().count());
        }
    }
}

/// labels.md lists "大不了同归于尽" under retaliation: taking the other side
/// down is no threat to oneself.
#[test]
fn dying_together_is_retaliation_not_self_harm() {
    let t = threats("再不给说法，大不了跟他同归于尽");
    assert!(t.iter().any(|(l, _)| *l == Label::Retaliation), "{t:?}");
    assert!(!t.iter().any(|(l, _)| *l == Label::SelfHarm), "{t:?}");
}

#[test]
fn a_set_time_or_place_is_a_specific_and_a_past_date_is_not() {
    let specific = |text: &str, kind: CueKind| -> Vec<String> {
        lexicon().analyse(text).evidence.into_iter().filter(|e| e.kind == kind).map(|e| e.cue).collect()
    };
    // jieba keeps 今天下午 whole, so 今天 and 下午 alone never matched it.
    assert_eq!(specific("今天下午放学我就在校门口等他", CueKind::SpecificTime), ["今天下午"]);
    assert_eq!(specific("今天下午放学我就在校门口等他", CueKind::SpecificPlace), ["校门口"]);
    assert_eq!(specific("下个月10号他儿子结婚，到时候我就去", CueKind::SpecificTime), ["下个月10号"]);
    assert_eq!(specific("本周五我们一起去县里", CueKind::SpecificTime), ["本周五"]);
    // A date in the complaint's history sets no time for an act.
    assert!(specific("2024年3月15日，他在村口打了我", CueKind::SpecificTime).is_empty());
}

/// Threat forms common in general usage that the labelled sets barely use:
/// the lexicon names them so that other writers' threats come with evidence
/// too. A machine on strike is no strike.
#[test]
fn common_threat_forms_of_other_writers_fire() {
    for (text, label) in [
        ("我迟早灭了他", Label::Violence),
        ("我找人把他干掉", Label::Violence),
        ("再这样我去教训教训他", Label::Violence),
        ("我要让他家鸡犬不宁", Label::Retaliation),
        ("参与的人一个都跑不了", Label::Retaliation),
        ("此仇不报我誓不为人", Label::Retaliation),
        ("再欺负我，我要他好看", Label::Retaliation),
        ("再不给钱我就服毒", Label::SelfHarm),
        ("你们再不管，我就去跳湖", Label::SelfHarm),
        ("行，我成全你们", Label::SelfHarm),
        ("我已经没法活了，你们看着办", Label::SelfHarm),
        ("我们准备赴京上访", Label::Collective),
        ("再拖工资全厂工人就罢工", Label::Collective),
    ] {
        assert_fires(text, label);
    }
    for text in ["又停电了 热死了 空调罢工", "这台老电脑三天两头罢工"] {
        assert_silent(text);
    }
}
