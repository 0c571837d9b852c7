-- The device that produced a result, beside its backend: the CPU's model name for the CPU
-- backends, the adapter's name for a GPU ("NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6,
-- 256 bits)"). NULL in results stored before this column existed.
ALTER TABLE results ADD COLUMN device TEXT;

DROP VIEW job_results;
CREATE VIEW job_results AS
SELECT s.name AS sweep, m.ord, j.key AS job_key, j.init, j.intermediate, j.mlm_freeze, j.freeze,
       j.unfrozen_layers, j.num_layers, j.seed, j.lr, j.train_size, j.pooling, j.status, j.attempts, j.error,
       r.best_epoch, r.val_loss, r.val_accuracy, r.val_macro_f1, r.test_loss, r.test_accuracy, r.test_macro_f1,
       r.train_seconds, r.eval_seconds, r.prefix_seconds, r.examples_per_second, r.trainable_params,
       r.total_params, r.prefix_cache, r.backend, j.rung, r.val_correct, r.test_correct, r.device
FROM sweep_jobs m
JOIN sweeps s ON s.id = m.sweep_id
JOIN jobs j ON j.key = m.job_key
LEFT JOIN results r ON r.job_key = j.key;
