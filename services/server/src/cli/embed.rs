//! `triage embed`: texts in, vectors out, streaming in chunks.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use triage_encoder::{Encoder, EncoderError};

use super::input::{open_input, Item};
use super::ModelArgs;

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Input file, or - for stdin. Each line is {"id":…,"text":…} or plain text (id = line number).
    #[arg(default_value = "-")]
    pub input: String,
    /// Output file (JSON Lines); stdout if absent.
    #[arg(short, long, env = "TRIAGE_EMBED_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Lines embedded per batch call.
    #[arg(long, env = "TRIAGE_EMBED_CHUNK", default_value_t = 256)]
    pub chunk: usize,
    /// Embed with the registry's weights as they are, without the fine-tuned
    /// delta (the service stores the fine-tuned vectors; this is for comparison).
    #[arg(long, env = "TRIAGE_EMBED_BASE")]
    pub base: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub risk: super::risk::RiskModelArgs,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let encoder = if args.base {
        super::model::load_encoder(&args.model, None)?
    } else {
        super::risk::load_tuned(&args.model, &args.risk)?.0
    };
    let input = open_input(&args.input)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(File::create(p).with_context(|| format!("creating {}", p.display()))?)),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let (mut done, mut failed) = (0usize, 0usize);
    let mut chunk: Vec<Item> = Vec::with_capacity(args.chunk);
    for item in input {
        chunk.push(item?);
        if chunk.len() >= args.chunk.max(1) {
            flush(&encoder, &mut chunk, &mut out, &mut done, &mut failed)?;
        }
    }
    flush(&encoder, &mut chunk, &mut out, &mut done, &mut failed)?;
    out.flush()?;
    tracing::info!(embedded = done, failed, "embed finished");
    Ok(if failed > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn flush(
    encoder: &Encoder,
    chunk: &mut Vec<Item>,
    out: &mut dyn Write,
    done: &mut usize,
    failed: &mut usize,
) -> anyhow::Result<()> {
    // Empty texts are answered with an error record in place, so output lines
    // stay aligned with input items and nothing is silently dropped.
    let ok: Vec<&str> = chunk.iter().filter(|i| !i.text.trim().is_empty()).map(|i| i.text.as_str()).collect();
    let mut vectors = encoder.embed_batch(&ok)?.into_iter();
    for item in chunk.drain(..) {
        let rec = if item.text.trim().is_empty() {
            *failed += 1;
            json!({"id": item.id, "error": {"code": "empty_text", "message": EncoderError::EmptyText { index: 0 }.to_string()}})
        } else {
            *done += 1;
            let e = vectors.next().expect("one vector per non-empty text");
            json!({"id": item.id, "vector": e.vector, "tokens": e.tokens, "truncated": e.truncated})
        };
        serde_json::to_writer(&mut *out, &rec)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
