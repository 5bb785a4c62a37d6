//! A second reader of the text: character 1–3-gram TF-IDF with sparse
//! logistic heads (five labels and three cumulative levels). Its out-of-fold
//! probabilities are stacked into the classifier's feature row, between the
//! sentence vector and the cue features.
//!
//! Why: on the training set's cross-validation the frozen e5 vector with cue
//! features under-triaged a fifth of the threats, and exact character
//! n-grams ("汽油", "堵路", "跳楼") carry what the averaged sentence vector
//! blurs. Stacking lets the heads weigh both (EVALUATION.md).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::Example;
use crate::label::{Label, RiskLevel};
use crate::logreg::{sigmoid, Adam};
use crate::train::CvSplit;

/// Probabilities the stack adds to a feature row, in this order.
pub const STACK_FEATURES: [&str; 8] = [
    "tfidf_violence",
    "tfidf_retaliation",
    "tfidf_self_harm",
    "tfidf_collective",
    "tfidf_livelihood",
    "tfidf_at_least_yellow",
    "tfidf_at_least_orange",
    "tfidf_red",
];

#[derive(Debug, Clone, Copy)]
pub struct StackConfig {
    pub min_df: usize,
    /// scikit-learn's `C` for the sparse heads.
    pub c: f64,
    pub iterations: usize,
    pub learning_rate: f64,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self { min_df: 2, c: 10.0, iterations: 300, learning_rate: 0.1 }
    }
}

/// Character n-gram TF-IDF (sublinear tf, smoothed idf, L2-normalised rows),
/// as scikit-learn's `TfidfVectorizer(analyzer="char", ngram_range=(1, 3))`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "TfidfFile")]
pub struct CharTfidf {
    /// N-grams in index order.
    pub ngrams: Vec<String>,
    pub idf: Vec<f32>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

/// The stored form; the lookup is rebuilt on load.
#[derive(Deserialize)]
struct TfidfFile {
    ngrams: Vec<String>,
    idf: Vec<f32>,
}

impl From<TfidfFile> for CharTfidf {
    fn from(f: TfidfFile) -> Self {
        let mut me = Self { ngrams: f.ngrams, idf: f.idf, index: HashMap::new() };
        me.build_index();
        me
    }
}

fn ngrams(text: &str) -> HashMap<String, u32> {
    let mut norm = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        let space = c.is_whitespace();
        if !(space && last_space) {
            norm.push(if space { ' ' } else { c });
        }
        last_space = space;
    }
    let chars: Vec<char> = norm.chars().collect();
    let mut counts = HashMap::new();
    for n in 1..=3 {
        for w in chars.windows(n) {
            *counts.entry(w.iter().collect::<String>()).or_insert(0) += 1;
        }
    }
    counts
}

pub type SparseRow = Vec<(u32, f32)>;

impl CharTfidf {
    pub fn fit(texts: &[&str], min_df: usize) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        for t in texts {
            for g in ngrams(t).into_keys() {
                *df.entry(g).or_insert(0) += 1;
            }
        }
        let mut kept: Vec<(String, usize)> = df.into_iter().filter(|(_, d)| *d >= min_df).collect();
        // Sorted, so the same data gives the same file.
        kept.sort();
        let n = texts.len() as f64;
        let idf = kept.iter().map(|(_, d)| (((1.0 + n) / (1.0 + *d as f64)).ln() + 1.0) as f32).collect();
        let mut me = Self { ngrams: kept.into_iter().map(|(g, _)| g).collect(), idf, index: HashMap::new() };
        me.build_index();
        me
    }

    fn build_index(&mut self) {
        self.index = self.ngrams.iter().enumerate().map(|(i, g)| (g.clone(), i as u32)).collect();
    }

    pub fn dim(&self) -> usize {
        self.ngrams.len()
    }

    pub fn transform(&self, text: &str) -> SparseRow {
        let mut row: SparseRow = ngrams(text)
            .into_iter()
            .filter_map(|(g, tf)| self.index.get(&g).map(|&i| (i, (1.0 + (tf as f32).ln()) * self.idf[i as usize])))
            .collect();
        // Sorted before the norm is summed: a HashMap's order changes from run
        // to run, and so would the last bits of the sum (and the model's hash).
        row.sort_unstable_by_key(|(i, _)| *i);
        let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        row
    }
}

/// Binary logistic regression on sparse rows: full-batch Adam, class-balanced,
/// L2 (deterministic, as `LogReg`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SparseLogReg {
    pub weights: Vec<f32>,
    pub bias: f32,
}

impl SparseLogReg {
    pub fn score(&self, x: &SparseRow) -> f32 {
        let z: f64 = x.iter().map(|&(i, v)| self.weights[i as usize] as f64 * v as f64).sum::<f64>() + self.bias as f64;
        sigmoid(z) as f32
    }

