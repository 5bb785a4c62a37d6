//! `triage cases`: upkeep of the case store.

use anyhow::Context;
use clap::{Args, Subcommand};
use triage_cases::{EdgeStore, QdrantStore};

use super::store::StoreArgs;

#[derive(Subcommand, Debug)]
pub enum CasesCommand {
    /// Remove every stored case's text and compact the store's files, so that
    /// `serve --store-text false` may start. Run it with the service stopped
    /// (the embedded store allows one process).
    Redact(RedactArgs),
}

#[derive(Args, Debug)]
pub struct RedactArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(c: CasesCommand) -> anyhow::Result<()> {
    match c {
        CasesCommand::Redact(a) => {
            a.store.private_data_dir()?;
            let done = match &a.store.qdrant_url {
                None => {
                    let dir = a.store.data_dir.join("cases");
                    EdgeStore::redact(&dir).with_context(|| format!("redacting the case store in {}", dir.display()))?
                }
                Some(url) => {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    rt.block_on(QdrantStore::redact(url, a.store.qdrant_api_key.clone(), &a.store.qdrant_collection))
                        .with_context(|| format!("redacting the Qdrant collection {}", a.store.qdrant_collection))?
                }
            };
            println!("{}", serde_json::json!({"cases": done.cases, "texts_removed": done.texts}));
            Ok(())
        }
    }
}
