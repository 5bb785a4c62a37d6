//! Cue lexicons with evidence spans, and the suppression rules that keep
//! figurative, negated, past or finished, media and fiction, and victim-side
//! uses out of the evidence.
//!
//! The risk decision is the model's (`model`, `judge`); the evidence is what a
//! person reads to see which words support it. So a cue is taken only where
//! the text uses it for what it names: not inside a longer word, a figure of
//! speech, a negation, a finished past event, media or fiction, or as what was
//! done to the writer's side.
//!
//! Offsets in `Evidence` are Unicode scalar (char) offsets into the input text,
//! end exclusive, so `text.chars().skip(start).take(end - start)` is the cue.

use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, MatchKind};
use jieba_rs::Jieba;
use serde::{Deserialize, Serialize};

use crate::label::Label;
pub use triage_proto::{CueKind, Evidence};

/// The lexicon shipped with the model, compiled in.
pub const DEFAULT_LEXICON: &str = include_str!("../../../models/lexicon/cues.toml");

/// Why a cue match was not taken as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// The cue is part of a longer word (杀 in 杀毒, 报复 in 报复性消费).
    InsideWord,
    Figurative,
    Negated,
    PastEvent,
    Media,
    /// The party is the one harmed, not the one acting: a finished act done
    /// to someone (被人打伤了, 树被砍了) or a whistle-blower's fear of reprisal
    /// (怕被他们报复).
    Victim,
}

/// The cues of one text.
#[derive(Debug, Clone, Default)]
pub struct CueReport {
    /// Cues taken as evidence, in text order; of overlapping spans with the
    /// same label and kind, only the longest.
    pub evidence: Vec<Evidence>,
    /// Cues that matched but were not taken, with the reason: threat and
    /// mention cues, and any other non-topic cue inside a figurative phrase.
    /// `triage cues --verbose` shows them, to check the suppression rules.
    pub suppressed: Vec<(Evidence, Suppression)>,
}

#[derive(Deserialize)]
struct Phrases {
    phrases: Vec<String>,
}

#[derive(Deserialize)]
struct LexiconFile {
    threat: BTreeMap<String, Phrases>,
    #[serde(default)]
    mention: BTreeMap<String, Phrases>,
    topic: BTreeMap<String, Phrases>,
    specific: BTreeMap<String, Phrases>,
    escalation: BTreeMap<String, Phrases>,
    figurative: Phrases,
    #[serde(default)]
    pattern: BTreeMap<String, Vec<String>>,
    context: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Cue(Option<Label>, CueKind),
    Figurative,
    Negator,
    Past,
    Habitual,
    Future,
    Media,
    Passive,
    Fear,
}

#[derive(Debug, thiserror::Error)]
#[error("cue lexicon: {0}")]
pub struct LexiconError(String);

pub struct CueLexicon {
    matcher: AhoCorasick,
    /// Phrase patterns (indexed by the matcher), then regex patterns.
    patterns: Vec<(String, Pattern)>,
    /// Regexes with their index in `patterns`.
    regexes: Vec<(regex::Regex, usize)>,
    jieba: Jieba,
}

/// The kind of a `specific.<name>` list or pattern.
fn specific_kind(name: &str) -> Result<CueKind, LexiconError> {
    Ok(match name {
        "time" => CueKind::SpecificTime,
        "means" => CueKind::SpecificMeans,
        "gathering" => CueKind::SpecificGathering,
        "in_progress" => CueKind::SpecificInProgress,
        "place" => CueKind::SpecificPlace,
        other => return Err(LexiconError(format!("unknown specific kind {other}"))),
    })
}

/// Context lists that no suppression rule reads but that other lexicon files
/// may still name: accepted and ignored, so that such a file loads (the cue
/// bench times another lexicon file given as `TRIAGE_LEXICON`).
const IGNORED_CONTEXT: &[&str] = &["withdrawn", "joking", "intent", "intent_pattern", "grievance", "brawl"];

/// The context words a `[context]` list (or a `context.<list>` pattern) holds;
/// `None` for an ignored list.
fn context_list(name: &str) -> Result<Option<Pattern>, LexiconError> {
    Ok(Some(match name {
        "negator" => Pattern::Negator,
        "past" => Pattern::Past,
        "habitual" => Pattern::Habitual,
        "future" => Pattern::Future,
        "media" => Pattern::Media,
        "passive" => Pattern::Passive,
        "fear" => Pattern::Fear,
        other if IGNORED_CONTEXT.contains(&other) => return Ok(None),
        other => return Err(LexiconError(format!("unknown context list {other}"))),
    }))
}

