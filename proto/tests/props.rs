//! Property tests of the wire contract: dates and request bodies. Any input
//! gets an answer (a value or an error), never a panic; what parses reads back
//! the same. `PROPTEST_CASES` sets how many inputs each property gets.

use proptest::prelude::*;
use serde_json::{json, Value};
use triage_proto::time::Timestamp;
use triage_proto::{BatchRequest, CaseRequest, SearchRequest, TriageRequest};

/// JSON of any shape, a few levels deep, with strings that look like dates and texts.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
        prop_oneof![Just("2026-11-20"), Just("2026-11-20T09:30:00+08:00"), Just("好"), Just("violence"), Just("red")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("text"),
            Just("case_id"),
            Just("store"),
            Just("context"),
            Just("items"),
            Just("received_at"),
            Just("reporter"),
            Just("labels"),
            Just("level"),
            Just("filters"),
            Just("top_k"),
            Just("as_of"),
            Just("unknown"),
        ]
        .prop_map(String::from);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Parses `v` as `T`; when it parses, its JSON parses again to the same JSON.
fn reads_back<T: serde::Serialize + serde::de::DeserializeOwned>(v: &Value) {
    if let Ok(r) = serde_json::from_value::<T>(v.clone()) {
        let once = serde_json::to_value(&r).unwrap();
        let twice = serde_json::to_value(serde_json::from_value::<T>(once.clone()).unwrap()).unwrap();
        assert_eq!(once, twice);
    }
}

proptest! {
    #[test]
    fn any_string_parses_as_a_date_or_is_refused(s in any::<String>()) {
        let _ = s.parse::<Timestamp>();
    }

    #[test]
    fn date_like_strings_parse_or_are_refused(y in 0u32..10_000, m in 0u32..14, d in 0u32..33, h in 0u32..26, sep in prop_oneof![Just('-'), Just('/')]) {
        let forms = [
            (format!("{y}{sep}{m}{sep}{d}"), false),
            (format!("{y:04}{sep}{m:02}{sep}{d:02} {h}:00:00"), true),
            (format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00+08:00"), true),
        ];
        for (s, timed) in forms {
            if let Ok(t) = s.parse::<Timestamp>() {
                // What parses is a real calendar date, and prints as RFC 3339 that reads back the same.
                prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d) && (!timed || h < 24), "{s}");
                prop_assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
            }
        }
    }

    #[test]
    fn rfc3339_reads_back(secs in -50_000_000_000i64..200_000_000_000, offset in -23i32..24) {
        let tz = chrono::FixedOffset::east_opt(offset * 3600).unwrap();
        let t = Timestamp(chrono::DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&tz));
        let back: Timestamp = t.to_string().parse().unwrap();
        prop_assert_eq!(back, t);
        prop_assert_eq!(Timestamp::from_unix(t.unix()).unwrap().unix(), secs);
    }

    #[test]
    fn plain_dates_are_midnight_in_utc8(y in 1i32..9999, m in 1u32..13, d in 1u32..29) {
        let a: Timestamp = format!("{y:04}-{m:02}-{d:02}").parse().unwrap();
        let b: Timestamp = format!("{y:04}/{m}/{d}").parse().unwrap();
        let c: Timestamp = format!("{y:04}-{m:02}-{d:02}T00:00:00+08:00").parse().unwrap();
        prop_assert_eq!(a.unix(), c.unix());
        prop_assert_eq!(b.unix(), c.unix());
    }

    #[test]
    fn any_json_is_a_request_or_refused(v in any_json()) {
        reads_back::<TriageRequest>(&v);
        reads_back::<BatchRequest>(&v);
        reads_back::<CaseRequest>(&v);
        reads_back::<SearchRequest>(&v);
        // Wrapped as items, the batch reads each item as a triage request.
        reads_back::<BatchRequest>(&json!({"items": [v]}));
    }

    #[test]
    fn any_bytes_are_json_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<TriageRequest>(&bytes);
        let _ = serde_json::from_slice::<BatchRequest>(&bytes);
    }

    #[test]
    fn requests_with_their_fields_read_back(text in any::<String>(), id in proptest::option::of(any::<String>()), store in any::<bool>(), at in "[0-9]{4}-[0-9]{2}-[0-9]{2}") {
        let v = json!({"text": text, "case_id": id, "store": store, "context": {"received_at": at, "reporter": "r"}});
        let r: TriageRequest = serde_json::from_value(v).unwrap();
        prop_assert_eq!(&r.text, &text);
        prop_assert_eq!(&r.case_id, &id);
        prop_assert_eq!(r.store, store);
        reads_back::<TriageRequest>(&serde_json::to_value(&r).unwrap());
    }
}
