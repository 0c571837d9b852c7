//! `thaw advise`'s forecasts, by sweep name (the advice may come before the sweep is
//! registered); the report reads the latest.

use crate::{Result, Store};

impl Store {
    /// Keeps one forecast (`thaw_analysis::advice::Forecast` as JSON) for `sweep`.
    pub async fn record_advice(
        &self,
        sweep: &str,
        forecast_json: &str,
        advisor_seconds: f64,
        grid_seconds: f64,
    ) -> Result<()> {
        sqlx::query(self.sql(
            "INSERT INTO advice (sweep, made_at, forecast, advisor_seconds, grid_seconds)
             VALUES ($1, {now}, $2, $3, $4)",
        ))
        .bind(sweep)
        .bind(forecast_json)
        .bind(advisor_seconds)
        .bind(grid_seconds)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest forecast stored for `sweep`, as JSON.
    pub async fn latest_advice(&self, sweep: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT forecast FROM advice WHERE sweep = $1 ORDER BY made_at DESC LIMIT 1",
        )
        .bind(sweep)
        .fetch_optional(&self.pool)
        .await?)
    }
}
