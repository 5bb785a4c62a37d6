//! Black-box tests: the real `triage` binary on loopback, with a temporary
//! data directory and keys file, the real encoder and the embedded store.
//! The model must have been fetched (`triage model fetch`), as the README's
//! test command does first. Routing, keys, roles, limits and error codes,
//! which need no model, are tested in-process in
//! `services/server/tests/router.rs`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{code, kill, rules, Server, ANALYST, OPERATOR, PLATFORM};

#[test]
fn triage_escalation_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);

    // A red text comes back red, with evidence spans that point at the text.
    let text = "明天上午我就带着汽油去镇政府门口，把那几个当官的一起烧了。";
    let (st, v) = s.post("/v1/triage", PLATFORM, json!({"text": text}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["level"], "red", "{v}");
    assert_eq!(v["base_level"], "red");
    assert!(v["model_version"].as_str().unwrap().starts_with("risk-"));
    let ev = v["evidence"].as_array().unwrap();
    assert!(!ev.is_empty());
    let chars: Vec<char> = text.chars().collect();
    for e in ev {
        let (a, b) = (e["start"].as_u64().unwrap() as usize, e["end"].as_u64().unwrap() as usize);
        assert_eq!(chars[a..b].iter().collect::<String>(), e["cue"].as_str().unwrap());
    }
    assert!(ev.iter().any(|e| e["cue"].as_str().unwrap().contains("汽油")), "{v}");
    // Petrol taken to a government office reads as violence or self-harm alike
    // in the labelled sets; a threat label must be flagged either way.
    let threats = ["violence", "retaliation", "self_harm", "collective"];
    assert!(
        v["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| threats.contains(&l["label"].as_str().unwrap()) && l["flagged"] == true),
        "{v}"
    );

    // A repeat petition: the same reporter's third similar complaint within 90 days is raised.
    let noise = [
        "我家楼下的烧烤店每天营业到凌晨两点，油烟和噪音太大，孩子没法睡觉，请城管来处理。",
        "楼下烧烤店天天开到凌晨两点，噪音油烟严重，家里孩子睡不着觉，请城管处理一下。",
        "又是楼下那家烧烤店，每天开到凌晨两点，吵得孩子睡不着，油烟也大，请城管管一管。",
    ];
    let ctx = |day: u32| json!({"reporter": "13900001111", "district": "东城区", "received_at": format!("2026-11-{day:02}T09:00:00+08:00"), "accepted_at": format!("2026-11-{day:02}T10:00:00+08:00"), "as_of": format!("2026-11-{day:02}T12:00:00+08:00")});
    for (i, t) in noise[..2].iter().enumerate() {
        let (st, v) = s.post(
            "/v1/triage",
            PLATFORM,
            json!({"text": t, "case_id": format!("noise-{i}"), "store": true, "context": ctx(10 + i as u32)}),
        );
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["stored"], true);
        assert!(!rules(&v).contains(&"repeat_petition".to_string()), "{v}");
    }
    let (_, v) = s.post("/v1/triage", PLATFORM, json!({"text": noise[2], "case_id": "noise-2", "context": ctx(20)}));
    assert!(rules(&v).contains(&"repeat_petition".to_string()), "{v}");
    let esc = &v["escalations"][0];
    assert_eq!(esc["from"], v["base_level"]);
    assert!(esc["reason"].as_str().unwrap().contains("重复信访"));
    assert!(v["similar"].as_array().unwrap().iter().any(|c| c["same_reporter"] == true));
    // Another reporter with the same complaint is not a repeat.
    let mut other = ctx(20);
    other["reporter"] = json!("13700002222");
    let (_, v) = s.post("/v1/triage", PLATFORM, json!({"text": noise[2], "context": other}));
    assert!(!rules(&v).contains(&"repeat_petition".to_string()), "{v}");

    // An overdue 13715 time limit: received ten days ago, accepted, never resolved.
    let (_, v) = s.post(
        "/v1/triage",
        PLATFORM,
        json!({"text": "咨询一下孩子上小学的户籍要求和报名时间。", "context": {"received_at": "2026-11-01", "accepted_at": "2026-11-01T15:00:00+08:00", "as_of": "2026-11-11T09:00:00+08:00"}}),
    );
    assert_eq!(rules(&v), ["time_limit_resolve"], "{v}");
    let order = ["blue", "yellow", "orange", "red"];
    let rank = |x: &Value| order.iter().position(|l| x == *l).unwrap();
    assert_eq!(rank(&v["level"]), rank(&v["base_level"]) + 1, "{v}");

    // Index three cases, search by text: the right one ranks first, filters hold.
    let cases = [
        ("wage-1", "工地老板拖欠我们十几个工人半年的工资，一共三十多万，去要了好几次都说没钱。", "西城区"),
        ("water-1", "我们小区已经停水三天了，物业一直不给说法，老人孩子喝水都成问题。", "东城区"),
        ("road-1", "村口的路坑坑洼洼，下雨天全是泥，学生上学很不方便，希望修一下。", "南城区"),
    ];
    for (id, t, d) in cases {
        let (st, v) = s.post(
            "/v1/cases",
            PLATFORM,
            json!({"case_id": id, "text": t, "context": {"district": d, "received_at": "2026-11-15"}}),
        );
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["case_id"], id);
    }
    let q = "包工头欠了我们工人大半年的工钱不给，讨了很多次都没用。";
    let (st, v) = s.post("/v1/cases/search", ANALYST, json!({"text": q, "top_k": 3}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["hits"][0]["case"]["case_id"], "wage-1", "{v}");
    assert!(v["hits"][0]["score"].as_f64().unwrap() > v["hits"][1]["score"].as_f64().unwrap());
    // The hit says which words it shares with the query, with their weights.
    let shared = v["hits"][0]["shared"]["terms"].as_array().unwrap();
    assert!(shared.iter().any(|t| t["term"] == "工人"), "{v}");
    assert!(shared.iter().all(|t| t["weight"].as_f64().unwrap() > 0.0), "{v}");
    assert!(v["hits"][0]["rank_score"].as_f64().unwrap() > 0.0, "{v}");
    let (st, v) = s.post("/v1/cases/search", ANALYST, json!({"text": q, "ranking": "dense"}));
    assert_eq!((st, &v["hits"][0]["case"]["case_id"]), (200, &json!("wage-1")), "{v}");
    let (st, _) = s.post("/v1/cases/search", ANALYST, json!({"text": q, "ranking": "bm25"}));
    assert_eq!(st, 400);
    let (_, v) = s.post("/v1/cases/search", ANALYST, json!({"text": q, "filters": {"district": "东城区"}}));
    let hits = v["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h["case"]["district"] == "东城区"), "{v}");
    let (_, v) = s.post(
        "/v1/cases/search",
        ANALYST,
        json!({"text": q, "filters": {"received_from": "2026-11-14", "received_to": "2026-11-16"}}),
    );
    let ids: Vec<&str> = v["hits"].as_array().unwrap().iter().map(|h| h["case"]["case_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{v}");
    assert!(ids.iter().all(|id| ["wage-1", "water-1", "road-1"].contains(id)));
    let (_, v) = s.post("/v1/cases/search", ANALYST, json!({"text": q, "filters": {"reporter": "13900001111"}}));
    assert!(
        v["hits"].as_array().unwrap().iter().all(|h| h["case"]["case_id"].as_str().unwrap().starts_with("noise-")),
        "{v}"
    );
    // By case id: the case itself is left out, and what each hit shares is said.
    let (st, v) = s.post("/v1/cases/search", ANALYST, json!({"case_id": "noise-0", "top_k": 2}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["hits"][0]["case"]["case_id"], "noise-1", "{v}");
    assert_eq!(v["hits"][0]["shared"]["district"], true);
    // Read and delete.
    let (st, v, _) = s.call("GET", "/v1/cases/wage-1", Some(ANALYST), None);
    assert_eq!(st, 200);
    assert_eq!(v["district"], "西城区");
    assert!(v["text"].as_str().unwrap().contains("工资"));
    assert!(v.get("vector").is_none());
    let (st, v, _) = s.call("DELETE", "/v1/cases/road-1", Some(PLATFORM), None);
    assert_eq!((st, v["deleted"].as_bool()), (200, Some(true)));
    let (st, v, _) = s.call("GET", "/v1/cases/road-1", Some(ANALYST), None);
    assert_eq!((st, code(&v)), (404, "unknown_case"));

    // Batch answers in order.
    let items: Vec<Value> = [noise[0], text, cases[1].1].iter().map(|t| json!({"text": t})).collect();
    let (st, v) = s.post("/v1/triage/batch", PLATFORM, json!({"items": items}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
    assert_eq!(v["items"][1]["level"], "red");

    // Metrics for operators; the API description for any key.
    let (st, m, _) = s.call("GET", "/metrics", Some(OPERATOR), None);
    assert_eq!(st, 200);
    let m = m.as_str().unwrap();
    for name in [
        "triage_http_requests_total",
        "triage_http_request_duration_seconds_bucket",
        "triage_queue_depth",
        "triage_levels_total",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics");
    }
    assert!(m.contains("route=\"/v1/triage\""));
    let (st, doc, _) = s.call("GET", "/openapi.json", Some(ANALYST), None);
    assert_eq!(st, 200);
    for p in [
        "/v1/triage",
        "/v1/triage/batch",
        "/v1/cases",
        "/v1/cases/{case_id}",
        "/v1/cases/search",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from the OpenAPI document");
    }
    drop(s);
}

/// The cascade a late case used to start: the same water-cut complaint, one
/// reporter, three calls a day apart, each stored; then a neighbour's.
#[test]
fn escalation_reads_past_risk_not_past_lateness() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let texts = [
        "幸福里小区5栋已经停水六天了，物业说管道坏了却一直没人来修。家里有瘫痪在床的老人，天天只能去外面拎水，这是我第三次反映了，还是没人管，我们真的撑不下去了。",
        "又来反映幸福里小区5栋停水的事，快一个礼拜了，物业说水管坏了到现在还没修，家里瘫痪老人用水全靠我外面拎，反映了好几次没人管，真的撑不下去了。",
        "幸福里小区5栋停水第八天了，物业还是说管道在修，根本没人来。家里卧床的老人喝水擦身都成问题，我已经打了好几次电话，一直没人管，我们快撑不住了。",
        "我也是幸福里小区5栋的住户，停水一个多星期了，物业说管子坏了一直拖着不修，楼里好几户有卧床老人，用水全靠外面拎，反映多次没人管，大家都撑不下去了。",
    ];
    let call = |i: usize, reporter: &str, received: &str, as_of: &str| {
        let body = json!({"text": texts[i], "case_id": format!("water-{}", i + 1), "store": true,
            "context": {"reporter": reporter, "received_at": received, "as_of": as_of}});
        let (st, v) = s.post("/v1/triage", PLATFORM, body);
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["base_level"], "yellow", "the texts are written yellow: {v}");
        v
    };

    // 1: six days after receipt, never met: late, so raised, but not for risk.
    let v = call(0, "13900001111", "2026-11-01T09:00:00+08:00", "2026-11-07T09:00:00+08:00");
    assert_eq!((v["level"].as_str(), rules(&v)), (Some("orange"), vec!["time_limit_meet".to_string()]), "{v}");
    assert_eq!(v["escalations"][0]["risk"], false);
    // 2: the next day, on time: call 1 was orange only for being late, so it raises nothing.
    let v = call(1, "13900001111", "2026-11-08T09:00:00+08:00", "2026-11-08T10:00:00+08:00");
    assert!(v["similar"].as_array().unwrap().iter().any(|c| c["case_id"] == "water-1" && c["risk_level"] == "yellow"));
    assert!(rules(&v).is_empty(), "{v}");
    assert_eq!(v["level"], "yellow");
    // 3: the third call is a repeat petition, a risk raise naming the two earlier cases.
    let v = call(2, "13900001111", "2026-11-09T09:00:00+08:00", "2026-11-09T10:00:00+08:00");
    assert_eq!(rules(&v), ["repeat_petition"], "{v}");
    let mut named: Vec<&str> =
        v["escalations"][0]["case_ids"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    named.sort();
    assert_eq!(named, ["water-1", "water-2"], "{v}");
    assert_eq!((v["level"].as_str(), &v["escalations"][0]["risk"]), (Some("orange"), &json!(true)));
    // 4: a neighbour's call: raised by the case whose risk reached orange, and only by it.
    let v = call(3, "13700002222", "2026-11-10T09:00:00+08:00", "2026-11-10T10:00:00+08:00");
    assert_eq!(rules(&v), ["similar_escalated"], "{v}");
    assert_eq!(v["escalations"][0]["case_ids"], json!(["water-3"]), "{v}");
    assert_eq!(v["escalations"][0]["risk"], false, "a similar-case raise is not passed on: {v}");

    // The store keeps the text's level, the risk level and the raises apart, and search shows them.
    let (st, c, _) = s.call("GET", "/v1/cases/water-1", Some(ANALYST), None);
    assert_eq!(st, 200, "{c}");
    assert_eq!(
        (c["level"].as_str(), c["base_level"].as_str(), c["risk_level"].as_str()),
        (Some("orange"), Some("yellow"), Some("yellow"))
    );
    assert_eq!(c["escalations"], json!(["time_limit_meet"]));
    let (st, v) = s.post("/v1/cases/search", ANALYST, json!({"case_id": "water-4", "top_k": 3}));
    assert_eq!(st, 200, "{v}");
    let hit =
        v["hits"].as_array().unwrap().iter().find(|h| h["case"]["case_id"] == "water-3").expect("water-3 is near");
    assert_eq!(hit["case"]["risk_level"], "orange");
    assert_eq!(hit["case"]["escalations"], json!(["repeat_petition"]));
    drop(s);
}

#[test]
fn a_policy_path_that_is_given_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("polcy.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--policy")
        .arg(&missing)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn acknowledged_writes_survive_restart_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (st, _) = s.post("/v1/cases", PLATFORM, json!({"case_id": "keep-1", "text": "村里的自来水管爆了一个星期没人修。", "labels": ["livelihood"], "level": "yellow"}));
    assert_eq!(st, 200);
    // Graceful restart.
    let s = s.restart();
    let (st, v, _) = s.call("GET", "/v1/cases/keep-1", Some(ANALYST), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["level"].as_str(), v["labels"][0].as_str()), (Some("yellow"), Some("livelihood")));
    // kill -9 right after an acknowledged write.
    let (st, _) = s.post(
        "/v1/triage",
        PLATFORM,
        json!({"text": "我再去讨薪就带上刀，谁拦我我砍谁。", "case_id": "keep-2", "store": true}),
    );
    assert_eq!(st, 200);
    let data = s.kill9();
    let s = Server::spawn(data, vec![]);
    for id in ["keep-1", "keep-2"] {
        let (st, v, _) = s.call("GET", &format!("/v1/cases/{id}"), Some(ANALYST), None);
        assert_eq!(st, 200, "{id} lost after kill -9: {v}");
    }
    // Replacing by id keeps one case.
    let (st, _) = s.post(
        "/v1/cases",
        PLATFORM,
        json!({"case_id": "keep-1", "text": "村里的自来水管爆了一个星期没人修。", "level": "blue", "labels": []}),
    );
    assert_eq!(st, 200);
    let (_, v, _) = s.call("GET", "/v1/cases/keep-1", Some(ANALYST), None);
    assert_eq!(v["level"], "blue");
}

#[test]
fn logs_hold_no_text_or_reporter_and_sighup_reloads_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/policy.toml")).unwrap();
    std::fs::write(&policy, &shipped).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let s = Server::start(&data, &["--policy", policy.to_str().unwrap(), "--store-text", "false"]);

    // Personal data goes in through every route; none of it may reach the log.
    let text = "我叫张三丰，住幸福小区7栋，物业乱收费，再不退钱我就去市里上访。";
    let ctx = json!({"reporter": "13812345678", "district": "东城区"});
    let (st, _) = s.post(
        "/v1/triage",
        PLATFORM,
        json!({"text": text, "case_id": "privacy-case-9", "store": true, "context": ctx}),
    );
    assert_eq!(st, 200);
    s.post("/v1/cases/search", ANALYST, json!({"text": text, "filters": {"reporter": "13812345678"}}));
    s.post("/v1/triage", PLATFORM, json!({"text": text, "context": {"received_at": "张三丰"}}));
    s.raw("/v1/triage", PLATFORM, "application/json", "{\"text\": \"张三丰 13812345678".as_bytes());
    s.call("GET", "/v1/cases/privacy-case-9", Some(ANALYST), None);
    // --store-text false keeps the vector and metadata, not the text.
    let (st, v, _) = s.call("GET", "/v1/cases/privacy-case-9", Some(ANALYST), None);
    assert_eq!(st, 200);
    assert!(v["text"].is_null(), "{v}");
    assert_eq!(v["district"], "东城区");
    assert!(!v.to_string().contains("13812345678"), "the reporter is stored hashed: {v}");

    // The time-limit rule as shipped: ten days unresolved is past the 7-day limit.
    let overdue = json!({"text": "咨询一下社保卡补办需要哪些材料。", "context": {"received_at": "2026-11-01", "accepted_at": "2026-11-01", "met_at": "2026-11-02", "as_of": "2026-11-11"}});
    let (_, v) = s.post("/v1/triage", PLATFORM, overdue.clone());
    assert_eq!(rules(&v), ["time_limit_resolve"], "{v}");
    // Operators give 30 days to resolve and send SIGHUP: the same case is no longer overdue.
    std::fs::write(&policy, shipped.replace("stage = \"resolve\"\ndays = 7", "stage = \"resolve\"\ndays = 30"))
        .unwrap();
    kill(s.child.id(), "-HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = s.post("/v1/triage", PLATFORM, overdue.clone());
        if rules(&v).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the policy was not reloaded: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken file is refused and the running policy kept.
    std::fs::write(&policy, "version = \"not a number\"").unwrap();
    kill(s.child.id(), "-HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s.log.lock().unwrap().contains("NOT reloaded") {
        assert!(Instant::now() < deadline, "no refusal in the log");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (st, v) = s.post("/v1/triage", PLATFORM, overdue);
    assert_eq!((st, rules(&v).len()), (200, 0), "{v}");

    let log = s.log.lock().unwrap().clone();
    assert!(log.contains("/v1/triage"), "the log has request lines");
    for secret in ["张三丰", "幸福小区", "13812345678", "privacy-case-9", "物业乱收费"] {
        assert!(!log.contains(secret), "{secret:?} reached the log:\n{log}");
    }
}

#[test]
fn shutdown_finishes_the_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let text = "我们村的土地被征用了，补偿款到现在还没发下来，村干部说钱被挪用了，大家都很着急。".repeat(6);
    let items: Vec<Value> = (0..16).map(|i| json!({"text": format!("{i}{text}")})).collect();
    let url = s.url("/v1/triage/batch");
    let inflight = std::thread::spawn(move || {
        let r = ureq::post(&url)
            .set("Authorization", &format!("Bearer {PLATFORM}"))
            .timeout(Duration::from_secs(300))
            .send_json(json!({"items": items}));
        r.map(|r| (r.status(), r.into_json::<Value>().unwrap()["items"].as_array().unwrap().len())).ok()
    });
    // Once the batch is being judged, ask the server to stop.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m, _) = s.call("GET", "/metrics", Some(OPERATOR), None);
        if m.as_str().unwrap().lines().any(|l| l.starts_with("triage_queue_depth 16")) {
            break;
        }
        assert!(Instant::now() < deadline && !inflight.is_finished(), "the batch never reached the queue");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = s;
    kill(s.child.id(), "-TERM");
    assert_eq!(inflight.join().unwrap(), Some((200, 16)), "the request in flight was answered in full");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status}");
    assert!(ureq::get(&s.url("/healthz")).call().is_err(), "no longer listening");
}

#[test]
fn import_reports_what_it_skipped_and_new_keys_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("past.jsonl");
    let lines = [
        r#"{"id": "p-1", "title": "拖欠工资", "text": "老板欠我们八个月工资不给，工人们都揭不开锅了。", "district": "北区", "time": "2026/3/4 10:00:00"}"#,
        r#"{"case_id": "p-2", "text": "小区门口的路灯坏了一个月了，晚上走路很危险。", "labels": [], "level": "blue"}"#,
        r#"{"case_id": "p-3", "text": "孩子入学的材料要准备哪些？", "reporter": "13500000000"}"#,
        r#"{"case_id": "p-4", "text": "#,
        r#"{"case_id": "p-5", "text": "  "}"#,
        r#"{"case_id": "p-6", "text": "路面塌了", "labels": ["pothole"]}"#,
        r#"{"case_id": "p-1", "text": "重复的编号"}"#,
        r#"{"case_id": "p-7", "text": "时间不对", "received_at": "yesterday"}"#,
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .arg("import")
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (summary["read"].as_u64(), summary["imported"].as_u64(), summary["skipped"].as_u64()),
        (Some(8), Some(3), Some(5)),
        "{summary}"
    );
    for (reason, n) in
        [("invalid JSON", 1), ("empty text", 1), ("unknown label", 1), ("duplicate case_id", 1), ("invalid date", 1)]
    {
        assert_eq!(summary["reasons"][reason].as_u64(), Some(n), "{reason}: {summary}");
    }

    // A key made by `triage keys new` opens the service for its role.
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["keys", "new", "--name", "analyst two", "--role", "analyst"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let key = String::from_utf8(out.stderr).unwrap().split_whitespace().last().unwrap().to_string();
    assert!(!table.contains(&key));
    let keys = dir.path().join("new-keys.toml");
    std::fs::write(&keys, &table).unwrap();
    let s = Server::start(&data, &["--keys", keys.to_str().unwrap()]);
    let (st, v, _) = s.call("GET", "/v1/cases/p-1", Some(&key), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["district"].as_str(), v["received_at"].as_str()), (Some("北区"), Some("2026-03-04T10:00:00+08:00")));
    assert!(v["text"].as_str().unwrap().starts_with("拖欠工资。"));
    let (_, v, _) = s.call("GET", "/v1/cases/p-2", Some(&key), None);
    assert_eq!(
        (v["level"].as_str(), v["model_version"].is_null()),
        (Some("blue"), true),
        "people's labels and level are kept"
    );
    let (st, v) = s.post("/v1/triage", &key, json!({"text": "好"}));
    assert_eq!((st, code(&v)), (403, "forbidden"));
    let (st, v) = s.post("/v1/triage", PLATFORM, json!({"text": "好"}));
    assert_eq!((st, code(&v)), (401, "unauthorized"), "only the new keys file is loaded");
}
