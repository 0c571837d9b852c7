//! Results and failures: a claim ends here, with the work marked done or failed and what depends on it told.

use sqlx::{Any, Transaction};

use crate::{EpochRow, Result, ResultRow, StageOutcomeRow, Store, StoreError, WorkKind, sql_for};

impl Store {
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

    pub(crate) async fn fail_dependants(
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
                 total_params, prefix_cache, backend, worker, finished_at, val_correct, test_correct, device,
                 metric, val_metric, test_metric, val_scores, test_scores, val_predictions, test_predictions,
                 val_per_example, test_per_example)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, {now}, $19, $20, $21,
                 $22, $23, $24, $25, $26, $27, $28, $29, $30)",
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
        .bind(&result.metric)
        .bind(result.val_metric)
        .bind(result.test_metric)
        .bind(&result.val_scores)
        .bind(&result.test_scores)
        .bind(&result.val_predictions)
        .bind(&result.test_predictions)
        .bind(&result.val_per_example)
        .bind(&result.test_per_example)
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
                "INSERT INTO epochs (job_key, epoch, train_loss, val_loss, val_accuracy, val_macro_f1, seconds, val_metric)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(key)
            .bind(e.epoch)
            .bind(e.train_loss)
            .bind(e.val_loss)
            .bind(e.val_accuracy)
            .bind(e.val_macro_f1)
            .bind(e.seconds)
            .bind(e.val_metric)
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
}
