//! What `thaw status` prints: counts per state, the running work with its worker and
//! heartbeat age, and every failure with its reason.

use std::fmt::Write;

use anyhow::Result;
use thaw_store::{Store, WorkStatus};

/// The sweep's state as text, from the store.
pub async fn status(store: &Store, sweep: &str) -> Result<String> {
    let p = store.progress(sweep).await?;
    let mut out = format!("sweep {sweep}\n");
    for (what, c) in [("jobs:  ", &p.jobs), ("stages:", &p.stages)] {
        let _ = writeln!(
            out,
            "{what} {} total, {} done, {} running, {} pending, {} failed",
            c.total(),
            c.done,
            c.running,
            c.pending,
            c.failed
        );
    }
    for r in &p.running {
        let _ = writeln!(
            out,
            "running {} on {} for {:.0}s (heartbeat {:.0}s ago)",
            r.key,
            r.worker,
            r.running_for.unwrap_or(f64::NAN),
            r.heartbeat_age.unwrap_or(f64::NAN)
        );
    }
    for s in store.stages(sweep).await? {
        if let Some(error) = &s.error.filter(|_| s.status == WorkStatus::Failed) {
            let _ = writeln!(out, "failed stage {} '{}': {error}", s.key, s.name);
        }
    }
    for j in store.job_results(sweep).await?.iter().filter(|j| j.status == WorkStatus::Failed) {
        let _ = writeln!(
            out,
            "failed {} ({} {} k={} seed={}): {}",
            j.job_key,
            j.init,
            j.intermediate,
            j.freeze,
            j.seed,
            j.error.as_deref().unwrap_or("?")
        );
    }
    Ok(out)
}
