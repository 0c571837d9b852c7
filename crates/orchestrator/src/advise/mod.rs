//! `thaw advise FILE`: the sweep's verdict forecast before the sweep runs, at a small share
//! of its compute. Two kinds of evidence:
//! - what the pretrained model already knows about the task, read from frozen features: for
//!   every encoder depth (0 = the embeddings' output) the training examples are pooled as the
//!   sweep's head pools them, and four readings are taken (`thaw_advise::signals`): LogME and
//!   the regularized H-score on train, kNN and closed-form linear-probe accuracy on
//!   validation (classification);
//! - short fine-tuning probes of every cell ([`probes`]): one epoch on a small share of its
//!   training set (more epochs where the budget allows), which give each cell's early
//!   validation metric and speed, and each trained layer's gradient-to-weight norm ratio;
//! - each intermediate-MLM corpus's distance from the pretraining data ([`mlm_reading`]): the
//!   held-out masked-LM perplexity before any MLM step.
//!
//! [`forecast`] ranks the cells, picks the cheapest within the validation split's sampling
//! error of the best, says why, and the store keeps it for the report.

mod forecast;
mod mlm_reading;
mod probes;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use thaw_advise::signals::{Labelled, Signals, signals};
use thaw_analysis::advice::Forecast;
use thaw_analysis::labels::cell_with_depth;
use thaw_store::{Init, Location, Store};
use thaw_train::data::Task;
use thaw_train::features::depth_features;
use thaw_train::load::load_encoder;
use thaw_train::{BackendKind, Observer, Start};

use crate::files;
use crate::inputs::{Caches, job_model, load_data};
use crate::jobspec::JobSpec;
use crate::sweep;

/// What `thaw advise` measured and predicted.
#[derive(Debug, Clone)]
pub struct Advice {
    pub model: String,
    /// The frozen readings (classification only).
    pub readings: Option<Readings>,
    pub forecast: Forecast,
    /// Where the forecast was stored.
    pub stored_in: String,
}

/// The frozen features' readings per depth.
#[derive(Debug, Clone)]
pub struct Readings {
    pub train_examples: usize,
    pub validation_examples: usize,
    /// Index d: the readings after d encoder layers.
    pub by_depth: Vec<Signals>,
    /// The validation rate of always answering the most frequent training class.
    pub majority_accuracy: f64,
}

/// [`advise`] off the async runtime's threads, then the forecast stored in `db` (default:
/// the sweep's `results/<sweep>.db`).
pub async fn run(file: PathBuf, db: Option<Location>) -> Result<Advice> {
    let (model, readings, forecast) = tokio::task::spawn_blocking(move || advise(&file)).await??;
    let db = match db {
        Some(db) => db,
        None => {
            std::fs::create_dir_all("results")?;
            Location::Sqlite(sweep::default_db(&forecast.sweep))
        }
    };
    let store = Store::connect(&db, Some("thaw advise")).await?;
    let json = serde_json::to_string(&forecast)?;
    store
        .record_advice(&forecast.sweep, &json, forecast.advisor_seconds, forecast.grid_seconds)
        .await?;
    Ok(Advice { model, readings, forecast, stored_in: db.to_string() })
}

/// Reads the sweep `file`, measures its pretrained model's frozen features (classification)
/// and probes every cell; returns the model, the readings and the forecast.
pub fn advise(file: &Path) -> Result<(String, Option<Readings>, Forecast)> {
    let started = Instant::now();
    let (_, mut plan) = sweep::load(file, BackendKind::Flex)?;
    files::locate_model(&mut plan.model)?;
    for job in &mut plan.jobs {
        job.spec.model = plan.model.clone();
    }
    for stage in &mut plan.stages {
        stage.spec.model = plan.model.clone();
    }
    // The splits as jobs see them (validation capped at max_validation), read once.
    let splits = plan.data.load(None)?;
    let (train_examples, validation_examples) = (splits.train.len(), splits.validation.len());
    let spec = plan
        .jobs
        .iter()
        .filter(|j| j.spec.init == Init::Pretrained && j.spec.stage_key.is_none())
        .max_by_key(|j| j.spec.train_size.unwrap_or(usize::MAX))
        .map(|j| j.spec.clone())
        .context("the sweep has no pretrained job without intermediate MLM to read features for")?;
    let stop = AtomicBool::new(false);
    let mut quiet = |_: &thaw_train::Event| {};
    let mut observer = Observer { on_event: &mut quiet, stop: &stop };
    let readings = match spec.data.task {
        Task::Classification => Some(frozen_readings(&spec, &mut observer)?),
        _ => None,
    };
    let budget = probes::probe_budget(&plan, train_examples);
    let probes = probes::run_probes(&plan, budget, train_examples, &mut observer)?;
    let mlm = mlm_reading::read_corpora(&plan, &mut observer)?;
    let inputs = forecast::Inputs {
        plan: &plan,
        probes: &probes,
        readings: readings.as_ref().map(|r| r.by_depth.as_slice()),
        mlm: &mlm,
        validation_examples,
        train_examples,
        probe_budget: budget,
        advisor_seconds: started.elapsed().as_secs_f64(),
    };
    let forecast = forecast::forecast(&inputs);
    Ok((spec.model.origin.clone(), readings, forecast))
}

