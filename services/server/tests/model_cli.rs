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

/// An offline host with the model files copied in by hand (no tokenizer.compact):
/// `model fetch` verifies them without the network and writes the compact
/// tokenizer; `embed` then works from it, and rebuilds it when it is damaged.
#[test]
fn offline_fetch_writes_the_compact_tokenizer_and_embed_rebuilds_a_damaged_one() {
    let src = triage_fetch::model_dir_from_env();
    assert!(src.join("tokenizer.json").is_file(), "model missing in {}: run `triage model fetch`", src.display());
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for f in ["e5-small-q4.bin", "tokenizer.json"] {
        // A hard link where the file system allows it: the blob is 72 MB.
        if std::fs::hard_link(src.join(f), model.join(f)).is_err() {
            std::fs::copy(src.join(f), model.join(f)).unwrap();
        }
    }
    let triage = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
            .args(args)
            .arg("--model-dir")
            .arg(&model)
            // Nothing listens on port 9: any download would fail.
            .args(["--index-url", "http://127.0.0.1:9/simple"])
            .env("XDG_CACHE_HOME", dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "triage {args:?}: {stdout}\n{stderr}");
        stdout.into_owned()
    };
    let compact = model.join("tokenizer.compact");
    let out = triage(&["model", "fetch"], "");
    assert!(out.contains("built      tokenizer.compact"), "{out}");
    let good = std::fs::read(&compact).unwrap();
    assert!(triage(&["model", "fetch"], "").contains("verified   tokenizer.compact"));

    let text = "老板拖欠我们三个月工资，二十多个工友准备一起去县政府上访。\n";
    let want = triage(&["embed"], text);
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0xff;
    std::fs::write(&compact, &bad).unwrap();
    assert_eq!(triage(&["embed"], text), want, "the same vector after the rebuild");
    assert_eq!(std::fs::read(&compact).unwrap(), good);
}
