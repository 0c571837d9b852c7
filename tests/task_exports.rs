//! `thaw export` for the tasks beyond single-text classification, end to end on tiny real
//! sweeps: a word tagger becomes the family's `*ForTokenClassification` folder, a sentence-pair
//! regressor and a multi-label classifier the bare encoder with its head apart (and the
//! targets' scale or the threshold chosen on validation); each folder's test predictions reproduce
//! the scores the store holds, and a stored result the model cannot reproduce is refused.
//! (`scripts/check_export.py` has transformers itself load such folders and compare.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use serde_json::Value;
use thaw_metrics::correlation::spearman;
use thaw_metrics::entities::entity_scores;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tensor_shapes(path: &Path) -> BTreeMap<String, Vec<usize>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec())).collect()
}

fn argmax(row: &[Value]) -> usize {
    let values: Vec<f64> = row.iter().map(|v| v.as_f64().unwrap()).collect();
    (0..values.len()).max_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap()
}

/// Runs `file`'s sweep and exports its best job into `out`; returns the job key.
fn run_and_export(dir: &Path, file: &Path, out: &Path) -> String {
    assert!(thaw(dir, &["run", file.to_str().unwrap()]).status.success());
    let export =
        thaw(dir, &["export", file.to_str().unwrap(), "--best", "--out", out.to_str().unwrap()]);
    assert!(export.status.success());
    json(&out.join("config.json"))["thaw"]["job"].as_str().unwrap().to_string()
}

/// The store's result for `job` pushed off by `by`, then exported again: refused, nothing written.
fn tampered_export_is_refused(dir: &Path, file: &Path, db: &Path, job: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        let sql =
            format!("UPDATE results SET test_metric = test_metric + 0.2 WHERE job_key = '{job}'");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
    });
    let refused = dir.join("refused");
    let out = thaw(
        dir,
        &["export", file.to_str().unwrap(), "--job", job, "--out", refused.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("would not be the model"));
    assert!(!refused.exists());
}

