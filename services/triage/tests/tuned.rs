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
