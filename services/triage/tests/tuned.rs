//! The shipped fine-tuned model on the real encoder files (run `triage model
//! fetch` first; `.ci/run` does): the delta's hash, and the merge against
//! vectors the training framework computed.

use std::sync::OnceLock;

use triage_encoder::{cosine, Encoder, EncoderOptions, MatmulMode};
use triage_risk::model::{sha256_hex, BUILTIN_DELTA};
use triage_risk::RiskModel;

const FIXTURE: &str = include_str!("../../../models/delta/fixture.json");
const MANIFEST: &str = include_str!("../../../models/manifest.toml");

fn model_dir() -> std::path::PathBuf {
    triage_fetch::model_dir_from_env()
}

fn tuned(mode: MatmulMode) -> &'static Encoder {
    static F: OnceLock<Encoder> = OnceLock::new();
    static Q: OnceLock<Encoder> = OnceLock::new();
    let cell = if mode == MatmulMode::F32 { &F } else { &Q };
    cell.get_or_init(|| {
        Encoder::load_tuned(&model_dir(), EncoderOptions { matmul: mode, ..Default::default() }, BUILTIN_DELTA).unwrap()
    })
}

fn fixture() -> Vec<(String, Vec<f32>, Vec<f32>)> {
    let v: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let items = v["items"].as_array().unwrap();
    assert!(items.len() >= 5, "fixture has {} texts", items.len());
    items
        .iter()
        .map(|i| {
            let f = |k: &str| i[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            (i["text"].as_str().unwrap().to_string(), f("vector"), f("logits"))
        })
        .collect()
}

#[test]
fn the_delta_is_the_one_the_manifest_and_the_heads_name() {
    let manifest: toml::Value = toml::from_str(MANIFEST).unwrap();
    let pinned = manifest["delta"]["sha256"].as_str().expect("manifest pins the delta's sha256");
    let actual = sha256_hex(BUILTIN_DELTA);
    assert_eq!(actual, pinned, "models/delta/e5-lora.safetensors changed without the manifest");
    assert_eq!(RiskModel::builtin().unwrap().delta_sha256, actual, "heads trained on another delta");
    assert!(BUILTIN_DELTA.len() <= 8 << 20, "delta is {} bytes, over 8 MB", BUILTIN_DELTA.len());
}

#[test]
fn merged_vectors_match_the_training_framework_and_differ_from_the_base() {
    let base = Encoder::load(&model_dir(), EncoderOptions::default()).unwrap();
    let heads = RiskModel::builtin().unwrap();
    for (text, want, want_logits) in fixture() {
        let got = tuned(MatmulMode::F32).embed(&text).unwrap().vector;
        let c = cosine(&got, &want);
        assert!(c >= 0.999, "cosine {c} to the PyTorch vector for {text}");
        let b = cosine(&got, &base.embed(&text).unwrap().vector);
        assert!(b < 0.999, "fine-tuned vector equals the base one ({b}) for {text}: delta not merged");
        let logits = heads.logits(&got);
        for (g, w) in logits.iter().zip(&want_logits) {
            assert!((g - w).abs() < 0.05 * w.abs().max(1.0), "logits {logits:?} vs {want_logits:?} for {text}");
        }
    }
}

#[test]
fn the_quantized_path_keeps_the_merge() {
    for (text, want, _) in fixture() {
        let c = cosine(&tuned(MatmulMode::Quantized).embed(&text).unwrap().vector, &want);
        assert!(c >= 0.995, "cosine {c} (Q8_0 merged weights) for {text}");
    }
}

/// `TRIAGE_DATA` (relative to the workspace root), or ../shared/data.
fn data_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join(std::env::var("TRIAGE_DATA").unwrap_or_else(|_| "../shared/data".into()))
}

fn texts(path: &std::path::Path) -> Vec<String> {
    let raw = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e} (set TRIAGE_DATA)", path.display()));
    raw.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string())
        .collect()
}

/// The served (fine-tuned) model with int8 weights quantized from the merged
/// f32 weights, against the f32 path, on every dev text and every real
/// message: cosine ≥ 0.995 each, minimum printed. Ignored by default (it
/// embeds 735 texts twice, most of it on the f32 path: 395 s on the 2-core
/// development machine while others compiled); run it with
/// `cargo test --release -p triage-risk --test tuned -- --ignored --nocapture int8`.
#[test]
#[ignore = "slow: embeds the dev set and the real messages twice"]
fn int8_vectors_match_f32_on_every_dev_text_and_real_message() {
    let dir = data_dir();
    let int8 = Encoder::load_tuned(
        &model_dir(),
        EncoderOptions { matmul: MatmulMode::Int8, ..Default::default() },
        BUILTIN_DELTA,
    )
    .unwrap();
    for set in ["dev.jsonl", "real/gov_messages.jsonl"] {
        let texts = texts(&dir.join(set));
        assert!(texts.len() >= 200, "{set}: only {} texts", texts.len());
        let a = int8.embed_batch(&texts).unwrap();
        let b = tuned(MatmulMode::F32).embed_batch(&texts).unwrap();
        let (mut worst, mut sum) = (f32::MAX, 0.0);
        let mut failures = Vec::new();
        for ((t, a), b) in texts.iter().zip(&a).zip(&b) {
            let c = cosine(&a.vector, &b.vector);
            (worst, sum) = (worst.min(c), sum + c);
            if c < 0.995 {
                failures.push(format!("{c:.4}: {}", t.chars().take(40).collect::<String>()));
            }
        }
        println!(
            "{set}: {} texts, int8 vs f32 cosine min {worst:.5}, mean {:.5}",
            texts.len(),
            sum / texts.len() as f32
        );
        assert!(failures.is_empty(), "{set}: {failures:#?}");
    }
}
