//! thaw-store: the only code that speaks SQL.
//!
//! SQLite through sqlx, schema in `migrations/` (applied on open), WAL journal, a busy
//! timeout, short write transactions. Jobs and stages are claimed with one atomic
//! `UPDATE ... RETURNING`, so two workers never take the same one; running work
//! carries a heartbeat, and work whose worker died goes back to pending.

mod rows;

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

pub use rows::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("database {path}: cannot apply the schema in migrations/: {source}")]
    Migrate { path: String, source: sqlx::migrate::MigrateError },
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// SQL whose only dynamic part is a table name from [`WorkKind`], never user data.
fn sql_for(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Which kind of work a claim, heartbeat or release is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    Stage,
    Job,
}

impl WorkKind {
    fn table(self) -> &'static str {
        match self {
            WorkKind::Stage => "stages",
            WorkKind::Job => "jobs",
        }
    }
}

/// An exclusive lock on `<database>.lock`, held while the schema is brought up to date.
fn schema_lock(path: &Path) -> Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let failed = |e: std::io::Error| StoreError::Open {
        path: path.display().to_string(),
        source: sqlx::Error::Io(e),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(failed)?;
    file.lock().map_err(failed)?;
    Ok(file)
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        // Processes started together (a Slurm array, a shell loop) would each try to create or
        // upgrade the schema, and all but one fail: they take turns, on a lock file beside the
        // database (SQLite's own locks do not span sqlx's migration transactions).
        let schema_lock = schema_lock(path)?;
        let migrated = sqlx::migrate!("../../migrations").run(&pool).await;
        drop(schema_lock);
        migrated
            .map_err(|source| StoreError::Migrate { path: path.display().to_string(), source })?;
        Ok(Store { pool })
    }

    /// Records the sweep and its plan. Existing jobs and stages keep their state and
    /// results (their keys say they are the same work); new ones start pending. The
    /// plan membership is replaced, so the sweep reports exactly what the TOML asks for.
    pub async fn register_plan(
        &self,
        sweep: &NewSweep,
        stages: &[NewStage],
        jobs: &[NewJob],
    ) -> Result<PlanSummary> {
        let mut tx = self.pool.begin().await?;
        let t = now();
        let sweep_id: i64 = sqlx::query(
            "INSERT INTO sweeps (name, spec_path, spec_toml, model, dataset, setup_json, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET spec_path = excluded.spec_path, spec_toml = excluded.spec_toml,
                 model = excluded.model, dataset = excluded.dataset, setup_json = excluded.setup_json, updated_at = excluded.updated_at
             RETURNING id",
        )
        .bind(&sweep.name)
        .bind(&sweep.spec_path)
        .bind(&sweep.spec_toml)
        .bind(&sweep.model)
        .bind(&sweep.dataset)
        .bind(&sweep.setup_json)
        .bind(t)
        .bind(t)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        for s in stages {
            // A known key is the same work: keep its state, refresh how to run it (paths may have moved).
            sqlx::query(
                "INSERT INTO stages (key, name, init, mlm_freeze, spec_json, backend) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT(key) DO UPDATE SET spec_json = excluded.spec_json",
            )
            .bind(&s.key)
            .bind(&s.name)
            .bind(s.init)
            .bind(s.mlm_freeze)
            .bind(&s.spec_json)
            .bind(&s.backend)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM sweep_jobs WHERE sweep_id = ?")
            .bind(sweep_id)
            .execute(&mut *tx)
            .await?;
        let mut summary = PlanSummary { sweep_id, ..Default::default() };
        for (ord, j) in jobs.iter().enumerate() {
            let known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE key = ?)")
                    .bind(&j.key)
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query(
                "INSERT INTO jobs (key, stage_key, init, intermediate, mlm_freeze, freeze, num_layers, unfrozen_layers, seed, lr,
                                   train_size, pooling, prefix_group, spec_json, rung, backend, strategy)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(key) DO UPDATE SET spec_json = excluded.spec_json, prefix_group = excluded.prefix_group,
                     strategy = excluded.strategy",
            )
            .bind(&j.key)
            .bind(&j.stage_key)
            .bind(j.init)
            .bind(&j.intermediate)
            .bind(j.mlm_freeze)
            .bind(j.freeze)
            .bind(j.num_layers)
            .bind(j.num_layers - j.freeze)
            .bind(j.seed)
            .bind(j.lr)
            .bind(j.train_size)
            .bind(&j.pooling)
            .bind(&j.prefix_group)
            .bind(&j.spec_json)
            .bind(j.rung)
            .bind(&j.backend)
            .bind(&j.strategy)
            .execute(&mut *tx)
            .await?;
            if !known {
                summary.new_jobs += 1;
            }
            sqlx::query("INSERT INTO sweep_jobs (sweep_id, job_key, ord) VALUES (?, ?, ?)")
                .bind(sweep_id)
                .bind(&j.key)
                .bind(ord as i64)
                .execute(&mut *tx)
                .await?;
        }
        // Jobs added to a sweep whose stage already failed would wait forever: fail them with its reason.
        sqlx::query(
            "UPDATE jobs SET status = 'failed', finished_at = ?,
                 error = 'intermediate stage failed: ' || COALESCE((SELECT st.error FROM stages st WHERE st.key = jobs.stage_key), 'no reason recorded')
             WHERE status = 'pending' AND stage_key IN (SELECT key FROM stages WHERE status = 'failed')",
        )
        .bind(t)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        summary.total_jobs = jobs.len();
        Ok(summary)
    }

    /// Puts failed work of the plan back to pending (`thaw run --retry-failed`).
    pub async fn retry_failed(&self, sweep: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let stages = sqlx::query(
            "UPDATE stages SET status = 'pending', error = NULL, attempts = 0, worker = NULL
             WHERE status = 'failed' AND key IN (SELECT j.stage_key FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key
                                                 JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = ?)",
        )
        .bind(sweep)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let jobs = sqlx::query(
            "UPDATE jobs SET status = 'pending', error = NULL, attempts = 0, worker = NULL
             WHERE status = 'failed' AND key IN (SELECT m.job_key FROM sweep_jobs m JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = ?)",
        )
        .bind(sweep)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(stages + jobs)
    }

    /// Running work whose worker is gone goes back to pending: its heartbeat is older than
    /// `stale_after`, or `is_dead(worker)` says so (a local process that no longer exists).
    /// Work that has already been tried `max_attempts` times is failed instead.
    pub async fn requeue_abandoned(
        &self,
        stale_after: Duration,
        max_attempts: i64,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        let mut requeued = Vec::new();
        for kind in [WorkKind::Stage, WorkKind::Job] {
            let rows = sqlx::query(sql_for(format!(
                "SELECT key, worker, heartbeat_at, attempts FROM {} WHERE status = 'running'",
                kind.table()
            )))
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                let (key, worker, heartbeat, attempts): (String, Option<String>, Option<f64>, i64) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                let worker = worker.unwrap_or_default();
                let stale = heartbeat.is_none_or(|h| now() - h > stale_after.as_secs_f64());
                if !(stale || is_dead(&worker)) {
                    continue;
                }
                let gave_up = attempts >= max_attempts;
                let sql = if gave_up {
                    format!(
                        "UPDATE {} SET status = 'failed', worker = NULL, finished_at = ?,
                             error = 'abandoned ' || attempts || ' times (worker ' || ? || ' died or stopped answering); giving up'
                         WHERE key = ? AND status = 'running' AND worker IS ? AND heartbeat_at IS ?",
                        kind.table()
                    )
                } else {
                    format!(
                        "UPDATE {} SET status = 'pending', worker = NULL, heartbeat_at = NULL, finished_at = ?,
                             error = 'requeued: worker ' || ? || ' died or stopped answering'
                         WHERE key = ? AND status = 'running' AND worker IS ? AND heartbeat_at IS ?",
                        kind.table()
                    )
                };
                // The heartbeat read above is part of the condition: one that arrived meanwhile keeps the work.
                let mut tx = self.pool.begin().await?;
                let changed = sqlx::query(sql_for(sql))
                    .bind(now())
                    .bind(&worker)
                    .bind(&key)
                    .bind(row.get::<Option<String>, _>(1))
                    .bind(heartbeat)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed == 1 && gave_up && kind == WorkKind::Stage {
                    Self::fail_dependants(
                        &mut tx,
                        &key,
                        "its intermediate-MLM stage was abandoned repeatedly",
                    )
                    .await?;
                }
                tx.commit().await?;
                if changed == 1 {
                    requeued.push(key);
                }
            }
        }
        Ok(requeued)
    }

    /// Atomically takes the next pending stage of the sweep, planned for `backend`, that some
    /// pending job waits for.
    pub async fn claim_stage(
        &self,
        sweep: &str,
        worker: &str,
        backend: &str,
    ) -> Result<Option<Claimed>> {
        let t = now();
        let row = sqlx::query(
            "UPDATE stages SET status = 'running', worker = ?, attempts = attempts + 1, heartbeat_at = ?, started_at = ?, error = NULL
             WHERE key = (
                 SELECT st.key FROM stages st
                 JOIN jobs j ON j.stage_key = st.key
                 JOIN sweep_jobs m ON m.job_key = j.key
                 JOIN sweeps s ON s.id = m.sweep_id
                 WHERE s.name = ? AND st.status = 'pending' AND j.status = 'pending' AND st.backend = ?
                 ORDER BY m.ord LIMIT 1)
             AND status = 'pending'
             RETURNING key, spec_json",
        )
        .bind(worker)
        .bind(t)
        .bind(t)
        .bind(sweep)
        .bind(backend)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Claimed { kind: WorkKind::Stage, key: r.get(0), spec_json: r.get(1) }))
    }

    /// Atomically takes the next runnable job of the sweep planned for `backend` (its stage,
    /// if any, done), preferring jobs of `prefer_group` so a worker reuses the frozen prefix
    /// it holds.
    pub async fn claim_job(
        &self,
        sweep: &str,
        worker: &str,
        backend: &str,
        prefer_group: Option<&str>,
    ) -> Result<Option<Claimed>> {
        let t = now();
        let row = sqlx::query(
            "UPDATE jobs SET status = 'running', worker = ?, attempts = attempts + 1, heartbeat_at = ?, started_at = ?, error = NULL
             WHERE key = (
                 SELECT j.key FROM jobs j
                 JOIN sweep_jobs m ON m.job_key = j.key
                 JOIN sweeps s ON s.id = m.sweep_id
                 LEFT JOIN stages st ON st.key = j.stage_key
                 WHERE s.name = ? AND j.status = 'pending' AND (j.stage_key IS NULL OR st.status = 'done')
                   AND j.backend = ?
                 ORDER BY (j.prefix_group IS ?) DESC, m.ord LIMIT 1)
             AND status = 'pending'
             RETURNING key, spec_json",
        )
        .bind(worker)
        .bind(t)
        .bind(t)
        .bind(sweep)
        .bind(backend)
        .bind(prefer_group)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Claimed { kind: WorkKind::Job, key: r.get(0), spec_json: r.get(1) }))
    }

    /// How to run a job or stage (the JSON its worker reads), if the key is known.
    pub async fn spec_json(&self, kind: WorkKind, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(sql_for(format!(
            "SELECT spec_json FROM {} WHERE key = ?",
            kind.table()
        )))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The checkpoint a finished stage wrote.
    pub async fn stage_checkpoint(&self, stage_key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT checkpoint_path FROM stages WHERE key = ? AND status = 'done'",
        )
        .bind(stage_key)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// Sends a finished stage back to pending, its checkpoint forgotten: for a checkpoint this
    /// version of thaw cannot read (written in an older format). False when the stage was not done.
    pub async fn redo_stage(&self, stage_key: &str) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE stages SET status = 'pending', worker = NULL, heartbeat_at = NULL, attempts = 0, checkpoint_path = NULL, error = NULL
             WHERE key = ? AND status = 'done'",
        )
        .bind(stage_key)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Refreshes the heartbeat; false when the work is no longer this worker's (requeued meanwhile).
    pub async fn heartbeat(&self, kind: WorkKind, key: &str, worker: &str) -> Result<bool> {
        let changed = sqlx::query(sql_for(format!(
            "UPDATE {} SET heartbeat_at = ? WHERE key = ? AND worker = ? AND status = 'running'",
            kind.table()
        )))
        .bind(now())
        .bind(key)
        .bind(worker)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Gives work back unfinished (Ctrl-C): pending again, the attempt not counted.
    pub async fn release(&self, kind: WorkKind, key: &str, worker: &str) -> Result<()> {
        sqlx::query(sql_for(format!(
            "UPDATE {} SET status = 'pending', worker = NULL, heartbeat_at = NULL, attempts = MAX(attempts - 1, 0)
             WHERE key = ? AND worker = ? AND status = 'running'",
            kind.table()
        )))
        .bind(key)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Releases everything a worker holds (used by `thaw run` when its children stop).
    pub async fn release_worker(&self, worker: &str) -> Result<u64> {
        let mut n = 0;
        for kind in [WorkKind::Stage, WorkKind::Job] {
            n += sqlx::query(sql_for(format!(
                "UPDATE {} SET status = 'pending', worker = NULL, heartbeat_at = NULL, attempts = MAX(attempts - 1, 0)
                 WHERE worker = ? AND status = 'running'",
                kind.table()
            )))
            .bind(worker)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(n)
    }

    /// Marks held work done as its transaction's first statement. Writing first takes the write
    /// lock (waiting under the busy timeout) before anything is read: a transaction that reads
    /// first cannot upgrade once another worker has committed meanwhile, and the finished result
    /// would be lost. Work no longer held by `worker` (requeued after a missed heartbeat) is a conflict.
    async fn take_as_done(
        tx: &mut Transaction<'_, Sqlite>,
        kind: WorkKind,
        key: &str,
        worker: &str,
    ) -> Result<()> {
        let changed = sqlx::query(sql_for(format!(
            "UPDATE {} SET status = 'done', finished_at = ?, error = NULL WHERE key = ? AND worker = ? AND status = 'running'",
            kind.table()
        )))
        .bind(now())
        .bind(key)
        .bind(worker)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 1 {
            return Ok(());
        }
        let status: Option<String> = sqlx::query_scalar(sql_for(format!(
            "SELECT status FROM {} WHERE key = ?",
            kind.table()
        )))
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
        Err(StoreError::Conflict(format!(
            "{key} is no longer held by {worker} (status {status:?}); it was requeued after a missed heartbeat, so this result is discarded"
        )))
    }

    pub async fn finish_stage(
        &self,
        key: &str,
        worker: &str,
        done: &StageOutcomeRow,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        Self::take_as_done(&mut tx, WorkKind::Stage, key, worker).await?;
        sqlx::query(
            "UPDATE stages SET finished_at = ?, checkpoint_path = ?, loss_before = ?, perplexity_before = ?,
                 loss_after = ?, perplexity_after = ?, train_docs = ?, heldout_docs = ?, trainable_params = ?, train_seconds = ?, backend = ?,
                 head_warmup_steps = ?, heldout_chars_per_token = ?
             WHERE key = ?",
        )
        .bind(now())
        .bind(&done.checkpoint_path)
        .bind(done.loss_before)
        .bind(done.perplexity_before)
        .bind(done.loss_after)
        .bind(done.perplexity_after)
        .bind(done.train_docs)
        .bind(done.heldout_docs)
        .bind(done.trainable_params)
        .bind(done.train_seconds)
        .bind(&done.backend)
        .bind(done.head_warmup_steps)
        .bind(done.heldout_chars_per_token)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a stage failed and fails every pending job that waits on it, with the stage's
    /// reason, in one transaction; nothing happens when the stage is no longer this worker's.
    pub async fn fail_stage(&self, key: &str, worker: &str, error: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query("UPDATE stages SET status = 'failed', finished_at = ?, error = ? WHERE key = ? AND worker = ? AND status = 'running'")
            .bind(now())
            .bind(error)
            .bind(key)
            .bind(worker)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 1 {
            Self::fail_dependants(&mut tx, key, error).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn fail_dependants(
        tx: &mut Transaction<'_, Sqlite>,
        stage_key: &str,
        reason: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'failed', finished_at = ?, error = 'intermediate stage failed: ' || ? WHERE stage_key = ? AND status = 'pending'",
        )
        .bind(now())
        .bind(reason)
        .bind(stage_key)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Stores the epochs and the result and marks the job done, in one transaction.
    pub async fn finish_job(
        &self,
        key: &str,
        worker: &str,
        epochs: &[EpochRow],
        result: &ResultRow,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        Self::take_as_done(&mut tx, WorkKind::Job, key, worker).await?;
        Self::write_epochs(&mut tx, key, epochs).await?;
        let t = now();
        sqlx::query(
            "INSERT OR REPLACE INTO results (job_key, best_epoch, val_loss, val_accuracy, val_macro_f1, test_loss, test_accuracy,
                 test_macro_f1, train_seconds, eval_seconds, prefix_seconds, load_seconds, examples_per_second, trainable_params,
                 total_params, prefix_cache, backend, worker, finished_at, val_correct, test_correct, device)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(key)
        .bind(result.best_epoch)
        .bind(result.val_loss)
        .bind(result.val_accuracy)
        .bind(result.val_macro_f1)
        .bind(result.test_loss)
        .bind(result.test_accuracy)
        .bind(result.test_macro_f1)
        .bind(result.train_seconds)
        .bind(result.eval_seconds)
        .bind(result.prefix_seconds)
        .bind(result.load_seconds)
        .bind(result.examples_per_second)
        .bind(result.trainable_params)
        .bind(result.total_params)
        .bind(&result.prefix_cache)
        .bind(&result.backend)
        .bind(worker)
        .bind(t)
        .bind(&result.val_correct)
        .bind(&result.test_correct)
        .bind(&result.device)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A rung job's end: its epochs (the validation numbers halving ranks on) and done, in
    /// one transaction; a rung has no results row (it never reads the test split).
    pub async fn finish_rung(&self, key: &str, worker: &str, epochs: &[EpochRow]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        Self::take_as_done(&mut tx, WorkKind::Job, key, worker).await?;
        Self::write_epochs(&mut tx, key, epochs).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn write_epochs(
        tx: &mut Transaction<'_, Sqlite>,
        key: &str,
        epochs: &[EpochRow],
    ) -> Result<()> {
        sqlx::query("DELETE FROM epochs WHERE job_key = ?").bind(key).execute(&mut **tx).await?;
        for e in epochs {
            sqlx::query(
                "INSERT INTO epochs (job_key, epoch, train_loss, val_loss, val_accuracy, val_macro_f1, seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(key)
            .bind(e.epoch)
            .bind(e.train_loss)
            .bind(e.val_loss)
            .bind(e.val_accuracy)
            .bind(e.val_macro_f1)
            .bind(e.seconds)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    pub async fn fail_job(&self, key: &str, worker: &str, error: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET status = 'failed', finished_at = ?, error = ? WHERE key = ? AND worker = ? AND status = 'running'")
            .bind(now())
            .bind(error)
            .bind(key)
            .bind(worker)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- reading -------------------------------------------------------------------

    pub async fn sweeps(&self) -> Result<Vec<SweepRow>> {
        Ok(sqlx::query_as::<_, SweepRow>("SELECT id, name, spec_path, model, dataset, setup_json, created_at, updated_at FROM sweeps ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// The sweep called `name`, or the only sweep in the file when `name` is None.
    pub async fn sweep(&self, name: Option<&str>) -> Result<SweepRow> {
        let all = self.sweeps().await?;
        match name {
            Some(n) => all.into_iter().find(|s| s.name == n).ok_or_else(|| {
                StoreError::Conflict(format!("no sweep named '{n}' in this database"))
            }),
            None => match all.len() {
                0 => Err(StoreError::Conflict(
                    "this database holds no sweep yet; run `thaw run FILE` first".into(),
                )),
                1 => Ok(all.into_iter().next().expect("one")),
                _ => Err(StoreError::Conflict(format!(
                    "this database holds several sweeps ({}); name one with --sweep",
                    all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            },
        }
    }

    pub async fn job_results(&self, sweep: &str) -> Result<Vec<JobResultRow>> {
        Ok(sqlx::query_as::<_, JobResultRow>(
            "SELECT v.*, j.prefix_group FROM job_results v JOIN jobs j ON j.key = v.job_key WHERE v.sweep = ? AND v.rung IS NULL ORDER BY v.ord",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn epochs(&self, sweep: &str) -> Result<Vec<EpochRow>> {
        Ok(sqlx::query_as::<_, EpochRow>(
            "SELECT e.job_key, e.epoch, e.train_loss, e.val_loss, e.val_accuracy, e.val_macro_f1, e.seconds
             FROM epochs e JOIN sweep_jobs m ON m.job_key = e.job_key JOIN sweeps s ON s.id = m.sweep_id
             WHERE s.name = ? ORDER BY m.ord, e.epoch",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn stages(&self, sweep: &str) -> Result<Vec<StageRow>> {
        Ok(sqlx::query_as::<_, StageRow>(
            "SELECT DISTINCT st.key, st.name, st.init, st.mlm_freeze, st.status, st.attempts, st.worker, st.error, st.checkpoint_path,
                    st.loss_before, st.perplexity_before, st.loss_after, st.perplexity_after, st.train_docs, st.heldout_docs,
                    st.trainable_params, st.train_seconds, st.head_warmup_steps, st.heldout_chars_per_token
             FROM stages st JOIN jobs j ON j.stage_key = st.key JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id
             WHERE s.name = ? ORDER BY st.name, st.init, st.mlm_freeze",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pending jobs of the sweep per backend they are planned for.
    pub async fn pending_by_backend(&self, sweep: &str) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT j.backend, COUNT(*) FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key
             JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = ? AND j.status = 'pending'
             GROUP BY j.backend ORDER BY j.backend",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The sweep's rung jobs (successive halving), with the validation numbers of their last
    /// epoch when done.
    pub async fn rung_results(&self, sweep: &str) -> Result<Vec<RungRow>> {
        Ok(sqlx::query_as::<_, RungRow>(
            "SELECT j.key AS job_key, j.init, j.intermediate, j.mlm_freeze, j.freeze, j.seed, j.lr, j.train_size, j.pooling,
                    j.strategy, j.rung, j.status, e.val_accuracy, e.val_loss, e.val_macro_f1
             FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id
             LEFT JOIN epochs e ON e.job_key = j.key AND e.epoch = j.rung
             WHERE s.name = ? AND j.rung IS NOT NULL ORDER BY m.ord",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records the search's decisions; one already stored (same `decision`) is kept as it
    /// was. Returns the indices of those that were new.
    pub async fn record_decisions(
        &self,
        sweep: &str,
        decisions: &[NewDecision],
    ) -> Result<Vec<usize>> {
        let mut tx = self.pool.begin().await?;
        let sweep_id: i64 = sqlx::query_scalar("SELECT id FROM sweeps WHERE name = ?")
            .bind(sweep)
            .fetch_one(&mut *tx)
            .await?;
        let round: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(round), 0) + 1 FROM search_decisions WHERE sweep_id = ?",
        )
        .bind(sweep_id)
        .fetch_one(&mut *tx)
        .await?;
        let mut added = Vec::new();
        for (i, d) in decisions.iter().enumerate() {
            let inserted = sqlx::query(
                "INSERT OR IGNORE INTO search_decisions (sweep_id, decision, round, action, cell, lr, seed, reason, decided_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(sweep_id)
            .bind(&d.decision)
            .bind(round)
            .bind(d.action)
            .bind(&d.cell)
            .bind(d.lr)
            .bind(d.seed)
            .bind(&d.reason)
            .bind(now())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                added.push(i);
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    /// The search's decisions in the order they were made.
    pub async fn decisions(&self, sweep: &str) -> Result<Vec<DecisionRow>> {
        Ok(sqlx::query_as::<_, DecisionRow>(
            "SELECT d.round, d.action, d.cell, d.lr, d.seed, d.reason
             FROM search_decisions d JOIN sweeps s ON s.id = d.sweep_id
             WHERE s.name = ? ORDER BY d.round, d.rowid",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Seconds the sweep's done jobs (rungs included) held a worker, summed: start of the
    /// claim to the stored result, loading and evaluation included.
    pub async fn job_seconds(&self, sweep: &str) -> Result<f64> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(SUM(j.finished_at - j.started_at), 0.0) FROM jobs j
             JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id
             WHERE s.name = ? AND j.status = 'done'",
        )
        .bind(sweep)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Counts per status for the sweep's jobs and stages, and what is running now.
    pub async fn progress(&self, sweep: &str) -> Result<Progress> {
        let statuses: Vec<WorkStatus> = sqlx::query_scalar(
            "SELECT j.status FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = ?",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?;
        let stages = self.stages(sweep).await?;
        let mut p = Progress::default();
        for status in statuses {
            p.jobs.add(status);
        }
        for s in &stages {
            p.stages.add(s.status);
        }
        let running = sqlx::query(
            "SELECT j.key, j.worker, j.heartbeat_at, j.started_at FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key
             JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = ? AND j.status = 'running' ORDER BY m.ord",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?;
        p.running = running
            .into_iter()
            .map(|r| RunningRow {
                key: r.get(0),
                worker: r.get::<Option<String>, _>(1).unwrap_or_default(),
                heartbeat_at: r.get(2),
                started_at: r.get(3),
            })
            .collect();
        Ok(p)
    }
}
