//! Grid expansion: the checked grid becomes cells (one configuration each: train size,
//! init, intermediate MLM with its freeze depth, freeze depth, strategy, pooling), minus
//! what the combination rules leave out; each cell then becomes one job per learning rate
//! and seed, with a key that hashes everything that changes its result. Cells that share an
//! intermediate-MLM stage share its key, so the stage runs once.

use std::collections::BTreeMap;

use thaw_train::{BackendKind, FineTuneSettings, MlmSettings, ModelConfig, Pooling};

use super::rules::{LeftOut, Rule, lp_ft_rung_caveats};
use super::setup::{PlannedSweep, setup};
use super::{JobPlan, Plan, StagePlan};
use crate::jobspec::{Corpus, DataSpec, JobSpec, ModelSpec, StageSpec};
use crate::keys::{job_key, stage_key};
use crate::resolve::{resolve_data, resolve_model};
use crate::spec::{Init, IntermediateSection, Keep, LrAxis, LrGroup, Source, SpecError, SweepFile};
use crate::strategies::NamedStrategy;
use crate::validate::{CheckedGrid, check_grid, check_lrs, check_name};

/// Everything resolved: model, data, corpora; then expanded into jobs and stages planned
/// for `backend` (part of every key).
pub fn build_plan(
    source: &Source,
    file: &SweepFile,
    backend: BackendKind,
) -> Result<Plan, SpecError> {
    check_name(source, &file.sweep.name)?;
    let (model, config) = resolve_model(source, file)?;
    let data = resolve_data(source, file, config.max_tokens())?;
    expand(source, file, model, &config, data, backend)
}

/// A (train size, init, intermediate MLM, MLM freeze) combination and the MLM stage it
/// trains from, if any: what the cells below it share.
#[derive(Clone)]
struct Branch<'a> {
    train_size: Option<usize>,
    init: Init,
    intermediate: &'a str,
    stage_key: Option<String>,
    mlm_freeze: Option<usize>,
}

/// One cell of the grid: what a job's result is grouped by, before learning rate and seed.
struct Cell<'a> {
    branch: Branch<'a>,
    freeze: usize,
    strategy: &'a NamedStrategy,
    pooling: Pooling,
}

/// The grid of `file` for `model` and `data`, planned for `backend`.
pub fn expand(
    source: &Source,
    file: &SweepFile,
    model: ModelSpec,
    config: &ModelConfig,
    data: DataSpec,
    backend: BackendKind,
) -> Result<Plan, SpecError> {
    let layers = config.num_layers();
    let grid = check_grid(source, file, layers, config.max_tokens())?;
    let mut notes = unused_section_notes(file, &grid);
    let expander = Expander { source, file, grid: &grid, model: &model, data: &data, backend };
    let Cells { cells, stages, left_out } = expander.cells(layers)?;
    let mut jobs = Vec::new();
    for cell in &cells {
        jobs.extend(expander.jobs(cell, layers)?);
    }
    notes.extend(left_out.notes());
    notes
        .extend(lp_ft_rung_caveats(&grid.strategies, grid.search.as_ref().and_then(|s| s.halving)));
    if jobs.is_empty() {
        return Err(source.error(
            None,
            format!("the grid expands to no jobs after the rules: {}", notes.join("; ")),
        ));
    }
    let planned = PlannedSweep {
        model: &model,
        data: &data,
        grid: &grid,
        notes: &notes,
        grid_jobs: jobs.len(),
    };
    let setup = setup(source, file, &planned)?;
    Ok(Plan {
        sweep: file.sweep.name.get_ref().clone(),
        model,
        data,
        stages: stages.into_values().collect(),
        jobs,
        notes,
        setup,
        keep: file.train.keep,
        search: grid.search,
        backend,
    })
}

