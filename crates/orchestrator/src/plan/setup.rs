//! The sweep's setup as the report shows it, worked out at plan time: the split sizes and
//! majority-class baselines (from reading the data once, so bad rows fail before any job
//! runs), the grid as configured, the trainer, the rules and the search.

use thaw_analysis::setup::{
    GridSetup, HalvingSetup, ScratchSize, SearchSetup, SeedRange, TrainerSetup,
};
use thaw_analysis::{Baselines, MajorityBaseline, Setup};
use thaw_metrics::classification::accuracy_and_macro_f1;
use thaw_train::data::Example;

use crate::jobspec::{DataSpec, ModelSpec};
use crate::spec::{Init, Source, SpecError, SweepFile};
use crate::validate::CheckedGrid;

/// The splits' sizes as jobs will see them, and their majority-class baselines.
struct DataSummary {
    train: usize,
    validation: usize,
    test: usize,
    baselines: Baselines,
}

/// Always predicting the most frequent label of `split` (ties: the first label in order).
fn majority_baseline(split: &[Example], labels: &[String]) -> MajorityBaseline {
    let truth: Vec<usize> =
        split.iter().map(|e| labels.iter().position(|l| *l == e.label).unwrap_or(0)).collect();
    let mut counts = vec![0usize; labels.len()];
    for &t in &truth {
        counts[t] += 1;
    }
    let majority =
        (0..labels.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
    let (accuracy, macro_f1) =
        accuracy_and_macro_f1(&vec![majority; truth.len()], &truth, labels.len());
    MajorityBaseline {
        label: labels.get(majority).cloned().unwrap_or_default(),
        accuracy,
        macro_f1,
        examples: truth.len(),
    }
}

/// Reads the data once at plan time: bad rows fail here, before any job runs, and the
/// report gets the split sizes and the majority-class baselines.
fn summarise_data(
    source: &Source,
    data: &DataSpec,
    sizes: &[Option<usize>],
) -> Result<DataSummary, SpecError> {
    let splits = data.load(None).map_err(|e| source.error(None, format!("data: {e}")))?;
    let largest = sizes.iter().flatten().max().copied();
    if let Some(n) = largest.filter(|&n| n > splits.train.len()) {
        return Err(source.error(
            None,
            format!(
                "grid.train_size {n} is larger than the {} training examples of {}",
                splits.train.len(),
                data.name
            ),
        ));
    }
    Ok(DataSummary {
        train: largest.unwrap_or(splits.train.len()),
        validation: splits.validation.len(),
        test: splits.test.len(),
        baselines: Baselines {
            validation: majority_baseline(&splits.validation, &splits.labels),
            test: majority_baseline(&splits.test, &splits.labels),
        },
    })
}

/// What the planner knows besides the grid when it records the setup.
pub struct PlannedSweep<'a> {
    pub model: &'a ModelSpec,
    pub data: &'a DataSpec,
    pub grid: &'a CheckedGrid,
    pub notes: &'a [String],
    /// Jobs of the full grid (the search runs a subset).
    pub grid_jobs: usize,
}

/// The setup of a planned sweep; the machine and backend are added at registration.
pub fn setup(
    source: &Source,
    file: &SweepFile,
    planned: &PlannedSweep,
) -> Result<Setup, SpecError> {
    let grid = planned.grid;
    let summary = summarise_data(source, planned.data, &grid.train_sizes)?;
    Ok(Setup {
        model: Some(planned.model.origin.clone()),
        dataset: Some(planned.data.name.clone()),
        train_examples: Some(summary.train),
        validation_examples: Some(summary.validation),
        test_examples: Some(summary.test),
        baseline: Some(summary.baselines),
        max_length: Some(planned.data.max_length),
        grid: Some(grid_setup(file, grid)),
        scratch_model: file.grid.init.contains(&Init::ScratchOwnVocab).then_some(ScratchSize {
            vocab_size: grid.scratch_model.vocab_size,
            layers: grid.scratch_model.layers,
            hidden: grid.scratch_model.hidden,
            heads: grid.scratch_model.heads,
            lowercase: grid.scratch_model.lowercase,
        }),
        trainer: Some(TrainerSetup {
            epochs: *file.train.epochs.get_ref(),
            batch_size: *file.train.batch_size.get_ref(),
            weight_decay: file.train.weight_decay,
            warmup_ratio: file.train.warmup_ratio,
            max_grad_norm: file.train.max_grad_norm,
            keep: file.train.keep.as_str().into(),
        }),
        description: file.sweep.description.clone(),
        rules: (!planned.notes.is_empty()).then(|| planned.notes.join("; ")),
        search: grid.search.as_ref().map(|s| SearchSetup {
            halving: s.halving.map(|h| HalvingSetup {
                rate: h.rate,
                rung_epochs: h.rung_epochs,
                rung_seeds: h.seeds,
            }),
            seeds: s.race.map(|r| SeedRange { min: r.min, max: r.max }),
            budget_minutes: s.budget_seconds.map(|b| b / 60.0),
            grid_jobs: planned.grid_jobs,
        }),
        hardware: None,
        backend: None,
    })
}

fn grid_setup(file: &SweepFile, grid: &CheckedGrid) -> GridSetup {
    GridSetup {
        freeze: grid.freeze_depths.clone(),
        init: file.grid.init.iter().map(|i| i.as_str().to_string()).collect(),
        intermediate: grid.intermediates.iter().map(|(n, _)| n.clone()).collect(),
        seeds: grid.seeds.clone(),
        train_size: grid.train_sizes.clone(),
        pooling: grid.poolings.iter().map(|p| p.as_str().to_string()).collect(),
        strategy: grid
            .strategies
            .iter()
            .map(|s| {
                if s.strategy.is_plain() {
                    s.name.clone()
                } else {
                    format!("{} ({})", s.name, s.strategy.describe())
                }
            })
            .collect(),
    }
}
