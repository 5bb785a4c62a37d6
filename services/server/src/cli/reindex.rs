//! `triage reindex`: give every stored case its sparse vector (term
//! weights), for stores written before they were kept.
//!
//! Opening the store adds the sparse vector to its configuration; this walks
//! the cases page by page and fills it from each stored text. On a Qdrant
//! server it runs beside a serving `triage serve` (no downtime): a page only
//! fills cases that still lack the vector, so a case the service rewrites
//! meanwhile keeps its own. The embedded store allows one process, so there
//! stop the service first. Cases stored without their text stay dense-only.

use clap::Args;

use super::risk::progress;
use super::store::StoreArgs;

#[derive(Args, Debug)]
pub struct ReindexArgs {
    /// Cases read and written per page.
    #[arg(long, env = "TRIAGE_REINDEX_PAGE", default_value_t = 256)]
    pub page: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Dimensions of the stored dense vectors (the encoder's).
    #[arg(long, env = "TRIAGE_REINDEX_DIM", default_value_t = 384)]
    pub dim: usize,
}

pub fn run(args: ReindexArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.page >= 1, "--page must be at least 1");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let store = rt.block_on(args.store.open(args.dim))?;
    let total = rt.block_on(store.count())?;
    let bar = progress(total as usize, "re-indexing");
    let summary = rt.block_on(triage_cases::add_sparse_vectors(store.as_ref(), args.page, |n| bar.inc(n)))?;
    bar.finish_and_clear();
    eprintln!("building the search index");
    rt.block_on(store.optimize())?;
    let after = rt.block_on(store.count())?;
    eprintln!(
        "{} cases read: {} given term weights, {} had them, {} kept no text, {} had no term; the store holds {after}",
        summary.cases, summary.added, summary.had, summary.without_text, summary.without_terms
    );
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
