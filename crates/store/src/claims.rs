//! Claiming work atomically, heartbeats, giving work back, and requeueing what a dead worker held.

use std::time::Duration;

use sqlx::Row;

use crate::{Claimed, Result, Store, WorkKind, sql_for};

impl Store {
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
}
