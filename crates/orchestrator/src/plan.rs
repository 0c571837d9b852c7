//! Grid expansion: a validated sweep file becomes a deterministic list of jobs with
//! stable keys, and the shared intermediate-MLM stages they depend on.
//!
//! Combination rules (reported by `thaw plan`, never applied silently):
//! - scratch init runs unfrozen (k = 0) only, unless `grid.scratch_freeze = true`:
//!   freezing random layers measures random features, not a fine-tuning strategy;
//! - scratch init runs without intermediate MLM, unless `grid.scratch_intermediate = true`;
//! - `grid.mlm_freeze` applies to jobs with an intermediate stage only.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use thaw_store::{Baselines, MajorityBaseline};
use thaw_train::data::Example;
use thaw_train::metrics::accuracy_and_macro_f1;
use thaw_train::{
    BackendKind, BertConfig, FineTuneSettings, MlmSettings, Pooling, ScratchModel, Strategy,
    Unfreezing,
};
use toml::Spanned;

use crate::jobspec::{Corpus, DataSpec, JobSpec, ModelSpec, StageSpec};
use crate::keys::{job_key, stage_key};
use crate::resolve::{resolve_corpus, resolve_data, resolve_model};
use crate::search::{Halving, SearchPlan};
use crate::spec::{
    FreezeAxis, Init, IntermediateSection, Keep, LrAxis, LrSearch, Source, SpecError, SweepFile,
    default_lrs,
};
use crate::strategies::strategies;

#[derive(Debug, Clone)]
pub struct StagePlan {
    pub key: String,
    pub spec: StageSpec,
    pub mlm_freeze: usize,
}

#[derive(Debug, Clone)]
pub struct JobPlan {
    pub key: String,
    pub spec: JobSpec,
    pub mlm_freeze: Option<usize>,
    pub lr: f64,
    pub pooling: Pooling,
    /// The strategy's name in the sweep file ("plain", "llrd-0.8", a `[strategy.NAME]`).
    pub strategy: String,
}

impl JobPlan {
    /// This job cut short after `epochs` epochs (on its own schedule): a halving rung.
    pub fn rung(&self, epochs: usize) -> JobPlan {
        let spec = JobSpec { rung: Some(epochs), keep_weights: false, ..self.spec.clone() };
        JobPlan { key: job_key(&spec), spec, ..self.clone() }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub sweep: String,
    pub model: ModelSpec,
    pub data: DataSpec,
    pub stages: Vec<StagePlan>,
    pub jobs: Vec<JobPlan>,
    /// Rules applied and combinations left out, with counts.
    pub notes: Vec<String>,
    /// What the report shows as the setup.
    pub setup: serde_json::Value,
    /// Which fine-tuned weights the sweep keeps (`[train] keep`).
    pub keep: Keep,
    /// `[search]`: halving and racing. None: every job of `jobs` runs.
    pub search: Option<SearchPlan>,
    /// What every job and stage runs on (part of their keys).
    pub backend: BackendKind,
}

impl Plan {
    /// What `thaw plan` prints: the model and data, the shared stages, the cells with their
    /// learning rates and job counts, the rule notes, and with `list_jobs` every job's key.
    pub fn describe(&self, list_jobs: bool) -> String {
        let mut out = format!(
            "sweep {}: model {} ({} layers), data {}, backend {}\n",
            self.sweep, self.model.origin, self.model.num_layers, self.data.name, self.backend
        );
        let stages = self.stages.len();
        out += &format!(
            "{} jobs, {stages} shared intermediate-MLM stage{}\n",
            self.jobs.len(),
            if stages == 1 { "" } else { "s" }
        );
        for stage in &self.stages {
            let users = self
                .jobs
                .iter()
                .filter(|j| j.spec.stage_key.as_deref() == Some(stage.key.as_str()))
                .count();
            out += &format!(
                "  stage {}  '{}' init={} mlm_freeze={} steps={}  -> serves {users} jobs\n",
                stage.key,
                stage.spec.name,
                stage.spec.init,
                stage.mlm_freeze,
                stage.spec.settings.steps
            );
        }
        let mut cells: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
        for j in &self.jobs {
            let cell = format!(
                "{:<10} {:<12} mlm_freeze={:<4} freeze={:<2} train_size={:<6} pooling={} strategy={}{}",
                j.spec.init.as_str(),
                j.spec.intermediate,
                j.mlm_freeze.map_or("-".into(), |k| k.to_string()),
                j.spec.freeze,
                train_size_text(j.spec.train_size),
                j.pooling.as_str(),
                j.strategy,
                Some(&j.spec.settings.strategy)
                    .filter(|s| !s.is_plain())
                    .map(|s| format!(" ({})", s.describe()))
                    .unwrap_or_default()
            );
            let entry = cells.entry(cell).or_default();
            if !entry.0.contains(&j.lr) {
                entry.0.push(j.lr);
            }
            entry.1 += 1;
        }
        out += &format!("cells ({}):\n", cells.len());
        for (cell, (lrs, n)) in &cells {
            let lrs: Vec<String> = lrs.iter().map(|lr| format!("{lr:e}")).collect();
            out += &format!("  {cell}  lr=[{}]  {n} jobs\n", lrs.join(", "));
        }
        if let Some(m) = self.jobs.iter().find_map(|j| j.spec.scratch_model.as_ref()) {
            out += &format!(
                "scratch-own-vocab: {} layers, hidden {}, {} heads, a vocabulary of up to {} WordPiece tokens learnt from each job's training text ({})\n",
                m.layers,
                m.hidden,
                m.heads,
                m.vocab_size,
                if m.lowercase { "lower-cased" } else { "case kept" }
            );
        }
        if let Some(search) = &self.search {
            out += &self.describe_search(search);
        }
        for note in &self.notes {
            out += &format!("note: {note}\n");
        }
        if list_jobs {
            for j in &self.jobs {
                out += &format!(
                    "  {} {} {} k={} strategy={} lr={:e} seed={} n={}\n",
                    j.key,
                    j.spec.init,
                    j.spec.intermediate,
                    j.spec.freeze,
                    j.strategy,
                    j.lr,
                    j.spec.seed,
                    train_size_text(j.spec.train_size)
                );
            }
        }
        out
    }

