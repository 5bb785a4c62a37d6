use super::*;

const BARS: Thresholds = Thresholds { labels: [0.5, 0.5, 0.4, 0.5, 0.5], level: [0.5, 0.5, 0.6] };

fn scores(labels: [f32; 5], level: [f32; 3]) -> Scores {
    Scores { labels, level }
}

#[test]
fn the_level_is_the_highest_cut_over_its_bar() {
    let d = decide(scores([0.0; 5], [0.9, 0.9, 0.7]), &BARS);
    assert_eq!(d.level, RiskLevel::Red);
    assert_eq!(decide(scores([0.0; 5], [0.9, 0.9, 0.5]), &BARS).level, RiskLevel::Orange);
    assert_eq!(decide(scores([0.0; 5], [0.9, 0.2, 0.1]), &BARS).level, RiskLevel::Yellow);
    assert_eq!(decide(scores([0.0; 5], [0.1, 0.1, 0.1]), &BARS).level, RiskLevel::Blue);
}

#[test]
fn threat_labels_are_named_only_on_a_threat() {
    // Violence head over its bar, but the level head sees no threat: no label.
    let d = decide(scores([0.9, 0.0, 0.0, 0.0, 0.8], [0.9, 0.1, 0.0]), &BARS);
    assert_eq!(d.level, RiskLevel::Yellow);
    assert_eq!(d.flagged, [false, false, false, false, true]);
    assert_eq!(d.forced_label, None);
}

#[test]
fn a_threat_with_no_label_over_its_bar_names_the_closest() {
    // self_harm at 0.3 of a 0.4 bar (0.75) beats violence at 0.35 of 0.5 (0.7).
    let d = decide(scores([0.35, 0.1, 0.3, 0.1, 0.0], [0.9, 0.8, 0.1]), &BARS);
    assert_eq!(d.level, RiskLevel::Orange);
    assert_eq!(d.forced_label, Some(Label::SelfHarm));
    assert_eq!(d.flagged, [false, false, true, false, false]);
}

fn model_json(outputs: &[&str], dim: usize) -> String {
    let row: Vec<f32> = (0..dim).map(|i| i as f32 / dim as f32).collect();
    serde_json::json!({
        "version": "test", "date": "2026-12-07", "embedding_dim": dim, "delta_sha256": sha256_hex(b"delta"),
        "outputs": outputs, "weights": vec![row; outputs.len()], "bias": vec![0.0; outputs.len()],
        "thresholds": {"labels": [0.5, 0.5, 0.5, 0.5, 0.5], "level": [0.5, 0.5, 0.5]},
    })
    .to_string()
}

#[test]
fn a_model_file_of_another_feature_contract_is_refused() {
    assert!(RiskModel::from_json(&model_json(&OUTPUTS, 4)).is_ok());
    let mut other = OUTPUTS.to_vec();
    other.swap(0, 1);
    let err = RiskModel::from_json(&model_json(&other, 4)).unwrap_err();
    assert!(matches!(err, ModelError::Outputs { .. }), "{err}");
    assert!(err.to_string().contains("this build reads"), "{err}");
    let err = RiskModel::from_json(&model_json(&OUTPUTS[..7], 4)).unwrap_err();
    assert!(matches!(err, ModelError::Outputs { .. }), "{err}");
    let mut bad_shape: serde_json::Value = serde_json::from_str(&model_json(&OUTPUTS, 4)).unwrap();
    bad_shape["embedding_dim"] = 5.into();
    let err = RiskModel::from_json(&bad_shape.to_string()).unwrap_err();
    assert!(matches!(err, ModelError::Shape(_)), "{err}");
}

#[test]
fn a_delta_other_than_the_trained_one_is_refused() {
    let m = RiskModel::from_json(&model_json(&OUTPUTS, 4)).unwrap();
    assert!(m.check_delta(b"delta").is_ok());
    assert!(matches!(m.check_delta(b"delta2"), Err(ModelError::DeltaMismatch { .. })));
}

#[test]
fn scores_take_each_heads_maximum_over_chunks() {
    let mut m = RiskModel::from_json(&model_json(&OUTPUTS, 2)).unwrap();
    m.weights = (0..8).map(|k| if k % 2 == 0 { vec![4.0, 0.0] } else { vec![0.0, 4.0] }).collect();
    let s = m.scores([&[1.0f32, 0.0][..], &[0.0, 1.0][..]]);
    let hi = sigmoid(4.0);
    assert!(s.labels.iter().chain(&s.level).all(|&p| (p - hi).abs() < 1e-6), "{s:?}");
    let one = m.scores([&[1.0f32, 0.0][..]]);
    assert!((one.labels[1] - 0.5).abs() < 1e-6);
}

#[test]
fn the_shipped_model_matches_its_shipped_delta() {
    let m = RiskModel::builtin().expect("the shipped model parses");
    m.check_delta(BUILTIN_DELTA).expect("the shipped delta is the one the heads were trained on");
}
