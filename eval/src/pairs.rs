//! Similarity thresholds measured on labelled case pairs (`models/pairs`).
//!
//! Each pair is two texts of one kind: the same complaint re-worded by its
//! reporter, the same matter from another person, or a different matter on the
//! same topic. Pairs on different topics are derived from the set (see
//! [`other_topic`]). A threshold is read as a classifier of pairs — "at or
//! above it, the two answer the question" — and chosen as the lowest one from
//! which the precision stays at or above a stated target at every higher
//! threshold, so that recall is as high as the target allows and one lucky
//! pair cannot set it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairKind {
    /// The same reporter restating the same complaint.
    Reworded,
    /// Another person raising the same concrete matter.
    SameMatter,
    /// Another matter on the same topic (the hard negatives).
    DifferentMatter,
    /// Two texts on different topics: derived by [`other_topic`], never stored.
    OtherTopic,
}

/// One labelled pair as stored in `models/pairs/pairs.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pair {
    pub id: String,
    pub kind: PairKind,
    pub topic: String,
    pub a: String,
    pub b: String,
}

/// Derived pairs on different topics: pair `i`'s first text with the second
/// text of the next pair in file order (wrapping round) whose topic differs.
/// One per pair, so the two sides of a question are of like size.
pub fn other_topic(pairs: &[Pair]) -> Vec<(usize, usize)> {
    let n = pairs.len();
    (0..n)
        .filter_map(|i| (1..n).map(|k| (i + k) % n).find(|&j| pairs[j].topic != pairs[i].topic).map(|j| (i, j)))
        .collect()
}

/// What a threshold is asked to tell apart. Pairs a question does not read take no part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Question {
    /// Same topic (every stored kind) against different topics.
    SameTopic,
    /// The same matter (re-worded, or from another person) against a different matter on the same topic.
    SameMatter,
    /// The same complaint re-worded against a different matter on the same topic.
    SameComplaint,
}

impl Question {
    pub const ALL: [Question; 3] = [Question::SameTopic, Question::SameMatter, Question::SameComplaint];

    /// Whether a pair counts as positive, negative, or not at all.
    pub fn reads(self, k: PairKind) -> Option<bool> {
        use PairKind::*;
        match (self, k) {
            (Question::SameTopic, OtherTopic) => Some(false),
            (Question::SameTopic, _) => Some(true),
            (_, OtherTopic) => None,
            (_, DifferentMatter) => Some(false),
            (_, Reworded) => Some(true),
            (Question::SameMatter, SameMatter) => Some(true),
            (Question::SameComplaint, SameMatter) => None,
        }
    }
}

/// Precision and recall of "score ≥ threshold" on one question.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub threshold: f32,
    pub precision: f64,
    pub recall: f64,
    pub true_pos: usize,
    pub false_pos: usize,
    pub positives: usize,
    pub negatives: usize,
}

/// `score ≥ t` against the question's truth, for one threshold.
pub fn point(scored: &[(PairKind, f32)], q: Question, t: f32) -> Point {
    let (mut tp, mut fp, mut pos, mut neg) = (0, 0, 0, 0);
    for &(k, s) in scored {
        let Some(truth) = q.reads(k) else { continue };
        if truth {
            pos += 1;
        } else {
            neg += 1;
        }
        if s >= t {
            if truth {
                tp += 1;
            } else {
                fp += 1;
            }
        }
    }
    let precision = if tp + fp == 0 { 1.0 } else { tp as f64 / (tp + fp) as f64 };
    let recall = if pos == 0 { 0.0 } else { tp as f64 / pos as f64 };
    Point { threshold: t, precision, recall, true_pos: tp, false_pos: fp, positives: pos, negatives: neg }
}

/// Thresholds from `lo` to `hi` in steps of `step` (rounded to the step, so
/// the values print and compare cleanly).
pub fn grid(lo: f32, hi: f32, step: f32) -> Vec<f32> {
    let n = ((hi - lo) / step).round() as usize;
    (0..=n).map(|i| ((lo + i as f32 * step) / step).round() * step).collect()
}

