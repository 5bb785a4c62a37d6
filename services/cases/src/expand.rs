//! Hybrid search as the service runs it: one fusion of the dense and the
//! word list, refined two ways, each measured on the real board messages
//! with `triage eval-search` (EVALUATION.md, "Search: hybrid") and timed at a
//! million cases with `triage bench-search` (BENCHMARKS.md):
//!
//! - **Centring.** e5 puts every complaint in a narrow cone, so what all of
//!   a store's cases share dominates every cosine. The dense list ranks by
//!   `q − s·m` instead of `q`, where `m` is the mean of the store's vectors
//!   and `s` is [`Refine::centre`] (a half in [`HYBRID`]). Stored vectors have unit length, so that
//!   ranks cases by `q·d − s·m·d`: a case is marked down by how typical of
//!   the whole store it is. Only the query moves; nothing stored changes, and
//!   the hits' `score` stays the plain cosine that escalation reads.
//! - **Feedback** (pseudo-relevance feedback, after Rocchio). The best
//!   [`Feedback::cases`] hits of a first round are taken as related. Their
//!   mean vector and mean term weights are added to the query's, and a second
//!   round ranks the first round's candidates again. That round is restricted
//!   to those candidates (the union of the first round's two lists) and to
//!   the heaviest [`Feedback::terms`] words, so it costs about a millisecond
//!   at a million cases, not a second search of the store.
//!
//! Centring needs the store's [`Profile`]: its mean vector, from a sample of
//! its cases, kept by [`StoreProfile`] and taken again as the store grows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{cosine, normalized, CaseFilter, CaseQuery, CaseStore, Hit, Ranking, SparseVector, StoreError, HNSW_EF};

/// Cases sampled for a store's profile: past a few thousand, the mean moves
/// by less than the ranking can feel.
pub const PROFILE_SAMPLE: usize = 4096;

/// Below this many cases a profile is too much the cases themselves: none is taken.
pub const PROFILE_MIN_CASES: u64 = 100;

/// How often the store's size is checked to decide whether to profile it again.
const PROFILE_CHECK: Duration = Duration::from_secs(60);

/// Pseudo-relevance feedback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback {
    /// How long each list of both rounds is (at least the hits asked for).
    /// Longer lists cost time in the first round, which is a search of the
    /// whole store. For more than 12 hits this is shorter than the one-round
    /// fusion's lists ([`crate::prefetch_limit`]: 4 a hit): feedback reads
    /// the first round's best ten, and its candidates are the pool the second
    /// round ranks, so they need not grow with the hits asked for.
    pub candidates: usize,
    /// How many of the first round's best hits are read as related.
    pub cases: usize,
    /// How much they weigh against the query (the query weighs 1).
    pub weight: f32,
    /// How many words the second round's word query keeps: the heaviest of
    /// the query's own and its feedback's. A word list's cost grows with its
    /// words (each is a posting list to walk), and the feedback brings hundreds.
    /// "Heaviest" is by term weight alone: the IDF lives in the store, not
    /// here, so a common word can displace a rare one; 16 words ranked as well
    /// as all of them on the real messages (EVALUATION.md).
    pub terms: usize,
}

/// Which refinements a fused search uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refine {
    /// The share of the store's mean a query loses before the dense list ranks by it.
    pub centre: Option<f32>,
    /// A second round moved towards the first round's best hits.
    pub feedback: Option<Feedback>,
}

impl Refine {
    /// One plain fusion, as Qdrant runs it.
    pub const NONE: Refine = Refine { centre: None, feedback: None };
}

/// What hybrid search uses. Each setting was chosen on one half of the real
/// board messages and checked on the other (EVALUATION.md, "Search: hybrid").
pub const HYBRID: Refine = Refine { centre: Some(0.5), feedback: Some(FEEDBACK) };

/// The feedback [`HYBRID`] uses.
pub const FEEDBACK: Feedback = Feedback { candidates: 50, cases: 10, weight: 1.0, terms: 16 };

/// What a sample of a store's cases says about the whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// The mean vector; `None` under [`PROFILE_MIN_CASES`].
    pub mean: Option<Vec<f32>>,
}

