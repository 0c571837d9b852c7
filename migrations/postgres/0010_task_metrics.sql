-- Tasks beyond single-label classification (regression, word tagging): every result and
-- epoch carries the sweep's metric (its name in results.metric, its value in val_metric /
-- test_metric), every score the task reports (val_scores / test_scores, a TaskScores in
-- JSON) and each example's prediction (val_predictions / test_predictions, for intervals
-- resampled over examples). Accuracy and macro-F1 stay, NULL for tasks that have none.
-- Earlier rows were classification judged on accuracy.
DROP VIEW job_results;

ALTER TABLE results ALTER COLUMN val_accuracy DROP NOT NULL;
ALTER TABLE results ALTER COLUMN val_macro_f1 DROP NOT NULL;
ALTER TABLE results ALTER COLUMN test_accuracy DROP NOT NULL;
ALTER TABLE results ALTER COLUMN test_macro_f1 DROP NOT NULL;
ALTER TABLE results ADD COLUMN metric TEXT NOT NULL DEFAULT 'accuracy';
ALTER TABLE results ADD COLUMN val_metric DOUBLE PRECISION;
ALTER TABLE results ADD COLUMN test_metric DOUBLE PRECISION;
UPDATE results SET val_metric = val_accuracy, test_metric = test_accuracy;
ALTER TABLE results ALTER COLUMN val_metric SET NOT NULL;
ALTER TABLE results ALTER COLUMN test_metric SET NOT NULL;
ALTER TABLE results ADD COLUMN val_scores TEXT;
ALTER TABLE results ADD COLUMN test_scores TEXT;
ALTER TABLE results ADD COLUMN val_predictions TEXT;
ALTER TABLE results ADD COLUMN test_predictions TEXT;

ALTER TABLE epochs ALTER COLUMN val_accuracy DROP NOT NULL;
ALTER TABLE epochs ALTER COLUMN val_macro_f1 DROP NOT NULL;
ALTER TABLE epochs ADD COLUMN val_metric DOUBLE PRECISION;
UPDATE epochs SET val_metric = val_accuracy;
ALTER TABLE epochs ALTER COLUMN val_metric SET NOT NULL;

CREATE VIEW job_results AS
SELECT s.name AS sweep, m.ord, j.key AS job_key, j.init, j.intermediate, j.mlm_freeze, j."freeze",
       j.unfrozen_layers, j.num_layers, j.seed, j.lr, j.train_size, j.pooling, j.status, j.attempts, j.error,
       r.best_epoch, r.val_loss, r.val_accuracy, r.val_macro_f1, r.test_loss, r.test_accuracy, r.test_macro_f1,
       r.train_seconds, r.eval_seconds, r.prefix_seconds, r.examples_per_second, r.trainable_params,
       r.total_params, r.prefix_cache, r.backend, j.rung, r.val_correct, r.test_correct, r.device, j.strategy,
       r.metric, r.val_metric, r.test_metric, r.val_scores, r.test_scores, r.val_predictions, r.test_predictions
FROM sweep_jobs m
JOIN sweeps s ON s.id = m.sweep_id
JOIN jobs j ON j.key = m.job_key
LEFT JOIN results r ON r.job_key = j.key;
