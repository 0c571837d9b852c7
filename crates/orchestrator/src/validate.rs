//! The sweep file checked against the model it names, before anything is planned: every
//! value in range, nothing listed twice, every name defined. Each error names the file, the
//! line where the TOML allows, and the fix. What passes comes out as [`CheckedGrid`], the
//! axes the planner expands.

use std::collections::BTreeSet;

use thaw_train::{Pooling, ScratchModel};
use toml::Spanned;

use crate::jobspec::Corpus;
use crate::resolve::resolve_corpus;
use crate::spec::{
    FreezeAxis, IntermediateSection, LrAxis, LrSearch, SeedRace, Source, SpecError, SweepFile,
    listed_twice,
};
use crate::strategies::{NamedStrategy, strategies};

/// The `[search]` section, checked: how the adaptive search runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPlan {
    pub halving: Option<Halving>,
    pub race: Option<SeedRace>,
    /// Racing adds no seed once the sweep's done jobs have used this much worker time.
    pub budget_seconds: Option<f64>,
    /// `prior = "advise"`: the stored forecast trims the seeds racing starts with.
    pub prior: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Halving {
    /// Keep the best ⌈L / rate⌉ learning rates of a cell.
    pub rate: usize,
    /// Epochs of the rung the learning rates are ranked on.
    pub rung_epochs: usize,
    /// Seeds (the cell's first) each learning rate's rung runs on.
    pub seeds: usize,
}

impl Halving {
    /// How many of `lrs` learning rates go on from the rung.
    pub fn kept(&self, lrs: usize) -> usize {
        lrs.div_ceil(self.rate).max(1)
    }
}

/// The grid's axes, checked.
pub struct CheckedGrid {
    pub freeze_depths: Vec<usize>,
    pub seeds: Vec<u64>,
    pub search: Option<SearchPlan>,
    /// `None`: all training examples.
    pub train_sizes: Vec<Option<usize>>,
    pub poolings: Vec<Pooling>,
    /// Each intermediate by name, with its corpus (None for "none").
    pub intermediates: Vec<(String, Option<Corpus>)>,
    pub strategies: Vec<NamedStrategy>,
    pub scratch_model: ScratchModel,
}

/// Every check of the sweep file that needs the model's depth and positions, in the order
/// a user fixing one error after another meets them.
pub fn check_grid(
    source: &Source,
    file: &SweepFile,
    layers: usize,
    max_positions: usize,
) -> Result<CheckedGrid, SpecError> {
    check_trainer(source, file)?;
    let freeze_depths = depths(source, &file.grid.freeze, layers)?;
    let (seeds, search) = seeds_and_search(source, file)?;
    check_inits(source, file)?;
    // Spanned values compare by value alone, so the span found is the second listing.
    if let Some(k) = listed_twice(&file.grid.mlm_freeze) {
        return Err(source.at(k, format!("mlm_freeze {} is listed twice", k.get_ref())));
    }
    if let Some(p) = file.grid.pooling.as_deref().and_then(listed_twice) {
        return Err(source.error(None, format!("grid.pooling lists {p:?} twice")));
    }
    for (name, section) in &file.intermediate {
        check_intermediate(source, name, section, max_positions)?;
    }
    check_mlm_freezes(source, file, layers)?;
    let train_sizes = train_sizes(source, file)?;
    Ok(CheckedGrid {
        freeze_depths,
        seeds,
        search,
        train_sizes,
        poolings: file.grid.pooling.clone().unwrap_or_else(|| vec![file.train.pooling]),
        intermediates: intermediates(source, file)?,
        strategies: strategies(source, file, layers)?,
        scratch_model: scratch_model(source, file)?,
    })
}