    /// The search's rules and the fewest and most jobs it can run, against the full grid.
    fn describe_search(&self, search: &SearchPlan) -> String {
        let mut cells: BTreeMap<String, (BTreeSet<u64>, BTreeSet<u64>)> = BTreeMap::new();
        for j in &self.jobs {
            let entry = cells.entry(format!("{:?}", crate::search::cell_key(j))).or_default();
            entry.0.insert(j.lr.to_bits());
            entry.1.insert(j.spec.seed);
        }
        let (mut fewest, mut most) = (0, 0);
        for (lrs, seeds) in cells.values() {
            let (lrs, seeds) = (lrs.len(), seeds.len());
            let min = search.race.map_or(seeds, |r| r.min.min(seeds));
            let (rungs, kept) = match search.halving {
                Some(h) if lrs > 1 => (lrs * h.seeds.min(seeds), h.kept(lrs)),
                _ => (0, lrs),
            };
            fewest += rungs + kept * min;
            most += rungs + kept * seeds;
        }
        let mut out = String::from("search:");
        if let Some(h) = search.halving {
            out += &format!(
                " learning rates by successive halving (each lr trains a rung of {} epoch{} on {} seed{}, the best 1/{} go on);",
                h.rung_epochs,
                if h.rung_epochs == 1 { "" } else { "s" },
                h.seeds,
                if h.seeds == 1 { "" } else { "s" },
                h.rate
            );
        }
        if let Some(r) = search.race {
            out += &format!(" seeds raced from {} to {} per cell", r.min, r.max);
            if let Some(b) = search.budget_seconds {
                out += &format!(" within {:.0} minutes of worker time", b / 60.0);
            }
            out += ";";
        }
        out += &format!(
            " between {fewest} and {most} jobs (rungs included), against {} for the full grid\n",
            self.jobs.len()
        );
        out
    }
}

fn train_size_text(size: Option<usize>) -> String {
    size.map_or("all".into(), |n| n.to_string())
}

/// Everything resolved: model, data, corpora; then expanded into jobs and stages planned
/// for `backend` (part of every key).
pub fn build_plan(
    source: &Source,
    file: &SweepFile,
    backend: BackendKind,
) -> Result<Plan, SpecError> {
    check_name(source, &file.sweep.name)?;
    let (model, config) = resolve_model(source, file)?;
    let data = resolve_data(source, file, config.max_position_embeddings)?;
    expand(source, file, model, &config, data, backend)
}

fn check_name(source: &Source, name: &Spanned<String>) -> Result<(), SpecError> {
    let ok = !name.get_ref().is_empty()
        && name.get_ref().chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(source.at(name, "sweep.name must be non-empty and use only letters, digits, '-', '_' and '.' (it names files)"))
    }
}

