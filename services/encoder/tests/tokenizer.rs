//! The compact tokenizer against `tokenizers`' own reading of
//! `tokenizer.json`, on the real model files (run `triage model fetch`
//! first; `TRIAGE_MODEL_DIR` overrides the model directory) and every text
//! of the labelled and real sets (`TRIAGE_DATA`, relative to the workspace
//! root, or ../shared/data). Failures name texts by set and id only: the
//! real messages' text is not to be printed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use tokenizers::Tokenizer;
use triage_encoder::compact::{self, CompactError, CompactTokenizer, Origin};
use triage_encoder::tokenize::QUERY_PREFIX;
use triage_encoder::{COMPACT_TOKENIZER_FILE, TOKENIZER_FILE};

fn tokenizer_json() -> PathBuf {
    let p = triage_fetch::model_dir_from_env().join(TOKENIZER_FILE);
    assert!(p.is_file(), "{} missing: run `triage model fetch`", p.display());
    p
}

fn reference() -> &'static Tokenizer {
    static R: OnceLock<Tokenizer> = OnceLock::new();
    R.get_or_init(|| Tokenizer::from_file(tokenizer_json()).unwrap())
}

fn compact() -> &'static CompactTokenizer {
    static C: OnceLock<CompactTokenizer> = OnceLock::new();
    C.get_or_init(|| compact::load(&tokenizer_json()).unwrap().0)
}

/// Ids, offsets and token strings of `text`, alone and behind the e5 prefix,
/// must be the same; `Err` names what differed.
fn same(text: &str) -> Result<(), String> {
    for input in [text.to_string(), format!("{QUERY_PREFIX}{text}")] {
        let want = reference().encode(input.as_str(), true).map_err(|e| format!("reference: {e}"))?;
        let got = compact().encode(input.as_str(), true).map_err(|e| format!("compact: {e}"))?;
        if got.get_ids() != want.get_ids() {
            return Err(format!("ids differ ({} vs {} tokens)", got.get_ids().len(), want.get_ids().len()));
        }
        if got.get_offsets() != want.get_offsets() {
            return Err("offsets differ".into());
        }
        if got.get_tokens() != want.get_tokens() {
            return Err("token strings differ".into());
        }
    }
    Ok(())
}

fn data_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join(std::env::var("TRIAGE_DATA").unwrap_or_else(|_| "../shared/data".into()))
}

/// (id, text) of every record, and its title where it has one.
fn records(name: &str) -> Vec<(String, String)> {
    let path = data_dir().join(name);
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (set TRIAGE_DATA)", path.display()));
    let mut out = Vec::new();
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        out.push((id.clone(), v["text"].as_str().unwrap().to_string()));
        if let Some(title) = v["title"].as_str() {
            out.push((format!("{id} (title)"), title.to_string()));
        }
    }
    out
}

fn check_set(name: &str, expected_at_least: usize) {
    let records = records(name);
    assert!(records.len() >= expected_at_least, "{name}: {} records", records.len());
    let failures: Vec<String> =
        records.iter().filter_map(|(id, text)| same(text).err().map(|e| format!("{name} {id}: {e}"))).collect();
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), records.len(), failures.join("\n"));
}

#[test]
fn same_tokens_on_every_dev_text() {
    check_set("dev.jsonl", 240);
}

#[test]
fn same_tokens_on_every_train_text() {
    check_set("train.jsonl", 960);
}

#[test]
fn same_tokens_on_every_real_message() {
    check_set("real/gov_messages.jsonl", 495);
}

