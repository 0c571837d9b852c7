//! The regularized H-score and its Ledoit–Wolf shrinkage against scikit-learn and numpy
//! (`scripts/make_advise_fixtures.py`): well-separated classes, overlapping ones, and more
//! features than examples.

use nalgebra::DMatrix;
use serde_json::Value;
use thaw_advise::hscore::{ledoit_wolf, regularized_h_score};

#[test]
fn the_regularized_h_score_matches_scikit_learn_and_numpy() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hscore.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut scores = Vec::new();
    for case in fixture["cases"].as_array().unwrap() {
        let rows: Vec<Vec<f64>> = serde_json::from_value(case["features"].clone()).unwrap();
        let features = DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j]);
        let labels: Vec<usize> = serde_json::from_value(case["labels"].clone()).unwrap();
        let classes = case["classes"].as_u64().unwrap() as usize;
        let name = case["name"].as_str().unwrap();

        let mut centred = features.clone();
        for mut column in centred.column_iter_mut() {
            let mean = column.mean();
            column.add_scalar_mut(-mean);
        }
        let (shrinkage, covariance) = ledoit_wolf(&centred);
        let expected = case["shrinkage"].as_f64().unwrap();
        assert!(
            (shrinkage - expected).abs() < 1e-10,
            "{name}: shrinkage {shrinkage} vs {expected}"
        );
        let expected = case["covariance_0_0"].as_f64().unwrap();
        assert!((covariance[(0, 0)] - expected).abs() < 1e-9 * expected.abs().max(1.0), "{name}");

        let got = regularized_h_score(&features, &labels, classes);
        let expected = case["h_score"].as_f64().unwrap();
        assert!(
            (got - expected).abs() < 1e-8 * expected.abs().max(1.0),
            "{name}: {got} vs {expected}"
        );
        scores.push(got);
    }
    assert!(scores[0] > scores[1], "separated classes score above overlapping ones");
}