fn depths(
    source: &Source,
    axis: &Spanned<FreezeAxis>,
    layers: usize,
) -> Result<Vec<usize>, SpecError> {
    let list = match axis.get_ref() {
        FreezeAxis::All => (0..=layers).collect(),
        FreezeAxis::Depths(d) => d.clone(),
    };
    if list.is_empty() {
        return Err(
            source.at(axis, format!("freeze is empty; give \"all\" or depths in 0..={layers}"))
        );
    }
    if let Some(bad) = list.iter().find(|&&k| k > layers) {
        return Err(source.at(axis, format!(
            "freeze depth {bad} is larger than the model's {layers} encoder layers; valid depths are 0..={layers} ({layers} = head only), or \"all\""
        )));
    }
    if list.iter().collect::<BTreeSet<_>>().len() != list.len() {
        return Err(source.at(axis, "freeze lists a depth twice"));
    }
    Ok(list)
}

fn check_lrs(source: &Source, span: &Spanned<LrAxis>, lrs: &[f64]) -> Result<(), SpecError> {
    if lrs.is_empty() {
        return Err(source.at(span, "an lr list is empty"));
    }
    if let Some(bad) = lrs.iter().find(|lr| !is_learning_rate(**lr)) {
        return Err(
            source.at(span, format!("learning rate {bad} must be a number in (0, 1), e.g. 5e-5"))
        );
    }
    if let Some(twice) = listed_twice(lrs) {
        return Err(source.at(span, format!("learning rate {twice} is listed twice")));
    }
    Ok(())
}

/// A learning rate thaw accepts anywhere: a finite number in (0, 1).
fn is_learning_rate(x: f64) -> bool {
    x.is_finite() && x > 0.0 && x < 1.0
}

/// The first value listed twice in a grid axis, if any.
pub(crate) fn listed_twice<T: PartialEq>(values: &[T]) -> Option<&T> {
    values.iter().enumerate().find_map(|(i, v)| values[..i].contains(v).then_some(v))
}

/// An `[intermediate.NAME]` section's settings, checked before anything runs (a bad value
/// would otherwise fail, or panic, inside the stage after the sweep started).
fn check_intermediate(
    source: &Source,
    name: &str,
    section: &Spanned<IntermediateSection>,
    max_positions: usize,
) -> Result<(), SpecError> {
    let s = section.get_ref();
    let bad = |key: &str, problem: String| {
        Err(source.at(section, format!("[intermediate.{name}] {key} {problem}")))
    };
    if s.steps == 0 {
        return bad("steps", "must be at least 1".into());
    }
    if s.batch_size == 0 {
        return bad("batch_size", "must be at least 1".into());
    }
    if !is_learning_rate(s.lr) {
        return bad("lr", format!("= {} must be a number in (0, 1), e.g. 5e-5", s.lr));
    }
    if !is_learning_rate(s.head_warmup_lr) {
        return bad(
            "head_warmup_lr",
            format!("= {} must be a number in (0, 1), e.g. 1e-3", s.head_warmup_lr),
        );
    }
    if !(s.mask_prob > 0.0 && s.mask_prob < 1.0) {
        return bad("mask_prob", format!("= {} must be in (0, 1); BERT used 0.15", s.mask_prob));
    }
    if !(0.0..=1.0).contains(&s.warmup_ratio) {
        return bad("warmup_ratio", format!("= {} must be in [0, 1]", s.warmup_ratio));
    }
    if !(s.weight_decay.is_finite() && s.weight_decay >= 0.0) {
        return bad("weight_decay", format!("= {} must be 0 or more", s.weight_decay));
    }
    match s.max_length {
        Some(n) if n < 3 || n > max_positions => bad(
            "max_length",
            format!("= {n} must be in 3..={max_positions} (the model's max_position_embeddings)"),
        ),
        _ => Ok(()),
    }
}

