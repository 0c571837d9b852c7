//! Short fine-tuning probes: every cell of the grid that needs no MLM stage, at each of its
//! learning rates, trained for one epoch (LP-FT: its head epochs, then one) on a fraction of
//! its training set (its first seed,
//! validation only: the test split is never read), so its early validation metric and its
//! speed can be read at a small share of the grid's cost.

use std::collections::BTreeMap;

use anyhow::Result;
use thaw_analysis::CellKey;
use thaw_train::{BackendKind, Observer, Strategy, Unfreezing};

use crate::inputs::{Caches, fine_tune_spec, start_of};
use crate::jobspec::JobSpec;
use crate::plan::{JobPlan, Plan};

/// The share of the grid's training (examples × epochs) the probes may spend.
pub const PROBE_SHARE: f64 = 0.05;
/// No probe trains on fewer examples than this (or than the cell's whole training set).
const MIN_PROBE_EXAMPLES: usize = 64;

/// One cell's probe, at its best learning rate on validation.
#[derive(Debug, Clone)]
pub struct Probe {
    pub cell: CellKey,
    pub lr: f64,
    /// Validation metric after the one short epoch.
    pub metric: f64,
    pub examples: usize,
    /// Seconds per training example of the probe (its forward and backward passes).
    pub seconds_per_example: f64,
    /// Seconds one evaluation of validation took.
    pub eval_seconds: f64,
    /// Seconds the frozen prefix took (0 when none).
    pub prefix_seconds: f64,
}

impl Probe {
    /// Seconds a full job of `spec` should take at this probe's speed.
    pub fn job_seconds(&self, spec: &JobSpec, train_examples: usize) -> f64 {
        let epochs = spec.settings.epochs as f64;
        let n = spec.train_size.unwrap_or(train_examples) as f64;
        self.seconds_per_example * n * epochs + self.eval_seconds * epochs + self.prefix_seconds
    }
}

/// The jobs of each cell the probes can run (no MLM stage), by cell.
pub fn cells_to_probe(plan: &Plan) -> BTreeMap<CellKey, Vec<&JobPlan>> {
    let mut cells: BTreeMap<CellKey, Vec<&JobPlan>> = BTreeMap::new();
    for job in plan.jobs.iter().filter(|j| j.spec.stage_key.is_none() && j.spec.rung.is_none()) {
        cells.entry(job.cell_key()).or_default().push(job);
    }
    cells
}

/// The fraction of each cell's training set a probe trains on, so that all probes together
/// spend [`PROBE_SHARE`] of the grid's examples × epochs.
pub fn probe_fraction(plan: &Plan, train_examples: usize) -> f64 {
    let size = |spec: &JobSpec| spec.train_size.unwrap_or(train_examples) as f64;
    let grid: f64 = plan.jobs.iter().map(|j| size(&j.spec) * j.spec.settings.epochs as f64).sum();
    let probes: f64 = cells_to_probe(plan)
        .values()
        .map(|jobs| lrs_of(jobs).len() as f64 * size(&jobs[0].spec))
        .sum();
    (PROBE_SHARE * grid / probes.max(1.0)).min(1.0)
}

fn lrs_of(jobs: &[&JobPlan]) -> Vec<f64> {
    let mut lrs: Vec<f64> = jobs.iter().map(|j| j.lr).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    lrs
}

/// Runs every cell's probe (each lr, the cell's first seed) on `fraction` of its training set.
pub fn run_probes(
    plan: &Plan,
    fraction: f64,
    train_examples: usize,
    observer: &mut Observer,
) -> Result<Vec<Probe>> {
    let mut caches = Caches::default();
    let mut probes = Vec::new();
    for (cell, jobs) in cells_to_probe(plan) {
        let seed = jobs.iter().map(|j| j.spec.seed).min().expect("a cell has jobs");
        let mut best: Option<Probe> = None;
        let mut prefix_seconds: f64 = 0.0;
        for lr in lrs_of(&jobs) {
            let job = jobs.iter().find(|j| j.lr == lr && j.spec.seed == seed).unwrap_or(&jobs[0]);
            let spec = probe_spec(&job.spec, fraction, train_examples);
            let start = start_of(spec.init, None);
            let trained = fine_tune_spec(&spec, start, BackendKind::Flex, &mut caches, observer)?;
            let o = &trained.outcome;
            // The cell's first lr computes the frozen prefix, the others reuse it.
            prefix_seconds = prefix_seconds.max(o.prefix_seconds);
            let examples = spec.train_size.unwrap_or(train_examples);
            let epochs = spec.settings.epochs as f64;
            let probe = Probe {
                cell: cell.clone(),
                lr,
                metric: o.validation.metric,
                examples,
                seconds_per_example: o.train_seconds / (examples as f64 * epochs).max(1.0),
                eval_seconds: o.eval_seconds / epochs,
                prefix_seconds: o.prefix_seconds,
            };
            if best.as_ref().is_none_or(|b| probe.metric > b.metric) {
                best = Some(probe);
            }
        }
        let mut best = best.expect("a cell has an lr");
        best.prefix_seconds = prefix_seconds;
        probes.push(best);
    }
    Ok(probes)
}

/// `spec` cut to one epoch on `fraction` of its training set, validation only. LP-FT keeps
/// its head epochs and gets one epoch of fine-tuning after them: its probe needs both stages.
fn probe_spec(spec: &JobSpec, fraction: f64, train_examples: usize) -> JobSpec {
    let full = spec.train_size.unwrap_or(train_examples);
    let n = ((full as f64 * fraction).round() as usize).clamp(MIN_PROBE_EXAMPLES.min(full), full);
    let epochs = probe_epochs(&spec.settings.strategy);
    let mut probe = spec.clone();
    probe.train_size = Some(n);
    probe.settings.epochs = epochs;
    probe.rung = Some(epochs);
    probe.keep_weights = false;
    probe
}

/// A probe's epochs: one, or for LP-FT its head epochs and one epoch of fine-tuning after them.
fn probe_epochs(strategy: &Strategy) -> usize {
    match strategy.unfreezing {
        Unfreezing::LpFt { head_epochs, .. } => head_epochs + 1,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_trains_one_epoch_and_lp_ft_its_head_epochs_then_one() {
        assert_eq!(probe_epochs(&Strategy::default()), 1);
        let gradual = Strategy {
            unfreezing: Unfreezing::Gradual { every_steps: Some(8) },
            ..Strategy::default()
        };
        assert_eq!(probe_epochs(&gradual), 1);
        let lp_ft = Strategy {
            unfreezing: Unfreezing::LpFt { head_epochs: 2, head_lr: 3e-3 },
            ..Strategy::default()
        };
        assert_eq!(probe_epochs(&lp_ft), 3, "LP-FT refuses head_epochs >= epochs");
    }
}
