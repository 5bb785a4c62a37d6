//! Encoder benchmark: single-text latency, batch throughput (dev texts, and
//! the real messages when `real/gov_messages.jsonl` is there), peak RSS.
//!
//!     TRIAGE_BENCH_MODE=quantized|f32|int8 TRIAGE_DATA=/abs/path/shared/data \
//!         cargo bench -p triage-encoder --bench encoder
//!
//! Prints one JSON object; `eval/bench/encoder.sh` runs it per mode next to the
//! PyTorch run and writes the table in BENCHMARKS.md. Run one mode per process
//! so that peak RSS belongs to that mode alone.

use std::path::PathBuf;
use std::time::Instant;

use triage_encoder::{Encoder, EncoderOptions, MatmulMode};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probes
    }
    let mode: MatmulMode = std::env::var("TRIAGE_BENCH_MODE").unwrap_or_else(|_| "quantized".into()).parse().unwrap();
    let data = PathBuf::from(std::env::var("TRIAGE_DATA").unwrap_or_else(|_| "../../../shared/data".into()));
    let read = |path: PathBuf| -> Option<Vec<String>> {
        let raw = std::fs::read_to_string(path).ok()?;
        let text =
            |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string();
        Some(raw.lines().filter(|l| !l.trim().is_empty()).map(text).collect())
    };
    let texts = read(data.join("dev.jsonl")).expect("dev.jsonl (set TRIAGE_DATA)");
    let real = read(data.join("real/gov_messages.jsonl"));
    let dir = triage_fetch::model_dir_from_env();

    let t0 = Instant::now();
    let mut opts = EncoderOptions { matmul: mode, ..Default::default() };
    // Batch settings to compare (`EncoderOptions::max_batch_tokens`; the int8
    // path caps its packed batches lower still).
    if let Ok(v) = std::env::var("TRIAGE_BENCH_BATCH_TOKENS") {
        opts.max_batch_tokens = v.parse().expect("TRIAGE_BENCH_BATCH_TOKENS is a number");
    }
    let enc = Encoder::load(&dir, opts).unwrap();
    let load_s = t0.elapsed().as_secs_f64();

    let single: Vec<&String> = texts.iter().filter(|t| (120..=180).contains(&t.chars().count())).take(100).collect();
    for t in single.iter().take(5) {
        enc.embed(t).unwrap();
    }
    let (mut lat, vectors): (Vec<f64>, Vec<Vec<f32>>) = single
        .iter()
        .map(|t| {
            let s = Instant::now();
            let v = enc.embed(t).unwrap().vector;
            (s.elapsed().as_secs_f64() * 1e3, v)
        })
        .unzip();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());

    let s = Instant::now();
    let out = enc.embed_batch(&texts).unwrap();
    let batch_s = s.elapsed().as_secs_f64();
    let tokens: usize = out.iter().map(|e| e.tokens.min(512)).sum();

    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    let engine = match enc.int8_kernel() {
        Some(k) => format!("triage int8 ({})", k.name()),
        None => format!("candle ({mode:?})"),
    };
    let mut res = serde_json::json!({
        "engine": engine,
        "threads": rayon::current_num_threads(),
        "load_seconds": load_s,
        "single_n": lat.len(), "p50_ms": p(0.5), "p99_ms": p(0.99),
        "batch_texts": texts.len(), "batch_tokens": tokens, "batch_seconds": batch_s,
        "texts_per_s": texts.len() as f64 / batch_s, "tokens_per_s": tokens as f64 / batch_s,
        "single_vectors": vectors,
    });
    if let Some(real) = real {
        let s = Instant::now();
        let out = enc.embed_batch(&real).unwrap();
        let secs = s.elapsed().as_secs_f64();
        let tokens: usize = out.iter().map(|e| e.tokens.min(512)).sum();
        res["real_texts"] = real.len().into();
        res["real_tokens"] = tokens.into();
        res["real_seconds"] = secs.into();
        res["real_texts_per_s"] = (real.len() as f64 / secs).into();
    }
    res["peak_rss_mb"] = peak_rss_mb().into();
    println!("{res}");
}
