//! Short fine-tuning probes: every cell of the grid that needs no MLM stage, at each of its
//! learning rates, on its first seed, trained for one epoch (LP-FT: its head epochs, then one)
//! on a fraction of its training set, or for more epochs on all of it where the budget allows.
//! Only validation is read (never the test split). A probe gives the cell's early validation
//! metric, its speed and how hard the task pulls on each of its layers (the
//! gradient-to-weight norm ratios), at a small share of the grid's cost.

use std::collections::BTreeMap;

use anyhow::Result;
use thaw_analysis::CellKey;
use thaw_train::{BackendKind, Event, Observer, Strategy, Unfreezing};

use crate::inputs::{Caches, fine_tune_as, fine_tune_job, start_of};
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
    /// Validation metric and loss at the probe's best epoch.
    pub metric: f64,
    pub loss: f64,
    pub examples: usize,
    /// Seconds per training example of the probe (its forward and backward passes).
    pub seconds_per_example: f64,
    /// Seconds one evaluation of validation took.
    pub eval_seconds: f64,
    /// Seconds the frozen prefix took (0 when none).
    pub prefix_seconds: f64,
    /// Per encoder layer, the gradient-to-weight norm ratio averaged over the probe's steps
    /// (None: the layer stayed frozen).
    pub gradient_ratios: Vec<Option<f64>>,
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

/// How much each probe trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeBudget {
    /// The share of its cell's training set.
    pub fraction: f64,
    /// Epochs over it (at most the cell's own; LP-FT at least its head epochs and one).
    pub epochs: usize,
}

/// The probes' budget for `plan`: together they spend [`PROBE_SHARE`] of the grid's examples
/// × epochs.
pub fn probe_budget(plan: &Plan, train_examples: usize) -> ProbeBudget {
    let size = |spec: &JobSpec| spec.train_size.unwrap_or(train_examples) as f64;
    let grid: f64 = plan.jobs.iter().map(|j| size(&j.spec) * j.spec.settings.epochs as f64).sum();
    let probes: f64 = cells_to_probe(plan)
        .values()
        .map(|jobs| lrs_of(jobs).len() as f64 * size(&jobs[0].spec))
        .sum();
    budget_of(PROBE_SHARE * grid / probes.max(1.0))
}

/// `epochs_of_all`: how many epochs over every probe's whole training set the budget buys. It
/// goes first to more of each training set (one epoch on a fraction), then to more epochs: a
/// grid of many variants of few cells (MLM stages, seeds) can afford its cells' real schedules,
/// and a one-epoch reading misses cells that overtake later.
fn budget_of(epochs_of_all: f64) -> ProbeBudget {
    ProbeBudget {
        fraction: epochs_of_all.min(1.0),
        epochs: (epochs_of_all.floor() as usize).max(1),
    }
}

fn lrs_of(jobs: &[&JobPlan]) -> Vec<f64> {
    let mut lrs: Vec<f64> = jobs.iter().map(|j| j.lr).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    lrs
}

/// Runs every cell's probe (each lr, the cell's first seed) on its `budget`.
pub fn run_probes(
    plan: &Plan,
    budget: ProbeBudget,
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
            let spec = probe_spec(&job.spec, budget, train_examples);
            let mut probe_job = fine_tune_job(&spec, start_of(spec.init, None), BackendKind::Flex);
            probe_job.measure_gradient_ratios = true;
            let mut ratios = RatioMeans::default();
            let trained = {
                let (forward, stop) = (&mut *observer.on_event, observer.stop);
                let mut collect = |event: &Event| match event {
                    Event::GradientRatios { by_layer, .. } => ratios.add(by_layer),
                    other => forward(other),
                };
                let mut observer = Observer { on_event: &mut collect, stop };
                fine_tune_as(&spec, &probe_job, &mut caches, &mut observer)?
            };
            let o = &trained.outcome;
            // The cell's first lr computes the frozen prefix, the others reuse it.
            prefix_seconds = prefix_seconds.max(o.prefix_seconds);
            let examples = spec.train_size.unwrap_or(train_examples);
            let epochs = spec.settings.epochs as f64;
            let probe = Probe {
                cell: cell.clone(),
                lr,
                metric: o.validation.metric,
                loss: o.validation.loss,
                examples,
                seconds_per_example: o.train_seconds / (examples as f64 * epochs).max(1.0),
                eval_seconds: o.eval_seconds / epochs,
                prefix_seconds: o.prefix_seconds,
                gradient_ratios: ratios.means(),
            };
            // The trainer's rule for epochs: the higher metric, equal metrics the lower loss.
            let better = |b: &Probe| {
                probe.metric > b.metric || (probe.metric == b.metric && probe.loss < b.loss)
            };
            if best.as_ref().is_none_or(better) {
                best = Some(probe);
            }
        }
        let mut best = best.expect("a cell has an lr");
        best.prefix_seconds = prefix_seconds;
        probes.push(best);
    }
    Ok(probes)
}

