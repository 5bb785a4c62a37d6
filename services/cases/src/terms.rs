//! Term weights for the sparse vector stored beside each case's dense one,
//! the same code at index and at query time.
//!
//! Words come from jieba's search-mode segmentation (a long word also yields
//! its dictionary sub-words, so 拆迁补偿款 meets 补偿款). Punctuation, digits
//! alone and a short list of function words are dropped. A document's weight
//! for a term is BM25's saturated term frequency,
//! `tf·(k1+1) / (tf + k1·(1 − b + b·len/avg_len))`. A query is weighed the
//! same way: analysts search with a case's text, so a word a long query
//! repeats counts for more than one it mentions once, and a short query's
//! words weigh alike (measured against a weight of 1 per word on the real
//! messages: EVALUATION.md, "Search: hybrid"). The inverse document frequency
//! is not stored: both backends apply Qdrant's IDF modifier at query time,
//! from the collection as it is then.
//!
//! A term's dimension is the first four bytes of its SHA-256, so every
//! process and backend agrees without a shared vocabulary; two terms that
//! collide (about one pair in 10⁵ for a 100k-word vocabulary) share a weight.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use jieba_rs::Jieba;
use sha2::{Digest, Sha256};

/// The sparse vector's name in both backends (the dense one is unnamed).
pub const SPARSE_VECTOR: &str = "text";

/// BM25's document-side parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25 {
    /// Term-frequency saturation.
    pub k1: f32,
    /// How much a long text's frequencies are damped (0 none, 1 fully).
    pub b: f32,
    /// The length (kept words) counted as ordinary.
    pub avg_len: f32,
}

/// The stored weights' parameters, chosen by `triage eval-search`'s sweep on
/// the real board messages (EVALUATION.md, "Search: hybrid"). They keep 186
/// words on average; counting 50 as ordinary with full damping (b 1) scales
/// a long letter's weights down towards those of a short message, and
/// k1 2 lets a repeated word count for more: both ranked better than the
/// textbook 1.2 / 0.75 / mean length.
pub const BM25: Bm25 = Bm25 { k1: 2.0, b: 1.0, avg_len: 50.0 };

/// Function words that match everywhere and say nothing about a matter.
const STOPWORDS: &[&str] = &[
    "的", "了", "是", "在", "我", "你", "他", "她", "它", "我们", "你们", "他们", "和", "与", "及", "或", "也", "都",
    "就", "还", "又", "很", "把", "被", "让", "给", "对", "向", "从", "到", "为", "这", "那", "这个", "那个", "有",
    "没有", "不", "没", "着", "过", "吗", "呢", "吧", "啊", "呀", "之", "其", "而", "但", "但是", "并", "并且", "如果",
    "因为", "所以", "一个", "一些", "已经", "可以", "什么", "怎么", "自己", "等", "上", "下", "中", "里", "后", "前",
    "时", "个", "能", "会", "要", "说", "去", "来", "请", "您", "该", "此", "于", "以", "将", "则", "所", "及其",
];

static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// A sparse vector: dimensions ascending and unique, with their weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVector {
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The weight of dimension `id`, if present.
    pub fn get(&self, id: u32) -> Option<f32> {
        self.indices.binary_search(&id).ok().map(|i| self.values[i])
    }

    /// From pairs in any order; a repeated dimension keeps the sum of its weights.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, f32)>) -> Self {
        let mut m = BTreeMap::new();
        for (i, v) in pairs {
            *m.entry(i).or_insert(0.0) += v;
        }
        let (indices, values) = m.into_iter().unzip();
        Self { indices, values }
    }
}

/// One distinct term of a text, with its dimension and weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub term: String,
    pub id: u32,
    pub weight: f32,
}

