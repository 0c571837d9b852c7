//! thaw-metrics against the reference implementations, on cases they computed
//! (`scripts/make_metric_fixtures.py`: scikit-learn, seqeval 1.2.2's default mode, scipy).
//! Tolerance 1e-12: the same formulas in double precision.

use serde_json::Value;
use thaw_metrics::{classification, correlation, entities, multi_label};

const TOLERANCE: f64 = 1e-12;

fn fixtures() -> Value {
    let text = include_str!("fixtures/reference.json");
    serde_json::from_str(text).unwrap()
}

/// The cases of one kind; a fixture without them would make its test pass vacuously.
fn cases(kind: &str) -> Vec<Value> {
    let cases = fixtures()[kind].as_array().cloned().unwrap_or_default();
    assert!(cases.len() >= 2, "the fixture has {} {kind} cases", cases.len());
    cases
}

fn close(what: &str, ours: f64, theirs: &Value) {
    let theirs = theirs.as_f64().unwrap_or_else(|| panic!("{what}: no reference value"));
    assert!((ours - theirs).abs() <= TOLERANCE, "{what}: thaw {ours}, reference {theirs}");
}

fn list<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn accuracy_and_macro_f1_match_scikit_learn() {
    for (i, case) in cases("classification").iter().enumerate() {
        let (truth, predicted): (Vec<usize>, Vec<usize>) =
            (list(&case["truth"]), list(&case["predicted"]));
        let k = case["num_labels"].as_u64().unwrap() as usize;
        let (accuracy, macro_f1) = classification::accuracy_and_macro_f1(&predicted, &truth, k);
        close(&format!("case {i} accuracy"), accuracy, &case["accuracy"]);
        close(&format!("case {i} macro-F1"), macro_f1, &case["macro_f1"]);
    }
}

#[test]
fn entities_and_their_scores_match_seqeval() {
    for (i, case) in cases("entities").iter().enumerate() {
        let (truth, predicted): (Vec<Vec<String>>, Vec<Vec<String>>) =
            (list(&case["truth"]), list(&case["predicted"]));
        let ours: Vec<(String, usize, usize)> =
            entities::entities(&truth).into_iter().map(|e| (e.kind, e.start, e.end)).collect();
        let theirs: Vec<(String, usize, usize)> = list(&case["entities"]);
        assert_eq!(ours, theirs, "case {i}: entities");
        let s = entities::entity_scores(&truth, &predicted);
        close(&format!("case {i} precision"), s.micro.precision, &case["precision"]);
        close(&format!("case {i} recall"), s.micro.recall, &case["recall"]);
        close(&format!("case {i} F1"), s.micro.f1, &case["f1"]);
        close(&format!("case {i} token accuracy"), s.token_accuracy, &case["token_accuracy"]);
        let by_type = case["by_type"].as_object().unwrap();
        assert_eq!(s.by_type.len(), by_type.len(), "case {i}: types {:?}", s.by_type);
        for (kind, scores) in &s.by_type {
            let reference = &by_type[kind];
            close(&format!("case {i} {kind} precision"), scores.precision, &reference["precision"]);
            close(&format!("case {i} {kind} recall"), scores.recall, &reference["recall"]);
            close(&format!("case {i} {kind} F1"), scores.f1, &reference["f1"]);
            assert_eq!(scores.support as u64, reference["support"].as_u64().unwrap());
        }
    }
}

#[test]
fn pearson_spearman_and_rmse_match_scipy() {
    for (i, case) in cases("correlation").iter().enumerate() {
        let (truth, predicted): (Vec<f64>, Vec<f64>) =
            (list(&case["truth"]), list(&case["predicted"]));
        close(
            &format!("case {i} Pearson"),
            correlation::pearson(&predicted, &truth),
            &case["pearson"],
        );
        close(
            &format!("case {i} Spearman"),
            correlation::spearman(&predicted, &truth),
            &case["spearman"],
        );
        close(&format!("case {i} RMSE"), correlation::rmse(&predicted, &truth), &case["rmse"]);
    }
}

#[test]
fn multi_label_f1_matches_scikit_learn() {
    for (i, case) in cases("multi_label").iter().enumerate() {
        let (truth, predicted): (Vec<Vec<bool>>, Vec<Vec<bool>>) =
            (list(&case["truth"]), list(&case["predicted"]));
        let (micro, macro_f1) = multi_label::micro_and_macro_f1(&predicted, &truth);
        close(&format!("case {i} micro-F1"), micro, &case["micro_f1"]);
        close(&format!("case {i} macro-F1"), macro_f1, &case["macro_f1"]);
    }
}
