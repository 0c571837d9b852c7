-- Adaptive search ([search] in the sweep file).
--
-- A rung job is a job cut short after `rung` epochs, on the full job's learning-rate
-- schedule: successive halving ranks learning rates on it. It has epochs rows (its
-- validation numbers) and no results row; NULL for a job trained to the end.
ALTER TABLE jobs ADD COLUMN rung BIGINT;

-- Every choice the search made, with its reason: learning rates promoted or pruned at the
-- rung, seeds added to a cell while racing, and why the search stopped.
CREATE TABLE search_decisions (
    sweep_id    BIGINT NOT NULL REFERENCES sweeps(id),
    decision    TEXT NOT NULL,     -- what was decided, as an identity: made again on a re-run, it is stored once
    round       BIGINT NOT NULL,  -- 1 for the first decisions of the sweep, then one more per pause for results
    action      TEXT NOT NULL CHECK (action IN ('promote', 'prune', 'add_seed', 'stop')),
    cell        TEXT NOT NULL,     -- the cell as JSON (init, intermediate, mlm_freeze, pooling, freeze, train_size); '' for the search
    lr          DOUBLE PRECISION,
    seed        BIGINT,
    reason      TEXT NOT NULL,
    decided_at  DOUBLE PRECISION NOT NULL,
    seq         BIGSERIAL,         -- insertion order (SQLite's rowid)
    PRIMARY KEY (sweep_id, decision)
);

DROP VIEW job_results;
CREATE VIEW job_results AS
SELECT s.name AS sweep, m.ord, j.key AS job_key, j.init, j.intermediate, j.mlm_freeze, j."freeze",
       j.unfrozen_layers, j.num_layers, j.seed, j.lr, j.train_size, j.pooling, j.status, j.attempts, j.error,
       r.best_epoch, r.val_loss, r.val_accuracy, r.val_macro_f1, r.test_loss, r.test_accuracy, r.test_macro_f1,
       r.train_seconds, r.eval_seconds, r.prefix_seconds, r.examples_per_second, r.trainable_params,
       r.total_params, r.prefix_cache, r.backend, j.rung
FROM sweep_jobs m
JOIN sweeps s ON s.id = m.sweep_id
JOIN jobs j ON j.key = m.job_key
LEFT JOIN results r ON r.job_key = j.key;