/// The dimension a term is stored under.
pub fn term_id(term: &str) -> u32 {
    let d = Sha256::digest(term.as_bytes());
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

fn keep(word: &str) -> bool {
    let meaningful = word.chars().any(|c| c.is_alphabetic());
    meaningful && !STOPWORDS.contains(&word)
}

/// The kept words of a text, in order, repeats included (ASCII lower-cased).
pub fn tokens(text: &str) -> Vec<String> {
    JIEBA.cut_for_search(text, true).into_iter().map(|w| w.trim().to_ascii_lowercase()).filter(|w| keep(w)).collect()
}

impl Bm25 {
    /// The weight of a term seen `tf` times in a text of `len` kept words.
    pub fn weight(&self, tf: f32, len: f32) -> f32 {
        tf * (self.k1 + 1.0) / (tf + self.k1 * (1.0 - self.b + self.b * len / self.avg_len))
    }

    /// A text's distinct terms with their document weights, by dimension.
    pub fn terms(&self, text: &str) -> Vec<Term> {
        let toks = tokens(text);
        let len = toks.len() as f32;
        let mut tf: BTreeMap<String, f32> = BTreeMap::new();
        for t in toks {
            *tf.entry(t).or_insert(0.0) += 1.0;
        }
        let mut terms: Vec<Term> =
            tf.into_iter().map(|(term, f)| Term { id: term_id(&term), weight: self.weight(f, len), term }).collect();
        terms.sort_by_key(|t| t.id);
        terms
    }

    pub fn document(&self, text: &str) -> SparseVector {
        SparseVector::from_pairs(self.terms(text).into_iter().map(|t| (t.id, t.weight)))
    }
}

/// A text's distinct terms with their stored weights, by dimension.
pub fn document_terms(text: &str) -> Vec<Term> {
    BM25.terms(text)
}

/// The sparse vector a case is stored with.
pub fn document(text: &str) -> SparseVector {
    BM25.document(text)
}

/// A query's distinct terms, weighed as a stored case's (the IDF modifier
/// then weighs them by rarity).
pub fn query_terms(text: &str) -> Vec<Term> {
    BM25.terms(text)
}

/// The sparse vector a text is searched with.
pub fn query(text: &str) -> SparseVector {
    BM25.document(text)
}

/// The same terms with a weight of 1 each: the plainer query weighting,
/// which `triage eval-search` compares against.
pub fn unit_query(text: &str) -> SparseVector {
    SparseVector::from_pairs(BM25.terms(text).into_iter().map(|t| (t.id, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_words_and_punctuation_are_dropped() {
        let t = tokens("我的拆迁补偿款，到现在还没有发放！123");
        assert!(t.iter().any(|w| w == "补偿款"), "{t:?}");
        assert!(t.iter().any(|w| w == "拆迁"), "{t:?}");
        for w in ["的", "我", "，", "！", "123", "没有"] {
            assert!(!t.iter().any(|x| x == w), "{w} kept in {t:?}");
        }
    }

    #[test]
    fn document_weights_saturate_and_are_sorted() {
        let once = document("工资拖欠");
        let thrice = document("工资拖欠。工资。工资。");
        let id = term_id("工资");
        let (a, b) = (once.get(id).unwrap(), thrice.get(id).unwrap());
        assert!(b > a && b < (BM25.k1 + 1.0), "{a} {b}");
        assert!(once.indices.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(once.indices.len(), once.values.len());
    }

    #[test]
    fn queries_are_weighed_as_documents() {
        let text = "物业费 物业费 物业费 涨价";
        assert_eq!(query(text), document(text));
        assert_eq!(query_terms(text), document_terms(text), "the words the service searches and explains with");
        let q = query(text);
        let (fee, rise) = (q.get(term_id("物业费")).unwrap(), q.get(term_id("涨价")).unwrap());
        assert!(fee > rise && fee < BM25.k1 + 1.0, "a repeated word counts for more, saturating: {fee} {rise}");
        // A short query's words weigh alike, so its ranking is the rarity of its words.
        let short = query("电梯 停运");
        assert_eq!(short.values.len(), 2);
        assert_eq!(short.values[0], short.values[1]);
        assert!(unit_query(text).values.iter().all(|&v| v == 1.0));
        assert_eq!(unit_query(text).indices, q.indices);
        assert!(query("，。！").is_empty());
    }
}
