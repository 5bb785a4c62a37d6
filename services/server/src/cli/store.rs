//! Where cases are kept, shared by `triage serve` and `triage import`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use triage_cases::{CaseStore, EdgeStore, QdrantStore};

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Data directory: the embedded case store (cases/), the reporter salt, the default keys file.
    #[arg(long, env = "TRIAGE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Use a Qdrant server or cluster (gRPC URL, e.g. http://qdrant:6334) instead of the embedded store.
    #[arg(long, env = "TRIAGE_QDRANT_URL")]
    pub qdrant_url: Option<String>,
    /// API key for the Qdrant server.
    #[arg(long, env = "TRIAGE_QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<String>,
    /// Qdrant collection (created if missing).
    #[arg(long, env = "TRIAGE_QDRANT_COLLECTION", default_value = "triage_cases")]
    pub qdrant_collection: String,
    /// Store each case's text with its vector (analysts read it); `false` keeps only vectors and metadata.
    #[arg(long, env = "TRIAGE_STORE_TEXT", default_value_t = true, action = clap::ArgAction::Set)]
    pub store_text: bool,
    /// Salt for reporter hashes (default: <data-dir>/reporter_salt, made on first use).
    /// Instances sharing a Qdrant collection must share it.
    #[arg(long, env = "TRIAGE_REPORTER_SALT", hide_env_values = true)]
    pub reporter_salt: Option<String>,
}

impl StoreArgs {
    pub async fn open(&self, dim: usize) -> anyhow::Result<Arc<dyn CaseStore>> {
        match &self.qdrant_url {
            Some(url) => {
                let s = QdrantStore::connect(url, self.qdrant_api_key.clone(), &self.qdrant_collection, dim)
                    .await
                    .with_context(|| format!("connecting to Qdrant at {url}"))?;
                Ok(Arc::new(s))
            }
            None => {
                let dir = self.data_dir.join("cases");
                Ok(Arc::new(
                    EdgeStore::open(&dir, dim)
                        .with_context(|| format!("opening the case store in {}", dir.display()))?,
                ))
            }
        }
    }

    /// Creates the data directory owner-only (0700), or takes group and
    /// other access away from an existing one: it holds case texts, the
    /// reporter salt and the keys file.
    pub fn private_data_dir(&self) -> anyhow::Result<()> {
        let dir = &self.data_dir;
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            b.mode(0o700);
            b.create(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mode = std::fs::metadata(dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))
                    .with_context(|| format!("making {} owner-only", dir.display()))?;
                tracing::warn!(dir = %dir.display(), "the data directory was open to other users; made it owner-only");
            }
        }
        #[cfg(not(unix))]
        b.create(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(())
    }

    pub fn salt(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(s) = &self.reporter_salt {
            return Ok(s.as_bytes().to_vec());
        }
        salt_file(&self.data_dir.join("reporter_salt"))
    }
}

fn salt_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim();
        anyhow::ensure!(!s.is_empty(), "{} is empty", path.display());
        return Ok(s.as_bytes().to_vec());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let salt = hex::encode(raw);
    write_private(path, &salt)?;
    Ok(salt.into_bytes())
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}