#[test]
fn a_word_tagger_exports_as_a_token_classifier_whose_predictions_are_the_stored_scores() {
    let dir = tempfile::tempdir().unwrap();
    let data = "builtin = \"wnut_2016\"\ntask = \"tokens\"\nmax_length = 32\nmax_validation = 32\nmax_test = 40";
    let grid = "freeze = [6]\nseeds = [1]\ntrain_size = [96]\nlr = { head_only = [3e-3] }";
    let file = sweep_file_with_data(dir.path(), "tags", data, grid);
    let out = dir.path().join("tagger");
    let job = run_and_export(dir.path(), &file, &out);

    let config = json(&out.join("config.json"));
    assert_eq!(config["architectures"], serde_json::json!(["BertForTokenClassification"]));
    assert_eq!(config["thaw"]["task"], "tokens");
    let id2label = config["id2label"].as_object().unwrap();
    let tags = id2label.len();
    assert!(id2label.values().any(|t| t == "O") && tags > 10, "{id2label:?}");
    // One model.safetensors under the class's own names: the encoder under `bert.`, the
    // tagging head as `classifier.*`, nothing else.
    let shapes = tensor_shapes(&out.join("model.safetensors"));
    assert_eq!(shapes["classifier.weight"], vec![tags, 384]);
    assert_eq!(shapes.len(), 2 + 5 + 6 * 16);
    assert!(shapes.keys().all(|n| n.starts_with("bert.") || n.starts_with("classifier.")));
    assert!(!out.join("classifier.safetensors").exists());

    // Every test word's logits, and the entity F1 and token accuracy they give are the store's.
    let rows = lines(&out.join("test_predictions.jsonl"));
    assert_eq!(rows.len(), 40);
    let (mut truth, mut predicted) = (Vec::new(), Vec::new());
    for row in &rows {
        let words = row["tokens"].as_array().unwrap().len();
        let logits = row["logits"].as_array().unwrap();
        assert_eq!(logits.len(), words);
        truth.push(
            row["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
        predicted.push(
            logits
                .iter()
                .map(|l| match l.as_array() {
                    Some(l) => id2label[&argmax(l).to_string()].as_str().unwrap().to_string(),
                    None => "O".to_string(),
                })
                .collect::<Vec<_>>(),
        );
    }
    let scores = entity_scores(&truth, &predicted);
    let db = dir.path().join("results/tags.db");
    let stored = sqlite_rows(
        &db,
        &format!("SELECT test_metric, test_scores FROM results WHERE job_key = '{job}'"),
    );
    let stored_f1: f64 = stored[0][0].parse().unwrap();
    let stored_scores: Value = serde_json::from_str(&stored[0][1]).unwrap();
    assert!((scores.micro.f1 - stored_f1).abs() < 1e-9, "{} vs {stored_f1}", scores.micro.f1);
    let stored_accuracy = stored_scores["token_accuracy"].as_f64().unwrap();
    assert!((scores.token_accuracy - stored_accuracy).abs() < 1e-9, "{stored_scores}");
    assert!(
        std::fs::read_to_string(out.join("README.md"))
            .unwrap()
            .contains("AutoModelForTokenClassification")
    );

    tampered_export_is_refused(dir.path(), &file, &db, &job);
}

#[test]
fn a_pair_regressor_exports_its_encoder_and_head_with_the_targets_scale() {
    let dir = tempfile::tempdir().unwrap();
    let data = "builtin = \"sts_b\"\ntask = \"regression\"\ntext_pair_field = \"text_pair\"\nmax_length = 48\nmax_validation = 32\nmax_test = 40";
    let grid = "freeze = [6]\nseeds = [1]\ntrain_size = [96]\nlr = { head_only = [3e-3] }";
    let file = sweep_file_with_data(dir.path(), "scores", data, grid);
    let out = dir.path().join("regressor");
    let job = run_and_export(dir.path(), &file, &out);

    let config = json(&out.join("config.json"));
    assert_eq!(config["architectures"], serde_json::json!(["BertModel"]));
    assert_eq!(config["id2label"], serde_json::json!({"0": "score"}));
    let (mean, sd) = (
        config["thaw"]["target_mean"].as_f64().unwrap(),
        config["thaw"]["target_sd"].as_f64().unwrap(),
    );
    assert!((0.0..=5.0).contains(&mean) && sd > 0.5, "STS-B scores run 0-5: mean {mean}, sd {sd}");
    assert_eq!(
        tensor_shapes(&out.join("classifier.safetensors"))["classifier.weight"],
        vec![1, 384]
    );
    assert_eq!(tensor_shapes(&out.join("model.safetensors")).len(), 5 + 6 * 16);
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        card.contains(&format!("* {sd} + {mean}")),
        "the card maps outputs back to the target's units"
    );

    let rows = lines(&out.join("test_predictions.jsonl"));
    assert_eq!(rows.len(), 40);
    assert!(rows.iter().all(|r| r["text_pair"].is_string()));
    let truth: Vec<f64> = rows.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    let predicted: Vec<f64> = rows.iter().map(|r| r["prediction"].as_f64().unwrap()).collect();
    let db = dir.path().join("results/scores.db");
    let stored: f64 =
        sqlite_rows(&db, &format!("SELECT test_metric FROM results WHERE job_key = '{job}'"))[0][0]
            .parse()
            .unwrap();
    assert!((spearman(&predicted, &truth) - stored).abs() < 1e-9);

    tampered_export_is_refused(dir.path(), &file, &db, &job);
}

#[test]
fn a_multi_label_classifier_exports_its_head_and_the_threshold_validation_chose() {
    let dir = tempfile::tempdir().unwrap();
    let data = "builtin = \"cooking\"\ntask = \"multi_label\"\nmax_length = 48\nmax_validation = 64\nmax_test = 80";
    let grid = "freeze = [6]\nseeds = [1]\ntrain_size = [160]\nlr = { head_only = [1e-2] }";
    let file = sweep_file_with_data(dir.path(), "tags", data, grid);
    let out = dir.path().join("tagger");
    let job = run_and_export(dir.path(), &file, &out);

    let config = json(&out.join("config.json"));
    assert_eq!(config["architectures"], serde_json::json!(["BertModel"]));
    let labels = config["id2label"].as_object().unwrap().len();
    assert!((2..=20).contains(&labels), "the cooking set keeps 20 tags; train saw {labels}");
    assert_eq!(config["thaw"]["task"], "multi_label");
    let threshold = config["thaw"]["threshold"].as_f64().unwrap();
    assert!((0.05..=0.95).contains(&threshold), "{threshold}");
    assert_eq!(
        tensor_shapes(&out.join("classifier.safetensors"))["classifier.weight"],
        vec![labels, 384]
    );
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(card.contains(&format!("threshold={threshold}")), "the card decides at it");

    // thaw's logits decided at the stored threshold give the stored micro-F1.
    let rows = lines(&out.join("test_predictions.jsonl"));
    assert_eq!(rows.len(), 80);
    let names: Vec<String> =
        (0..labels).map(|i| config["id2label"][i.to_string()].as_str().unwrap().into()).collect();
    let (mut right, mut predicted, mut real) = (0.0, 0.0, 0.0);
    for row in &rows {
        let truth: Vec<&str> =
            row["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        let logits = row["logits"].as_array().unwrap();
        let yes: Vec<&str> = (0..labels)
            .filter(|&j| 1.0 / (1.0 + (-logits[j].as_f64().unwrap()).exp()) >= threshold)
            .map(|j| names[j].as_str())
            .collect();
        right += yes.iter().filter(|l| truth.contains(l)).count() as f64;
        predicted += yes.len() as f64;
        real += truth.len() as f64;
    }
    let db = dir.path().join("results/tags.db");
    let stored: f64 =
        sqlite_rows(&db, &format!("SELECT test_metric FROM results WHERE job_key = '{job}'"))[0][0]
            .parse()
            .unwrap();
    assert!((2.0 * right / (predicted + real) - stored).abs() < 1e-9, "stored {stored}");
    assert!(stored > 0.0, "each label's majority (no label) scores 0");

    tampered_export_is_refused(dir.path(), &file, &db, &job);
}
