//! The tokenizer in a compact form, written once beside `tokenizer.json`.
//!
//! Why: `tokenizers`' own `Unigram` model keeps XLM-R's 250,002 pieces in a
//! byte trie with a hash map per node (about 780,000 nodes) plus a
//! piece-to-id hash map: about 235 MB resident for as long as the tokenizer
//! lives, more than the int8 encoder's weights. Here the pieces live in a
//! finite-state transducer (`fst`, piece bytes to id) and flat arrays, an
//! 8.5 MB file read whole, and [`CompactUnigram`] runs the same Viterbi search as
//! `Unigram::encode_optimized`, so the ids are the same (tested on every text
//! of the labelled and real sets).
//!
//! `tokenizer.json` stays the source of truth. The compact file records the
//! sha256 of the `tokenizer.json` it was made from and a sha256 of its own
//! bytes; [`load`] rebuilds it when it is missing, damaged or made from
//! another `tokenizer.json`, and writes it atomically (temporary file and
//! rename). A model directory that cannot be written still works: the
//! compact form is then built in memory at each start.
//!
//! Layout (integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic and format version `TRTOKv01` |
//! | 32 | sha256 of the source `tokenizer.json` |
//! | 4 × 4 | u32: pieces `n`, pipeline bytes, piece bytes, fst bytes |
//! | pipeline bytes | `tokenizer.json` without `model.vocab` (normalizer, pre-tokenizer, post-processor, decoder, added tokens), JSON |
//! | 8 × n | f64 score of each piece, by id |
//! | 4 × n | u32 end of each piece in the piece bytes (a piece starts where the previous one ends) |
//! | piece bytes | the pieces' UTF-8, by id |
//! | fst bytes | `fst::Map`: piece bytes to id |
//! | 32 | sha256 of everything above |

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fst::raw::{Fst, Output};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenizers::models::unigram::UnigramTrainer;
use tokenizers::{
    AddedToken, DecoderWrapper, Model, NormalizerWrapper, PaddingParams, PostProcessorWrapper, PreTokenizerWrapper,
    Token, TokenizerBuilder, TokenizerImpl, TruncationParams,
};

/// File name of the compact form, in the model directory beside `tokenizer.json`.
pub const COMPACT_TOKENIZER_FILE: &str = "tokenizer.compact";

const MAGIC: &[u8; 8] = b"TRTOKv01";
const HASH_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + HASH_LEN + 4 * 4;
/// `tokenizers`' `K_UNK_PENALTY`: an unknown character scores this far below the rarest piece.
const UNK_PENALTY: f64 = 10.0;

/// A sha256 digest.
pub type Sha256Digest = [u8; HASH_LEN];

/// The full tokenizer pipeline (normalizer, pre-tokenizer, added tokens,
/// post-processor) over the compact Unigram model.
pub type CompactTokenizer =
    TokenizerImpl<CompactUnigram, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper>;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("sha256 mismatch: the file is damaged")]
    Checksum,
    #[error("not a compact tokenizer of this version")]
    BadMagic,
    #[error("made from a tokenizer.json with sha256 {found}, but tokenizer.json has {expected}")]
    StaleSource { expected: String, found: String },
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported tokenizer.json: {0}")]
    Unsupported(String),
    #[error("piece index: {0}")]
    Fst(#[from] fst::Error),
    #[error("tokenizer pipeline: {0}")]
    Pipeline(String),
}