/// Sections the sweep file defines but the grid does not list: they do not run, and the
/// plan says so.
fn unused_section_notes(file: &SweepFile, grid: &CheckedGrid) -> Vec<String> {
    let mut notes = Vec::new();
    for name in file.strategy.keys() {
        let listed = grid
            .strategies
            .iter()
            .any(|s| s.name == *name || s.name.starts_with(&format!("{name}+")));
        if !listed {
            notes.push(format!(
                "[strategy.{name}] is defined but not in grid.strategy; it does not run"
            ));
        }
    }
    for name in file.intermediate.keys() {
        if !grid.intermediates.iter().any(|(n, _)| n == name) {
            notes.push(format!(
                "[intermediate.{name}] is defined but not in grid.intermediate; it does not run"
            ));
        }
    }
    let scratch = &file.scratch;
    let scratch_given = [&scratch.vocab_size, &scratch.layers, &scratch.hidden, &scratch.heads]
        .iter()
        .any(|v| v.span().end > 0);
    if !file.grid.init.contains(&Init::ScratchOwnVocab) && scratch_given {
        notes.push("[scratch] sets the size of init = \"scratch-own-vocab\", which grid.init does not list; it does not run".into());
    }
    notes
}

/// The cells the rules keep, in plan order, the MLM stages they need (by key) and the jobs
/// the rules left out.
struct Cells<'a> {
    cells: Vec<Cell<'a>>,
    stages: BTreeMap<String, StagePlan>,
    left_out: LeftOut,
}

/// What expansion reads, in one place.
struct Expander<'a> {
    source: &'a Source,
    file: &'a SweepFile,
    grid: &'a CheckedGrid,
    model: &'a ModelSpec,
    data: &'a DataSpec,
    backend: BackendKind,
}

