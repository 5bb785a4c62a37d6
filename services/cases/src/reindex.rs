//! Adding sparse vectors to cases stored before they were kept. Opening a
//! store adds the sparse vector to its configuration; this fills it, page by
//! page, from each case's stored text, while the store keeps serving: a page
//! only sets vectors on cases that still lack one, so a case rewritten
//! meanwhile keeps the vector it was written with.

use crate::{terms, CaseStore, StoreError};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReindexSummary {
    /// Cases read.
    pub cases: u64,
    /// Cases given a sparse vector now.
    pub added: u64,
    /// Cases that had one already.
    pub had: u64,
    /// Cases stored without their text (`--store-text false`): they stay dense-only.
    pub without_text: u64,
    /// Cases whose text has no term worth keeping.
    pub without_terms: u64,
}

/// Walks the whole store in pages of `page` cases; `progress` hears how
/// many cases each page held.
pub async fn add_sparse_vectors(
    store: &dyn CaseStore,
    page: usize,
    mut progress: impl FnMut(u64),
) -> Result<ReindexSummary, StoreError> {
    let mut s = ReindexSummary::default();
    let mut cursor = None;
    loop {
        let (cases, next) = store.scroll(cursor.take(), page.max(1)).await?;
        let n = cases.len() as u64;
        let mut fill = Vec::new();
        for c in cases {
            if !c.sparse.is_empty() {
                s.had += 1;
                continue;
            }
            let Some(text) = c.text.as_deref() else {
                s.without_text += 1;
                continue;
            };
            let v = terms::document(text);
            if v.is_empty() {
                s.without_terms += 1;
            } else {
                s.added += 1;
                fill.push((c.case_id, v));
            }
        }
        store.fill_sparse(fill).await?;
        s.cases += n;
        progress(n);
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(s),
        }
    }
}
