//! Peak RSS of loading the tokenizer alone (issue 18's memory target).
//!
//!     cargo run --release -p triage-encoder --example tokenizer_rss [--json] [MODEL_DIR]
//!
//! Loads the tokenizer as the encoder does (the compact form beside
//! `tokenizer.json`, built first if missing), or with `--json` as
//! `tokenizers` reads `tokenizer.json` itself; prints VmHWM and VmRSS after
//! the load and after one encode. The model directory defaults to
//! `TRIAGE_MODEL_DIR`, else the default one.

use std::path::PathBuf;

use triage_encoder::tokenize::{TextTokenizer, QUERY_PREFIX};
use triage_encoder::TOKENIZER_FILE;

fn status(field: &str) -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix(field)).map(|v| v.trim().to_string()).unwrap_or_else(|| "?".into())
}

fn report(what: &str) {
    println!("{what}: VmHWM {} VmRSS {}", status("VmHWM:"), status("VmRSS:"));
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().position(|a| a == "--json").map(|i| args.remove(i)).is_some();
    let dir = args.first().map(PathBuf::from).unwrap_or_else(triage_fetch::model_dir_from_env);
    let path = dir.join(TOKENIZER_FILE);
    let text = "老板拖欠我们三个月工资。";
    let t = std::time::Instant::now();
    if json {
        let tok = tokenizers::Tokenizer::from_file(&path).expect("tokenizer.json");
        report(&format!("tokenizer.json (tokenizers' Unigram) loaded in {:.2?}", t.elapsed()));
        let ids = tok.encode(format!("{QUERY_PREFIX}{text}"), true).expect("encode").get_ids().len();
        report(&format!("encoded {ids} tokens"));
    } else {
        let tok = TextTokenizer::load(&path, 512, 2).expect("tokenizer");
        report(&format!("compact tokenizer loaded in {:.2?}", t.elapsed()));
        let ids = tok.encode(text).expect("encode").ids.len();
        report(&format!("encoded {ids} tokens"));
    }
}