/// The learning rates for one (init, depth), from the grid or the defaults.
fn lrs_for(
    source: &Source,
    file: &SweepFile,
    init: Init,
    freeze: usize,
    layers: usize,
) -> Result<Vec<f64>, SpecError> {
    let Some(axis) = &file.grid.lr else {
        return Ok(match &file.train.lr {
            Some(lr) => vec![*lr.get_ref()],
            None => default_lrs(init, freeze, layers),
        });
    };
    let lrs = match axis.get_ref() {
        LrAxis::Same(list) => list.clone(),
        LrAxis::ByStrategy(by) => {
            let chosen = match init {
                Init::Scratch | Init::ScratchOwnVocab => by.scratch.clone(),
                Init::Pretrained if freeze == layers => by.head_only.clone(),
                Init::Pretrained if freeze > 0 => by.partial.clone().or_else(|| by.full.clone()),
                Init::Pretrained => by.full.clone(),
            };
            chosen.unwrap_or_else(|| default_lrs(init, freeze, layers))
        }
    };
    check_lrs(source, axis, &lrs)?;
    Ok(lrs)
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

fn trainer(file: &SweepFile, lr: f64, pooling: Pooling, strategy: &Strategy) -> FineTuneSettings {
    FineTuneSettings {
        epochs: *file.train.epochs.get_ref(),
        batch_size: *file.train.batch_size.get_ref(),
        lr,
        weight_decay: file.train.weight_decay,
        warmup_ratio: file.train.warmup_ratio,
        max_grad_norm: file.train.max_grad_norm,
        pooling,
        strategy: strategy.clone(),
    }
}

/// `[scratch]`: the size and vocabulary of `init = "scratch-own-vocab"`.
fn scratch_model(source: &Source, file: &SweepFile) -> Result<ScratchModel, SpecError> {
    let s = &file.scratch;
    let model = ScratchModel {
        vocab_size: *s.vocab_size.get_ref(),
        layers: *s.layers.get_ref(),
        hidden: *s.hidden.get_ref(),
        heads: *s.heads.get_ref(),
        lowercase: s.lowercase,
    };
    match model.problem() {
        Some(problem) => {
            let span = [&s.vocab_size, &s.layers, &s.hidden, &s.heads]
                .into_iter()
                .map(|v| v.span())
                .find(|span| span.end > 0);
            Err(source.error(span, format!("[scratch] {problem}")))
        }
        None => Ok(model),
    }
}

fn check_trainer(source: &Source, file: &SweepFile) -> Result<(), SpecError> {
    let t = &file.train;
    if *t.epochs.get_ref() == 0 {
        return Err(source.at(&t.epochs, "epochs must be at least 1"));
    }
    if *t.batch_size.get_ref() == 0 {
        return Err(source.at(&t.batch_size, "batch_size must be at least 1"));
    }
    if let Some(lr) = &t.lr
        && !is_learning_rate(*lr.get_ref())
    {
        return Err(source.at(
            lr,
            format!("learning rate {} must be a number in (0, 1), e.g. 5e-5", lr.get_ref()),
        ));
    }
    if !(0.0..=1.0).contains(&t.warmup_ratio) {
        return Err(source
            .error(None, format!("[train] warmup_ratio = {} must be in [0, 1]", t.warmup_ratio)));
    }
    if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
        return Err(source
            .error(None, format!("[train] weight_decay = {} must be 0 or more", t.weight_decay)));
    }
    if !(t.max_grad_norm.is_finite() && t.max_grad_norm >= 0.0) {
        return Err(source.error(
            None,
            format!("[train] max_grad_norm = {} must be 0 (no clipping) or more", t.max_grad_norm),
        ));
    }
    Ok(())
}

