//! `triage judge` through the real binary: the answer per text, and with
//! `--scores` the raw decision beside it (for operators' error analysis).

use std::io::Write;
use std::process::{Command, Stdio};

fn judge(args: &[&str], input: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .arg("judge")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const TEXTS: &str =
    "{\"id\":\"a\",\"text\":\"明天上午我就带汽油去镇政府\"}\n{\"id\":\"b\",\"text\":\"咨询一下新农合住院报销比例\"}\n";

#[test]
fn scores_add_the_raw_decision_and_agree_with_the_answer() {
    let plain = judge(&[], TEXTS);
    assert_eq!(plain.len(), 2);
    assert!(plain.iter().all(|r| r["result"]["level"].is_string() && r.get("decision").is_none()), "{plain:?}");

    let scored = judge(&["--scores"], TEXTS);
    assert_eq!(scored.len(), 2);
    for (p, s) in plain.iter().zip(&scored) {
        // The answer is the same with or without the scores.
        assert_eq!(p["result"], s["result"], "{}", s["id"]);
        let d = &s["decision"];
        assert_eq!(d["level"], s["result"]["level"], "{d}");
        let cuts = d["scores"]["level"].as_array().expect("three level-cut probabilities");
        assert_eq!(cuts.len(), 3, "{d}");
        assert!(cuts.iter().all(|p| p.as_f64().is_some_and(|p| (0.0..=1.0).contains(&p))), "{d}");
        assert_eq!(d["thresholds"].as_array().map(Vec::len), Some(5), "{d}");
        let flagged: Vec<bool> = d["flagged"].as_array().unwrap().iter().map(|f| f.as_bool().unwrap()).collect();
        let answered: Vec<bool> =
            s["result"]["labels"].as_array().unwrap().iter().map(|l| l["flagged"].as_bool().unwrap()).collect();
        assert_eq!(flagged, answered, "{d}");
    }
    // Petrol taken to a government office tomorrow: the red cut is the highest.
    let red = scored[0]["decision"]["scores"]["level"][2].as_f64().unwrap();
    let blue_text_red = scored[1]["decision"]["scores"]["level"][2].as_f64().unwrap();
    assert!(red > blue_text_red, "{red} vs {blue_text_red}");
    assert_eq!(scored[1]["result"]["level"], "blue");
}