#[test]
fn same_tokens_on_edge_strings() {
    let long_mixed: String =
        "拖欠工资 I'll burn it 🔥 e\u{301}\u{0}\t\u{200b}ｆｕｌｌ　width،مرحبا 한국어 ".repeat(2_000);
    let edges = [
        "",
        " ",
        "\u{0}",
        "a\u{0}b\u{0}",
        "😡",
        "👨‍👩‍👧‍👦🏳️‍🌈",
        "e\u{301}\u{302}\u{303} a\u{20dd} 각\u{302}",
        "\u{301}",
        "\u{feff}BOM",
        "\u{200b}\u{200c}\u{200d}\u{2060}",
        "\r\n\t\u{b}\u{c}\u{85}\u{2028}",
        "ＡＢＣ１２３！？",
        "①②③ ㈱ ﬁ ℡ Ⅻ",
        "𠀀𪚥𰻞",
        "\u{e000}\u{f8ff}\u{10ffff}",
        "<s></s><pad><unk><mask>",
        "a<mask>b</s>",
        "     many    spaces     ",
        "▁▁▁",
        long_mixed.as_str(),
    ];
    for (i, text) in edges.iter().enumerate() {
        if let Err(e) = same(text) {
            panic!("edge string {i} ({:?}…): {e}", text.chars().take(40).collect::<String>());
        }
    }
    let long_one = "哈".repeat(50_000);
    same(&long_one).unwrap_or_else(|e| panic!("50,000 × 哈: {e}"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn same_tokens_on_arbitrary_strings(text in any::<String>()) {
        prop_assert_eq!(same(&text), Ok(()));
    }

    #[test]
    fn same_tokens_on_chinese_like_strings(text in "[\\p{Han}，。！？、“”0-9a-zA-Z ]{0,200}") {
        prop_assert_eq!(same(&text), Ok(()));
    }
}

/// A copy of the model's tokenizer.json in a scratch directory, so the
/// damage below never reaches the real model directory.
fn scratch_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join(TOKENIZER_FILE);
    std::fs::copy(tokenizer_json(), &json).unwrap();
    (dir, json)
}

#[test]
fn a_damaged_compact_file_is_detected_and_rebuilt() {
    let (dir, json) = scratch_copy();
    let (_, origin) = compact::load(&json).unwrap();
    assert_eq!(origin, Origin::Built { written: true });
    let path = dir.path().join(COMPACT_TOKENIZER_FILE);
    let good = std::fs::read(&path).unwrap();
    // Far smaller than tokenizer.json: the point of the form.
    assert!(good.len() < 12 << 20, "{} bytes", good.len());

    let source = compact::sha256_file(&json).unwrap();
    let mut bad = good.clone();
    // A byte in the middle: among the piece scores or the fst.
    let at = good.len() / 2;
    bad[at] = bad[at].wrapping_add(1);
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(compact::open(&path, &source), Err(CompactError::Checksum)));

    let (rebuilt, origin) = compact::load(&json).unwrap();
    assert_eq!(origin, Origin::Built { written: true });
    assert_eq!(std::fs::read(&path).unwrap(), good, "the rebuild writes the same bytes");
    let text = "老板拖欠我们三个月工资。";
    assert_eq!(rebuilt.encode(text, true).unwrap().get_ids(), reference().encode(text, true).unwrap().get_ids());
    assert_eq!(compact::load(&json).unwrap().1, Origin::Reused);
}

#[test]
fn a_compact_file_from_another_tokenizer_json_is_rebuilt() {
    let (dir, json) = scratch_copy();
    compact::load(&json).unwrap();
    let path = dir.path().join(COMPACT_TOKENIZER_FILE);
    let before = std::fs::read(&path).unwrap();
    // The same tokenizer.json with trailing whitespace: other bytes, other sha256.
    // (Re-printing it is not enough: with serde_json's preserve_order, which
    // the workspace build turns on, it can come out byte for byte the same.)
    let mut bytes = std::fs::read(&json).unwrap();
    bytes.extend_from_slice(b"\n ");
    std::fs::write(&json, bytes).unwrap();
    let source = compact::sha256_file(&json).unwrap();
    assert!(matches!(compact::open(&path, &source), Err(CompactError::StaleSource { .. })));
    assert_eq!(compact::load(&json).unwrap().1, Origin::Built { written: true });
    let after = std::fs::read(&path).unwrap();
    // Only the recorded source hash and the file's own hash change.
    assert_eq!(after.len(), before.len());
    assert_ne!(after, before);
}