/// The intermediate names of the grid, checked against `[intermediate.*]`.
fn intermediates(
    source: &Source,
    file: &SweepFile,
) -> Result<Vec<(String, Option<Corpus>)>, SpecError> {
    let mut out = Vec::new();
    for name in &file.grid.intermediate {
        let n = name.get_ref().as_str();
        let corpus = match n {
            "none" => None,
            "task" => {
                if let Some(section) = file.intermediate.get("task")
                    && let Some(corpus) = &section.get_ref().corpus
                {
                    return Err(source.at(corpus, "[intermediate.task] trains on the training text; give a corpus under another name, e.g. [intermediate.domain]"));
                }
                Some(Corpus::Task)
            }
            other => {
                let Some(section) = file.intermediate.get(other) else {
                    let mut valid: Vec<String> = vec!["none".into(), "task".into()];
                    valid.extend(file.intermediate.keys().filter(|k| *k != "task").cloned());
                    return Err(source.at(name, format!(
                        "intermediate '{other}' is not defined; valid: {} (define others as [intermediate.{other}] with corpus = \"file.txt\")",
                        valid.join(", ")
                    )));
                };
                let Some(corpus) = &section.get_ref().corpus else {
                    return Err(source.at(section, format!("[intermediate.{other}] needs corpus = \"file.txt\" (one document per line)")));
                };
                Some(resolve_corpus(source, corpus)?)
            }
        };
        if out.iter().any(|(seen, _): &(String, Option<Corpus>)| seen == n) {
            return Err(source.at(name, format!("intermediate '{n}' is listed twice")));
        }
        out.push((n.to_string(), corpus));
    }
    Ok(out)
}