impl CompactError {
    fn is_not_found(&self) -> bool {
        matches!(self, CompactError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CompactError + '_ {
    move |source| CompactError::Io { path: path.display().to_string(), source }
}

/// Where the compact form of `tokenizer_json` lives.
pub fn compact_path(tokenizer_json: &Path) -> PathBuf {
    tokenizer_json.with_file_name(COMPACT_TOKENIZER_FILE)
}

/// How [`load`] obtained the tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The compact file was there, intact and made from this `tokenizer.json`.
    Reused,
    /// Built from `tokenizer.json`; `written` says whether it was saved for the next start.
    Built { written: bool },
}

/// Loads the tokenizer of `tokenizer_json` from its compact form, building
/// and writing that form first when it is missing, damaged or stale.
pub fn load(tokenizer_json: &Path) -> Result<(CompactTokenizer, Origin), CompactError> {
    let source = sha256_file(tokenizer_json)?;
    let path = compact_path(tokenizer_json);
    match open(&path, &source) {
        Ok(t) => return Ok((t, Origin::Reused)),
        Err(e) if e.is_not_found() => {
            tracing::info!(path = %path.display(), "building the compact tokenizer from tokenizer.json");
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "compact tokenizer unusable; rebuilding it from tokenizer.json");
        }
    }
    let bytes = Arc::new(build(tokenizer_json, &source)?);
    // Parsed before it is written, so a file that cannot be loaded is never left behind.
    let tokenizer = from_shared(bytes.clone(), &source)?;
    let written = match write_atomically(&path, &bytes) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot save the compact tokenizer (read-only model directory?); it will be rebuilt at the next start");
            false
        }
    };
    Ok((tokenizer, Origin::Built { written }))
}

/// Reads the compact file at `path`, checking its own sha256 and that it was
/// made from the `tokenizer.json` whose sha256 is `source`.
pub fn open(path: &Path, source: &Sha256Digest) -> Result<CompactTokenizer, CompactError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    from_shared(Arc::new(bytes), source)
}

/// The sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<Sha256Digest, CompactError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h).map_err(io_err(path))?;
    Ok(h.finalize().into())
}

