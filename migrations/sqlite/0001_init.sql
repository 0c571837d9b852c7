-- thaw's store. One file per sweep by default (results/<sweep>.db); open it with sqlite3.
-- Times are unix seconds (REAL); statuses are pending | running | done | failed.

CREATE TABLE sweeps (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    spec_path   TEXT NOT NULL,      -- the TOML file, as given to `thaw run`
    spec_toml   TEXT NOT NULL,      -- its text at the last run
    model       TEXT NOT NULL,      -- hub id@revision or local folder
    dataset     TEXT NOT NULL,      -- what the data section named
    setup_json  TEXT NOT NULL,      -- resolved setup for the report (sizes, grid, trainer settings)
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);

-- Shared intermediate masked-LM stages: one checkpoint serves every job that needs it.
CREATE TABLE stages (
    key                TEXT PRIMARY KEY,   -- hash of everything that changes the checkpoint
    name               TEXT NOT NULL,      -- [intermediate.NAME]
    init               TEXT NOT NULL,      -- pretrained | scratch
    mlm_freeze         INTEGER NOT NULL,
    spec_json          TEXT NOT NULL,      -- what the worker needs to run it
    status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    worker             TEXT,
    heartbeat_at       REAL,
    started_at         REAL,
    finished_at        REAL,
    error              TEXT,
    checkpoint_path    TEXT,
    loss_before        REAL,
    perplexity_before  REAL,
    loss_after         REAL,
    perplexity_after   REAL,
    train_docs         INTEGER,
    heldout_docs       INTEGER,
    trainable_params   INTEGER,
    train_seconds      REAL,
    backend            TEXT
);

CREATE TABLE jobs (
    key              TEXT PRIMARY KEY,   -- hash of everything that changes the result
    stage_key        TEXT REFERENCES stages(key),   -- NULL: no intermediate stage
    init             TEXT NOT NULL,      -- pretrained | scratch
    intermediate     TEXT NOT NULL,      -- none | task | a domain corpus name
    mlm_freeze       INTEGER,            -- freeze depth used by the intermediate stage, NULL if none
    freeze           INTEGER NOT NULL,   -- bottom layers frozen (embeddings included when > 0)
    num_layers       INTEGER NOT NULL,
    unfrozen_layers  INTEGER NOT NULL,   -- num_layers - freeze
    seed             INTEGER NOT NULL,
    lr               REAL NOT NULL,
    train_size       INTEGER,            -- NULL: all training examples
    pooling          TEXT NOT NULL,      -- cls | mean
    prefix_group     TEXT NOT NULL,      -- jobs with equal groups share frozen-prefix activations
    spec_json        TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    worker           TEXT,
    heartbeat_at     REAL,
    started_at       REAL,
    finished_at      REAL,
    error            TEXT
);

-- Which jobs the sweep's current plan holds, in plan order. Jobs dropped from the TOML
-- stay stored (nothing finished is lost) but leave the plan.
CREATE TABLE sweep_jobs (
    sweep_id  INTEGER NOT NULL REFERENCES sweeps(id),
    job_key   TEXT NOT NULL REFERENCES jobs(key),
    ord       INTEGER NOT NULL,
    PRIMARY KEY (sweep_id, job_key)
);

CREATE TABLE epochs (
    job_key       TEXT NOT NULL REFERENCES jobs(key),
    epoch         INTEGER NOT NULL,
    train_loss    REAL NOT NULL,
    val_loss      REAL NOT NULL,
    val_accuracy  REAL NOT NULL,
    val_macro_f1  REAL NOT NULL,
    seconds       REAL NOT NULL,
    PRIMARY KEY (job_key, epoch)
);

-- Written in the same transaction that marks the job done: a row here is a finished result.
CREATE TABLE results (
    job_key              TEXT PRIMARY KEY REFERENCES jobs(key),
    best_epoch           INTEGER NOT NULL,
    val_loss             REAL NOT NULL,
    val_accuracy         REAL NOT NULL,
    val_macro_f1         REAL NOT NULL,
    test_loss            REAL NOT NULL,
    test_accuracy        REAL NOT NULL,
    test_macro_f1        REAL NOT NULL,
    train_seconds        REAL NOT NULL,
    eval_seconds         REAL NOT NULL,
    prefix_seconds       REAL NOT NULL,
    load_seconds         REAL NOT NULL,
    examples_per_second  REAL NOT NULL,
    trainable_params     INTEGER NOT NULL,
    total_params         INTEGER NOT NULL,
    prefix_cache         TEXT NOT NULL,   -- none | computed | reused | recomputed
    backend              TEXT NOT NULL,
    worker               TEXT NOT NULL,
    finished_at          REAL NOT NULL
);

CREATE INDEX jobs_status ON jobs(status);
CREATE INDEX jobs_stage ON jobs(stage_key);

-- One row per job of each sweep's plan, with its result when there is one: the table to query.
CREATE VIEW job_results AS
SELECT s.name AS sweep, m.ord, j.key AS job_key, j.init, j.intermediate, j.mlm_freeze, j.freeze,
       j.unfrozen_layers, j.num_layers, j.seed, j.lr, j.train_size, j.pooling, j.status, j.attempts, j.error,
       r.best_epoch, r.val_loss, r.val_accuracy, r.val_macro_f1, r.test_loss, r.test_accuracy, r.test_macro_f1,
       r.train_seconds, r.eval_seconds, r.prefix_seconds, r.examples_per_second, r.trainable_params,
       r.total_params, r.prefix_cache, r.backend
FROM sweep_jobs m
JOIN sweeps s ON s.id = m.sweep_id
JOIN jobs j ON j.key = m.job_key
LEFT JOIN results r ON r.job_key = j.key;