/// LogME, H-score, kNN and probe accuracy of the frozen features at every depth.
fn frozen_readings(spec: &JobSpec, observer: &mut Observer) -> Result<Readings> {
    let (files, config) = job_model(spec)?;
    let data = load_data(spec, &files, &mut Caches::default(), observer)?;
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
    Ok(Readings {
        train_examples: data.train.len(),
        validation_examples: data.validation.len(),
        by_depth,
        majority_accuracy: majority_rate(train_labels, validation_labels, classes),
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
    /// What `thaw advise` prints: the readings per depth, the forecast per cell, the pick and
    /// why, and the cost.
    pub fn describe(&self) -> String {
        let f = &self.forecast;
        let mut out = format!("sweep {}: {}\n\n", f.sweep, self.model);
        if let Some(r) = &self.readings {
            out.push_str(&r.describe());
        }
        out.push_str(&format!("\nForecast (validation {}, best first):\n", f.metric.title()));
        for (i, c) in f.cells.iter().enumerate() {
            let mark = if i == f.pick { "  <- pick" } else { "" };
            out.push_str(&format!(
                "{:>3}. {:<60} {:>6.1} %  {:>7.1} s/job{mark}\n",
                i + 1,
                cell_with_depth(&c.cell, c.num_layers),
                100.0 * c.predicted,
                c.job_seconds
            ));
        }
        out.push_str(&gradient_table(f));
        out.push_str(&format!(
            "\n{}\n\nThe advice took {:.0} s, {:.1} % of the {:.0} s the whole grid would train (estimated from the probes' speed{}). \
             Stored in {}; `thaw report` sets it beside the verdict once the sweep has run.\n",
            f.reason,
            f.advisor_seconds,
            100.0 * f.compute_fraction(),
            f.grid_seconds,
            if f.mlm.is_empty() { "" } else { ", its MLM stages at the MLM reading's" },
            self.stored_in
        ));
        out
    }
}

/// Each probed cell's gradient-to-weight ratio per layer ("-": frozen), when any was measured.
fn gradient_table(f: &Forecast) -> String {
    let layers = f.cells.iter().map(|c| c.gradient_ratios.len()).max().unwrap_or(0);
    let measured: Vec<_> =
        f.cells.iter().filter(|c| c.gradient_ratios.iter().any(Option::is_some)).collect();
    if measured.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nGradient-to-weight norm ratio per encoder layer (the probe's steps' mean; -: frozen), layer 1 (bottom) first:\n",
    );
    for c in measured {
        // A shallower model (scratch with its own vocabulary) leaves its missing layers blank.
        let ratios: Vec<String> = (0..layers)
            .map(|i| match c.gradient_ratios.get(i) {
                Some(Some(r)) => format!("{r:>8.1e}"),
                Some(None) => format!("{:>8}", "-"),
                None => format!("{:>8}", ""),
            })
            .collect();
        out.push_str(&format!(
            "     {:<60} {}\n",
            cell_with_depth(&c.cell, c.num_layers),
            ratios.join(" ").trim_end()
        ));
    }
    out
}

impl Readings {
    fn describe(&self) -> String {
        let mut out = format!(
            "Frozen features on {} training and {} validation examples. depth = encoder layers applied (0: the embeddings). \
             LogME and H-score on train, higher is better; kNN (k = {}) and linear-probe accuracy on validation \
             (always the majority class: {:.1} %).\n\n\
             depth  LogME     H-score   kNN acc %  probe acc %\n",
            self.train_examples,
            self.validation_examples,
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
