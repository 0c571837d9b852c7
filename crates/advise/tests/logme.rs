//! LogME against the published reference (thuml/LogME's numpy code, fixed-point form) on
//! small matrices: classification with more examples than features and with fewer,
//! uninformative features, and regression with two targets.

use nalgebra::DMatrix;
use serde_json::Value;
use thaw_advise::logme::{logme_classes, logme_targets};

fn matrix(rows: &Value) -> DMatrix<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(rows.clone()).unwrap();
    DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
}

#[test]
fn logme_matches_the_reference_implementation() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/logme.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut by_name = std::collections::BTreeMap::new();
    for case in fixture["cases"].as_array().unwrap() {
        let features = matrix(&case["features"]);
        let got = match case.get("labels") {
            Some(labels) => {
                let labels: Vec<usize> = serde_json::from_value(labels.clone()).unwrap();
                logme_classes(&features, &labels, case["classes"].as_u64().unwrap() as usize)
            }
            None => logme_targets(&features, &matrix(&case["targets"])),
        };
        let expected = case["logme"].as_f64().unwrap();
        let name = case["name"].as_str().unwrap().to_string();
        assert!((got - expected).abs() < 1e-9, "{name}: thaw {got}, reference {expected}");
        by_name.insert(name, got);
    }
    assert!(
        by_name["classes, 90 x 6"] > by_name["classes, 90 x 6, noise features"],
        "features that carry the labels have the higher evidence"
    );
}
