//! `/`: every sweep in the database with its progress, elapsed time and ETA.

use anyhow::Result;
use maud::{Markup, html};
use thaw_store::Store;

use crate::layout::{database_text, page, sweep_href};
use crate::progress::{SweepProgress, duration_text, eta_text, of_total};

pub async fn render(store: &Store) -> Result<Markup> {
    let sweeps = store.sweeps().await?;
    let mut rows = Vec::new();
    for sweep in &sweeps {
        rows.push((sweep, SweepProgress::load(store, sweep).await?));
    }
    let live = rows.iter().any(|(_, (p, _))| !p.finished);
    Ok(page(
        "Sweeps",
        live,
        html! {
            h1 { "Sweeps" }
            p.muted { (database_text(store)) }
            div #live {
                @if rows.is_empty() {
                    p { "This database holds no sweep yet: `thaw run FILE --db ...` registers one." }
                } @else {
                    table.progress {
                        thead { tr {
                            th { "Sweep" } th { "Model" } th { "Dataset" }
                            th { "Jobs done" } th { "Running" } th { "Pending" } th { "Failed" }
                            th { "Rungs done" } th { "Stages done" } th { "Elapsed" } th { "ETA" }
                        } }
                        tbody {
                            @for (sweep, (p, _)) in &rows {
                                tr {
                                    td { a href=(sweep_href(&sweep.name)) { (sweep.name) } }
                                    td { (sweep.model) } td { (sweep.dataset) }
                                    td { (of_total(&p.jobs)) } td { (p.jobs.running) }
                                    td { (p.jobs.pending) } td { (p.jobs.failed) }
                                    td { (of_total(&p.rungs)) } td { (of_total(&p.stages)) }
                                    td { (duration_text(p.elapsed)) }
                                    td { (eta_text(p)) }
                                }
                            }
                        }
                    }
                }
                p.live #live-status {}
            }
        },
    ))
}
