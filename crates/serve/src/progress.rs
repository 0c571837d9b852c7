//! A sweep's progress as its pages show it: full jobs, rungs and stages by state, how long it
//! has run and, from the pace of its done jobs, how long the rest should take.

use thaw_store::{
    DonePace, JobResultRow, Progress, RungRow, StageRow, StatusCounts, Store, SweepRow,
};

#[derive(Debug, Clone, PartialEq)]
pub struct SweepProgress {
    /// The plan's full-length jobs.
    pub jobs: StatusCounts,
    /// The adaptive search's short rung jobs (none for a grid).
    pub rungs: StatusCounts,
    pub stages: StatusCounts,
    /// Seconds from the first job's start to the last one's end (finished) or to now.
    pub elapsed: f64,
    /// Nothing is pending or running.
    pub finished: bool,
    /// Seconds left at the pace so far; None when nothing is done yet or nothing is left.
    pub eta: Option<f64>,
}

impl SweepProgress {
    /// A sweep's progress, and what runs now, from the store.
    pub async fn load(
        store: &Store,
        sweep: &SweepRow,
    ) -> anyhow::Result<(SweepProgress, Progress)> {
        let jobs = store.job_results(&sweep.name).await?;
        let rungs = store.rung_results(&sweep.name).await?;
        let stages = store.stages(&sweep.name).await?;
        let running = store.progress(&sweep.name).await?;
        let (pace, now) = (store.done_pace(&sweep.name).await?, store.clock().await?);
        let workers = running.running.len();
        let span = store.work_span(&sweep.name).await?;
        let p = SweepProgress::new(span, &jobs, &rungs, &stages, pace, workers, now);
        Ok((p, running))
    }

    /// `now` is the database's clock, `span` when work first started and last finished;
    /// `pace` the worker time done full jobs and rungs used, and `workers` how many are
    /// running work now (the pace divides by them).
    pub fn new(
        span: (Option<f64>, Option<f64>),
        jobs: &[JobResultRow],
        rungs: &[RungRow],
        stages: &[StageRow],
        pace: DonePace,
        workers: usize,
        now: f64,
    ) -> SweepProgress {
        let count = |statuses: &mut dyn Iterator<Item = thaw_store::WorkStatus>| {
            let mut c = StatusCounts::default();
            statuses.for_each(|s| c.add(s));
            c
        };
        let jobs = count(&mut jobs.iter().map(|j| j.status));
        let rungs = count(&mut rungs.iter().map(|r| r.status));
        let stages = count(&mut stages.iter().map(|s| s.status));
        let unfinished = |c: &StatusCounts| c.pending + c.running;
        let left = unfinished(&jobs) + unfinished(&rungs);
        let finished = left == 0 && unfinished(&stages) == 0;
        let elapsed = match span {
            (Some(start), Some(end)) if finished => end - start,
            (Some(start), _) => now - start,
            (None, _) => 0.0,
        };
        let eta = (left > 0)
            .then(|| remaining_seconds(&pace, unfinished(&jobs), unfinished(&rungs)))
            .flatten()
            .map(|seconds| seconds / workers.max(1) as f64);
        SweepProgress { jobs, rungs, stages, elapsed: elapsed.max(0.0), finished, eta }
    }
}

pub fn of_total(c: &StatusCounts) -> String {
    format!("{} / {}", c.done, c.total())
}

pub fn eta_text(p: &SweepProgress) -> String {
    match p.eta {
        Some(eta) => duration_text(eta),
        None if p.jobs.pending + p.jobs.running == 0 => "finished".into(),
        None => "after the first job".into(),
    }
}

/// Worker seconds the unfinished full jobs and rungs need at the pace of the done ones of
/// their kind (the other kind's pace while none of this kind is done); None before any.
fn remaining_seconds(pace: &DonePace, full_left: usize, rungs_left: usize) -> Option<f64> {
    let mean = |(sum, n): (f64, usize)| (n > 0).then(|| sum / n as f64);
    let full = mean(pace.full).or(mean(pace.rungs))?;
    let rung = mean(pace.rungs).unwrap_or(full);
    Some(full * full_left as f64 + rung * rungs_left as f64)
}

/// Seconds as people read a duration: "42 s", "7 min 5 s", "3 h 12 min".
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_job_is_paced_by_full_jobs_and_a_rung_by_rungs() {
        let pace = DonePace { full: (100.0, 2), rungs: (30.0, 3) };
        assert_eq!(remaining_seconds(&pace, 3, 2), Some(3.0 * 50.0 + 2.0 * 10.0));
        let only_rungs = DonePace { full: (0.0, 0), rungs: (30.0, 3) };
        assert_eq!(remaining_seconds(&only_rungs, 1, 0), Some(10.0));
        assert_eq!(remaining_seconds(&DonePace::default(), 1, 1), None);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration_text(42.4), "42 s");
        assert_eq!(duration_text(425.0), "7 min 5 s");
        assert_eq!(duration_text(3.0 * 3600.0 + 12.0 * 60.0 + 9.0), "3 h 12 min");
    }
}
