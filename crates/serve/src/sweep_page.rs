//! `/sweeps/NAME/`: a sweep's progress, its workers and their heartbeats, every job, and the
//! report itself (recommendation, cells, charts, the search's decisions, the MLM stages),
//! refreshed while the sweep runs.

use anyhow::Result;
use maud::{Markup, PreEscaped, html};
use thaw_report::{ReportOptions, SweepData, report_body_html};
use thaw_store::{JobResultRow, Progress, Store, WorkStatus};

use crate::layout::{database_text, page, path_segment};
use crate::progress::{SweepProgress, duration_text, eta_text, of_total};

/// None when the database has no sweep called `name`.
pub async fn render(store: &Store, name: &str) -> Result<Option<Markup>> {
    let Some(sweep) = store.sweeps().await?.into_iter().find(|s| s.name == name) else {
        return Ok(None);
    };
    let data = SweepData::load(store, &sweep.name).await?;
    let (running, now) = (store.progress(name).await?, store.clock().await?);
    let workers = running.running.len();
    let span = store.work_span(name).await?;
    let progress = SweepProgress::new(
        span,
        &data.rows,
        &data.rungs,
        &data.stages,
        store.done_pace(name).await?,
        workers,
        now,
    );
    let report = report_body_html(&data, &ReportOptions::new(""))?;
    // The page has its own title: the report's "# thaw report: NAME" goes.
    let report = match report.strip_prefix("<h1>") {
        Some(rest) => rest.split_once("</h1>").map_or(rest, |(_, after)| after).to_string(),
        None => report,
    };
    let live = !progress.finished;
    Ok(Some(page(
        name,
        live,
        html! {
            h1 { "Sweep " (name) }
            p.muted { (database_text(store)) }
            div #live {
                (progress_table(&progress))
                (workers_table(&running))
                details {
                    summary { "Every job (" (data.rows.len()) ")" }
                    (jobs_table(&data.rows))
                }
                (PreEscaped(report))
                p.live #live-status {}
            }
        },
    )))
}

fn progress_table(p: &SweepProgress) -> Markup {
    html! {
        table.progress #progress {
            thead { tr { th { "" } th { "Done" } th { "Running" } th { "Pending" } th { "Failed" } } }
            tbody {
                @for (what, id, c) in [("Full jobs", "jobs", &p.jobs), ("Rungs", "rungs", &p.rungs), ("MLM stages", "stages", &p.stages)] {
                    tr {
                        td { (what) }
                        td #{(id) "-done"} { (of_total(c)) }
                        td #{(id) "-running"} { (c.running) }
                        td #{(id) "-pending"} { (c.pending) }
                        td #{(id) "-failed"} { (c.failed) }
                    }
                }
            }
        }
        @if p.finished {
            p { "Finished; its jobs ran over " (duration_text(p.elapsed)) "." }
        } @else {
            p { "Running for " (duration_text(p.elapsed)) "; ETA " span #eta { (eta_text(p)) }
                " (at the pace of the jobs done so far, per running worker)." }
        }
    }
}

fn workers_table(running: &Progress) -> Markup {
    html! {
        h2 { "Workers" }
        @if running.running.is_empty() {
            p { "No job is running now." }
        } @else {
            table #workers {
                thead { tr { th { "Worker" } th { "Job" } th { "Running for" } th { "Heartbeat age" } } }
                tbody {
                    @for r in &running.running {
                        tr {
                            td { (r.worker) }
                            td { a href={"jobs/" (path_segment(&r.key))} { (r.key) } }
                            td { (r.running_for.map_or("?".into(), duration_text)) }
                            td { (r.heartbeat_age.map_or("?".into(), duration_text)) }
                        }
                    }
                }
            }
        }
    }
}

fn jobs_table(rows: &[JobResultRow]) -> Markup {
    let percent = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}", 100.0 * v));
    html! {
        table #jobs {
            thead { tr {
                th { "Job" } th { "Status" } th { "Init" } th { "Intermediate" } th { "Strategy" }
                th { "Freeze" } th { "Seed" } th { "lr" } th { "Val metric %" } th { "Test metric %" }
                th { "Train s" }
            } }
            tbody {
                @for j in rows {
                    tr.failed[j.status == WorkStatus::Failed] {
                        td { a href={"jobs/" (path_segment(&j.job_key))} { (j.job_key) } }
                        td { (j.status.as_str()) }
                        td { (j.init.as_str()) } td { (j.intermediate) } td { (j.strategy) }
                        td { (j.freeze) } td { (j.seed) } td { (format!("{:e}", j.lr)) }
                        td { (percent(j.val_metric)) } td { (percent(j.test_metric)) }
                        td { (j.train_seconds.map_or("-".into(), |s| format!("{s:.1}"))) }
                    }
                }
            }
        }
    }
}