impl Profile {
    /// From the cases' vectors (a sample of the store); empty vectors, and
    /// vectors of another size than the first non-empty one, are left out.
    pub fn of(vectors: &[Vec<f32>]) -> Self {
        let dim = vectors.iter().map(Vec::len).find(|&n| n > 0).unwrap_or(0);
        let same: Vec<&Vec<f32>> = vectors.iter().filter(|v| v.len() == dim && dim > 0).collect();
        let mean = (!same.is_empty()).then(|| {
            let mut m = vec![0.0f32; dim];
            for v in &same {
                m.iter_mut().zip(v.iter()).for_each(|(a, b)| *a += b);
            }
            m.into_iter().map(|x| x / same.len() as f32).collect()
        });
        Self { mean }
    }
}

/// A store's [`Profile`], taken again when the store has grown or shrunk by
/// more than a tenth since it was last taken (its size is checked at most
/// once a minute). A store whose cases are replaced at a constant size keeps
/// its profile until the process restarts; the mean of an archive moves
/// slowly. Searches wait while a profile is taken (25 ms at a million
/// cases, BENCHMARKS.md).
#[derive(Debug, Default)]
pub struct StoreProfile {
    cached: tokio::sync::Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    profile: Arc<Profile>,
    count: u64,
    checked: Instant,
}

impl StoreProfile {
    pub fn new() -> Self {
        Self::default()
    }

    pub async fn get(&self, store: &dyn CaseStore) -> Result<Arc<Profile>, StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if c.checked.elapsed() < PROFILE_CHECK {
                return Ok(c.profile.clone());
            }
        }
        let count = store.count().await?;
        if let Some(c) = cached.as_mut() {
            if count.abs_diff(c.count) * 10 <= c.count {
                c.checked = Instant::now();
                return Ok(c.profile.clone());
            }
        }
        let profile = if count < PROFILE_MIN_CASES {
            Profile::default()
        } else {
            Profile::of(&store.sample_vectors(PROFILE_SAMPLE).await?)
        };
        let profile = Arc::new(profile);
        *cached = Some(Cached { profile: profile.clone(), count, checked: Instant::now() });
        Ok(profile)
    }
}

/// [`CaseStore::query`] with the refinements of `refine` that apply: all of
/// them to [`Ranking::Dbsf`] with words, centring alone to the dense list,
/// none to the others. With feedback, two rounds:
///
/// 1. the dense and the word list searched at once (each
///    [`Feedback::candidates`] long) and fused here as Qdrant's DBSF fuses;
/// 2. the query moved towards the best [`Feedback::cases`] of that fusion,
///    ranked again by the store over the first round's candidates only.
///
/// Hits keep the cosine with the query's own vector.
pub async fn query(
    store: &dyn CaseStore,
    profile: &Profile,
    q: &CaseQuery,
    filter: &CaseFilter,
    top_k: usize,
    refine: Refine,
) -> Result<Vec<Hit>, StoreError> {
    let mut q = q.clone();
    if let (Some(share), Some(mean), Ranking::Dense | Ranking::Dbsf) = (refine.centre, &profile.mean, q.ranking) {
        q.centre = Some(mean.iter().map(|x| x * share).collect());
    }
    if q.ranking != Ranking::Dbsf || q.sparse.is_empty() {
        return store.query(&q, filter, top_k).await;
    }
    let fb = match refine.feedback {
        Some(fb) if fb.cases > 0 => fb,
        _ => return store.query(&q, filter, top_k).await,
    };
    let prefetch = fb.candidates.max(top_k);
    let list = |ranking| CaseQuery { ranking, ..q.clone() };
    let (mut dense_q, sparse_q) = (list(Ranking::Dense), list(Ranking::Sparse));
    // A beam of `ef` finds the ten nearest well, not a whole prefetch list,
    // and the feedback is read from that list: at ef 128 recall@10 against
    // exact search fell to 0.973 at a million cases, at twice that it is
    // 0.997. Searched beside the slower word list, the wider beam costs
    // little time.
    dense_q.ef = Some(2 * q.ef.unwrap_or(HNSW_EF));
    let (dense, sparse) =
        tokio::join!(store.query(&dense_q, filter, prefetch), store.query(&sparse_q, filter, prefetch));
    let pool = dbsf(vec![dense?, sparse?]);
    if pool.len() < 2 {
        return Ok(pool.into_iter().take(top_k).collect());
    }
    let best = &pool[..fb.cases.min(pool.len())];
    let share = fb.weight / best.len() as f32;
    let mut dense = q.dense.clone();
    let dim = dense.len();
    for h in best.iter().filter(|h| h.case.vector.len() == dim) {
        dense.iter_mut().zip(&h.case.vector).for_each(|(a, b)| *a += share * b);
    }
    let own = q.sparse.indices.iter().copied().zip(q.sparse.values.iter().copied());
    let fed = best.iter().flat_map(|h| {
        let s = &h.case.sparse;
        s.indices.iter().copied().zip(s.values.iter().map(move |w| share * w))
    });
    let words = SparseVector::from_pairs(own.chain(fed));
    let mut heaviest: Vec<(u32, f32)> = words.indices.into_iter().zip(words.values).collect();
    heaviest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    heaviest.truncate(fb.terms);
    let second_q = CaseQuery {
        dense: normalized(dense),
        sparse: SparseVector::from_pairs(heaviest),
        prefetch: Some(prefetch),
        ..q.clone()
    };
    let within = CaseFilter { within: Some(pool.iter().map(|h| h.case.case_id.clone()).collect()), ..filter.clone() };
    let mut hits = store.query(&second_q, &within, top_k).await?;
    for h in &mut hits {
        h.score = cosine(&q.dense, &h.case.vector);
    }
    Ok(hits)
}

