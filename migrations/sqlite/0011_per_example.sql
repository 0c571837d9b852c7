-- What each example contributes to a result's metric (a thaw_metrics::PerExample in JSON,
-- per split): a one-seed result of a metric other than accuracy (entity F1, macro-F1,
-- Spearman) gets its interval, and two cells their paired difference, by resampling these.
-- NULL for results stored before thaw kept them.
DROP VIEW job_results;

ALTER TABLE results ADD COLUMN val_per_example TEXT;
ALTER TABLE results ADD COLUMN test_per_example TEXT;

CREATE VIEW job_results AS
SELECT s.name AS sweep, m.ord, j.key AS job_key, j.init, j.intermediate, j.mlm_freeze, j.freeze,
       j.unfrozen_layers, j.num_layers, j.seed, j.lr, j.train_size, j.pooling, j.status, j.attempts, j.error,
       r.best_epoch, r.val_loss, r.val_accuracy, r.val_macro_f1, r.test_loss, r.test_accuracy, r.test_macro_f1,
       r.train_seconds, r.eval_seconds, r.prefix_seconds, r.examples_per_second, r.trainable_params,
       r.total_params, r.prefix_cache, r.backend, j.rung, r.val_correct, r.test_correct, r.device, j.strategy,
       r.metric, r.val_metric, r.test_metric, r.val_scores, r.test_scores, r.val_predictions, r.test_predictions,
       r.val_per_example, r.test_per_example
FROM sweep_jobs m
JOIN sweeps s ON s.id = m.sweep_id
JOIN jobs j ON j.key = m.job_key
LEFT JOIN results r ON r.job_key = j.key;
