//! XLM-R SentencePiece tokenizer (HF `tokenizer.json`, loaded through its
//! compact form, see [`crate::compact`]) with the e5 query prefix and
//! explicit, reported truncation.

use std::path::Path;

use crate::compact::{self, CompactTokenizer};
use crate::EncoderError;

/// e5 models were trained with a role prefix; symmetric tasks (classification,
/// similar-case search) use `query: ` on both sides.
pub const QUERY_PREFIX: &str = "query: ";

/// Token ids for one text, ready for the model.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// Tokens the full text needed (specials and prefix included), before truncation.
    pub full_len: usize,
    pub truncated: bool,
}

pub struct TextTokenizer {
    inner: CompactTokenizer,
    max_len: usize,
    eos_id: u32,
}

impl TextTokenizer {
    /// Loads the tokenizer of `path` (a `tokenizer.json`) from the compact
    /// form beside it, building and saving that form first if needed.
    pub fn load(path: &Path, max_len: usize, eos_id: u32) -> Result<Self, EncoderError> {
        let (mut inner, origin) = compact::load(path)
            .map_err(|source| EncoderError::CompactTokenizer { path: path.display().to_string(), source })?;
        tracing::debug!(?origin, "tokenizer loaded");
        // We truncate ourselves so that truncation is reported, and pad per batch.
        inner.with_truncation(None).map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        Ok(Self { inner, max_len, eos_id })
    }

    /// Tokenizes with the `query: ` prefix and `<s> … </s>`; a text longer than
    /// `max_len` tokens keeps its first `max_len - 1` tokens plus `</s>`.
    pub fn encode(&self, text: &str) -> Result<Tokens, EncoderError> {
        let input = format!("{QUERY_PREFIX}{text}");
        let enc = self.inner.encode(input, true).map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
        let mut ids = enc.get_ids().to_vec();
        let full_len = ids.len();
        let truncated = full_len > self.max_len;
        if truncated {
            ids.truncate(self.max_len - 1);
            ids.push(self.eos_id);
        }
        Ok(Tokens { ids, full_len, truncated })
    }
}