pub fn expand(
    source: &Source,
    file: &SweepFile,
    model: ModelSpec,
    config: &BertConfig,
    data: DataSpec,
    backend: BackendKind,
) -> Result<Plan, SpecError> {
    let layers = config.num_hidden_layers;
    check_trainer(source, file)?;
    let freeze_depths = depths(source, &file.grid.freeze, layers)?;
    let (seeds, search) = seeds_and_search(source, file)?;
    if file.grid.init.is_empty() {
        return Err(source.error(None, "grid.init is empty; valid: \"pretrained\", \"scratch\""));
    }
    if let Some(init) = listed_twice(&file.grid.init) {
        return Err(source.error(None, format!("grid.init lists \"{}\" twice", init.as_str())));
    }
    // Spanned values compare by value alone, so the span found is the second listing.
    if let Some(k) = listed_twice(&file.grid.mlm_freeze) {
        return Err(source.at(k, format!("mlm_freeze {} is listed twice", k.get_ref())));
    }
    if let Some(p) = file.grid.pooling.as_deref().and_then(listed_twice) {
        return Err(source.error(None, format!("grid.pooling lists {p:?} twice")));
    }
    for (name, section) in &file.intermediate {
        check_intermediate(source, name, section, config.max_position_embeddings)?;
    }
    for k in &file.grid.mlm_freeze {
        if *k.get_ref() > layers {
            return Err(source.at(
                k,
                format!(
                    "mlm_freeze {} is larger than the model's {layers} layers; valid: 0..={layers}",
                    k.get_ref()
                ),
            ));
        }
    }
    let sizes: Vec<Option<usize>> = match &file.grid.train_size {
        None => vec![None],
        Some(list) if list.is_empty() => {
            return Err(
                source.error(None, "grid.train_size is empty; remove it to use all examples")
            );
        }
        Some(list) => {
            if let Some(bad) = list.iter().find(|n| *n.get_ref() < 2) {
                return Err(source.at(bad, "train_size must be at least 2"));
            }
            if let Some(n) = listed_twice(list) {
                return Err(source.at(n, format!("train_size {} is listed twice", n.get_ref())));
            }
            list.iter().map(|n| Some(*n.get_ref())).collect()
        }
    };
    let poolings = file.grid.pooling.clone().unwrap_or_else(|| vec![file.train.pooling]);
    let inters = intermediates(source, file)?;
    let strategies = strategies(source, file, layers)?;
    let mut notes = Vec::new();
    for name in file.strategy.keys() {
        if !strategies.iter().any(|s| s.name == *name || s.name.starts_with(&format!("{name}+"))) {
            notes.push(format!(
                "[strategy.{name}] is defined but not in grid.strategy; it does not run"
            ));
        }
    }
    for name in file.intermediate.keys() {
        if !inters.iter().any(|(n, _)| n == name) {
            notes.push(format!(
                "[intermediate.{name}] is defined but not in grid.intermediate; it does not run"
            ));
        }
    }

    let mut stages: BTreeMap<String, StagePlan> = BTreeMap::new();
    let mut jobs = Vec::new();
    // How many jobs one (init, depth) expands to, for the rule notes' counts of what was left out.
    let jobs_at = |init: Init, freeze: usize| -> Result<usize, SpecError> {
        Ok(lrs_for(source, file, init, freeze, layers)?.len() * poolings.len() * seeds.len())
    };
    let (mut skipped_scratch_freeze, mut skipped_scratch_mlm) = (0usize, 0usize);
    let mut skipped_own_vocab = 0usize;
    let scratch_model = scratch_model(source, file)?;
    let scratch_section_given =
        [&file.scratch.vocab_size, &file.scratch.layers, &file.scratch.hidden, &file.scratch.heads]
            .iter()
            .any(|v| v.span().end > 0);
    if !file.grid.init.contains(&Init::ScratchOwnVocab) && scratch_section_given {
        notes.push("[scratch] sets the size of init = \"scratch-own-vocab\", which grid.init does not list; it does not run".into());
    }
    let mut skipped_strategy = SkippedStrategies::default();
    for &train_size in &sizes {
        for &init in &file.grid.init {
            for (inter, corpus) in &inters {
                let mlm_freezes: Vec<Option<usize>> = match corpus {
                    None => vec![None],
                    Some(_) => file.grid.mlm_freeze.iter().map(|k| Some(*k.get_ref())).collect(),
                };
                for mlm_freeze in mlm_freezes {
                    if init == Init::ScratchOwnVocab && corpus.is_some() {
                        for &freeze in &freeze_depths {
                            skipped_own_vocab += jobs_at(init, freeze)? * strategies.len();
                        }
                        continue;
                    }
                    if init == Init::Scratch && corpus.is_some() && !file.grid.scratch_intermediate
                    {
                        for &freeze in &freeze_depths {
                            skipped_scratch_mlm += jobs_at(init, freeze)? * strategies.len();
                        }
                        continue;
                    }
                    let stage = match (corpus, mlm_freeze) {
                        (Some(corpus), Some(mlm_k)) => {
                            let section = file.intermediate.get(inter).map(|s| s.get_ref());
                            let default = IntermediateSection::default();
                            let section = section.unwrap_or(&default);
                            let spec = StageSpec {
                                name: inter.clone(),
                                model: model.clone(),
                                data: data.clone(),
                                corpus: corpus.clone(),
                                init,
                                seed: section.seed,
                                settings: mlm_settings(section, &data, mlm_k),
                                backend,
                            };
                            let key = stage_key(&spec);
                            if let Some(same) =
                                stages.get(&key).filter(|s| s.spec.name != spec.name)
                            {
                                return Err(source.error(None, format!(
                                    "[intermediate.{}] and [intermediate.{}] describe the same stage (same corpus and settings); keep one of them",
                                    same.spec.name, spec.name
                                )));
                            }
                            stages.entry(key.clone()).or_insert(StagePlan {
                                key: key.clone(),
                                spec,
                                mlm_freeze: mlm_k,
                            });
                            Some(key)
                        }
                        _ => None,
                    };
                    for &freeze in &freeze_depths {
                        if init == Init::ScratchOwnVocab && freeze > 0 {
                            skipped_own_vocab += jobs_at(init, freeze)? * strategies.len();
                            continue;
                        }
                        if init == Init::Scratch && freeze > 0 && !file.grid.scratch_freeze {
                            skipped_scratch_freeze += jobs_at(init, freeze)? * strategies.len();
                            continue;
                        }
                        for named in &strategies {
                            if let Some(rule) =
                                skipped_strategy.rule(&named.strategy, init, freeze, layers)
                            {
                                *rule += jobs_at(init, freeze)?;
                                continue;
                            }
                            for &pooling in &poolings {
                                for lr in lrs_for(source, file, init, freeze, layers)? {
                                    for &seed in &seeds {
                                        let spec = JobSpec {
                                            model: model.clone(),
                                            data: data.clone(),
                                            train_size,
                                            init,
                                            intermediate: inter.clone(),
                                            stage_key: stage.clone(),
                                            freeze,
                                            seed,
                                            settings: trainer(file, lr, pooling, &named.strategy),
                                            prefix_cache_mb: file.cache.prefix_mb,
                                            keep_weights: file.train.keep != Keep::None,
                                            rung: None,
                                            backend,
                                            scratch_model: (init == Init::ScratchOwnVocab)
                                                .then(|| scratch_model.clone()),
                                        };
                                        jobs.push(JobPlan {
                                            key: job_key(&spec),
                                            spec,
                                            mlm_freeze,
                                            lr,
                                            pooling,
                                            strategy: named.name.clone(),
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if skipped_scratch_freeze > 0 {
        notes.push(format!(
            "rule scratch-unfrozen: {skipped_scratch_freeze} scratch jobs with freeze > 0 left out (frozen random layers measure random features); set grid.scratch_freeze = true to run them"
        ));
    }
    if skipped_scratch_mlm > 0 {
        notes.push(format!(
            "rule scratch-no-mlm: {skipped_scratch_mlm} scratch jobs with intermediate MLM left out (MLM from random init is pretraining, not adaptation); set grid.scratch_intermediate = true to run them"
        ));
    }
    notes.extend(skipped_strategy.notes());
    if let Some(h) = search.as_ref().and_then(|s| s.halving) {
        for named in &strategies {
            if let Unfreezing::LpFt { head_epochs, .. } = named.strategy.unfreezing
                && head_epochs >= h.rung_epochs
            {
                notes.push(format!(
                    "caveat lp-ft-rung: [strategy.{}] trains the head alone for {head_epochs} epoch(s) at head_lr, and halving's rung is {} epoch(s): its learning rates are ranked on the probe alone, before lr is used; set [search] rung_epochs above head_epochs",
                    named.name, h.rung_epochs
                ));
            }
        }
    }
    if skipped_own_vocab > 0 {
        notes.push(format!(
            "rule own-vocab-alone: {skipped_own_vocab} scratch-own-vocab jobs with freeze > 0 or intermediate MLM left out (its vocabulary and size are not the checkpoint's: it trains unfrozen, from random weights, on the task alone)"
        ));
    }
    if jobs.is_empty() {
        return Err(source.error(
            None,
            format!("the grid expands to no jobs after the rules: {}", notes.join("; ")),
        ));
    }
    let summary = summarise_data(source, &data, &sizes)?;
    let setup = json!({
        "model": model.origin,
        "dataset": data.name,
        "train_examples": summary.train,
        "validation_examples": summary.validation,
        "test_examples": summary.test,
        "baseline": summary.baselines,
        "max_length": data.max_length,
        "grid": {
            "freeze": freeze_depths,
            "init": file.grid.init.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
            "intermediate": inters.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "seeds": seeds,
            "train_size": sizes,
            "pooling": poolings,
            "strategy": strategies
                .iter()
                .map(|s| if s.strategy.is_plain() { s.name.clone() } else { format!("{} ({})", s.name, s.strategy.describe()) })
                .collect::<Vec<_>>(),
        },
        "scratch_model": file.grid.init.contains(&Init::ScratchOwnVocab).then(|| json!(scratch_model)),
        "trainer": {
            "epochs": file.train.epochs.get_ref(),
            "batch_size": file.train.batch_size.get_ref(),
            "weight_decay": file.train.weight_decay,
            "warmup_ratio": file.train.warmup_ratio,
            "max_grad_norm": file.train.max_grad_norm,
            "keep": file.train.keep,
        },
        "description": file.sweep.description,
        "rules": if notes.is_empty() { None } else { Some(notes.join("; ")) },
        "search": search.as_ref().map(|s| json!({
            "halving": s.halving.map(|h| json!({"rate": h.rate, "rung_epochs": h.rung_epochs, "rung_seeds": h.seeds})),
            "seeds": s.race.map(|r| json!({"min": r.min, "max": r.max})),
            "budget_minutes": s.budget_seconds.map(|b| b / 60.0),
            "grid_jobs": jobs.len(),
        })),
    });
    Ok(Plan {
        sweep: file.sweep.name.get_ref().clone(),
        model,
        data,
        stages: stages.into_values().collect(),
        jobs,
        notes,
        setup,
        keep: file.train.keep,
        search,
        backend,
    })
}

/// The seeds every cell may run and the adaptive search, from `[grid] seeds` or `[search]`.
fn seeds_and_search(
    source: &Source,
    file: &SweepFile,
) -> Result<(Vec<u64>, Option<SearchPlan>), SpecError> {
    let section = file.search.as_ref();
    let race = section.and_then(|s| s.seeds.as_ref());
    let seeds = match (&file.grid.seeds, race) {
        (Some(_), Some(race)) => {
            return Err(source.at(race, "seeds are given twice: [grid] seeds lists fixed seeds, [search] seeds races them; keep one of the two"));
        }
        (None, None) => {
            return Err(source.error(None, "[grid] seeds is missing: give fixed seeds, e.g. seeds = [1, 2, 3], or race them with [search] seeds = { min = 2, max = 6 }"));
        }
        (Some(list), None) => {
            let seeds = list.get_ref().clone();
            if seeds.is_empty() || seeds.iter().collect::<BTreeSet<_>>().len() != seeds.len() {
                return Err(source.at(
                    list,
                    "seeds must be a non-empty list of distinct integers, e.g. [1, 2, 3]",
                ));
            }
            seeds
        }
        (None, Some(race)) => {
            let r = race.get_ref();
            if r.min < 2 || r.min > r.max {
                return Err(source.at(race, format!(
                    "seeds = {{ min = {}, max = {} }}: racing needs 2 <= min <= max (two seeds give the first interval)",
                    r.min, r.max
                )));
            }
            (1..=r.max as u64).collect()
        }
    };
    let Some(section) = section else { return Ok((seeds, None)) };
    let epochs = *file.train.epochs.get_ref();
    let halving = match section.lr.get_ref() {
        LrSearch::Grid => None,
        LrSearch::Halving => {
            let rate = *section.halving_rate.get_ref();
            if rate < 2 {
                return Err(source.at(
                    &section.halving_rate,
                    format!("halving_rate = {rate} must be at least 2 (3 keeps the best third)"),
                ));
            }
            let rung_epochs = *section.rung_epochs.get_ref();
            if rung_epochs == 0 || rung_epochs >= epochs {
                return Err(source.at(&section.rung_epochs, format!(
                    "rung_epochs = {rung_epochs} must be at least 1 and below [train] epochs = {epochs}: halving ranks learning rates on a rung shorter than the full training"
                )));
            }
            let rung_seeds = *section.rung_seeds.get_ref();
            let available = race.map_or(seeds.len(), |r| r.get_ref().min);
            if rung_seeds == 0 || rung_seeds > available {
                return Err(source.at(&section.rung_seeds, format!(
                    "rung_seeds = {rung_seeds} must be in 1..={available} (the seeds every cell starts with)"
                )));
            }
            Some(Halving { rate, rung_epochs, seeds: rung_seeds })
        }
    };
    let budget_seconds = match &section.budget_minutes {
        None => None,
        Some(b) if race.is_none() => {
            return Err(source.at(b, "budget_minutes limits how many seeds racing adds; give [search] seeds = { min = 2, max = 6 } too"));
        }
        Some(b) if !(b.get_ref().is_finite() && *b.get_ref() > 0.0) => {
            return Err(source.at(
                b,
                format!("budget_minutes = {} must be a positive number of minutes", b.get_ref()),
            ));
        }
        Some(b) => Some(b.get_ref() * 60.0),
    };
    let race = race.map(|r| *r.get_ref());
    if halving.is_none() && race.is_none() {
        return Ok((seeds, None));
    }
    Ok((seeds, Some(SearchPlan { halving, race, budget_seconds })))
}

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

/// Jobs a strategy other than plain leaves out, by rule: counted for `thaw plan`'s notes.
#[derive(Default)]
struct SkippedStrategies {
    scratch: usize,
    head_only: usize,
    reinit_frozen: usize,
}

impl SkippedStrategies {
    /// The counter of the rule that leaves `strategy` out at (init, freeze), if one does.
    fn rule(
        &mut self,
        strategy: &Strategy,
        init: Init,
        freeze: usize,
        layers: usize,
    ) -> Option<&mut usize> {
        if strategy.is_plain() {
            None
        } else if init.is_scratch() {
            Some(&mut self.scratch)
        } else if freeze == layers {
            Some(&mut self.head_only)
        } else if strategy.reinit_top > layers - freeze {
            Some(&mut self.reinit_frozen)
        } else {
            None
        }
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.scratch > 0 {
            notes.push(format!("rule strategy-pretrained: {} scratch jobs with a strategy other than plain left out (decay, unfreezing order and re-init act on pretrained layers)", self.scratch));
        }
        if self.head_only > 0 {
            notes.push(format!("rule strategy-below-head-only: {} head-only jobs (freeze = all layers) with a strategy other than plain left out (only the head trains: nothing to decay, unfreeze or re-init)", self.head_only));
        }
        if self.reinit_frozen > 0 {
            notes.push(format!("rule reinit-trainable: {} jobs whose reinit_top reaches frozen layers left out (re-initialised frozen layers are random features)", self.reinit_frozen));
        }
        notes
    }
}