/// `tokenizer.json` as far as a Unigram tokenizer needs it. Every part but
/// the vocabulary is kept as it is and parsed by `tokenizers` at load.
#[derive(Deserialize)]
struct SourceJson {
    #[serde(default)]
    version: serde_json::Value,
    #[serde(default)]
    truncation: serde_json::Value,
    #[serde(default)]
    padding: serde_json::Value,
    #[serde(default)]
    added_tokens: serde_json::Value,
    #[serde(default)]
    normalizer: serde_json::Value,
    #[serde(default)]
    pre_tokenizer: serde_json::Value,
    #[serde(default)]
    post_processor: serde_json::Value,
    #[serde(default)]
    decoder: serde_json::Value,
    model: SourceModel,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum SourceModel {
    Unigram {
        #[serde(default)]
        unk_id: Option<usize>,
        vocab: Vec<(String, f64)>,
        #[serde(default)]
        byte_fallback: bool,
    },
}

/// The compact file's pipeline part, typed.
#[derive(Deserialize)]
struct Pipeline {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    truncation: Option<TruncationParams>,
    #[serde(default)]
    padding: Option<PaddingParams>,
    #[serde(default)]
    added_tokens: Vec<AddedTokenWithId>,
    #[serde(default)]
    normalizer: Option<NormalizerWrapper>,
    #[serde(default)]
    pre_tokenizer: Option<PreTokenizerWrapper>,
    #[serde(default)]
    post_processor: Option<PostProcessorWrapper>,
    #[serde(default)]
    decoder: Option<DecoderWrapper>,
    model: ModelHead,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type")]
enum ModelHead {
    Unigram { unk_id: Option<usize>, byte_fallback: bool },
}

/// An entry of `added_tokens` (`tokenizers` keeps its own type private).
#[derive(Deserialize)]
struct AddedTokenWithId {
    id: u32,
    #[serde(flatten)]
    token: AddedToken,
}

/// Builds the compact file's bytes from `tokenizer_json` (whose sha256 is `source`).
pub fn build(tokenizer_json: &Path, source: &Sha256Digest) -> Result<Vec<u8>, CompactError> {
    // Read whole: serde_json parses a slice many times faster than a reader.
    let raw = fs::read(tokenizer_json).map_err(io_err(tokenizer_json))?;
    let src: SourceJson = serde_json::from_slice(&raw).map_err(|e| {
        if e.is_data() {
            CompactError::Unsupported(e.to_string())
        } else {
            CompactError::Json(e)
        }
    })?;
    drop(raw);
    let SourceModel::Unigram { unk_id, vocab, byte_fallback } = src.model;
    let n = vocab.len();
    if let Some(u) = unk_id {
        if u >= n {
            return Err(CompactError::Unsupported(format!("unk_id {u} is outside the vocabulary of {n}")));
        }
    }
    let pipeline = serde_json::to_vec(&serde_json::json!({
        "version": src.version,
        "truncation": src.truncation,
        "padding": src.padding,
        "added_tokens": src.added_tokens,
        "normalizer": src.normalizer,
        "pre_tokenizer": src.pre_tokenizer,
        "post_processor": src.post_processor,
        "decoder": src.decoder,
        "model": ModelHead::Unigram { unk_id, byte_fallback },
    }))?;

    // An fst takes its keys sorted and once each. For a piece listed twice the
    // last id wins, as in `Unigram::from`'s map: sort equal pieces by id
    // descending and keep the first.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| vocab[a].0.as_bytes().cmp(vocab[b].0.as_bytes()).then(b.cmp(&a)));
    order.dedup_by(|later, kept| vocab[*later].0 == vocab[*kept].0);
    let mut map = fst::MapBuilder::memory();
    for &id in &order {
        map.insert(vocab[id].0.as_bytes(), id as u64)?;
    }
    let fst_bytes = map.into_inner()?;

    let pieces_len: usize = vocab.iter().map(|(p, _)| p.len()).sum();
    let u32_of = |what: &str, v: usize| {
        u32::try_from(v).map_err(|_| CompactError::Unsupported(format!("{what} ({v}) does not fit the format")))
    };
    let mut out = Vec::with_capacity(HEADER_LEN + pipeline.len() + 12 * n + pieces_len + fst_bytes.len() + HASH_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(source);
    for (what, v) in
        [("pieces", n), ("pipeline", pipeline.len()), ("piece bytes", pieces_len), ("fst", fst_bytes.len())]
    {
        out.extend_from_slice(&u32_of(what, v)?.to_le_bytes());
    }
    out.extend_from_slice(&pipeline);
    for (_, score) in &vocab {
        out.extend_from_slice(&score.to_le_bytes());
    }
    let mut end = 0usize;
    for (piece, _) in &vocab {
        end += piece.len();
        out.extend_from_slice(&(end as u32).to_le_bytes());
    }
    for (piece, _) in &vocab {
        out.extend_from_slice(piece.as_bytes());
    }
    out.extend_from_slice(&fst_bytes);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so a reader never sees half a file; the process id in the
/// temporary name keeps two processes building at once apart.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CompactError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(COMPACT_TOKENIZER_FILE);
    let tmp = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

/// A byte range of the shared file buffer (the fst reads it in place).
#[derive(Clone)]
struct Section {
    buf: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl AsRef<[u8]> for Section {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

fn from_shared(buf: Arc<Vec<u8>>, source: &Sha256Digest) -> Result<CompactTokenizer, CompactError> {
    let len = buf.len();
    if len < HEADER_LEN + HASH_LEN {
        return Err(CompactError::Malformed(format!("{len} bytes is shorter than the header")));
    }
    let body_len = len - HASH_LEN;
    if Sha256::digest(&buf[..body_len]).as_slice() != &buf[body_len..] {
        return Err(CompactError::Checksum);
    }
    if &buf[..MAGIC.len()] != MAGIC {
        return Err(CompactError::BadMagic);
    }
    let found = &buf[MAGIC.len()..MAGIC.len() + HASH_LEN];
    if found != source {
        return Err(CompactError::StaleSource { expected: hex(source), found: hex(found) });
    }
    let field = |i: usize| {
        let at = MAGIC.len() + HASH_LEN + 4 * i;
        u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize
    };
    let (n, pipeline_len, pieces_len, fst_len) = (field(0), field(1), field(2), field(3));
    let mut at = HEADER_LEN;
    let mut take = |bytes: usize| {
        let r = at..at + bytes;
        at += bytes;
        r
    };
    let pipeline = take(pipeline_len);
    let scores = take(8 * n);
    let ends = take(4 * n);
    let pieces = take(pieces_len);
    let fst_range = take(fst_len);
    if at != body_len {
        return Err(CompactError::Malformed(format!("sections add up to {at} bytes, the body has {body_len}")));
    }

    // Every piece must be UTF-8 on its own: `piece` relies on it.
    let mut start = 0;
    for i in 0..n {
        let o = ends.start + 4 * i;
        let end = u32::from_le_bytes(buf[o..o + 4].try_into().expect("4 bytes")) as usize;
        if end < start
            || end > pieces_len
            || std::str::from_utf8(&buf[pieces.start + start..pieces.start + end]).is_err()
        {
            return Err(CompactError::Malformed(format!("piece {i}")));
        }
        start = end;
    }
    let p: Pipeline = serde_json::from_slice(&buf[pipeline])?;
    if let Some(v) = p.version.as_deref().filter(|v| *v != "1.0") {
        return Err(CompactError::Unsupported(format!("tokenizer version {v}")));
    }
    let ModelHead::Unigram { unk_id, byte_fallback } = p.model;
    if unk_id.is_some_and(|u| u >= n) {
        return Err(CompactError::Malformed("unk_id outside the vocabulary".into()));
    }
    let trie = Fst::new(Section { buf: buf.clone(), range: fst_range })?;
    let mut model = CompactUnigram {
        trie,
        buf,
        scores,
        ends,
        pieces,
        n,
        unk_id: unk_id.map(|u| u as u32),
        byte_fallback,
        min_score: f64::INFINITY,
    };
    model.min_score = (0..n).map(|id| model.score(id)).fold(f64::INFINITY, f64::min);

    let mut tokenizer = TokenizerBuilder::new()
        .with_model(model)
        .with_normalizer(p.normalizer)
        .with_pre_tokenizer(p.pre_tokenizer)
        .with_post_processor(p.post_processor)
        .with_decoder(p.decoder)
        .with_truncation(p.truncation)
        .with_padding(p.padding)
        .build()
        .map_err(|e| CompactError::Pipeline(e.to_string()))?;
    // As `tokenizers` does when it reads tokenizer.json; where it only warns
    // about an added token whose id moved, this refuses: the ids must be the same.
    let added: Vec<AddedToken> = p.added_tokens.iter().map(|t| t.token.clone()).collect();
    tokenizer.add_tokens(&added);
    for t in &p.added_tokens {
        let got = tokenizer.token_to_id(&t.token.content);
        if got != Some(t.id) {
            return Err(CompactError::Pipeline(format!(
                "added token {:?} has id {got:?}, tokenizer.json says {}",
                t.token.content, t.id
            )));
        }
    }
    Ok(tokenizer)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A Unigram (SentencePiece) model over the compact file: the same
/// tokenization as `tokenizers::models::unigram::Unigram` with `fuse_unk`
/// (its default), in a fraction of the memory.
pub struct CompactUnigram {
    /// Piece bytes to id; walked byte by byte for the pieces that start at a position.
    trie: Fst<Section>,
    buf: Arc<Vec<u8>>,
    scores: Range<usize>,
    ends: Range<usize>,
    pieces: Range<usize>,
    n: usize,
    unk_id: Option<u32>,
    byte_fallback: bool,
    min_score: f64,
}

impl std::fmt::Debug for CompactUnigram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactUnigram")
            .field("vocab", &self.n)
            .field("unk_id", &self.unk_id)
            .field("byte_fallback", &self.byte_fallback)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
enum TokenizeError {
    #[error("an unknown character needs <unk>, and the model has none")]
    MissingUnkId,
    #[error("piece id {0} is outside the vocabulary")]
    BadId(u64),
}

impl CompactUnigram {
    fn score(&self, id: usize) -> f64 {
        let o = self.scores.start + 8 * id;
        f64::from_le_bytes(self.buf[o..o + 8].try_into().expect("8 bytes"))
    }

    fn end(&self, id: usize) -> usize {
        let o = self.ends.start + 4 * id;
        u32::from_le_bytes(self.buf[o..o + 4].try_into().expect("4 bytes")) as usize
    }

    fn piece(&self, id: usize) -> Option<&str> {
        if id >= self.n {
            return None;
        }
        let start = if id == 0 { 0 } else { self.end(id - 1) };
        let bytes = &self.buf[self.pieces.start + start..self.pieces.start + self.end(id)];
        // Checked at load; this cannot fail.
        std::str::from_utf8(bytes).ok()
    }

    fn id_of(&self, piece: &str) -> Option<u32> {
        self.trie.get(piece).map(|o| o.value() as u32)
    }

    /// The best segmentation of `sentence` as byte spans, a run of unknown
    /// characters fused into one span: `Unigram::encode_optimized`
    /// (SentencePiece's `EncodeOptimized`), step by step.
    fn segment(&self, sentence: &str) -> Result<Vec<(usize, usize)>, TokenizeError> {
        #[derive(Clone, Copy)]
        struct Best {
            id: u32,
            score: f64,
            starts_at: Option<usize>,
        }
        let bytes = sentence.as_bytes();
        let size = bytes.len();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![Best { id: 0, score: 0.0, starts_at: None }; size + 1];
        let mut starts_at = 0;
        while starts_at < size {
            let till_here = best[starts_at].score;
            let mblen = sentence[starts_at..].chars().next().map_or(1, char::len_utf8);
            let mut has_single_node = false;
            // Every piece that starts here, shortest first.
            let mut node = self.trie.root();
            let mut out = Output::zero();
            for (i, &b) in bytes[starts_at..].iter().enumerate() {
                let Some(t) = node.find_input(b).map(|t| node.transition(t)) else { break };
                out = out.cat(t.out);
                node = self.trie.node(t.addr);
                if !node.is_final() {
                    continue;
                }
                let id = out.cat(node.final_output()).value();
                if id >= self.n as u64 {
                    return Err(TokenizeError::BadId(id));
                }
                let len = i + 1;
                let candidate = self.score(id as usize) + till_here;
                let target = &mut best[starts_at + len];
                if target.starts_at.is_none() || candidate > target.score {
                    *target = Best { id: id as u32, score: candidate, starts_at: Some(starts_at) };
                }
                has_single_node |= len == mblen;
            }
            if !has_single_node {
                let target = &mut best[starts_at + mblen];
                let candidate = unk_score + till_here;
                if target.starts_at.is_none() || candidate > target.score {
                    let id = self.unk_id.ok_or(TokenizeError::MissingUnkId)?;
                    *target = Best { id, score: candidate, starts_at: Some(starts_at) };
                }
            }
            starts_at += mblen;
        }

        let mut spans = Vec::new();
        let mut unk_run: Option<Range<usize>> = None;
        let mut ends_at = size;
        while ends_at > 0 {
            let node = best[ends_at];
            // Every character boundary is reached: by a piece or by <unk>.
            let start = node.starts_at.ok_or(TokenizeError::MissingUnkId)?;
            if Some(node.id) == self.unk_id {
                unk_run = Some(start..unk_run.map_or(ends_at, |r| r.end));
            } else {
                if let Some(r) = unk_run.take() {
                    spans.push((r.start, r.end));
                }
                spans.push((start, ends_at));
            }
            ends_at = start;
        }
        if let Some(r) = unk_run {
            spans.push((r.start, r.end));
        }
        spans.reverse();
        Ok(spans)
    }
}

impl Model for CompactUnigram {
    // The trait wants a trainer; this model is read-only, and
    // `TokenizerImpl::train` cannot pair the two (it wants `Trainer<Model = Self>`).
    type Trainer = UnigramTrainer;

    fn tokenize(&self, sentence: &str) -> tokenizers::Result<Vec<Token>> {
        let mut tokens = Vec::new();
        for (start, end) in self.segment(sentence)? {
            let piece = &sentence[start..end];
            // As `Unigram::tokenize`: a fused run of unknown characters may
            // still spell a piece.
            if let Some(id) = self.id_of(piece) {
                tokens.push(Token::new(id, piece.to_owned(), (start, end)));
                continue;
            }
            if self.byte_fallback {
                let bytes: Option<Vec<Token>> = piece
                    .bytes()
                    .map(|b| {
                        let name = format!("<0x{b:02X}>");
                        self.id_of(&name).map(|id| Token::new(id, name, (start, end)))
                    })
                    .collect();
                if let Some(bytes) = bytes {
                    tokens.extend(bytes);
                    continue;
                }
            }
            let unk = self.unk_id.ok_or(TokenizeError::MissingUnkId)?;
            tokens.push(Token::new(unk, piece.to_owned(), (start, end)));
        }
        Ok(tokens)
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.id_of(token)
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.piece(id as usize).map(str::to_owned)
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        // Ascending ids: a piece listed twice keeps its last id, as `Unigram`'s map.
        (0..self.n).filter_map(|id| Some((self.piece(id)?.to_owned(), id as u32))).collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.n
    }

    /// Writes the model as `tokenizers`' own Unigram JSON (`unigram.json`).
    fn save(&self, folder: &Path, prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        struct Vocab<'a>(&'a CompactUnigram);
        impl Serialize for Vocab<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let m = self.0;
                s.collect_seq((0..m.n).map(|id| (m.piece(id).unwrap_or_default(), m.score(id))))
            }
        }
        #[derive(Serialize)]
        struct Saved<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            unk_id: Option<u32>,
            vocab: Vocab<'a>,
            byte_fallback: bool,
        }
        let name = prefix.map_or_else(|| "unigram.json".to_owned(), |p| format!("{p}-unigram.json"));
        let path = folder.join(name);
        let saved =
            Saved { kind: "Unigram", unk_id: self.unk_id, vocab: Vocab(self), byte_fallback: self.byte_fallback };
        let mut w = io::BufWriter::new(File::create(&path)?);
        serde_json::to_writer_pretty(&mut w, &saved)?;
        w.flush()?;
        Ok(vec![path])
    }

    fn get_trainer(&self) -> UnigramTrainer {
        UnigramTrainer::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::models::unigram::Unigram;
    use tokenizers::Tokenizer;

    /// A small tokenizer.json: the pieces of `Unigram::encode`'s doc example
    /// plus a two-character piece of unknown characters.
    fn small_json(dir: &Path) -> PathBuf {
        let vocab = [
            ("<unk>", 0.0),
            ("a", 0.0),
            ("b", 0.0),
            ("c", 0.0),
            ("d", 0.0),
            ("cd", 1.0),
            ("ab", 2.0),
            ("abc", 5.0),
            ("abcd", 10.0),
            ("好", -1.0),
            ("xy", -30.0),
        ];
        let json = serde_json::json!({
            "version": "1.0",
            "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false,
                              "rstrip": false, "normalized": false, "special": true}],
            "normalizer": null,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
            "post_processor": null,
            "decoder": null,
            "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab},
        });
        let path = dir.join("tokenizer.json");
        fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        path
    }

    #[test]
    fn small_vocabulary_tokenizes_as_tokenizers_does() {
        let dir = tempfile::tempdir().unwrap();
        let json = small_json(dir.path());
        let reference = Tokenizer::from_file(&json).unwrap();
        let (compact, origin) = load(&json).unwrap();
        assert_eq!(origin, Origin::Built { written: true });
        for text in ["abcdacdxx", "", "x", "xyxy", "好abc好", "a b  c", "zzz<unk>ab", "ab\u{0}cd", "é\u{301}"] {
            let (a, b) = (reference.encode(text, true).unwrap(), compact.encode(text, true).unwrap());
            assert_eq!(a.get_ids(), b.get_ids(), "{text:?}");
            assert_eq!(a.get_offsets(), b.get_offsets(), "{text:?}");
            assert_eq!(a.get_tokens(), b.get_tokens(), "{text:?}");
        }
        assert_eq!(compact.get_model().get_vocab(), reference.get_model().get_vocab());
        assert_eq!(compact.id_to_token(7).as_deref(), Some("abc"));
        let (_, origin) = load(&json).unwrap();
        assert_eq!(origin, Origin::Reused);
    }

    #[test]
    fn saved_model_reads_back_as_the_same_unigram() {
        let dir = tempfile::tempdir().unwrap();
        let (compact, _) = load(&small_json(dir.path())).unwrap();
        let files = compact.get_model().save(dir.path(), None).unwrap();
        let back = Unigram::load(&files[0]).unwrap();
        assert_eq!(back.get_vocab(), compact.get_model().get_vocab());
        assert_eq!(back.encode("abcdacdxx").unwrap(), ["abcd", "a", "cd", "xx"]);
    }

    #[test]
    fn build_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let json = small_json(dir.path());
        let source = sha256_file(&json).unwrap();
        assert_eq!(build(&json, &source).unwrap(), build(&json, &source).unwrap());
    }

