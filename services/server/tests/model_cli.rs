//! Model supply from the operator's side: a missing model on an offline host.

use std::process::Command;

#[test]
fn a_missing_model_names_the_directory_and_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("model");
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["embed", "--model-dir"])
        .arg(&model_dir)
        // Nothing listens on port 9: the fetch fails as on an offline host.
        .args(["--index-url", "http://127.0.0.1:9/simple", "--wheel-dir"])
        .arg(dir.path())
        .env("XDG_CACHE_HOME", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&model_dir.display().to_string()), "{err}");
    assert!(err.contains("offline hosts"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn model_verify_fails_on_a_tampered_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e5-small-q4.bin"), b"E5S1 not really").unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), b"{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["model", "verify", "--model-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("do not match"));
}
