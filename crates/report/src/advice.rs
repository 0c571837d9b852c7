//! The forecast `thaw advise` stored, beside what the sweep measured: each cell's predicted
//! and measured rank, whether the pick lies in the verdict's best group, and Kendall's tau.

use std::fmt::Write;

use thaw_analysis::Cell;
use thaw_analysis::advice::{Forecast, hindsight};
use thaw_analysis::labels::cell_with_depth;

use crate::SweepData;
use crate::recommend::best_group;

/// The section, when the sweep has a stored forecast.
pub fn section(data: &SweepData, cells: &[Cell]) -> String {
    let Some(forecast) = &data.advice else { return String::new() };
    let measured: Vec<_> =
        cells.iter().filter_map(|c| Some((c.key.clone(), c.validation_metric()?.mean))).collect();
    let refs: Vec<&Cell> = cells.iter().collect();
    let best = best_group(&refs);
    let h = hindsight(forecast, &measured, &best);
    let metric = forecast.metric.title();
    let mut md = format!(
        "## The advice before the sweep\n\n`thaw advise` forecast this sweep from frozen features and short probes of its cells. {}\n\n\
         It spent {:.0} s: {:.1} % of the {:.0} s the whole grid was estimated to train{}.\n\n\
         | Cell | Predicted validation {metric} | Predicted rank | Measured validation {metric} | Measured rank |\n|---|---|---|---|---|\n",
        forecast.reason,
        forecast.advisor_seconds,
        100.0 * forecast.compute_fraction(),
        forecast.grid_seconds,
        measured_share(forecast, worker_seconds(data)),
    );
    for c in &forecast.cells {
        let found = h.ranks.iter().find(|(k, _, _)| k == &c.cell);
        let value = measured.iter().find(|(k, _)| k == &c.cell).map(|(_, v)| *v);
        let _ = writeln!(
            md,
            "| {}{} | {:.1} % | {} | {} | {} |",
            cell_with_depth(&c.cell, c.num_layers),
            if c.cell == forecast.picked().cell { " (pick)" } else { "" },
            100.0 * c.predicted,
            found.map_or("-".into(), |(_, p, _)| p.to_string()),
            value.map_or("not run".into(), |v| format!("{:.1} %", 100.0 * v)),
            found.map_or("-".into(), |(_, _, m)| m.to_string()),
        );
    }
    let tau = h.kendall_tau.map_or("undefined (fewer than two cells measured)".into(), |t| {
        format!("{t:.2} over {} cells", h.ranks.len())
    });
    let _ = writeln!(
        md,
        "\nThe pick, *{}*, is {} the verdict's best group ({}). Kendall's tau between predicted and measured validation {metric}: {tau}.\n",
        cell_with_depth(&forecast.picked().cell, forecast.picked().num_layers),
        if h.hit { "**in**" } else { "**not in**" },
        if best.is_empty() {
            "no cell finished".to_string()
        } else {
            format!("{} cell{}", best.len(), if best.len() == 1 { "" } else { "s" })
        },
    );
    md
}

/// What the sweep's workers spent: its jobs (rungs included) and its MLM stages' training.
fn worker_seconds(data: &SweepData) -> f64 {
    data.job_seconds + data.stages.iter().filter_map(|s| s.train_seconds).sum::<f64>()
}

/// ", and N % of the worker time the sweep measured" when it has any.
fn measured_share(forecast: &Forecast, job_seconds: f64) -> String {
    if job_seconds <= 0.0 {
        return String::new();
    }
    format!(
        ", and {:.1} % of the {job_seconds:.0} s of worker time the sweep measured",
        100.0 * forecast.advisor_seconds / job_seconds
    )
}
