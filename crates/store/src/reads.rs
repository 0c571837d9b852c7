//! What the report, the search and `thaw status` read.

use sqlx::Row;

use crate::{
    Dialect, DonePace, EpochRow, JobClaim, JobResultRow, Progress, Result, RungRow, RunningRow,
    StageCheckpoint, StageRow, Store, StoreError, SweepRow, WorkKind, WorkStatus, sql_for,
};

impl Store {
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
            "SELECT e.job_key, e.epoch, e.train_loss, e.val_loss, e.val_metric, e.val_accuracy, e.val_macro_f1, e.seconds
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
                    j.strategy, j.rung, j.status, e.val_metric, e.val_loss, e.val_macro_f1
             FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id
             LEFT JOIN epochs e ON e.job_key = j.key AND e.epoch = j.rung
             WHERE s.name = $1 AND j.rung IS NOT NULL ORDER BY m.ord",
        )
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

    /// The database's clock in unix seconds: what ages and elapsed times are measured against
    /// (workers on other machines stamp their heartbeats with it too).
    pub async fn clock(&self) -> Result<f64> {
        Ok(sqlx::query_scalar(self.sql("SELECT CAST({now} AS DOUBLE PRECISION)"))
            .fetch_one(&self.pool)
            .await?)
    }

    /// Who holds or held job `key` and when, by the database's clock; None for an unknown key.
    pub async fn job_claim(&self, key: &str) -> Result<Option<JobClaim>> {
        let row = sqlx::query(self.sql(
            "SELECT worker, started_at, finished_at, {now} - heartbeat_at FROM jobs WHERE key = $1",
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| JobClaim {
            worker: r.get(0),
            started_at: r.get(1),
            finished_at: r.get(2),
            heartbeat_age: r.get(3),
        }))
    }

    /// When the sweep's first job or stage started and its last one finished (unix seconds,
    /// the database's clock); None before any has.
    pub async fn work_span(&self, sweep: &str) -> Result<(Option<f64>, Option<f64>)> {
        Ok(sqlx::query_as(
            "SELECT MIN(j.started_at), MAX(j.finished_at) FROM jobs j
             JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id
             WHERE s.name = $1",
        )
        .bind(sweep)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Worker seconds of the sweep's done work, apart: (full jobs, rung jobs), each as (sum of
    /// seconds, count); what an ETA is paced by, as a rung runs a fraction of a full job.
    pub async fn done_pace(&self, sweep: &str) -> Result<DonePace> {
        let rows: Vec<(i64, f64, i64)> = sqlx::query_as(
            "SELECT CAST(CASE WHEN j.rung IS NULL THEN 0 ELSE 1 END AS BIGINT),
                    CAST(COALESCE(SUM(j.finished_at - j.started_at), 0.0) AS DOUBLE PRECISION), COUNT(*)
             FROM jobs j JOIN sweep_jobs m ON m.job_key = j.key JOIN sweeps s ON s.id = m.sweep_id
             WHERE s.name = $1 AND j.status = 'done' GROUP BY CASE WHEN j.rung IS NULL THEN 0 ELSE 1 END",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await?;
        let mut pace = DonePace::default();
        for (is_rung, seconds, count) in rows {
            let kind = if is_rung == 1 { &mut pace.rungs } else { &mut pace.full };
            *kind = (seconds, count as usize);
        }
        Ok(pace)
    }
}
