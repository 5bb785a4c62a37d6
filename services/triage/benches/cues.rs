//! Cue-lexicon benchmark: time of `CueLexicon::analyse` (segmentation, phrase
//! and pattern matching, suppression rules) per text, next to the encoder pass
//! it runs beside on every judgement.
//!
//!     TRIAGE_DATA=../shared/data cargo bench -p triage-risk --bench cues
//!
//! `TRIAGE_LEXICON=FILE` times another lexicon file instead of the built-in one.
//!
//! Prints one JSON object per text set (dev, and the real messages when
//! present): texts, mean characters, p50 / p99 / mean microseconds per text.

use std::path::{Path, PathBuf};
use std::time::Instant;

use triage_risk::CueLexicon;

fn texts(path: &Path) -> Option<Vec<String>> {
    let raw = std::fs::read_to_string(path).ok()?;
    Some(
        raw.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["text"].as_str().map(str::to_string))
            .collect(),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probes
    }
    // cargo runs benches in the package directory; relative paths (TRIAGE_DATA,
    // TRIAGE_LEXICON) are read from the workspace root, as the commands are typed there.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join(std::env::var("TRIAGE_DATA").unwrap_or_else(|_| "../shared/data".into()));
    let t0 = Instant::now();
    // TRIAGE_LEXICON=FILE times another lexicon (an older one, to compare).
    let lex = match std::env::var("TRIAGE_LEXICON") {
        Ok(file) => {
            CueLexicon::from_toml(&std::fs::read_to_string(root.join(file)).expect("lexicon file")).expect("lexicon")
        }
        Err(_) => CueLexicon::builtin().expect("built-in lexicon"),
    };
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    for (name, path) in [("dev", data.join("dev.jsonl")), ("real_messages", data.join("real/gov_messages.jsonl"))] {
        let Some(set) = texts(&path) else {
            eprintln!("{}: not found, skipped", path.display());
            continue;
        };
        // One warm-up pass, then three timed passes over the set.
        for t in &set {
            std::hint::black_box(lex.analyse(t));
        }
        let mut us: Vec<f64> = Vec::with_capacity(set.len() * 3);
        for _ in 0..3 {
            for t in &set {
                let start = Instant::now();
                std::hint::black_box(lex.analyse(t));
                us.push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
        us.sort_by(f64::total_cmp);
        let pct = |p: f64| us[((us.len() - 1) as f64 * p).round() as usize];
        let chars = set.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / set.len() as f64;
        println!(
            "{}",
            serde_json::json!({
                "set": name, "texts": set.len(), "mean_chars": chars.round(), "lexicon_load_ms": load_ms.round(),
                "p50_us": pct(0.5).round(), "p99_us": pct(0.99).round(), "mean_us": (us.iter().sum::<f64>() / us.len() as f64).round(),
            })
        );
    }
}
