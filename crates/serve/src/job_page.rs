//! `/sweeps/NAME/jobs/KEY`: one job: what it runs (its spec), who ran it and when, every
//! epoch, its result, and a failed job's error.

use anyhow::Result;
use maud::{Markup, html};
use thaw_store::{EpochRow, JobResultRow, Store, WorkKind};

use crate::layout::{database_text, page, sweep_href};
use crate::progress::duration_text;

/// None when sweep `sweep` has no job `key`.
pub async fn render(store: &Store, sweep: &str, key: &str) -> Result<Option<Markup>> {
    let Some(job) = store.job_results(sweep).await?.into_iter().find(|j| j.job_key == key) else {
        return Ok(None);
    };
    let spec = store.spec_json(WorkKind::Job, key).await?.unwrap_or_default();
    let spec = serde_json::from_str::<serde_json::Value>(&spec)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(spec);
    let claim = store.job_claim(key).await?;
    let epochs: Vec<EpochRow> =
        store.epochs(sweep).await?.into_iter().filter(|e| e.job_key == key).collect();
    let live = job.status.is_unfinished();
    Ok(Some(page(
        key,
        live,
        html! {
            h1 { "Job " (key) }
            p.muted { "Sweep " a href=(sweep_href(sweep)) { (sweep) } ". " (database_text(store)) }
            div #live {
                dl.facts {
                    dt { "Status" } dd #status { (job.status.as_str()) }
                    dt { "Attempts" } dd { (job.attempts) }
                    @if let Some(c) = &claim {
                        dt { "Worker" } dd { (c.worker.as_deref().unwrap_or("-")) }
                        @if let (Some(start), Some(end)) = (c.started_at, c.finished_at) {
                            dt { "Took" } dd { (duration_text(end - start)) }
                        }
                        @if job.status.is_unfinished() {
                            @if let Some(age) = c.heartbeat_age {
                                dt { "Heartbeat" } dd { (duration_text(age)) " ago" }
                            }
                        }
                    }
                    @if let Some(error) = &job.error {
                        dt { "Error" } dd.failed #error { (error) }
                    }
                }
                h2 { "Result" }
                (result_table(&job))
                h2 { "Epochs" }
                (epochs_table(&epochs))
                h2 { "Spec" }
                pre { (spec) }
                p.live #live-status {}
            }
        },
    )))
}

fn result_table(j: &JobResultRow) -> Markup {
    let number = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
    let facts: [(&str, String); 13] = [
        ("Init", j.init.as_str().into()),
        ("Intermediate", j.intermediate.clone()),
        ("Strategy", j.strategy.clone()),
        ("Freeze", format!("{} of {} layers", j.freeze, j.num_layers)),
        ("Seed", j.seed.to_string()),
        ("lr", format!("{:e}", j.lr)),
        ("Best epoch", j.best_epoch.map_or("-".into(), |e| e.to_string())),
        ("Metric", j.metric.clone().unwrap_or_else(|| "-".into())),
        ("Validation metric / loss", format!("{} / {}", number(j.val_metric), number(j.val_loss))),
        ("Test metric / loss", format!("{} / {}", number(j.test_metric), number(j.test_loss))),
        (
            "Test accuracy / macro-F1",
            format!("{} / {}", number(j.test_accuracy), number(j.test_macro_f1)),
        ),
        ("Train seconds", number(j.train_seconds)),
        ("Backend", j.backend.clone().unwrap_or_else(|| "-".into())),
    ];
    html! {
        table #result { tbody { @for (what, value) in &facts { tr { th { (what) } td { (value) } } } } }
    }
}

fn epochs_table(epochs: &[EpochRow]) -> Markup {
    let number = |v: f64| format!("{v:.4}");
    html! {
        @if epochs.is_empty() {
            p { "No epoch recorded yet." }
        } @else {
            table #epochs {
                thead { tr { th { "Epoch" } th { "Train loss" } th { "Val loss" } th { "Val metric" } th { "Seconds" } } }
                tbody {
                    @for e in epochs {
                        tr {
                            td { (e.epoch) } td { (number(e.train_loss)) }
                            td { (number(e.val_loss)) } td { (number(e.val_metric)) }
                            td { (format!("{:.1}", e.seconds)) }
                        }
                    }
                }
            }
        }
    }
}