/// Each layer's gradient-to-weight ratio summed over the steps it trained in.
#[derive(Default)]
struct RatioMeans {
    sums: Vec<(f64, usize)>,
}

impl RatioMeans {
    fn add(&mut self, by_layer: &[Option<f64>]) {
        self.sums.resize(self.sums.len().max(by_layer.len()), (0.0, 0));
        for (sum, ratio) in self.sums.iter_mut().zip(by_layer) {
            if let Some(r) = ratio {
                *sum = (sum.0 + r, sum.1 + 1);
            }
        }
    }

    fn means(&self) -> Vec<Option<f64>> {
        self.sums.iter().map(|&(sum, n)| (n > 0).then(|| sum / n as f64)).collect()
    }
}

/// `spec` cut to the budget's epochs on its fraction of the training set, validation only.
fn probe_spec(spec: &JobSpec, budget: ProbeBudget, train_examples: usize) -> JobSpec {
    let full = spec.train_size.unwrap_or(train_examples);
    let n = ((full as f64 * budget.fraction).round() as usize)
        .clamp(MIN_PROBE_EXAMPLES.min(full), full);
    let epochs = probe_epochs(&spec.settings.strategy, budget.epochs, spec.settings.epochs);
    let mut probe = spec.clone();
    probe.train_size = Some(n);
    probe.settings.epochs = epochs;
    probe.rung = Some(epochs);
    probe.keep_weights = false;
    probe
}

/// A probe's epochs: the budget's, at most the cell's own, and for LP-FT at least its head
/// epochs and one epoch of fine-tuning after them (its probe needs both stages).
fn probe_epochs(strategy: &Strategy, budget: usize, cell: usize) -> usize {
    let least = match strategy.unfreezing {
        Unfreezing::LpFt { head_epochs, .. } => head_epochs + 1,
        _ => 1,
    };
    budget.min(cell).max(least)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layers_ratio_is_averaged_over_the_steps_it_trained_in() {
        let mut means = RatioMeans::default();
        means.add(&[None, None, Some(0.5)]);
        means.add(&[None, Some(0.2), Some(1.5)]);
        assert_eq!(means.means(), vec![None, Some(0.2), Some(1.0)]);
    }

    #[test]
    fn the_budget_buys_more_of_each_training_set_first_then_more_epochs() {
        assert_eq!(budget_of(0.3), ProbeBudget { fraction: 0.3, epochs: 1 });
        assert_eq!(budget_of(1.9), ProbeBudget { fraction: 1.0, epochs: 1 });
        assert_eq!(budget_of(3.15), ProbeBudget { fraction: 1.0, epochs: 3 });
        assert_eq!(probe_epochs(&Strategy::default(), 3, 2), 2, "never past the cell's own");
    }

    #[test]
    fn a_probe_trains_one_epoch_and_lp_ft_its_head_epochs_then_one() {
        assert_eq!(probe_epochs(&Strategy::default(), 1, 3), 1);
        let gradual = Strategy {
            unfreezing: Unfreezing::Gradual { every_steps: Some(8) },
            ..Strategy::default()
        };
        assert_eq!(probe_epochs(&gradual, 1, 3), 1);
        let lp_ft = Strategy {
            unfreezing: Unfreezing::LpFt { head_epochs: 2, head_lr: 3e-3 },
            ..Strategy::default()
        };
        assert_eq!(probe_epochs(&lp_ft, 1, 3), 3, "LP-FT refuses head_epochs >= epochs");
    }
}
