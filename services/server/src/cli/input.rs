//! Line input shared by the text-processing subcommands.

use std::fs::File;
use std::io::{self, BufRead, BufReader};

use anyhow::Context;
use serde_json::{json, Value};

pub struct Item {
    pub id: Value,
    pub text: String,
}

/// Items from a file or stdin (`-`): each line is {"id":…,"text":…} or plain
/// text (id = line number); blank lines are skipped.
pub fn open_input(path: &str) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Item>>> {
    let reader: Box<dyn BufRead> = if path == "-" {
        Box::new(BufReader::new(io::stdin()))
    } else {
        Box::new(BufReader::new(File::open(path).with_context(|| format!("opening {path}"))?))
    };
    Ok(reader.split(b'\n').enumerate().filter_map(|(n, line)| match line {
        Err(e) => Some(Err(anyhow::Error::new(e).context("reading input"))),
        Ok(line) => {
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches('\r');
            (!line.trim().is_empty()).then(|| Ok(parse_line(line, n + 1)))
        }
    }))
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