    #[test]
    fn damaged_or_stale_files_are_refused_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let json = small_json(dir.path());
        let source = sha256_file(&json).unwrap();
        let (_, origin) = load(&json).unwrap();
        assert_eq!(origin, Origin::Built { written: true });
        let path = compact_path(&json);
        let good = fs::read(&path).unwrap();

        // One flipped byte anywhere is caught by the file's own sha256.
        for at in [0, HEADER_LEN + 3, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            fs::write(&path, &bad).unwrap();
            assert!(matches!(open(&path, &source), Err(CompactError::Checksum)), "flip at {at}");
            let (_, origin) = load(&json).unwrap();
            assert_eq!(origin, Origin::Built { written: true }, "flip at {at}");
            assert_eq!(fs::read(&path).unwrap(), good, "flip at {at}");
        }
        fs::write(&path, &good[..good.len() / 3]).unwrap();
        assert!(matches!(open(&path, &source), Err(CompactError::Checksum)));
        fs::write(&path, b"short").unwrap();
        assert!(matches!(open(&path, &source), Err(CompactError::Malformed(_))));

        // Made from another tokenizer.json: refused, then rebuilt from this one.
        fs::write(&path, &good).unwrap();
        let other = [7u8; HASH_LEN];
        assert!(matches!(open(&path, &other), Err(CompactError::StaleSource { .. })));
        let mut edited: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
        edited["model"]["vocab"][9][1] = serde_json::json!(-2.0);
        fs::write(&json, serde_json::to_vec(&edited).unwrap()).unwrap();
        let (_, origin) = load(&json).unwrap();
        assert_eq!(origin, Origin::Built { written: true });
        assert_ne!(fs::read(&path).unwrap(), good);
        assert_eq!(load(&json).unwrap().1, Origin::Reused);
    }

    #[test]
    fn a_read_only_directory_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let json = small_json(dir.path());
        // A directory where the compact file would go, so the rename fails.
        fs::create_dir(compact_path(&json)).unwrap();
        let (t, origin) = load(&json).unwrap();
        assert_eq!(origin, Origin::Built { written: false });
        // <unk> for Metaspace's "▁", which this vocabulary lacks, then "abcd".
        assert_eq!(t.encode("abcd", false).unwrap().get_ids(), [0, 8]);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn other_models_are_refused_with_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        fs::write(&path, br#"{"model": {"type": "BPE", "vocab": {}, "merges": []}}"#).unwrap();
        assert!(matches!(load(&path), Err(CompactError::Unsupported(_))));
    }
}
