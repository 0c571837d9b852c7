//! How far each intermediate-MLM corpus of the sweep lies from the model's pretraining data,
//! read as the MLM stage itself reads it before training: the held-out masked-LM perplexity
//! of the pretrained model, and the loss per character (comparable where the vocabulary cuts
//! the text into short pieces). No MLM step is taken; a checkpoint without an MLM head gets a
//! fresh one fitted on the frozen encoder for a few steps, the reading's whole cost.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use thaw_analysis::advice::MlmReading;
use thaw_store::Init;
use thaw_train::{BackendKind, MlmJob, Observer};

use super::probes::PROBE_SHARE;
use crate::inputs::{model_files, stage_texts, start_of};
use crate::plan::{Plan, StagePlan};

/// A fitted head gets at least this many steps (and at most the stage's own warm-up).
const MIN_HEAD_STEPS: usize = 10;

/// One reading per corpus of the plan's pretrained stages (every MLM freeze depth of a corpus
/// starts from the same "before").
pub fn read_corpora(plan: &Plan, observer: &mut Observer) -> Result<Vec<MlmReading>> {
    let mut corpora: BTreeMap<&str, &StagePlan> = BTreeMap::new();
    for stage in plan.stages.iter().filter(|s| s.spec.init == Init::Pretrained) {
        corpora.entry(stage.spec.name.as_str()).or_insert(stage);
    }
    let head_steps = head_steps(plan, corpora.len());
    corpora.values().map(|stage| read(stage, head_steps, observer)).collect()
}

/// The head warm-up each corpus's reading may take: together they spend [`PROBE_SHARE`] of
/// the grid's MLM steps, at least [`MIN_HEAD_STEPS`] each.
fn head_steps(plan: &Plan, corpora: usize) -> usize {
    let grid: usize =
        plan.stages.iter().map(|s| s.spec.settings.steps + s.spec.settings.head_warmup_steps).sum();
    ((PROBE_SHARE * grid as f64 / corpora.max(1) as f64).round() as usize).max(MIN_HEAD_STEPS)
}

/// `stage`'s model located (`files::locate_model`, done by [`super::advise`]).
fn read(stage: &StagePlan, head_steps: usize, observer: &mut Observer) -> Result<MlmReading> {
    let started = Instant::now();
    let spec = &stage.spec;
    let (files, config) = model_files(&spec.model.dir)?;
    let texts = stage_texts(spec)?;
    let mut settings = spec.settings.clone();
    settings.steps = 0;
    settings.head_warmup_steps = settings.head_warmup_steps.min(head_steps);
    let job = MlmJob {
        start: start_of(spec.init, None),
        seed: spec.seed,
        settings,
        backend: BackendKind::Flex,
    };
    let scratch = tempfile::tempdir()?;
    let done = thaw_train::train_mlm(
        &files,
        &config,
        &texts,
        &job,
        &scratch.path().join("reading.safetensors"),
        observer,
    )
    .with_context(|| format!("reading the MLM corpus '{}'", spec.name))?;
    Ok(MlmReading {
        corpus: spec.name.clone(),
        perplexity: done.perplexity_before,
        chars_per_token: done.heldout_chars_per_token,
        heldout_docs: done.heldout_docs,
        head_warmup_steps: done.head_warmup_steps,
        step_seconds: done
            .head_warmup_steps
            .filter(|&n| n > 0)
            .map(|n| done.train_seconds / n as f64),
        seconds: started.elapsed().as_secs_f64(),
    })
}