    pub fn fit(xs: &[SparseRow], ys: &[bool], dim: usize, cfg: &StackConfig) -> Self {
        let n = xs.len();
        let pos = ys.iter().filter(|&&y| y).count();
        if n == 0 || pos == 0 || pos == n {
            // One class only: a constant score at its rate.
            let p = if n == 0 { 0.5 } else { (pos as f64 + 0.5) / (n as f64 + 1.0) };
            return Self { weights: vec![0.0; dim], bias: (p / (1.0 - p)).ln() as f32 };
        }
        let (wp, wn) = (n as f64 / (2.0 * pos as f64), n as f64 / (2.0 * (n - pos) as f64));
        let lambda = 1.0 / (cfg.c * n as f64);
        let mut w = vec![0f64; dim + 1];
        let mut adam = Adam::new(dim + 1, cfg.learning_rate);
        let mut grad = vec![0f64; dim + 1];
        for _ in 0..cfg.iterations {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for (x, &y) in xs.iter().zip(ys) {
                let z: f64 = x.iter().map(|&(i, v)| w[i as usize] * v as f64).sum::<f64>() + w[dim];
                let r = if y { wp } else { wn } * (sigmoid(z) - y as u8 as f64) / n as f64;
                for &(i, v) in x {
                    grad[i as usize] += r * v as f64;
                }
                grad[dim] += r;
            }
            for (g, wk) in grad[..dim].iter_mut().zip(&w[..dim]) {
                *g += lambda * wk;
            }
            adam.step(&mut w, &grad);
        }
        Self { weights: w[..dim].iter().map(|&x| x as f32).collect(), bias: w[dim] as f32 }
    }
}

/// The TF-IDF reader: vectoriser and its eight heads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextStack {
    pub tfidf: CharTfidf,
    /// In `STACK_FEATURES` order.
    pub heads: Vec<SparseLogReg>,
}

fn targets(e: &Example) -> [bool; 8] {
    let mut t = [false; 8];
    for l in Label::ALL {
        t[l.index()] = e.labels.contains(&l);
    }
    t[5] = e.level >= RiskLevel::Yellow;
    t[6] = e.level >= RiskLevel::Orange;
    t[7] = e.level == RiskLevel::Red;
    t
}

impl TextStack {
    pub fn fit(texts: &[&str], ex: &[Example], cfg: &StackConfig) -> Self {
        let tfidf = CharTfidf::fit(texts, cfg.min_df);
        let xs: Vec<SparseRow> = texts.iter().map(|t| tfidf.transform(t)).collect();
        let ts: Vec<[bool; 8]> = ex.iter().map(targets).collect();
        let heads = (0..8)
            .map(|k| SparseLogReg::fit(&xs, &ts.iter().map(|t| t[k]).collect::<Vec<_>>(), tfidf.dim(), cfg))
            .collect();
        Self { tfidf, heads }
    }

    /// Out-of-fold probabilities for every training text (folds drawn by
    /// `split`: k random ones from `seed`, or one per group), and the stack
    /// fitted on all of them.
    pub fn fit_oof(texts: &[&str], ex: &[Example], split: CvSplit, folds: usize, seed: u64, cfg: &StackConfig) -> (Vec<[f32; 8]>, Self) {
        let mut oof = vec![[0f32; 8]; texts.len()];
        for (keep, held) in split.folds(ex, folds, seed ^ 0x7f1d_f000) {
            let stack = Self::fit(
                &keep.iter().map(|&i| texts[i]).collect::<Vec<_>>(),
                &keep.iter().map(|&i| ex[i].clone()).collect::<Vec<_>>(),
                cfg,
            );
            for &i in &held {
                oof[i] = stack.probs(texts[i]);
            }
        }
        (oof, Self::fit(texts, ex, cfg))
    }

    pub fn probs(&self, text: &str) -> [f32; 8] {
        let x = self.tfidf.transform(text);
        let mut p = [0f32; 8];
        for (p, h) in p.iter_mut().zip(&self.heads) {
            *p = h.score(&x);
        }
        p
    }
}

/// Puts the stack's probabilities between the sentence vector and the cue
/// features (cue features stay last: `features::has_threat_cue` counts from the end).
pub fn insert(row: &[f32], embedding_dim: usize, probs: &[f32; 8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(row.len() + 8);
    out.extend_from_slice(&row[..embedding_dim.min(row.len())]);
    out.extend_from_slice(probs);
    out.extend_from_slice(&row[embedding_dim.min(row.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tfidf_rows_are_unit_length_and_know_their_ngrams() {
        let texts = ["我要去 堵路", "我要去堵路了", "今天天气好", "天气好"];
        let v = CharTfidf::fit(&texts, 2);
        assert!(v.ngrams.contains(&"堵路".to_string()) && v.ngrams.contains(&"天气好".to_string()));
        assert!(!v.ngrams.contains(&"路了".to_string()), "df 1 is dropped");
        let r = v.transform("堵路堵路");
        let norm: f32 = r.iter().map(|(_, x)| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(v.transform("完全无关").is_empty());
    }

    #[test]
    fn sparse_heads_learn_a_separable_rule() {
        let texts: Vec<String> = (0..40).map(|i| if i % 2 == 0 { format!("第{i}次 我要堵路") } else { format!("第{i}次 咨询社保") }).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let v = CharTfidf::fit(&refs, 2);
        let xs: Vec<SparseRow> = refs.iter().map(|t| v.transform(t)).collect();
        let ys: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        let m = SparseLogReg::fit(&xs, &ys, v.dim(), &StackConfig::default());
        assert!(m.score(&v.transform("明天堵路")) > 0.8);
        assert!(m.score(&v.transform("咨询社保")) < 0.2);
        let row = insert(&[1.0, 2.0, 9.0], 2, &[0.5; 8]);
        assert_eq!(row.len(), 11);
        assert_eq!((row[1], row[2], row[10]), (2.0, 0.5, 9.0));
    }
}
