//! Property tests of case ids: what the routes accept, and the store point
//! each accepted id maps to. `PROPTEST_CASES` sets how many inputs each gets.

use proptest::prelude::*;

use super::service::check_case_id;

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9-]{1,40}",
        "[\\u4e00-\\u4fff]{1,80}",
        (any::<char>(), 150usize..260).prop_map(|(c, n)| c.to_string().repeat(n)),
        Just(" \t".to_string()),
        Just("case\u{0}1".to_string()),
    ]
}

/// Ids the contract accepts, filtered in the strategy (a local reject) so that
/// a long run (large `PROPTEST_CASES`) does not hit proptest's reject limits.
fn accepted_id() -> impl Strategy<Value = String> {
    id().prop_filter("refused by the contract", |id| check_case_id(id, None).is_ok())
}

proptest! {
    #[test]
    fn case_ids_are_accepted_by_the_contract(id in id()) {
        let ok = !id.trim().is_empty() && id.len() <= 200 && !id.chars().any(char::is_control);
        match check_case_id(&id, Some(3)) {
            Ok(()) => prop_assert!(ok, "{id:?} accepted"),
            Err(e) => {
                prop_assert!(!ok, "{id:?} refused");
                prop_assert!(e.message.starts_with("items[3]: "), "{}", e.message);
                // Messages never quote the request.
                prop_assert!(id.trim().len() < 3 || !e.message.contains(id.trim()), "{}", e.message);
            }
        }
    }

}

proptest! {
    // Most generated ids are refused; the filter's rejects must not end a long run.
    #![proptest_config(ProptestConfig { max_local_rejects: u32::MAX, ..ProptestConfig::default() })]

    #[test]
    fn accepted_ids_map_to_distinct_uuid_points(a in accepted_id(), b in accepted_id()) {
        let (pa, pb) = (triage_cases::point_uuid(&a), triage_cases::point_uuid(&b));
        prop_assert_eq!(pa == pb, a == b);
        let groups: Vec<usize> = pa.split('-').map(str::len).collect();
        prop_assert_eq!(groups, vec![8, 4, 4, 4, 12]);
        prop_assert!(pa.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        prop_assert_eq!(&pa[14..15], "8");
    }
}
