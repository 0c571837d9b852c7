//! The adaptive search's decisions, each stored once.

use crate::{DecisionRow, NewDecision, Result, Store};

impl Store {
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
}