/// A raw match in byte offsets.
#[derive(Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    pattern: usize,
    /// Regex hits are constructions, not words: no word-boundary check.
    regex: bool,
}

impl CueLexicon {
    pub fn from_toml(text: &str) -> Result<Self, LexiconError> {
        let file: LexiconFile = toml::from_str(text).map_err(|e| LexiconError(e.to_string()))?;
        let mut patterns: Vec<(String, Pattern)> = Vec::new();
        let mut add = |list: &[String], p: Pattern| patterns.extend(list.iter().map(|s| (s.clone(), p)));
        for (name, ph) in &file.threat {
            let label = name.parse::<Label>().map_err(|e| LexiconError(e.to_string()))?;
            add(&ph.phrases, Pattern::Cue(Some(label), CueKind::Threat));
        }
        for (name, ph) in &file.mention {
            let label = name.parse::<Label>().map_err(|e| LexiconError(e.to_string()))?;
            add(&ph.phrases, Pattern::Cue(Some(label), CueKind::Mention));
        }
        for (name, ph) in &file.topic {
            let label = name.parse::<Label>().map_err(|e| LexiconError(e.to_string()))?;
            add(&ph.phrases, Pattern::Cue(Some(label), CueKind::Topic));
        }
        for (name, ph) in &file.specific {
            add(&ph.phrases, Pattern::Cue(None, specific_kind(name)?));
        }
        for (name, ph) in &file.escalation {
            let kind = match name.as_str() {
                "vague_warning" => CueKind::VagueWarning,
                "repeat" => CueKind::Repeat,
                "survival" => CueKind::Survival,
                other => return Err(LexiconError(format!("unknown escalation kind {other}"))),
            };
            add(&ph.phrases, Pattern::Cue(None, kind));
        }
        add(&file.figurative.phrases, Pattern::Figurative);
        for (name, list) in &file.context {
            if let Some(p) = context_list(name)? {
                add(list, p);
            }
        }
        let n_phrases = patterns.len();
        let mut regex_lists: Vec<(Pattern, &[String])> = Vec::new();
        for (name, list) in &file.pattern {
            // A label names threat patterns; `specific.<kind>` names patterns for
            // a specific too varied for a phrase list (下个月10号, 本周五),
            // `context.<list>` context words too varied for one (我们全组人就…,
            // a date with its year), and `figurative` everyday constructions
            // (砍了半天价, 跟砍人似的).
            let p = if name == "figurative" {
                Pattern::Figurative
            } else if let Some(kind) = name.strip_prefix("specific.") {
                Pattern::Cue(None, specific_kind(kind)?)
            } else if let Some(list) = name.strip_prefix("context.") {
                match context_list(list)? {
                    Some(p) => p,
                    None => continue,
                }
            } else {
                Pattern::Cue(Some(name.parse::<Label>().map_err(|e| LexiconError(e.to_string()))?), CueKind::Threat)
            };
            regex_lists.push((p, list));
        }
        let mut regexes = Vec::new();
        for (cue, list) in regex_lists {
            for src in list {
                let re = regex::Regex::new(src).map_err(|e| LexiconError(format!("pattern {src}: {e}")))?;
                regexes.push((re, patterns.len()));
                patterns.push((src.clone(), cue));
            }
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(patterns[..n_phrases].iter().map(|(s, _)| s.as_str()))
            .map_err(|e| LexiconError(e.to_string()))?;
        // The domain user dictionary: every cue and figurative phrase is a word,
        // so segmentation keeps them whole and boundaries mean something. Only
        // phrases: a regex's source (带.{0,6}汽油) is no word of any text.
        let mut jieba = Jieba::new();
        for (s, p) in &patterns[..n_phrases] {
            if matches!(p, Pattern::Cue(..) | Pattern::Figurative) && s.chars().count() > 1 {
                jieba.add_word(s, Some(2000), None);
            }
        }
        Ok(Self { matcher, patterns, regexes, jieba })
    }

    pub fn builtin() -> Result<Self, LexiconError> {
        Self::from_toml(DEFAULT_LEXICON)
    }

    pub fn analyse(&self, text: &str) -> CueReport {
        let boundaries = self.word_boundaries(text);
        let mut hits: Vec<Hit> = self
            .matcher
            .find_overlapping_iter(text)
            .map(|m| Hit { start: m.start(), end: m.end(), pattern: m.pattern().as_usize(), regex: false })
            .collect();
        for (re, pattern) in &self.regexes {
            hits.extend(re.find_iter(text).map(|m| Hit {
                start: m.start(),
                end: m.end(),
                pattern: *pattern,
                regex: true,
            }));
        }
        // Whether a hit starts and ends on jieba word boundaries.
        let aligned = |h: &Hit| boundaries.binary_search(&h.start).is_ok() && boundaries.binary_search(&h.end).is_ok();
        // A one-character future or habit word counts only as a word of its
        // own: 会 in 村委会 or 社会 is no future, 还 in 归还 no habit.
        hits.retain(|h| {
            let tense = matches!(self.patterns[h.pattern].1, Pattern::Future | Pattern::Habitual);
            !tense || h.regex || text[h.start..h.end].chars().nth(1).is_some() || aligned(h)
        });
        let figurative: Vec<&Hit> = hits.iter().filter(|h| self.patterns[h.pattern].1 == Pattern::Figurative).collect();
        let char_at = char_index(text);
        let mut report = CueReport::default();

        for h in &hits {
            let Pattern::Cue(label, kind) = self.patterns[h.pattern].1 else { continue };
            // Word boundaries: 刀 inside 捞刀河 (a river) or 杀 inside 杀毒 is no cue.
            // Topic and escalation cues name matters, not acts: no boundary check
            // (工资 inside 拖欠工资 still names wages).
            let checked = matches!(kind, CueKind::Threat | CueKind::Mention) || kind.is_specific();
            let inside_word = checked && !h.regex && !aligned(h);
            let ev = Evidence {
                label,
                kind,
                cue: text[h.start..h.end].to_string(),
                start: char_at(h.start),
                end: char_at(h.end),
            };
            if inside_word {
                if matches!(kind, CueKind::Threat | CueKind::Mention) {
                    report.suppressed.push((ev, Suppression::InsideWord));
                }
                continue;
            }
            match self.suppression(text, h, label, kind, &figurative, &hits) {
                Some(why) => report.suppressed.push((ev, why)),
                None => report.evidence.push(ev),
            }
        }
        report.evidence = dedupe(report.evidence);
        report
    }

    fn suppression(
        &self,
        text: &str,
        h: &Hit,
        label: Option<Label>,
        kind: CueKind,
        figurative: &[&Hit],
        hits: &[Hit],
    ) -> Option<Suppression> {
        if kind == CueKind::Topic {
            return None;
        }
        if figurative.iter().any(|f| f.start <= h.start && h.end <= f.end && (f.start, f.end) != (h.start, h.end)) {
            return Some(Suppression::Figurative);
        }
        if !matches!(kind, CueKind::Threat | CueKind::Mention) {
            return None;
        }
        // A regex hit may run past the clause or sentence that holds its start.
        let (c0, c1) = span_of(text, h.start, CLAUSE_END);
        let (s0, s1) = span_of(text, h.start, SENTENCE_END);
        let (c1, s1) = (c1.max(h.end), s1.max(h.end));
        let in_range = |p: Pattern, a: usize, b: usize| {
            hits.iter().filter(move |x| self.patterns[x.pattern].1 == p && x.start >= a && x.end <= b)
        };
        // Negation: a negator shortly before the cue in the same clause, with no
        // consequence marker in between ("再不给钱我就跳楼" is still a threat).
        for n in in_range(Pattern::Negator, c0, h.start) {
            // 别 in 别怪我 / 别逼我 warns; it does not negate the act that follows
            // ("到时候别怪我把机器拆了" is a threat, labels.md).
            let in_warning = hits.iter().any(|v| {
                matches!(self.patterns[v.pattern].1, Pattern::Cue(_, CueKind::VagueWarning))
                    && v.start <= n.start
                    && n.end <= v.end
            });
            if in_warning {
                continue;
            }
            if governs(text, n.end, h.start, 4) {
                return Some(Suppression::Negated);
            }
        }
        if in_range(Pattern::Media, s0, s1).next().is_some() {
            return Some(Suppression::Media);
        }
        // A finished past event: past time in the sentence, the cue completed
        // (了/过 right after), and nothing habitual or forward-looking in its clause.
        let completed = text[h.end..c1].chars().take(3).any(|c| c == '了' || c == '过');
        let settled =
            in_range(Pattern::Habitual, c0, c1).next().is_none() && in_range(Pattern::Future, c0, c1).next().is_none();
        // The victim's side (labels.md: a past, finished assault reported only to
        // ask for compensation is not violence): 被, 遭到 or 把我 shortly before
        // a completed act of violence (被人打伤了, 订单被砍了一半, 把我家玻璃砸了),
        // or 被 / a fear word before revenge (怕被他们报复: the writer fears
        // reprisal and threatens none). Habitual violence (经常被他打伤) and
        // collective cues (办公室被二十多个人围了: people are gathering) still fire.
        let near = |p: Pattern| {
            // 被 in 被申请人 (the respondent), 被告 or 被子 is no passive.
            in_range(p, c0, h.start)
                .filter(|n| !(p == Pattern::Passive && NOT_PASSIVE.iter().any(|w| text[n.end..].starts_with(w))))
                .any(|n| governs(text, n.end, h.start, 6))
        };
        let finished = completed || ["了", "伤", "死", "残", "断"].iter().any(|e| text[h.start..h.end].ends_with(e));
        match label {
            Some(Label::Retaliation) if near(Pattern::Passive) || near(Pattern::Fear) => {
                return Some(Suppression::Victim)
            }
            // 把我家窗户玻璃砸了: the writer's own side took the blow.
            Some(Label::Violence)
                if (near(Pattern::Passive) || text[h.start..].starts_with("把我")) && finished && settled =>
            {
                return Some(Suppression::Victim)
            }
            _ => {}
        }
        // A violence cue that is itself the completed act (砍了, 砸了, 打伤)
        // counts as completed too: "前天…叫人来砍了二十多根" is a past event.
        // Not for self-harm wishes that end in 了 (不如死了算了).
        let done = completed || (label == Some(Label::Violence) && finished);
        // 曾 right before the cue says both, past and done ("发病时曾持刀砍伤其父");
        // only right before, and not as a surname (曾某扬言…, 老曾持刀…).
        let before = &text[c0..h.start];
        let once =
            before.ends_with("曾经") || (before.ends_with('曾') && !CENG_AS_NAME.iter().any(|n| before.ends_with(n)));
        if (once || (done && in_range(Pattern::Past, s0, s1).next().is_some())) && settled {
            return Some(Suppression::PastEvent);
        }
        None
    }

    /// Sorted byte offsets where jieba words start or end.
    fn word_boundaries(&self, text: &str) -> Vec<usize> {
        let mut out = Vec::with_capacity(text.len() / 2);
        let mut pos = 0;
        out.push(0);
        for w in self.jieba.cut(text, true) {
            pos += w.len();
            out.push(pos);
        }
        out
    }

    pub fn jieba(&self) -> &Jieba {
        &self.jieba
    }
}

const CLAUSE_END: &[char] = &['，', ',', '。', '！', '!', '？', '?', '；', ';', '\n', '…', '：', ':', ' ', '\u{3000}'];
const SENTENCE_END: &[char] = &['。', '！', '!', '？', '?', '\n'];
const NOT_PASSIVE: &[&str] =
    &["申请人", "告", "执行人", "子", "褥", "保险人", "监护人", "继承人", "扶养人", "赡养人", "征收人", "害人"];
/// 曾 as a surname right before a cue (老曾持刀…), not "once".
const CENG_AS_NAME: &[&str] = &["老曾", "小曾", "姓曾", "阿曾", "叫曾"];
const CONSEQUENCE: &[&str] = &["就", "便", "才", "的话", "我要", "我会"];

/// Whether a context word ending at `marker_end` bears on the cue starting at
/// `cue_start`: at most `max_chars` characters between them, and no
/// consequence marker among them ("不给钱我就跳楼": 就 starts a new act).
fn governs(text: &str, marker_end: usize, cue_start: usize, max_chars: usize) -> bool {
    let between = &text[marker_end..cue_start];
    between.chars().count() <= max_chars && !CONSEQUENCE.iter().any(|c| between.contains(c))
}

/// The byte range of the clause or sentence around `at`.
fn span_of(text: &str, at: usize, ends: &[char]) -> (usize, usize) {
    let start = text[..at].rfind(ends).map(|i| i + text[i..].chars().next().map_or(1, char::len_utf8)).unwrap_or(0);
    let end = text[at..].find(ends).map(|i| at + i).unwrap_or(text.len());
    (start, end)
}

fn char_index(text: &str) -> impl Fn(usize) -> usize + '_ {
    move |byte| text[..byte].chars().count()
}

/// Keeps the longest of overlapping spans of the same label and kind.
fn dedupe(mut ev: Vec<Evidence>) -> Vec<Evidence> {
    ev.sort_by_key(|e| (e.label, e.kind, e.start, std::cmp::Reverse(e.end)));
    let mut out: Vec<Evidence> = Vec::with_capacity(ev.len());
    for e in ev {
        if let Some(last) = out.last() {
            if last.label == e.label && last.kind == e.kind && e.start < last.end {
                continue;
            }
        }
        out.push(e);
    }
    out.sort_by_key(|e| (e.start, e.end));
    out
}