impl<'a> Expander<'a> {
    /// Every cell the rules keep, with the MLM stages they need and what the rules left out.
    fn cells(&self, layers: usize) -> Result<Cells<'a>, SpecError> {
        let grid = self.grid;
        let (mut cells, mut stages, mut left_out) =
            (Vec::new(), BTreeMap::new(), LeftOut::default());
        for &train_size in &grid.train_sizes {
            for &init in &self.file.grid.init {
                for (intermediate, corpus) in &grid.intermediates {
                    let mlm_freezes: Vec<Option<usize>> = match corpus {
                        None => vec![None],
                        Some(_) => {
                            self.file.grid.mlm_freeze.iter().map(|k| Some(*k.get_ref())).collect()
                        }
                    };
                    for mlm_freeze in mlm_freezes {
                        let branch_rule = Rule::for_branch(
                            init,
                            corpus.is_some(),
                            self.file.grid.scratch_intermediate,
                        );
                        if let Some(rule) = branch_rule {
                            for &freeze in &grid.freeze_depths {
                                left_out.add(
                                    rule,
                                    self.jobs_per_cell(init, freeze, layers)?
                                        * grid.strategies.len(),
                                );
                            }
                            continue;
                        }
                        let stage_key = match (corpus, mlm_freeze) {
                            (Some(corpus), Some(k)) => {
                                Some(self.stage(&mut stages, intermediate, corpus, init, k)?)
                            }
                            _ => None,
                        };
                        let branch =
                            Branch { train_size, init, intermediate, stage_key, mlm_freeze };
                        self.branch_cells(&branch, layers, &mut cells, &mut left_out)?;
                    }
                }
            }
        }
        Ok(Cells { cells, stages, left_out })
    }

    /// The cells of one (train size, init, intermediate, MLM freeze) branch: every freeze
    /// depth, strategy and pooling the rules keep.
    fn branch_cells(
        &self,
        branch: &Branch<'a>,
        layers: usize,
        cells: &mut Vec<Cell<'a>>,
        left_out: &mut LeftOut,
    ) -> Result<(), SpecError> {
        let grid = self.grid;
        for &freeze in &grid.freeze_depths {
            for named in &grid.strategies {
                let rule = Rule::for_cell(
                    branch.init,
                    freeze,
                    layers,
                    &named.strategy,
                    self.file.grid.scratch_freeze,
                );
                if let Some(rule) = rule {
                    left_out.add(rule, self.jobs_per_cell(branch.init, freeze, layers)?);
                    continue;
                }
                for &pooling in &grid.poolings {
                    cells.push(Cell { branch: branch.clone(), freeze, strategy: named, pooling });
                }
            }
        }
        Ok(())
    }

    /// Jobs one (init, depth) expands to for each strategy: every pooling, lr and seed.
    fn jobs_per_cell(&self, init: Init, freeze: usize, layers: usize) -> Result<usize, SpecError> {
        Ok(self.lrs(init, freeze, layers)?.len() * self.grid.poolings.len() * self.grid.seeds.len())
    }

    /// The learning rates for one (init, depth), from the grid or the defaults.
    fn lrs(&self, init: Init, freeze: usize, layers: usize) -> Result<Vec<f64>, SpecError> {
        let group = LrGroup::of(init, freeze, layers);
        let Some(axis) = &self.file.grid.lr else {
            return Ok(match &self.file.train.lr {
                Some(lr) => vec![*lr.get_ref()],
                None => group.default_lrs(),
            });
        };
        let lrs = match axis.get_ref() {
            LrAxis::Same(list) => list.clone(),
            LrAxis::ByGroup(groups) => groups.of(group).unwrap_or_else(|| group.default_lrs()),
        };
        check_lrs(self.source, axis, &lrs)?;
        Ok(lrs)
    }

    /// The key of the MLM stage an (intermediate, init, MLM freeze) branch trains from,
    /// planned once however many cells share it.
    fn stage(
        &self,
        stages: &mut BTreeMap<String, StagePlan>,
        intermediate: &str,
        corpus: &Corpus,
        init: Init,
        mlm_freeze: usize,
    ) -> Result<String, SpecError> {
        let default = IntermediateSection::default();
        let section = self.file.intermediate.get(intermediate).map_or(&default, |s| s.get_ref());
        let spec = StageSpec {
            name: intermediate.to_string(),
            model: self.model.clone(),
            data: self.data.clone(),
            corpus: corpus.clone(),
            init,
            seed: section.seed,
            settings: mlm_settings(section, self.data, mlm_freeze),
            backend: self.backend,
        };
        let key = stage_key(&spec);
        if let Some(same) = stages.get(&key).filter(|s| s.spec.name != spec.name) {
            return Err(self.source.error(None, format!(
                "[intermediate.{}] and [intermediate.{}] describe the same stage (same corpus and settings); keep one of them",
                same.spec.name, spec.name
            )));
        }
        stages.entry(key.clone()).or_insert(StagePlan { key: key.clone(), spec, mlm_freeze });
        Ok(key)
    }

    /// A cell's jobs: one per learning rate and seed, in that order.
    fn jobs(&self, cell: &Cell, layers: usize) -> Result<Vec<JobPlan>, SpecError> {
        let branch = &cell.branch;
        let mut jobs = Vec::new();
        for lr in self.lrs(branch.init, cell.freeze, layers)? {
            for &seed in &self.grid.seeds {
                let spec = JobSpec {
                    model: self.model.clone(),
                    data: self.data.clone(),
                    train_size: branch.train_size,
                    init: branch.init,
                    intermediate: branch.intermediate.to_string(),
                    stage_key: branch.stage_key.clone(),
                    freeze: cell.freeze,
                    seed,
                    settings: self.trainer(lr, cell.pooling, cell.strategy),
                    prefix_cache_mb: self.file.cache.prefix_mb,
                    keep_weights: self.file.train.keep != Keep::None,
                    rung: None,
                    backend: self.backend,
                    scratch_model: (branch.init == Init::ScratchOwnVocab)
                        .then(|| self.grid.scratch_model.clone()),
                };
                jobs.push(JobPlan {
                    key: job_key(&spec),
                    spec,
                    mlm_freeze: branch.mlm_freeze,
                    lr,
                    pooling: cell.pooling,
                    strategy: cell.strategy.name.clone(),
                });
            }
        }
        Ok(jobs)
    }

    fn trainer(&self, lr: f64, pooling: Pooling, named: &NamedStrategy) -> FineTuneSettings {
        let train = &self.file.train;
        FineTuneSettings {
            epochs: *train.epochs.get_ref(),
            batch_size: *train.batch_size.get_ref(),
            lr,
            weight_decay: train.weight_decay,
            warmup_ratio: train.warmup_ratio,
            max_grad_norm: train.max_grad_norm,
            pooling,
            strategy: named.strategy.clone(),
            metric: self.data.metric,
        }
    }
}

fn mlm_settings(section: &IntermediateSection, data: &DataSpec, freeze: usize) -> MlmSettings {
    MlmSettings {
        steps: section.steps,
        batch_size: section.batch_size,
        lr: section.lr,
        weight_decay: section.weight_decay,
        warmup_ratio: section.warmup_ratio,
        mask_prob: section.mask_prob,
        freeze,
        max_length: section.max_length.unwrap_or(data.max_length),
        head_warmup_steps: section.head_warmup_steps,
        head_warmup_lr: section.head_warmup_lr,
        ..MlmSettings::default()
    }
}
