-- Tasks beyond single-label classification (regression, word tagging): every result and
-- epoch carries the sweep's metric (its name in results.metric, its value in val_metric /
-- test_metric), every score the task reports (val_scores / test_scores, a TaskScores in
-- JSON) and each example's prediction (val_predictions / test_predictions, for intervals
-- resampled over examples). Accuracy and macro-F1 stay, NULL for tasks that have none,
-- which in SQLite means rebuilding the two tables. Earlier rows were classification judged
-- on accuracy.
DROP VIEW job_results;

CREATE TABLE results_new (
    job_key              TEXT PRIMARY KEY REFERENCES jobs(key),
    best_epoch           INTEGER NOT NULL,
    val_loss             REAL NOT NULL,
    val_accuracy         REAL,
    val_macro_f1         REAL,
    test_loss            REAL NOT NULL,
    test_accuracy        REAL,
    test_macro_f1        REAL,
    train_seconds        REAL NOT NULL,
    eval_seconds         REAL NOT NULL,
    prefix_seconds       REAL NOT NULL,
    load_seconds         REAL NOT NULL,
    examples_per_second  REAL NOT NULL,
    trainable_params     INTEGER NOT NULL,
    total_params         INTEGER NOT NULL,
    prefix_cache         TEXT NOT NULL,
    backend              TEXT NOT NULL,
    worker               TEXT NOT NULL,
    finished_at          REAL NOT NULL,
    val_correct          TEXT,
    test_correct         TEXT,
    device               TEXT,
    metric               TEXT NOT NULL DEFAULT 'accuracy',
    val_metric           REAL NOT NULL,
    test_metric          REAL NOT NULL,
    val_scores           TEXT,
    test_scores          TEXT,
    val_predictions      TEXT,
    test_predictions     TEXT
);
INSERT INTO results_new (job_key, best_epoch, val_loss, val_accuracy, val_macro_f1, test_loss,
    test_accuracy, test_macro_f1, train_seconds, eval_seconds, prefix_seconds, load_seconds,
    examples_per_second, trainable_params, total_params, prefix_cache, backend, worker, finished_at,
    val_correct, test_correct, device, metric, val_metric, test_metric)
SELECT job_key, best_epoch, val_loss, val_accuracy, val_macro_f1, test_loss,
    test_accuracy, test_macro_f1, train_seconds, eval_seconds, prefix_seconds, load_seconds,
    examples_per_second, trainable_params, total_params, prefix_cache, backend, worker, finished_at,
    val_correct, test_correct, device, 'accuracy', val_accuracy, test_accuracy
FROM results;
DROP TABLE results;
ALTER TABLE results_new RENAME TO results;

CREATE TABLE epochs_new (
    job_key       TEXT NOT NULL REFERENCES jobs(key),
    epoch         INTEGER NOT NULL,
    train_loss    REAL NOT NULL,
    val_loss      REAL NOT NULL,
    val_accuracy  REAL,
    val_macro_f1  REAL,
    seconds       REAL NOT NULL,
    val_metric    REAL NOT NULL,
    PRIMARY KEY (job_key, epoch)
);
INSERT INTO epochs_new (job_key, epoch, train_loss, val_loss, val_accuracy, val_macro_f1, seconds, val_metric)
SELECT job_key, epoch, train_loss, val_loss, val_accuracy, val_macro_f1, seconds, val_accuracy FROM epochs;
DROP TABLE epochs;
ALTER TABLE epochs_new RENAME TO epochs;

CREATE VIEW job_results AS
SELECT s.name AS sweep, m.ord, j.key AS job_key, j.init, j.intermediate, j.mlm_freeze, j.freeze,
       j.unfrozen_layers, j.num_layers, j.seed, j.lr, j.train_size, j.pooling, j.status, j.attempts, j.error,
       r.best_epoch, r.val_loss, r.val_accuracy, r.val_macro_f1, r.test_loss, r.test_accuracy, r.test_macro_f1,
       r.train_seconds, r.eval_seconds, r.prefix_seconds, r.examples_per_second, r.trainable_params,
       r.total_params, r.prefix_cache, r.backend, j.rung, r.val_correct, r.test_correct, r.device, j.strategy,
       r.metric, r.val_metric, r.test_metric, r.val_scores, r.test_scores, r.val_predictions, r.test_predictions
FROM sweep_jobs m
JOIN sweeps s ON s.id = m.sweep_id
JOIN jobs j ON j.key = m.job_key
LEFT JOIN results r ON r.job_key = j.key;
