//! Recording a sweep and its plan, and putting failed work back.

use sqlx::Row;

use crate::{NewJob, NewStage, NewSweep, PlanSummary, Result, Store};

impl Store {
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
}
