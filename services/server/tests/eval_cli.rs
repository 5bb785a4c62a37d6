//! `triage eval` end to end on a small file, through the real binary.

use std::process::Command;

fn triage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_triage"))
}

const SET: &str = r#"{"id":"e1","text":"明天上午我就带汽油去镇政府，不给拆迁款就同归于尽","labels":["violence","retaliation","livelihood"],"level":"red","source":"hotline"}
{"id":"e2","text":"咨询一下新农合住院报销比例是多少","labels":["livelihood"],"level":"blue","source":"hotline"}
{"id":"e3","text":"老板拖欠我们二十多个工友半年工资，大家商量好下周一起去县政府门口拉横幅","labels":["collective","livelihood"],"level":"orange","source":"chat"}
{"id":"e4","text":"这是我第五次反映小区停水的问题了，一直没人管，家里老人孩子都没水喝","labels":["livelihood"],"level":"yellow","source":"message"}
{"id":"e5","text":"今天去菜市场砍价，老板说我太会杀价了，笑死","labels":[],"level":"blue","source":"chat"}
{"id":"e6","text":"再不给我儿子治病的钱，我就从医院楼顶跳下去","labels":["self_harm","livelihood"],"level":"orange","source":"petition"}
"#;

#[test]
fn eval_writes_json_and_html_with_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("set.jsonl");
    std::fs::write(&data, SET).unwrap();
    let (json, html) = (dir.path().join("m.json"), dir.path().join("r.html"));
    let out = triage()
        .args(["eval", "--data"])
        .arg(&data)
        .arg("--json")
        .arg(&json)
        .arg("--report")
        .arg(&html)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(m["n"], 6);
    for key in ["macro_f1", "level_accuracy", "level_qwk", "under_triage", "red_recall", "false_alarm", "model_version"]
    {
        assert!(!m[key].is_null(), "{key}");
    }
    for label in ["violence", "retaliation", "self_harm", "collective", "livelihood"] {
        for k in ["precision", "recall", "f1", "support"] {
            assert!(m["labels"][label][k].is_number(), "{label}.{k}");
        }
        assert_eq!(m["threshold_sweep"][label].as_array().unwrap().len(), 19);
    }
    assert_eq!(m["labels"]["livelihood"]["support"], 5);
    let confusion = m["level_confusion"].as_array().unwrap();
    let total: u64 = confusion.iter().flat_map(|r| r.as_array().unwrap()).map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 6);
    assert_eq!(m["by_source"]["hotline"]["n"], 2);
    let report = std::fs::read_to_string(&html).unwrap();
    assert!(report.contains("<svg") && report.contains("By source"));
}

#[test]
fn a_malformed_line_is_reported_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.jsonl");
    let mut lines: Vec<&str> = SET.lines().take(2).collect();
    lines.push(r#"{"id":"x","text":"缺少等级","labels":[]}"#);
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = triage().args(["eval", "--data"]).arg(&data).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:3:"), "{err}");

    std::fs::write(&data, r#"{"id":"y","text":"未知标签","labels":["riot"],"level":"red"}"#).unwrap();
    let out = triage().args(["eval", "--data"]).arg(&data).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(":1:") && err.contains("unknown label"), "{err}");
}

/// Issue 18's bar for the int8 encoder: `triage eval` on the whole dev set
/// within ±0.005 macro-F1 of the f32 path. Ignored by default (it judges dev
/// twice); run it with
/// `cargo test --release -p triage-server --test eval_cli -- --ignored --nocapture int8`
/// (`TRIAGE_DATA` names the data directory, relative to the workspace root).
#[test]
#[ignore = "slow: judges the dev set on both paths"]
fn int8_keeps_dev_macro_f1_within_half_a_point_of_f32() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join(std::env::var("TRIAGE_DATA").unwrap_or_else(|_| "../shared/data".into())).join("dev.jsonl");
    assert!(data.is_file(), "{} is missing (set TRIAGE_DATA)", data.display());
    let dir = tempfile::tempdir().unwrap();
    let f1 = |mode: &str| -> f64 {
        let json = dir.path().join(format!("{mode}.json"));
        let out = triage()
            .env("TRIAGE_MATMUL", mode)
            .args(["eval", "--data"])
            .arg(&data)
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert!(out.status.success(), "{mode}: {}", String::from_utf8_lossy(&out.stderr));
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert!(m["n"].as_u64().unwrap() >= 200, "{mode}: only {} texts", m["n"]);
        m["macro_f1"].as_f64().unwrap()
    };
    let (f32_f1, int8_f1) = (f1("f32"), f1("int8"));
    println!("dev macro-F1: f32 {f32_f1:.4}, int8 {int8_f1:.4}");
    assert!((int8_f1 - f32_f1).abs() <= 0.005, "int8 macro-F1 {int8_f1:.4} against f32 {f32_f1:.4}");
}
