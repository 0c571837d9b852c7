//! thaw-store: the only code that speaks SQL.
//!
//! One set of domain operations over two databases (sqlx's `Any` driver): a SQLite file (the
//! embedded default: WAL journal, a busy timeout) or a PostgreSQL server (many machines, one
//! URL). The SQL is shared where both dialects accept it and per dialect where they differ
//! ([`Dialect`]: the clock, claim locks, insertion order); each dialect has its own migration
//! set with the same versions. Jobs and stages are claimed with one atomic `UPDATE ...
//! RETURNING` (PostgreSQL's subquery skips rows other claims hold: `FOR UPDATE SKIP LOCKED`),
//! so two workers never take the same one; running work carries a heartbeat stamped by the
//! database's clock, and work whose worker died goes back to pending.

mod blobs;
mod location;
mod rows;
pub mod testing;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Connection, Executor, Row, Transaction};

pub use blobs::BLOB_CHUNK_BYTES;
pub use location::{Dialect, Location, PgUrl, redact};
pub use rows::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The cause is part of each message (not a `source`), so a report that prints the chain
    // of causes does not print it twice.
    #[error("database {location}: {cause}")]
    Open { location: String, cause: sqlx::Error },
    #[error(
        "cannot connect to {what}: {cause}. Check that the server runs and accepts connections from this machine, and the URL; a password comes from the URL, PGPASSWORD or ~/.pgpass"
    )]
    Unreachable { what: String, cause: sqlx::Error },
    #[error("database {location}: cannot apply the schema in migrations/{dialect}/: {cause}")]
    Migrate { location: String, dialect: &'static str, cause: sqlx::migrate::MigrateError },
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Blob(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// SQL whose only dynamic parts are table names from [`WorkKind`] and the dialect's own
/// fragments, never user data.
fn sql_for(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

impl Dialect {
    /// The database's clock in unix seconds, as an SQL expression.
    fn clock(self) -> &'static str {
        match self {
            Dialect::Sqlite => "((julianday('now') - 2440587.5) * 86400.0)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
        }
    }

    /// What a claim's subquery adds so that concurrent claims pass over each other's rows
    /// instead of queueing on them. SQLite has one writer at a time and needs nothing.
    fn skip_locked(self, alias: &str) -> String {
        match self {
            Dialect::Sqlite => String::new(),
            Dialect::Postgres => format!("FOR UPDATE OF {alias} SKIP LOCKED"),
        }
    }

    /// A column that orders a table's rows as they were inserted.
    fn insertion_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "seq",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
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
        location: path.display().to_string(),
        cause: sqlx::Error::Io(e),
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

/// Connections a PostgreSQL store opens at most: a worker claims, beats and writes one at a
/// time, so two cover a write while a heartbeat waits; a 16-task array holds 32 at most.
pub const POSTGRES_CONNECTIONS: u32 = 2;
/// How long opening a store or taking a connection waits before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    location: Location,
}

impl Store {
    /// Opens (creating if needed) a SQLite database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        Self::connect(&Location::Sqlite(path.to_path_buf()), None).await
    }

    /// Opens the store at `location` and brings its schema up to date. `client` names this
    /// process to a PostgreSQL server (its `application_name`: pg_stat_activity shows it).
    pub async fn connect(location: &Location, client: Option<&str>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let pool = match location {
            Location::Sqlite(path) => Self::open_sqlite(path).await?,
            Location::Postgres(url) => Self::open_postgres(url, client).await?,
        };
        let store = Store { pool, location: location.clone() };
        store.migrate().await?;
        Ok(store)
    }

    async fn open_sqlite(path: &Path) -> Result<AnyPool> {
        let opened = |cause| StoreError::Open { location: path.display().to_string(), cause };
        let path = std::path::absolute(path).map_err(|e| opened(sqlx::Error::Io(e)))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| opened(sqlx::Error::Io(e)))?;
        }
        let url =
            SqliteConnectOptions::new().filename(&path).create_if_missing(true).to_url_lossy();
        let options = AnyConnectOptions::from_url(&url).map_err(opened)?;
        AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // The busy timeout first: switching to WAL itself can meet a busy file.
                    for pragma in [
                        "PRAGMA busy_timeout = 30000",
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(opened)
    }

    async fn open_postgres(url: &PgUrl, client: Option<&str>) -> Result<AnyPool> {
        let unreachable = |cause| StoreError::Unreachable { what: url.describe(), cause };
        let options = AnyConnectOptions::from_url(&url.connect_url(client)).map_err(unreachable)?;
        // One connection first, for the real reason when it fails (refused, unknown host, a
        // wrong password): the pool only says it timed out.
        match tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options)).await {
            Ok(Ok(probe)) => {
                let _ = probe.close().await;
            }
            Ok(Err(cause)) => return Err(unreachable(cause)),
            Err(_) => return Err(unreachable(sqlx::Error::PoolTimedOut)),
        }
        AnyPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(unreachable)
    }

    async fn migrate(&self) -> Result<()> {
        let failed = |cause| StoreError::Migrate {
            location: self.location.to_string(),
            dialect: self.dialect().name(),
            cause,
        };
        match &self.location {
            Location::Sqlite(path) => {
                // Processes started together (a Slurm array, a shell loop) would each try to
                // create or upgrade the schema, and all but one fail: they take turns, on a lock
                // file beside the database (SQLite's own locks do not span sqlx's migration
                // transactions).
                let schema_lock = schema_lock(path)?;
                let migrated = sqlx::migrate!("../../migrations/sqlite").run(&self.pool).await;
                drop(schema_lock);
                migrated.map_err(failed)
            }
            // sqlx holds a PostgreSQL advisory lock while it migrates: concurrent openers wait.
            Location::Postgres(_) => {
                sqlx::migrate!("../../migrations/postgres").run(&self.pool).await.map_err(failed)
            }
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.location.dialect()
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The SQL text with the dialect's fragments in: `{now}` (the database clock),
    /// `{skip_locked:ALIAS}` (a claim's row lock), `{insertion_order}`.
    fn sql(&self, text: &str) -> sqlx::AssertSqlSafe<String> {
        let dialect = self.dialect();
        let mut sql = text.replace("{now}", dialect.clock());
        while let Some(start) = sql.find("{skip_locked:") {
            let end = start + sql[start..].find('}').expect("closed fragment");
            let alias = sql[start + "{skip_locked:".len()..end].to_string();
            sql.replace_range(start..=end, &dialect.skip_locked(&alias));
        }
        sql_for(sql.replace("{insertion_order}", dialect.insertion_order()))
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
        let sweep_id: i64 = sqlx::query(self.sql(
            "INSERT INTO sweeps (name, spec_path, spec_toml, model, dataset, setup_json, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, {now}, {now})
             ON CONFLICT(name) DO UPDATE SET spec_path = excluded.spec_path, spec_toml = excluded.spec_toml,
                 model = excluded.model, dataset = excluded.dataset, setup_json = excluded.setup_json, updated_at = excluded.updated_at
             RETURNING id",
        ))
        .bind(&sweep.name)
        .bind(&sweep.spec_path)
        .bind(&sweep.spec_toml)
        .bind(&sweep.model)
        .bind(&sweep.dataset)
        .bind(&sweep.setup_json)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        for s in stages {
            // A known key is the same work: keep its state, refresh how to run it (paths may have moved).
            sqlx::query(
                "INSERT INTO stages (key, name, init, mlm_freeze, spec_json, backend) VALUES ($1, $2, $3, $4, $5, $6)
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
        sqlx::query("DELETE FROM sweep_jobs WHERE sweep_id = $1")
            .bind(sweep_id)
            .execute(&mut *tx)
            .await?;
        let mut summary = PlanSummary { sweep_id, ..Default::default() };
        for (ord, j) in jobs.iter().enumerate() {
            let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE key = $1")
                .bind(&j.key)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO jobs (key, stage_key, init, intermediate, mlm_freeze, \"freeze\", num_layers, unfrozen_layers, seed, lr,
                                   train_size, pooling, prefix_group, spec_json, rung, backend, strategy)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
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
            if known == 0 {
                summary.new_jobs += 1;
            }
            sqlx::query("INSERT INTO sweep_jobs (sweep_id, job_key, ord) VALUES ($1, $2, $3)")
                .bind(sweep_id)
                .bind(&j.key)
                .bind(ord as i64)
                .execute(&mut *tx)
                .await?;
        }
        // Jobs added to a sweep whose stage already failed would wait forever: fail them with its reason.
        sqlx::query(self.sql(
            "UPDATE jobs SET status = 'failed', finished_at = {now},
                 error = 'intermediate stage failed: ' || COALESCE((SELECT st.error FROM stages st WHERE st.key = jobs.stage_key), 'no reason recorded')
             WHERE status = 'pending' AND stage_key IN (SELECT key FROM stages WHERE status = 'failed')",
        ))
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
                                                 JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = $1)",
        )
        .bind(sweep)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let jobs = sqlx::query(
            "UPDATE jobs SET status = 'pending', error = NULL, attempts = 0, worker = NULL
             WHERE status = 'failed' AND key IN (SELECT m.job_key FROM sweep_jobs m JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = $1)",
        )
        .bind(sweep)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(stages + jobs)
    }

    /// Running work whose worker is gone goes back to pending: its heartbeat is older than
    /// `stale_after` by the database's clock, or `is_dead(worker)` says so (a local process
    /// that no longer exists). Work that has already been tried `max_attempts` times is
    /// failed instead.
    pub async fn requeue_abandoned(
        &self,
        stale_after: Duration,
        max_attempts: i64,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        let mut requeued = Vec::new();
        for kind in [WorkKind::Stage, WorkKind::Job] {
            let rows = sqlx::query(self.sql(&format!(
                "SELECT key, worker, heartbeat_at, attempts, {{now}} - heartbeat_at FROM {} WHERE status = 'running'",
                kind.table()
            )))
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                let (key, worker, heartbeat, attempts, age): (
                    String,
                    Option<String>,
                    Option<f64>,
                    i64,
                    Option<f64>,
                ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
                let holder = worker.clone().unwrap_or_default();
                let stale = age.is_none_or(|age| age > stale_after.as_secs_f64());
                if !(stale || is_dead(&holder)) {
                    continue;
                }
                let gave_up = attempts >= max_attempts;
                let sql = if gave_up {
                    format!(
                        "UPDATE {} SET status = 'failed', worker = NULL, finished_at = {{now}},
                             error = 'abandoned ' || attempts || ' times (worker ' || $1 || ' died or stopped answering); giving up'
                         WHERE key = $2 AND status = 'running' AND worker IS NOT DISTINCT FROM $3
                           AND heartbeat_at IS NOT DISTINCT FROM $4",
                        kind.table()
                    )
                } else {
                    format!(
                        "UPDATE {} SET status = 'pending', worker = NULL, heartbeat_at = NULL, finished_at = {{now}},
                             error = 'requeued: worker ' || $1 || ' died or stopped answering'
                         WHERE key = $2 AND status = 'running' AND worker IS NOT DISTINCT FROM $3
                           AND heartbeat_at IS NOT DISTINCT FROM $4",
                        kind.table()
                    )
                };
                // The heartbeat read above is part of the condition: one that arrived meanwhile keeps the work.
                let mut tx = self.pool.begin().await?;
                let changed = sqlx::query(self.sql(&sql))
                    .bind(&holder)
                    .bind(&key)
                    .bind(&worker)
                    .bind(heartbeat)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed == 1 && gave_up && kind == WorkKind::Stage {
                    self.fail_dependants(
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
        let row = sqlx::query(self.sql(
            "UPDATE stages SET status = 'running', worker = $1, attempts = attempts + 1, heartbeat_at = {now},
                 started_at = {now}, error = NULL
             WHERE key = (
                 SELECT st.key FROM stages st
                 JOIN jobs j ON j.stage_key = st.key
                 JOIN sweep_jobs m ON m.job_key = j.key
                 JOIN sweeps s ON s.id = m.sweep_id
                 WHERE s.name = $2 AND st.status = 'pending' AND j.status = 'pending' AND st.backend = $3
                 ORDER BY m.ord LIMIT 1 {skip_locked:st})
             AND status = 'pending'
             RETURNING key, spec_json",
        ))
        .bind(worker)
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
        let row = sqlx::query(self.sql(
            "UPDATE jobs SET status = 'running', worker = $1, attempts = attempts + 1, heartbeat_at = {now},
                 started_at = {now}, error = NULL
             WHERE key = (
                 SELECT j.key FROM jobs j
                 JOIN sweep_jobs m ON m.job_key = j.key
                 JOIN sweeps s ON s.id = m.sweep_id
                 LEFT JOIN stages st ON st.key = j.stage_key
                 WHERE s.name = $2 AND j.status = 'pending' AND (j.stage_key IS NULL OR st.status = 'done')
                   AND j.backend = $3
                 ORDER BY (j.prefix_group IS NOT DISTINCT FROM $4) DESC, m.ord LIMIT 1 {skip_locked:j})
             AND status = 'pending'
             RETURNING key, spec_json",
        ))
        .bind(worker)
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
            "SELECT spec_json FROM {} WHERE key = $1",
            kind.table()
        )))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The checkpoint a finished stage wrote: its path on the machine that wrote it, and its
    /// content hash when it was stored in the database too ([`Store::put_blob_file`]).
    pub async fn stage_checkpoint(&self, stage_key: &str) -> Result<Option<StageCheckpoint>> {
        let row = sqlx::query(
            "SELECT checkpoint_path, checkpoint_sha256 FROM stages WHERE key = $1 AND status = 'done'",
        )
        .bind(stage_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| {
            let path: Option<String> = r.get(0);
            path.map(|path| StageCheckpoint { path, sha256: r.get(1) })
        }))
    }

    /// Sends a finished stage back to pending, its checkpoint forgotten: for a checkpoint this
    /// version of thaw cannot read (written in an older format). False when the stage was not done.
    pub async fn redo_stage(&self, stage_key: &str) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE stages SET status = 'pending', worker = NULL, heartbeat_at = NULL, attempts = 0, checkpoint_path = NULL,
                 checkpoint_sha256 = NULL, error = NULL
             WHERE key = $1 AND status = 'done'",
        )
        .bind(stage_key)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Refreshes the heartbeat; false when the work is no longer this worker's (requeued meanwhile).
    pub async fn heartbeat(&self, kind: WorkKind, key: &str, worker: &str) -> Result<bool> {
        let changed = sqlx::query(self.sql(&format!(
            "UPDATE {} SET heartbeat_at = {{now}} WHERE key = $1 AND worker = $2 AND status = 'running'",
            kind.table()
        )))
        .bind(key)
        .bind(worker)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Gives work back unfinished (Ctrl-C, a Slurm task's SIGTERM): pending again, the attempt
    /// not counted.
    pub async fn release(&self, kind: WorkKind, key: &str, worker: &str) -> Result<()> {
        sqlx::query(sql_for(format!(
            "UPDATE {} SET status = 'pending', worker = NULL, heartbeat_at = NULL,
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
             WHERE key = $1 AND worker = $2 AND status = 'running'",
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
                "UPDATE {} SET status = 'pending', worker = NULL, heartbeat_at = NULL,
                     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
                 WHERE worker = $1 AND status = 'running'",
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
    /// lock (on SQLite, waiting under the busy timeout) before anything is read: a transaction
    /// that reads first cannot upgrade once another worker has committed meanwhile, and the
    /// finished result would be lost. Work no longer held by `worker` (requeued after a missed
    /// heartbeat) is a conflict.
    async fn take_as_done(
        &self,
        tx: &mut Transaction<'_, Any>,
        kind: WorkKind,
        key: &str,
        worker: &str,
    ) -> Result<()> {
        let changed = sqlx::query(self.sql(&format!(
            "UPDATE {} SET status = 'done', finished_at = {{now}}, error = NULL WHERE key = $1 AND worker = $2 AND status = 'running'",
            kind.table()
        )))
        .bind(key)
        .bind(worker)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 1 {
            return Ok(());
        }
        let status: Option<String> = sqlx::query_scalar(sql_for(format!(
            "SELECT status FROM {} WHERE key = $1",
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
        self.take_as_done(&mut tx, WorkKind::Stage, key, worker).await?;
        sqlx::query(self.sql(
            "UPDATE stages SET finished_at = {now}, checkpoint_path = $1, loss_before = $2, perplexity_before = $3,
                 loss_after = $4, perplexity_after = $5, train_docs = $6, heldout_docs = $7, trainable_params = $8,
                 train_seconds = $9, backend = $10, head_warmup_steps = $11, heldout_chars_per_token = $12,
                 checkpoint_sha256 = $13
             WHERE key = $14",
        ))
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
        .bind(&done.checkpoint_sha256)
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
        let changed = sqlx::query(self.sql(
            "UPDATE stages SET status = 'failed', finished_at = {now}, error = $1 WHERE key = $2 AND worker = $3 AND status = 'running'",
        ))
        .bind(error)
        .bind(key)
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            self.fail_dependants(&mut tx, key, error).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn fail_dependants(
        &self,
        tx: &mut Transaction<'_, Any>,
        stage_key: &str,
        reason: &str,
    ) -> Result<()> {
        sqlx::query(self.sql(
            "UPDATE jobs SET status = 'failed', finished_at = {now}, error = 'intermediate stage failed: ' || $1
             WHERE stage_key = $2 AND status = 'pending'",
        ))
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
        self.take_as_done(&mut tx, WorkKind::Job, key, worker).await?;
        Self::write_epochs(&mut tx, key, epochs).await?;
        sqlx::query("DELETE FROM results WHERE job_key = $1").bind(key).execute(&mut *tx).await?;
        sqlx::query(self.sql(
            "INSERT INTO results (job_key, best_epoch, val_loss, val_accuracy, val_macro_f1, test_loss, test_accuracy,
                 test_macro_f1, train_seconds, eval_seconds, prefix_seconds, load_seconds, examples_per_second, trainable_params,
                 total_params, prefix_cache, backend, worker, finished_at, val_correct, test_correct, device)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, {now}, $19, $20, $21)",
        ))
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
        self.take_as_done(&mut tx, WorkKind::Job, key, worker).await?;
        Self::write_epochs(&mut tx, key, epochs).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn write_epochs(
        tx: &mut Transaction<'_, Any>,
        key: &str,
        epochs: &[EpochRow],
    ) -> Result<()> {
        sqlx::query("DELETE FROM epochs WHERE job_key = $1").bind(key).execute(&mut **tx).await?;
        for e in epochs {
            sqlx::query(
                "INSERT INTO epochs (job_key, epoch, train_loss, val_loss, val_accuracy, val_macro_f1, seconds)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
        sqlx::query(self.sql(
            "UPDATE jobs SET status = 'failed', finished_at = {now}, error = $1 WHERE key = $2 AND worker = $3 AND status = 'running'",
        ))
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

    /// The sweep called `name`, or the only sweep in the store when `name` is None.
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
            "SELECT v.*, j.prefix_group FROM job_results v JOIN jobs j ON j.key = v.job_key WHERE v.sweep = $1 AND v.rung IS NULL ORDER BY v.ord",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn epochs(&self, sweep: &str) -> Result<Vec<EpochRow>> {
        Ok(sqlx::query_as::<_, EpochRow>(
            "SELECT e.job_key, e.epoch, e.train_loss, e.val_loss, e.val_accuracy, e.val_macro_f1, e.seconds
             FROM epochs e JOIN sweep_jobs m ON m.job_key = e.job_key JOIN sweeps s ON s.id = m.sweep_id
             WHERE s.name = $1 ORDER BY m.ord, e.epoch",
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
             WHERE s.name = $1 ORDER BY st.name, st.init, st.mlm_freeze, st.key",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pending jobs of the sweep per backend they are planned for.
    pub async fn pending_by_backend(&self, sweep: &str) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT j.backend, COUNT(*) FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key
             JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = $1 AND j.status = 'pending'
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
            "SELECT j.key AS job_key, j.init, j.intermediate, j.mlm_freeze, j.\"freeze\", j.seed, j.lr, j.train_size, j.pooling,
                    j.strategy, j.rung, j.status, e.val_accuracy, e.val_loss, e.val_macro_f1
             FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id
             LEFT JOIN epochs e ON e.job_key = j.key AND e.epoch = j.rung
             WHERE s.name = $1 AND j.rung IS NOT NULL ORDER BY m.ord",
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
        let sweep_id: i64 = sqlx::query_scalar("SELECT id FROM sweeps WHERE name = $1")
            .bind(sweep)
            .fetch_one(&mut *tx)
            .await?;
        let round: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(round), 0) + 1 FROM search_decisions WHERE sweep_id = $1",
        )
        .bind(sweep_id)
        .fetch_one(&mut *tx)
        .await?;
        let mut added = Vec::new();
        for (i, d) in decisions.iter().enumerate() {
            let inserted = sqlx::query(self.sql(
                "INSERT INTO search_decisions (sweep_id, decision, round, action, cell, lr, seed, reason, decided_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {now})
                 ON CONFLICT DO NOTHING",
            ))
            .bind(sweep_id)
            .bind(&d.decision)
            .bind(round)
            .bind(d.action)
            .bind(&d.cell)
            .bind(d.lr)
            .bind(d.seed)
            .bind(&d.reason)
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
        Ok(sqlx::query_as::<_, DecisionRow>(self.sql(
            "SELECT d.round, d.action, d.cell, d.lr, d.seed, d.reason
             FROM search_decisions d JOIN sweeps s ON s.id = d.sweep_id
             WHERE s.name = $1 ORDER BY d.round, d.{insertion_order}",
        ))
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Seconds the sweep's done jobs (rungs included) held a worker, summed: start of the
    /// claim to the stored result, loading and evaluation included.
    pub async fn job_seconds(&self, sweep: &str) -> Result<f64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(j.finished_at - j.started_at), 0.0) AS DOUBLE PRECISION) FROM jobs j
             JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id
             WHERE s.name = $1 AND j.status = 'done'",
        )
        .bind(sweep)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Counts per status for the sweep's jobs and stages, and what is running now (with the
    /// age of each heartbeat by the database's clock).
    pub async fn progress(&self, sweep: &str) -> Result<Progress> {
        let statuses: Vec<WorkStatus> = sqlx::query_scalar(
            "SELECT j.status FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = $1",
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
        let running = sqlx::query(self.sql(
            "SELECT j.key, j.worker, {now} - j.heartbeat_at, {now} - j.started_at FROM jobs j
             JOIN sweep_jobs m ON m.job_key = j.key
             JOIN sweeps s ON s.id = m.sweep_id WHERE s.name = $1 AND j.status = 'running' ORDER BY m.ord",
        ))
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?;
        p.running = running
            .into_iter()
            .map(|r| RunningRow {
                key: r.get(0),
                worker: r.get::<Option<String>, _>(1).unwrap_or_default(),
                heartbeat_age: r.get(2),
                running_for: r.get(3),
            })
            .collect();
        Ok(p)
    }

    /// Connections this store's server has open, per client name (`application_name`), for
    /// PostgreSQL; empty for SQLite.
    pub async fn connections_by_client(&self) -> Result<Vec<(String, i64)>> {
        if self.dialect() != Dialect::Postgres {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "SELECT application_name, COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND backend_type = 'client backend'
             GROUP BY application_name ORDER BY application_name",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    /// The schema has one version sequence: both dialects carry the same migrations, by
    /// number and name, so a store's version means the same tables whichever it is.
    #[test]
    fn both_dialects_have_the_same_migration_versions() {
        let names = |dialect: &str| -> Vec<String> {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../migrations")
                .join(dialect);
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let (sqlite, postgres) = (names("sqlite"), names("postgres"));
        assert!(sqlite.len() >= 9, "{sqlite:?}");
        assert_eq!(sqlite, postgres);
    }
}
