//! Property tests of the library's text entry points: the cue lexicon and its
//! evidence offsets, the input contract and the chunking that decides what a
//! long text costs. Texts mix the lexicon's own words with any characters, so
//! that cues fire next to invisible, combining and surrogate-range-adjacent
//! characters. `PROPTEST_CASES` sets how many inputs each property gets.

use std::sync::OnceLock;

use proptest::prelude::*;
use triage_risk::judge::{chunks, validate, CHUNK_CHARS};
use triage_risk::{CueLexicon, TriageError, MAX_CHARS};

fn lexicon() -> &'static CueLexicon {
    static L: OnceLock<CueLexicon> = OnceLock::new();
    L.get_or_init(|| CueLexicon::builtin().unwrap())
}

/// Pieces of petitions (cue words among them) and awkward characters.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("汽油"),
            Just("同归于尽"),
            Just("跳楼"),
            Just("砍"),
            Just("明天上午"),
            Just("镇政府"),
            Just("拖欠工资"),
            Just("集体"),
            Just("不想活了"),
            Just("开玩笑"),
            Just("。"),
            Just("！"),
            Just("\n"),
            Just(" "),
            Just("\u{200b}"),
            Just("\u{feff}"),
            Just("\u{0}"),
            Just("e\u{301}"),
            Just("🔥"),
        ]
        .prop_map(String::from),
        any::<char>().prop_map(String::from),
        "[\\u4e00-\\u4fff]{1,8}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..60).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn evidence_points_at_the_text(t in text()) {
        let chars: Vec<char> = t.chars().collect();
        let r = lexicon().analyse(&t);
        for e in r.evidence.iter().chain(r.suppressed.iter().map(|(e, _)| e)) {
            prop_assert!(e.start < e.end && e.end <= chars.len(), "{e:?} in {} chars", chars.len());
            prop_assert_eq!(chars[e.start..e.end].iter().collect::<String>(), e.cue.clone());
        }
        // In text order.
        prop_assert!(r.evidence.windows(2).all(|w| w[0].start <= w[1].start), "{:?}", r.evidence);
    }

    #[test]
    fn the_input_contract_is_blank_or_too_long_or_accepted(t in text(), repeat in 1usize..120) {
        let t = t.repeat(repeat);
        let n = t.chars().count();
        let visible = t.chars().any(|c| !(c.is_whitespace() || c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}')));
        match validate(0, &t) {
            Ok(()) => prop_assert!(visible && n <= MAX_CHARS),
            Err(TriageError::EmptyText { .. }) => prop_assert!(!visible),
            Err(TriageError::TextTooLong { chars, .. }) => prop_assert!(visible && chars == n && n > MAX_CHARS),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn chunks_cover_the_text_within_the_limit(t in text(), max in 1usize..=CHUNK_CHARS) {
        let parts = chunks(&t, max);
        prop_assert!(!parts.is_empty());
        for p in &parts {
            prop_assert!(p.chars().count() <= max, "{} > {max}", p.chars().count());
        }
        // Nothing but whitespace-only pieces is dropped, and the order is kept.
        let kept: String = parts.concat();
        let visible = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        prop_assert_eq!(visible(&kept), visible(&t));
    }
}
