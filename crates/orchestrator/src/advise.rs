//! `thaw advise FILE`: what the sweep's pretrained model already knows about its task, read
//! from frozen features before any job trains. For every encoder depth (0 = the embeddings'
//! output) the training examples are pooled as the sweep's head pools them, and four readings
//! are taken (`thaw_advise::signals`): LogME and the regularized H-score on train, kNN and
//! closed-form linear-probe accuracy on validation.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use thaw_advise::signals::{Labelled, Signals, signals};
use thaw_store::Init;
use thaw_train::data::Task;
use thaw_train::features::depth_features;
use thaw_train::load::load_encoder;
use thaw_train::{BackendKind, Observer, Start};

use crate::files;
use crate::inputs::{Caches, job_model, load_data};
use crate::sweep;

/// What `thaw advise` measured.
#[derive(Debug, Clone)]
pub struct Advice {
    pub sweep: String,
    pub model: String,
    pub train_examples: usize,
    pub validation_examples: usize,
    /// Index d: the readings after d encoder layers.
    pub by_depth: Vec<Signals>,
    /// The validation rate of always answering the most frequent training class.
    pub majority_accuracy: f64,
    pub seconds: f64,
}

/// [`advise`] off the async runtime's threads.
pub async fn run(file: PathBuf) -> Result<Advice> {
    tokio::task::spawn_blocking(move || advise(&file)).await?
}

/// Reads the sweep `file` and measures its pretrained model's frozen features on the
/// largest training set the grid uses.
pub fn advise(file: &Path) -> Result<Advice> {
    let started = Instant::now();
    let (_, plan) = sweep::load(file, BackendKind::Flex)?;
    let mut spec = plan
        .jobs
        .iter()
        .filter(|j| j.spec.init == Init::Pretrained && j.spec.stage_key.is_none())
        .max_by_key(|j| j.spec.train_size.unwrap_or(usize::MAX))
        .map(|j| j.spec.clone())
        .context("the sweep has no pretrained job without intermediate MLM to read features for")?;
    if spec.data.task != Task::Classification {
        bail!(
            "thaw advise reads single-label classification sweeps so far; this sweep's task is '{}'",
            spec.data.task
        );
    }
    files::locate_model(&mut spec.model)?;
    let (files, config) = job_model(&spec)?;
    let stop = AtomicBool::new(false);
    let mut quiet = |_: &thaw_train::Event| {};
    let mut observer = Observer { on_event: &mut quiet, stop: &stop };
    let data = load_data(&spec, &files, &mut Caches::default(), &mut observer)?;
    let device = BackendKind::Flex.device()?;
    let encoder = load_encoder(&files, &config, &Start::Pretrained, &device)?;
    let pooling = spec.settings.pooling;
    let batch = spec.settings.batch_size * 2;
    let train = depth_features(&encoder, &data.train, data.pad, pooling, batch, &device)?;
    let validation = depth_features(&encoder, &data.validation, data.pad, pooling, batch, &device)?;
    let classes = data.labels.len();
    let (train_labels, validation_labels) = (data.train.classes(), data.validation.classes());
    let by_depth = train
        .by_depth
        .iter()
        .zip(&validation.by_depth)
        .map(|(t, v)| {
            signals(
                &Labelled { features: t, labels: train_labels },
                &Labelled { features: v, labels: validation_labels },
                classes,
            )
        })
        .collect();
    Ok(Advice {
        sweep: plan.sweep.clone(),
        model: spec.model.origin.clone(),
        train_examples: data.train.len(),
        validation_examples: data.validation.len(),
        by_depth,
        majority_accuracy: majority_rate(train_labels, validation_labels, classes),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn majority_rate(train: &[usize], validation: &[usize], classes: usize) -> f64 {
    let mut counts = vec![0usize; classes];
    for &c in train {
        counts[c] += 1;
    }
    let majority = (0..classes).max_by_key(|&c| (counts[c], std::cmp::Reverse(c))).unwrap_or(0);
    validation.iter().filter(|&&c| c == majority).count() as f64 / validation.len().max(1) as f64
}

impl Advice {
    /// The table `thaw advise` prints.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "sweep {}: frozen {} on {} training and {} validation examples ({:.0} s)\n\
             depth = encoder layers applied (0: the embeddings). LogME and H-score on train, higher is better; \
             kNN (k = {}) and linear-probe accuracy on validation (always the majority class: {:.1} %).\n\n\
             depth  LogME     H-score   kNN acc %  probe acc %\n",
            self.sweep,
            self.model,
            self.train_examples,
            self.validation_examples,
            self.seconds,
            thaw_advise::signals::NEIGHBOURS,
            100.0 * self.majority_accuracy,
        );
        for (depth, s) in self.by_depth.iter().enumerate() {
            out.push_str(&format!(
                "{depth:>5}  {:>8.4}  {:>8.4}  {:>9.1}  {:>11.1}\n",
                s.logme,
                s.h_score,
                100.0 * s.knn_accuracy,
                100.0 * s.probe_accuracy
            ));
        }
        out
    }
}