pub fn sweep(scored: &[(PairKind, f32)], q: Question, thresholds: &[f32]) -> Vec<Point> {
    thresholds.iter().map(|&t| point(scored, q, t)).collect()
}

/// The lowest threshold of the sweep from which precision stays ≥ `target`
/// at every higher threshold that still lets a positive through; None when
/// no threshold reaches it.
pub fn choose(sweep: &[Point], target: f64) -> Option<Point> {
    let mut sorted: Vec<&Point> = sweep.iter().filter(|p| p.true_pos > 0).collect();
    sorted.sort_by(|a, b| b.threshold.total_cmp(&a.threshold));
    let mut best = None;
    for p in sorted {
        if p.precision < target {
            break;
        }
        best = Some(*p);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use PairKind::*;

    #[test]
    fn precision_and_recall_count_only_the_question_s_pairs() {
        let s = [(Reworded, 0.99), (SameMatter, 0.97), (DifferentMatter, 0.96), (DifferentMatter, 0.90)];
        let p = point(&s, Question::SameComplaint, 0.95);
        assert_eq!((p.true_pos, p.false_pos, p.positives, p.negatives), (1, 1, 1, 2));
        let p = point(&s, Question::SameMatter, 0.95);
        assert_eq!((p.true_pos, p.false_pos, p.positives), (2, 1, 2));
        assert!((p.precision - 2.0 / 3.0).abs() < 1e-9 && (p.recall - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_chosen_threshold_keeps_precision_above_it_everywhere() {
        // A negative at 0.95 breaks precision there; a dip must stop the walk
        // down even if precision recovers lower.
        let s = [
            (Reworded, 0.99),
            (Reworded, 0.98),
            (DifferentMatter, 0.955),
            (Reworded, 0.94),
            (Reworded, 0.93),
            (Reworded, 0.92),
            (Reworded, 0.91),
            (DifferentMatter, 0.80),
        ];
        let g = grid(0.80, 1.0, 0.01);
        let sw = sweep(&s, Question::SameComplaint, &g);
        let c = choose(&sw, 0.9).unwrap();
        assert!((c.threshold - 0.96).abs() < 1e-6, "{c:?}");
        assert_eq!(c.recall, 2.0 / 6.0);
        // 0.8: the dip to 2/3 at 0.95 stops the walk, though 0.81 would read 6/7 again.
        assert!((choose(&sw, 0.8).unwrap().threshold - 0.96).abs() < 1e-6);
        let c = choose(&sw, 0.6).unwrap();
        assert!((c.threshold - 0.80).abs() < 1e-6, "{c:?}");
        assert!(choose(&sweep(&[(DifferentMatter, 0.99), (Reworded, 0.98)], Question::SameMatter, &g), 0.9).is_none());
    }

    #[test]
    fn other_topic_pairs_cross_topics_once_per_pair() {
        let p = |id: &str, topic: &str| Pair {
            id: id.into(),
            kind: Reworded,
            topic: topic.into(),
            a: format!("{id}a"),
            b: format!("{id}b"),
        };
        let ps = [p("1", "water"), p("2", "water"), p("3", "wages"), p("4", "noise")];
        assert_eq!(other_topic(&ps), [(0, 2), (1, 2), (2, 3), (3, 0)]);
        assert!(other_topic(&ps[..2]).is_empty(), "one topic has nothing to cross with");
        assert_eq!(Question::SameTopic.reads(DifferentMatter), Some(true));
        assert_eq!(Question::SameMatter.reads(OtherTopic), None);
    }

    #[test]
    fn grid_steps_are_exact() {
        let g = grid(0.80, 1.0, 0.005);
        assert_eq!(g.len(), 41);
        assert_eq!(g[1], 0.805);
        assert_eq!(*g.last().unwrap(), 1.0);
    }
}