pub fn check_name(source: &Source, name: &Spanned<String>) -> Result<(), SpecError> {
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

fn check_inits(source: &Source, file: &SweepFile) -> Result<(), SpecError> {
    if file.grid.init.is_empty() {
        return Err(source.error(None, "grid.init is empty; valid: \"pretrained\", \"scratch\""));
    }
    if let Some(init) = listed_twice(&file.grid.init) {
        return Err(source.error(None, format!("grid.init lists \"{}\" twice", init.as_str())));
    }
    Ok(())
}

fn check_mlm_freezes(source: &Source, file: &SweepFile, layers: usize) -> Result<(), SpecError> {
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
    Ok(())
}

fn train_sizes(source: &Source, file: &SweepFile) -> Result<Vec<Option<usize>>, SpecError> {
    match &file.grid.train_size {
        None => Ok(vec![None]),
        Some(list) if list.is_empty() => {
            Err(source.error(None, "grid.train_size is empty; remove it to use all examples"))
        }
        Some(list) => {
            if let Some(bad) = list.iter().find(|n| *n.get_ref() < 2) {
                return Err(source.at(bad, "train_size must be at least 2"));
            }
            if let Some(n) = listed_twice(list) {
                return Err(source.at(n, format!("train_size {} is listed twice", n.get_ref())));
            }
            Ok(list.iter().map(|n| Some(*n.get_ref())).collect())
        }
    }
}

/// A list of learning rates for one cell: non-empty, each a learning rate, none twice.
pub fn check_lrs(source: &Source, span: &Spanned<LrAxis>, lrs: &[f64]) -> Result<(), SpecError> {
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
            other => Some(domain_corpus(source, file, name, other)?),
        };
        if out.iter().any(|(seen, _): &(String, Option<Corpus>)| seen == n) {
            return Err(source.at(name, format!("intermediate '{n}' is listed twice")));
        }
        out.push((n.to_string(), corpus));
    }
    Ok(out)
}

/// The corpus of `[intermediate.NAME]`, which must exist and name one.
fn domain_corpus(
    source: &Source,
    file: &SweepFile,
    name: &Spanned<String>,
    other: &str,
) -> Result<Corpus, SpecError> {
    let Some(section) = file.intermediate.get(other) else {
        let mut valid: Vec<String> = vec!["none".into(), "task".into()];
        valid.extend(file.intermediate.keys().filter(|k| *k != "task").cloned());
        return Err(source.at(name, format!(
            "intermediate '{other}' is not defined; valid: {} (define others as [intermediate.{other}] with corpus = \"file.txt\")",
            valid.join(", ")
        )));
    };
    let Some(corpus) = &section.get_ref().corpus else {
        return Err(source.at(
            section,
            format!("[intermediate.{other}] needs corpus = \"file.txt\" (one document per line)"),
        ));
    };
    resolve_corpus(source, corpus)
}

/// The seeds every cell may run and the adaptive search, from `[grid] seeds` or `[search]`.
fn seeds_and_search(
    source: &Source,
    file: &SweepFile,
) -> Result<(Vec<u64>, Option<SearchPlan>), SpecError> {
    let seeds = seeds(source, file)?;
    let Some(section) = file.search.as_ref() else { return Ok((seeds, None)) };
    let race = section.seeds.as_ref();
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
    if let Some(p) = section.prior.as_ref().filter(|_| race.is_none()) {
        return Err(source.at(p, "prior = \"advise\" trims the seeds racing starts with; give [search] seeds = { min = 2, max = 6 } too"));
    }
    let prior = section.prior.is_some();
    Ok((seeds, Some(SearchPlan { halving, race, budget_seconds, prior })))
}

/// `[grid] seeds` (fixed) or `[search] seeds` (raced: seeds 1..=max), exactly one of them.
fn seeds(source: &Source, file: &SweepFile) -> Result<Vec<u64>, SpecError> {
    let race = file.search.as_ref().and_then(|s| s.seeds.as_ref());
    match (&file.grid.seeds, race) {
        (Some(_), Some(race)) => Err(source.at(race, "seeds are given twice: [grid] seeds lists fixed seeds, [search] seeds races them; keep one of the two")),
        (None, None) => Err(source.error(None, "[grid] seeds is missing: give fixed seeds, e.g. seeds = [1, 2, 3], or race them with [search] seeds = { min = 2, max = 6 }")),
        (Some(list), None) => {
            let seeds = list.get_ref().clone();
            if seeds.is_empty() || seeds.iter().collect::<BTreeSet<_>>().len() != seeds.len() {
                return Err(source.at(
                    list,
                    "seeds must be a non-empty list of distinct integers, e.g. [1, 2, 3]",
                ));
            }
            Ok(seeds)
        }
        (None, Some(race)) => {
            let r = race.get_ref();
            if r.min < 2 || r.min > r.max {
                return Err(source.at(race, format!(
                    "seeds = {{ min = {}, max = {} }}: racing needs 2 <= min <= max (two seeds give the first interval)",
                    r.min, r.max
                )));
            }
            Ok((1..=r.max as u64).collect())
        }
    }
}
