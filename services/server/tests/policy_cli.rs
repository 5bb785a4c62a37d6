//! The escalation policy's similarity thresholds against the labelled pairs
//! (`models/pairs`), with the service's own encoder and delta.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn calibrate(pairs: &Path, policy: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["policy", "calibrate", "--check", "--pairs"])
        .arg(pairs)
        .arg("--policy")
        .arg(policy)
        .output()
        .unwrap()
}

#[test]
fn the_shipped_thresholds_give_their_stated_precision_on_the_pairs() {
    let out = calibrate(&repo("models/pairs/pairs.jsonl"), &repo("models/policy.toml"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for name in ["similar.min_score", "rule.repeat_petition.min_similarity", "rule.similar_escalated.min_similarity"] {
        assert!(stdout.contains(name), "{name} not measured:\n{stdout}");
    }
}

#[test]
fn a_loose_threshold_fails_the_check() {
    // 40 pairs and a threshold every same-topic pair and most others pass.
    let dir = tempfile::tempdir().unwrap();
    let pairs = std::fs::read_to_string(repo("models/pairs/pairs.jsonl")).unwrap();
    let few: String = pairs.lines().take(40).map(|l| format!("{l}\n")).collect();
    let pairs_path = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs_path, few).unwrap();
    let policy = std::fs::read_to_string(repo("models/policy.toml")).unwrap();
    let (head, tail) = policy.split_once("id = \"similar_escalated\"").unwrap();
    let old = tail.lines().find(|l| l.starts_with("min_similarity")).unwrap();
    let loose = format!("{head}id = \"similar_escalated\"{}", tail.replacen(old, "min_similarity = 0.5", 1));
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, loose).unwrap();
    let out = calibrate(&pairs_path, &policy_path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rule.similar_escalated.min_similarity"), "{stderr}");
}
