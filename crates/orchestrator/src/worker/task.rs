//! One claimed piece of work as this machine runs it: a fine-tuning job (or a halving rung)
//! or an intermediate-MLM stage, and what it produces for the store.

use std::path::{Path, PathBuf};

use thaw_store::{EpochRow, ResultRow, StageOutcomeRow, correct_text};
use thaw_train::data::Metric;
use thaw_train::weights::save_tensors;
use thaw_train::{BackendKind, MlmJob, Observer, Start, TrainError};

use crate::files;
use crate::inputs::{Caches, fine_tune_spec, model_files, stage_texts, start_of};
use crate::jobspec::{JobSpec, StageSpec};

pub(super) enum Task {
    Stage(StageSpec, PathBuf),
    /// With the file to keep the fine-tuned weights in, when the sweep keeps them.
    Job(JobSpec, Start, Option<PathBuf>),
}

pub(super) enum TaskOutput {
    Stage(StageOutcomeRow),
    Job {
        epochs: Vec<EpochRow>,
        result: Box<ResultRow>,
    },
    /// A halving rung: validation per epoch, no test result.
    Rung {
        epochs: Vec<EpochRow>,
    },
}

impl Task {
    /// The task with its model folder found on this machine (blocking: it may fetch).
    fn on_this_machine(mut self) -> thaw_train::Result<Task> {
        let model = match &mut self {
            Task::Stage(spec, _) => &mut spec.model,
            Task::Job(spec, _, _) => &mut spec.model,
        };
        files::locate_model(model).map_err(|e| TrainError::Invalid(format!("{e:#}")))?;
        Ok(self)
    }

    pub(super) fn label(&self) -> String {
        match self {
            Task::Stage(s, _) => format!(
                "MLM stage '{}' ({}, mlm_freeze {}, {} steps)",
                s.name,
                s.init.as_str(),
                s.settings.freeze,
                s.settings.steps
            ),
            Task::Job(j, _, _) => format!(
                "{} {} k={}{} lr={:e} seed={}{}{}",
                j.init.as_str(),
                j.intermediate,
                j.freeze,
                Some(&j.settings.strategy)
                    .filter(|s| !s.is_plain())
                    .map(|s| format!(" [{}]", s.describe()))
                    .unwrap_or_default(),
                j.settings.lr,
                j.seed,
                j.train_size.map(|n| format!(" n={n}")).unwrap_or_default(),
                j.rung
                    .map(|r| format!(" (rung: {r} of {} epochs)", j.settings.epochs))
                    .unwrap_or_default()
            ),
        }
    }

    pub(super) fn execute(
        self,
        backend: BackendKind,
        caches: &mut Caches,
        observer: &mut Observer,
    ) -> thaw_train::Result<TaskOutput> {
        let output = match self.on_this_machine()? {
            Task::Stage(spec, out) => {
                run_stage(&spec, &out, backend, observer).map(TaskOutput::Stage)
            }
            Task::Job(spec, start, keep) => {
                run_job(&spec, start, backend, keep.as_deref(), caches, observer)
            }
        };
        // The task's model and optimizer are gone: give their pooled memory back, so a
        // worker's hundredth job on a GPU has the room its first had.
        if let Ok(device) = backend.device() {
            thaw_train::backend::release_device_memory(&device);
        }
        output
    }
}

fn run_job(
    spec: &JobSpec,
    start: Start,
    backend: BackendKind,
    keep: Option<&Path>,
    caches: &mut Caches,
    observer: &mut Observer,
) -> thaw_train::Result<TaskOutput> {
    let trained = fine_tune_spec(spec, start, backend, caches, observer)?;
    let out = trained.outcome;
    let epochs: Vec<EpochRow> = out
        .epochs
        .iter()
        .map(|e| EpochRow {
            job_key: String::new(),
            epoch: e.epoch as i64,
            train_loss: e.train_loss,
            val_loss: e.val_loss,
            val_metric: e.val_metric,
            val_accuracy: e.val_accuracy,
            val_macro_f1: e.val_macro_f1,
            seconds: e.seconds,
        })
        .collect();
    let Some(test) = out.test else { return Ok(TaskOutput::Rung { epochs }) };
    if let Some(path) = keep {
        // Written (atomically) before the result is stored: a done job's kept weights exist.
        save_tensors(&trained.model.named_tensors(&trained.config), path)?;
    }
    let result = ResultRow {
        best_epoch: out.best_epoch as i64,
        metric: spec.settings.metric.name().to_string(),
        val_metric: out.validation.metric,
        test_metric: test.metric,
        val_scores: json(&out.validation.scores),
        test_scores: json(&test.scores),
        val_predictions: json(&out.validation.predictions),
        test_predictions: json(&test.predictions),
        val_per_example: json(&out.validation.per_example),
        test_per_example: json(&test.per_example),
        val_loss: out.validation.loss,
        val_accuracy: out.validation.scores.get(Metric::Accuracy),
        val_macro_f1: out.validation.scores.get(Metric::MacroF1),
        test_loss: test.loss,
        test_accuracy: test.scores.get(Metric::Accuracy),
        test_macro_f1: test.scores.get(Metric::MacroF1),
        train_seconds: out.train_seconds,
        eval_seconds: out.eval_seconds,
        prefix_seconds: out.prefix_seconds,
        load_seconds: out.load_seconds,
        examples_per_second: out.train_examples_per_second,
        trainable_params: out.trainable_params as i64,
        total_params: out.total_params as i64,
        prefix_cache: serde_json::to_value(out.prefix_cache)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        backend: backend.to_string(),
        device: backend.device_name(),
        val_correct: correct_text(&out.validation.correct),
        test_correct: correct_text(&test.correct),
    };
    Ok(TaskOutput::Job { epochs, result: Box::new(result) })
}

/// Plain data as the store keeps it.
fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

fn run_stage(
    spec: &StageSpec,
    out: &Path,
    backend: BackendKind,
    observer: &mut Observer,
) -> thaw_train::Result<StageOutcomeRow> {
    let (files, config) = model_files(&spec.model.dir)?;
    let texts = stage_texts(spec)?;
    let start = start_of(spec.init, None);
    let job = MlmJob { start, seed: spec.seed, settings: spec.settings.clone(), backend };
    let done = thaw_train::train_mlm(&files, &config, &texts, &job, out, observer)?;
    Ok(StageOutcomeRow {
        checkpoint_path: out.display().to_string(),
        checkpoint_sha256: None,
        loss_before: done.loss_before,
        perplexity_before: done.perplexity_before,
        loss_after: done.loss_after,
        perplexity_after: done.perplexity_after,
        train_docs: done.train_docs as i64,
        heldout_docs: done.heldout_docs as i64,
        trainable_params: done.trainable_params as i64,
        train_seconds: done.train_seconds,
        backend: backend.to_string(),
        head_warmup_steps: done.head_warmup_steps.map(|n| n as i64),
        heldout_chars_per_token: done.heldout_chars_per_token,
    })
}
