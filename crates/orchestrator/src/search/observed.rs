//! What the search reads from the store: the sweep's jobs and their statuses, the rungs' and
//! full jobs' validation numbers, and the worker time spent.

use std::collections::HashMap;

use thaw_analysis::advice::Forecast;
use thaw_store::{JobResultRow, RungRow, Store, WorkStatus};

/// What the store holds for the sweep, as the search reads it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The sweep's jobs (rungs and full jobs) by key, with their statuses.
    pub status: HashMap<String, WorkStatus>,
    pub rungs: Vec<RungRow>,
    /// The full jobs' rows (the report's rows).
    pub results: Vec<JobResultRow>,
    /// Worker time the sweep's done jobs used, summed, in seconds.
    pub seconds_spent: f64,
    /// The latest forecast `thaw advise` stored for the sweep (a forecast another version
    /// wrote that no longer parses counts as none).
    pub forecast: Option<Forecast>,
}

/// Reads what the search needs from the store (empty for a sweep not registered yet).
pub async fn observe(store: &Store, sweep: &str) -> thaw_store::Result<Observed> {
    let results = store.job_results(sweep).await?;
    let rungs = store.rung_results(sweep).await?;
    let status = results
        .iter()
        .map(|r| (r.job_key.clone(), r.status))
        .chain(rungs.iter().map(|r| (r.job_key.clone(), r.status)))
        .collect();
    let seconds_spent = store.job_seconds(sweep).await?;
    let forecast = store.latest_advice(sweep).await?.and_then(|j| serde_json::from_str(&j).ok());
    Ok(Observed { status, rungs, results, seconds_spent, forecast })
}

impl Observed {
    pub(super) fn settled(&self, key: &str) -> bool {
        matches!(self.status.get(key), Some(WorkStatus::Done | WorkStatus::Failed))
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.status.contains_key(key)
    }
}
