//! What each job's training cost, frozen-prefix work shared fairly.

use std::collections::HashMap;

use thaw_store::{JobResultRow, WorkStatus};

/// What each done job's training cost: its own steps plus an equal share of the frozen-prefix
/// passes of its prefix group (the jobs, of any seed or lr, that reused one cached
/// computation). Charging the pass only to the job that happened to compute it would make
/// the others look free and make the cost depend on claim order.
#[derive(Debug, Clone, Default)]
pub struct JobCosts(HashMap<String, f64>);

impl JobCosts {
    pub fn of(rows: &[JobResultRow]) -> JobCosts {
        let done: Vec<&JobResultRow> =
            rows.iter().filter(|r| is_done(r) && r.train_seconds.is_some()).collect();
        let mut groups: HashMap<&str, (f64, usize)> = HashMap::new();
        for r in &done {
            let g = groups.entry(r.prefix_group.as_str()).or_default();
            g.0 += r.prefix_seconds.unwrap_or(0.0);
            g.1 += 1;
        }
        JobCosts(
            done.iter()
                .map(|r| {
                    let (prefix, n) = groups[r.prefix_group.as_str()];
                    (r.job_key.clone(), r.train_seconds.unwrap_or(0.0) + prefix / n as f64)
                })
                .collect(),
        )
    }

    /// Seconds for a done job; None for one without a result.
    pub fn get(&self, job_key: &str) -> Option<f64> {
        self.0.get(job_key).copied()
    }
}

/// A job counts as a result only once it is done and its result row is there.
pub(crate) fn is_done(row: &JobResultRow) -> bool {
    row.status == WorkStatus::Done && row.val_metric.is_some()
}