/// Qdrant's distribution-based score fusion, for lists fetched apart: each
/// list's scores mapped from its mean ± 3 sample standard deviations onto
/// 0–1 (a one-hit list scores 0.5), summed per case, best first (ties by
/// case id, so the order is fixed).
fn dbsf(lists: Vec<Vec<Hit>>) -> Vec<Hit> {
    let mut fused: Vec<Hit> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for list in lists {
        let n = list.len();
        let mean = list.iter().map(|h| h.rank_score).sum::<f32>() / n.max(1) as f32;
        let var = list.iter().map(|h| (h.rank_score - mean).powi(2)).sum::<f32>() / (n.max(2) - 1) as f32;
        let (lo, hi) = (mean - 3.0 * var.sqrt(), mean + 3.0 * var.sqrt());
        for mut h in list {
            let s = if n < 2 || hi == lo { 0.5 } else { (h.rank_score - lo) / (hi - lo) };
            match at.get(&h.case.case_id) {
                Some(&i) => fused[i].rank_score += s,
                None => {
                    at.insert(h.case.case_id.clone(), fused.len());
                    h.rank_score = s;
                    fused.push(h);
                }
            }
        }
    }
    fused.sort_by(|a, b| b.rank_score.total_cmp(&a.rank_score).then_with(|| a.case.case_id.cmp(&b.case.case_id)));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaseRecord;

    fn hit(id: &str, rank_score: f32) -> Hit {
        Hit { case: CaseRecord::bare(id, vec![], SparseVector::default()), score: 0.0, rank_score }
    }

    #[test]
    fn profile_takes_the_mean_of_vectors_of_one_size() {
        let p = Profile::of(&[vec![], vec![1.0, 0.0], vec![0.0, 1.0], vec![5.0]]);
        assert_eq!(p.mean, Some(vec![0.5, 0.5]));
        assert_eq!(Profile::of(&[]), Profile::default());
    }

    #[test]
    fn dbsf_matches_qdrants_normalisation() {
        // Scores 1, 2, 3: mean 2, sample deviation 1, so 1 → 1/3, 3 → 2/3 of the way from −1 to 5.
        let fused = dbsf(vec![vec![hit("a", 3.0), hit("b", 2.0), hit("c", 1.0)], vec![hit("c", 7.0)]]);
        let got: Vec<(&str, f32)> = fused.iter().map(|h| (h.case.case_id.as_str(), h.rank_score)).collect();
        assert_eq!(got[0].0, "c");
        assert!((got[0].1 - (2.0 / 6.0 + 0.5)).abs() < 1e-6);
        assert_eq!(got[1].0, "a");
        assert!((got[1].1 - 4.0 / 6.0).abs() < 1e-6);
        assert!((got[2].1 - 0.5).abs() < 1e-6);
    }
}
