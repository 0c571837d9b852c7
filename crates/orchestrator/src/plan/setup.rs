//! The sweep's setup as the report shows it, worked out at plan time: the split sizes and
//! majority-class baselines (from reading the data once, so bad rows fail before any job
//! runs), the grid as configured, the trainer, the rules and the search.

use thaw_analysis::setup::{
    GridSetup, HalvingSetup, ScratchSize, SearchSetup, SeedRange, TrainerSetup,
};
use thaw_analysis::{Baselines, MajorityBaseline, Setup};
use thaw_metrics::TaskScores;
use thaw_metrics::multi_label::text_blind_prediction;
use thaw_train::data::{Example, Metric, Splits, Targets};
use thaw_train::objective::score;

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

/// The task's trivial predictor on `split` (see [`MajorityBaseline`]), scored on `metric`.
fn majority_baseline(splits: &Splits, split: &[Example], metric: Metric) -> MajorityBaseline {
    let truth = splits.targets(split);
    let (label, scores) = match (&truth, splits.targets(&splits.train)) {
        (Targets::Classes(classes), _) => {
            let mut counts = vec![0usize; splits.labels.len()];
            for &c in classes {
                counts[c] += 1;
            }
            let majority =
                (0..counts.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
            let predicted = Targets::Classes(vec![majority; classes.len()]);
            (splits.labels[majority].clone(), score(&splits.labels, &truth, &predicted))
        }
        (Targets::Scores(scores), Targets::Scores(train)) => {
            let mean = train.iter().sum::<f64>() / train.len().max(1) as f64;
            let predicted = Targets::Scores(vec![mean; scores.len()]);
            (format!("the training mean {mean:.3}"), score(&splits.labels, &truth, &predicted))
        }
        (Targets::Tags(tags), _) => {
            let outside = splits.labels.iter().position(|l| l == "O").unwrap_or(0);
            let predicted = Targets::Tags(tags.iter().map(|t| vec![outside; t.len()]).collect());
            (splits.labels[outside].clone(), score(&splits.labels, &truth, &predicted))
        }
        (Targets::LabelSets(sets), Targets::LabelSets(train)) => {
            let Targets::LabelSets(validation) = splits.targets(&splits.validation) else {
                unreachable!("train and the other splits share a task")
            };
            let (row, threshold) = text_blind_prediction(&train, &validation);
            let yes: Vec<&str> =
                splits.labels.iter().zip(&row).filter(|(_, y)| **y).map(|(l, _)| &l[..]).collect();
            let label = match yes.as_slice() {
                [] => "no label".to_string(),
                some => format!(
                    "the same {} label{} for every text ('{}'; training frequency ≥ {threshold})",
                    some.len(),
                    if some.len() == 1 { "" } else { "s" },
                    some.join("', '")
                ),
            };
            let predicted = Targets::LabelSets(vec![row; sets.len()]);
            (label, score(&splits.labels, &truth, &predicted))
        }
        _ => unreachable!("train and the other splits share a task"),
    };
    let (scores, _) = scores;
    MajorityBaseline {
        label,
        metric_value: scores.get(metric).expect("the metric belongs to the task"),
        macro_f1: scores.get(Metric::MacroF1).unwrap_or(0.0),
        rmse: match scores {
            TaskScores::Regression { rmse, .. } => Some(rmse),
            _ => None,
        },
        metric,
        examples: split.len(),
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
            validation: majority_baseline(&splits, &splits.validation, data.metric),
            test: majority_baseline(&splits, &splits.test, data.metric),
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
        task: planned.data.task,
        metric: planned.data.metric,
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
