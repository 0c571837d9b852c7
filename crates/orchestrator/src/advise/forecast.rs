//! From the probes (and the frozen readings) to the forecast: each cell's predicted
//! validation metric, the cheapest cell within the validation split's sampling error of the
//! best, the reason in words, and the grid's cost estimated from the probes' speed.

use thaw_advise::signals::Signals;
use thaw_analysis::CellKey;
use thaw_analysis::advice::{
    CellForecast, DepthReading, Evidence, Forecast, rank_and_pick, tolerance,
};
use thaw_analysis::labels::cell_with_depth;

use super::probes::Probe;
use crate::plan::Plan;

/// What the forecast is made from.
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub probes: &'a [Probe],
    /// Per depth, on classification; None for the other tasks.
    pub readings: Option<&'a [Signals]>,
    pub validation_examples: usize,
    pub train_examples: usize,
    pub probe_fraction: f64,
    pub advisor_seconds: f64,
}

/// The probe standing in for `cell`: its own, or (an MLM cell) its counterpart's without MLM.
fn stand_in<'a>(probes: &'a [Probe], cell: &CellKey) -> Option<(&'a Probe, Evidence)> {
    if let Some(own) = probes.iter().find(|p| &p.cell == cell) {
        return Some((own, Evidence::Probe));
    }
    let plain = CellKey { intermediate: "none".into(), mlm_freeze: None, ..cell.clone() };
    probes.iter().find(|p| p.cell == plain).map(|p| (p, Evidence::AsWithoutMlm))
}

pub fn forecast(inputs: &Inputs) -> Forecast {
    let plan = inputs.plan;
    let mut cells: Vec<CellForecast> = Vec::new();
    let mut grid_seconds = 0.0;
    for job in plan.jobs.iter().filter(|j| j.spec.rung.is_none()) {
        let key = job.cell_key();
        let Some((probe, evidence)) = stand_in(inputs.probes, &key) else { continue };
        let job_seconds = probe.job_seconds(&job.spec, inputs.train_examples);
        grid_seconds += job_seconds;
        if cells.iter().all(|c| c.cell != key) {
            cells.push(CellForecast {
                cell: key,
                num_layers: job.spec.num_layers() as i64,
                predicted: probe.metric,
                evidence,
                job_seconds,
                probe_lr: probe.lr,
                probe_examples: probe.examples,
            });
        }
    }
    let best = cells.iter().map(|c| c.predicted).fold(f64::NEG_INFINITY, f64::max);
    let tolerance = tolerance(best, inputs.validation_examples);
    let pick = rank_and_pick(&mut cells, tolerance);
    let mut forecast = Forecast {
        sweep: plan.sweep.clone(),
        metric: plan.data.metric,
        cells,
        pick,
        tolerance,
        reason: String::new(),
        advisor_seconds: inputs.advisor_seconds,
        grid_seconds,
        probe_fraction: inputs.probe_fraction,
        frozen: inputs.readings.map_or(Vec::new(), stored_readings),
    };
    forecast.reason = reason(&forecast, inputs);
    forecast
}

fn percent(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

/// Why the pick, in words: what the probes measured, what counts as equal, what it saves,
/// and what the frozen features say.
fn reason(forecast: &Forecast, inputs: &Inputs) -> String {
    let (best, pick) = (&forecast.cells[0], forecast.picked());
    let label = |c: &CellForecast| cell_with_depth(&c.cell, c.num_layers);
    let listed: Vec<String> = forecast
        .cells
        .iter()
        .filter(|c| c.evidence == Evidence::Probe)
        .map(|c| {
            let lr = thaw_analysis::cells::format_lr(c.probe_lr);
            format!(
                "{} {} (lr {lr}, {} examples)",
                label(c),
                percent(c.predicted),
                c.probe_examples
            )
        })
        .collect();
    let mut out = format!(
        "Short probes (one epoch on {:.0} % of each cell's training examples, one seed, each learning rate of the cell, the best shown) \
         read validation {}: {}.",
        100.0 * inputs.probe_fraction,
        forecast.metric.title(),
        listed.join(", ")
    );
    if pick.cell == best.cell {
        out.push_str(&format!(
            " Recommended: {}, the best predicted; no cheaper cell comes within {:.1} points (the validation split's sampling error).",
            label(pick),
            100.0 * forecast.tolerance
        ));
    } else {
        out.push_str(&format!(
            " Recommended: {}, within {:.1} points (the validation split's sampling error) of the best predicted, {} ({}), at {:.1}x less training time per job.",
            label(pick),
            100.0 * forecast.tolerance,
            label(best),
            percent(best.predicted),
            best.job_seconds / pick.job_seconds.max(1e-9)
        ));
    }
    let floor = forecast.cells.iter().map(|c| c.predicted).fold(f64::INFINITY, f64::min);
    let stuck = forecast.cells.iter().filter(|c| c.predicted == floor).count();
    if stuck > 1 {
        out.push_str(&format!(
            " {stuck} cells' probes read exactly {} (they had not left their starting plateau in one short epoch), so the forecast cannot order them: trust it less than its ranking suggests.",
            percent(floor)
        ));
    }
    if let Some(readings) = inputs.readings {
        out.push(' ');
        out.push_str(&features_sentence(readings));
    }
    if forecast.cells.iter().any(|c| c.evidence == Evidence::AsWithoutMlm) {
        out.push_str(
            " Intermediate-MLM cells are not probed (the advice trains no MLM stage): each is taken as its cell without MLM.",
        );
    }
    out
}

fn stored_readings(readings: &[Signals]) -> Vec<DepthReading> {
    readings
        .iter()
        .enumerate()
        .map(|(depth, s)| DepthReading {
            depth,
            logme: s.logme,
            h_score: s.h_score,
            knn_accuracy: s.knn_accuracy,
            probe_accuracy: s.probe_accuracy,
        })
        .collect()
}

/// What the frozen features say: where the probe and kNN peak, and what head only reads.
fn features_sentence(readings: &[Signals]) -> String {
    let peak = |value: fn(&Signals) -> f64| {
        (0..readings.len()).max_by(|&a, &b| value(&readings[a]).total_cmp(&value(&readings[b])))
    };
    let (Some(probe), Some(knn)) = (peak(|s| s.probe_accuracy), peak(|s| s.knn_accuracy)) else {
        return String::new();
    };
    let top = readings.len() - 1;
    format!(
        "Frozen features: a linear probe peaks at depth {probe} ({}), kNN at depth {knn} ({}); head only reads depth {top} (probe {}, kNN {}).",
        percent(readings[probe].probe_accuracy),
        percent(readings[knn].knn_accuracy),
        percent(readings[top].probe_accuracy),
        percent(readings[top].knn_accuracy)
    )
}
