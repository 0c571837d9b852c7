//! Job rows for tests, here and in the crates that read cells (the report's tables).

use thaw_store::{Init, JobResultRow, WorkStatus};

/// A job row with the given outcome; test metrics are set far from validation on purpose
/// so a selection that peeked at them would pick differently.
pub fn row(
    freeze: i64,
    lr: f64,
    seed: i64,
    status: WorkStatus,
    val: Option<(f64, f64, f64)>,
    test_acc: f64,
) -> JobResultRow {
    JobResultRow {
        sweep: "s".into(),
        ord: 0,
        job_key: format!("f{freeze}-lr{lr}-s{seed}"),
        init: Init::Pretrained,
        intermediate: "none".into(),
        mlm_freeze: None,
        freeze,
        unfrozen_layers: 4 - freeze,
        num_layers: 4,
        seed,
        lr,
        train_size: None,
        pooling: "cls".into(),
        status,
        attempts: 1,
        error: None,
        best_epoch: val.map(|_| 1),
        val_loss: val.map(|v| v.2),
        val_accuracy: val.map(|v| v.0),
        val_macro_f1: val.map(|v| v.1),
        test_loss: val.map(|_| 0.5),
        test_accuracy: val.map(|_| test_acc),
        test_macro_f1: val.map(|_| test_acc - 0.01),
        train_seconds: val.map(|_| 10.0 + seed as f64),
        eval_seconds: val.map(|_| 1.0),
        prefix_seconds: val.map(|_| 0.0),
        examples_per_second: val.map(|_| 100.0),
        trainable_params: val.map(|_| 1000),
        total_params: val.map(|_| 2000),
        prefix_cache: val.map(|_| "none".into()),
        backend: val.map(|_| "ndarray".into()),
        prefix_group: format!("g-f{freeze}"),
        val_correct: None,
        test_correct: None,
        device: None,
        strategy: "plain".into(),
        metric: val.map(|_| "accuracy".into()),
        val_metric: val.map(|v| v.0),
        test_metric: val.map(|_| test_acc),
        val_scores: None,
        test_scores: None,
        val_per_example: None,
        test_per_example: None,
    }
}

pub fn done(freeze: i64, lr: f64, seed: i64, val_acc: f64, test_acc: f64) -> JobResultRow {
    row(freeze, lr, seed, WorkStatus::Done, Some((val_acc, 0.5, 0.4)), test_acc)
}
