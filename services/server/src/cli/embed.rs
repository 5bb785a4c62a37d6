//! `triage embed`: texts in, vectors out, streaming in chunks.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};
use triage_encoder::{Encoder, EncoderError};

use super::ModelArgs;

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Input file, or - for stdin. Each line is {"id":…,"text":…} or plain text (id = line number).
    #[arg(default_value = "-")]
    pub input: String,
    /// Output file (JSON Lines); stdout if absent.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Lines embedded per batch call.
    #[arg(long, default_value_t = 256)]
    pub chunk: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}

struct Item {
    id: Value,
    text: String,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let encoder = super::model::load_encoder(&args.model)?;
    let input: Box<dyn BufRead> = if args.input == "-" {
        Box::new(BufReader::new(io::stdin()))
    } else {
        Box::new(BufReader::new(File::open(&args.input).with_context(|| format!("opening {}", args.input))?))
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(File::create(p).with_context(|| format!("creating {}", p.display()))?)),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let (mut done, mut failed) = (0usize, 0usize);
    let mut chunk: Vec<Item> = Vec::with_capacity(args.chunk);
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line.context("reading input")?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        chunk.push(parse_line(line, n + 1));
        if chunk.len() >= args.chunk.max(1) {
            flush(&encoder, &mut chunk, &mut out, &mut done, &mut failed)?;
        }
    }
    flush(&encoder, &mut chunk, &mut out, &mut done, &mut failed)?;
    out.flush()?;
    tracing::info!(embedded = done, failed, "embed finished");
    Ok(if failed > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// A JSON object with a string `text` is taken as such; anything else is plain text.
fn parse_line(line: &str, line_no: usize) -> Item {
    if line.trim_start().starts_with('{') {
        if let Ok(Value::Object(mut o)) = serde_json::from_str::<Value>(line) {
            if let Some(Value::String(text)) = o.remove("text") {
                let id = o.remove("id").unwrap_or_else(|| json!(line_no));
                return Item { id, text };
            }
        }
    }
    Item { id: json!(line_no), text: line.to_string() }
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
