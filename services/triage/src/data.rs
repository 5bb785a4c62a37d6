//! Labelled sets in the standard's JSON Lines format.

use std::path::Path;

use serde::Deserialize;

use crate::label::{Label, RiskLevel};

#[derive(Debug, Clone)]
pub struct Example {
    pub id: String,
    pub text: String,
    pub labels: Vec<Label>,
    pub level: RiskLevel,
    pub source: String,
    /// Who wrote it and in what form, where the set says (the project's corpus does).
    pub persona: Option<String>,
    pub form: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Line { path: String, line: usize, message: String },
}

#[derive(Deserialize)]
struct RawExample {
    id: Option<serde_json::Value>,
    text: String,
    #[serde(default)]
    labels: Vec<String>,
    level: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    persona: Option<String>,
    #[serde(default)]
    form: Option<String>,
}

/// A malformed line of a labelled set: its 1-based number and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Reads a labelled set; a malformed line is an error naming its line number.
pub fn read_labelled(path: &Path) -> Result<Vec<Example>, DataError> {
    let p = path.display().to_string();
    let raw = std::fs::read(path).map_err(|source| DataError::Io { path: p.clone(), source })?;
    parse_labelled(&raw).map_err(|e| DataError::Line { path: p, line: e.line, message: e.message })
}

/// Parses a labelled set held in memory (an upload); blank lines are skipped.
pub fn parse_labelled(raw: &[u8]) -> Result<Vec<Example>, LineError> {
    let mut out = Vec::new();
    for (i, line) in raw.split(|&b| b == b'\n').enumerate() {
        let err = |message: String| LineError { line: i + 1, message };
        let line = std::str::from_utf8(line).map_err(|_| err("not valid UTF-8".into()))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: RawExample = serde_json::from_str(line).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let labels = r
            .labels
            .iter()
            .map(|l| l.parse::<Label>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        let level = r.level.parse::<RiskLevel>().map_err(|e| err(e.to_string()))?;
        // The judge's own input contract, checked here so that a set fails at
        // its line before any text is judged.
        match crate::judge::validate(0, &r.text) {
            Ok(()) => {}
            Err(crate::TriageError::TextTooLong { chars, max, .. }) => {
                return Err(err(format!("text has {chars} characters; the limit is {max}")))
            }
            Err(_) => return Err(err("empty text".into())),
        }
        let id = match r.id {
            Some(serde_json::Value::String(s)) => s,
            Some(v) => v.to_string(),
            None => format!("line-{}", i + 1),
        };
        out.push(Example {
            id,
            text: r.text,
            labels,
            level,
            source: r.source.unwrap_or_else(|| "unknown".into()),
            persona: r.persona,
            form: r.form,
        });
    }
    Ok(out)
}
