//! `thaw export`: a finished job as a folder that Hugging Face `transformers` loads, or an
//! intermediate-MLM stage as a `*ForMaskedLM` folder of its family ([`stage`]).
//!
//! A job's model comes from its kept weights when the sweep kept them (`[train] keep`),
//! else it is trained again from its stored spec: same seed, same backend, same data and
//! prefix-cache rules, which reproduce its result (the determinism test guards that). Either
//! way the export computes the test split's outputs and refuses a model whose test metric or
//! loss differs from the stored result beyond float noise, so the folder is the model the
//! report describes. What the folder holds depends on the task ([`folder`]); its model card
//! says how to use it ([`card`]).

mod card;
mod folder;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, anyhow, bail, ensure};
use thaw_metrics::TaskScores;
use thaw_store::{JobResultRow, Store, WorkKind, WorkStatus};
use thaw_train::data::{Example, Metric, Task};
use thaw_train::encode::EncodedData;
use thaw_train::hf_folder::write_folder;
use thaw_train::load::{is_current_checkpoint, load_classifier};
use thaw_train::model::Classifier;
use thaw_train::objective::score;
use thaw_train::outputs::{SplitOutputs, split_outputs};
use thaw_train::{BackendKind, ModelConfig, ModelFiles, Observer, Start};

use crate::files::{self, FileHome};
use crate::inputs::{
    Caches, fine_tune_spec, job_model, learnt_tokenizer, load_data, model_files, start_of,
};
use crate::jobspec::JobSpec;

pub use stage::export_stage;

/// Retrained test loss may differ from the stored one by this much (float noise: a frozen
/// prefix computed in other batches rounds differently); accuracy by at most one example,
/// another metric by this much (a word or pair near a tie may flip).
const LOSS_TOLERANCE: f64 = 1e-3;
const METRIC_TOLERANCE: f64 = 0.01;

/// What an export wrote and what it measured.
#[derive(Debug, Clone)]
pub struct Exported {
    pub folder: PathBuf,
    pub summary: String,
}

/// Writes job `key` of `sweep` as a `transformers` folder at `out`: from its kept weights
/// when the sweep kept them (and they are on this machine, `home`), else trained again.
/// `verdict` (the report's recommendation) goes into the model card.
pub async fn export_job(
    store: &Store,
    home: &FileHome,
    sweep: &str,
    key: &str,
    verdict: Option<String>,
    out: &Path,
) -> Result<Exported> {
    let rows = store.job_results(sweep).await?;
    let row = rows
        .iter()
        .find(|r| r.job_key == key)
        .ok_or_else(|| anyhow!("sweep '{sweep}' has no job {key}; `thaw results` lists them"))?
        .clone();
    ensure!(
        row.status == WorkStatus::Done && row.test_metric.is_some(),
        "job {key} is {}, not done: only a finished job can be exported",
        row.status
    );
    let mut spec: JobSpec = serde_json::from_str(
        &store.spec_json(WorkKind::Job, key).await?.context("the job's spec is missing")?,
    )
    .context("the job's spec in the database")?;
    files::localise_data(store, home, &mut spec.data).await?;
    let backend: BackendKind = row.backend.as_deref().unwrap_or("flex").parse()?;
    backend.check_built()?;
    let weights = match Some(home.weights(key)).filter(|p| p.is_file()) {
        Some(kept) => Weights::Kept(kept),
        None => {
            let checkpoint = match &spec.stage_key {
                Some(stage) => Some(current_checkpoint(store, home, stage).await?),
                None => None,
            };
            Weights::TrainAgain(start_of(spec.init, checkpoint))
        }
    };
    let out = out.to_path_buf();
    tokio::task::spawn_blocking(move || {
        files::locate_model(&mut spec.model)?;
        write_job(&spec, weights, backend, &row, verdict, &out)
    })
    .await
    .map_err(|e| anyhow!("the export thread failed: {e}"))?
}

/// The checkpoint of finished stage `stage`, refused when missing or in an older format.
async fn current_checkpoint(store: &Store, home: &FileHome, stage: &str) -> Result<PathBuf> {
    let path = files::stage_checkpoint_file(store, home, stage).await?.with_context(|| {
        format!("stage {stage} has no checkpoint; run the sweep to finish it first")
    })?;
    ensure!(
        is_current_checkpoint(&path) && path.is_file(),
        "stage {stage}'s checkpoint {} is missing or in an older format; run the sweep again (`thaw run FILE`) to redo it",
        path.display()
    );
    Ok(path)
}

/// Where an exported job's weights come from.
enum Weights {
    /// The file a worker kept (`[train] keep`).
    Kept(PathBuf),
    /// Training the job again from this start.
    TrainAgain(Start),
}

fn write_job(
    spec: &JobSpec,
    weights: Weights,
    backend: BackendKind,
    row: &JobResultRow,
    verdict: Option<String>,
    out: &Path,
) -> Result<Exported> {
    folder::check_exportable(spec.data.task, &model_files(&spec.model.dir)?.1)?;
    let device = backend.device()?;
    let ForExport { model, data, config, origin } = job_model_for_export(spec, weights, backend)?;
    let batch = spec.settings.batch_size * 2;
    let (model, outputs) = split_outputs(model, &data, &data.test, batch, &device)?;
    let metric = spec.settings.metric;
    let threshold = stored_threshold(spec, row)?;
    let measured = check_against_store(row, metric, &data, &outputs, threshold, &origin)?;
    let splits = spec.data.load(spec.train_size)?;
    // Scratch with its own vocabulary: its learnt tokenizer.json and its config.json, written
    // where the folder writer reads a model's files from (kept until the folder is written).
    let own_files = tempfile::tempdir()?;
    let files = job_files(spec, &splits.train, own_files.path())?;
    let about = card::About {
        spec,
        row,
        origin: &origin,
        verdict: verdict.as_deref(),
        config: &config,
        exported_metric: measured,
        test_examples: data.test.len(),
        standardization: data.standardization,
        threshold,
    };
    let layout = folder::TaskFolder::new(&about, &model, &data, &splits.test, &outputs)?;
    write_folder(&layout.tensors, &layout.contents(&files, spec, card::job_card(&about)), out)?;
    Ok(Exported {
        folder: out.to_path_buf(),
        summary: format!(
            "job {}: {origin}, test {} {measured:.4} (stored {:.4}), {} test predictions written",
            row.job_key,
            metric.name(),
            row.test_metric.unwrap_or(f64::NAN),
            data.test.len()
        ),
    })
}

/// A job's model as an export takes it, with the data it saw and where it came from.
struct ForExport {
    model: Classifier,
    data: Arc<EncodedData>,
    config: ModelConfig,
    /// "read from the kept weights ..." or "trained again on ...".
    origin: String,
}

/// The job's model: read from its kept weights, or trained again.
fn job_model_for_export(
    spec: &JobSpec,
    weights: Weights,
    backend: BackendKind,
) -> Result<ForExport> {
    let stop = AtomicBool::new(false);
    let mut quiet = |_: &thaw_train::Event| {};
    let mut observer = Observer { on_event: &mut quiet, stop: &stop };
    let mut caches = Caches::default();
    Ok(match weights {
        Weights::Kept(path) => {
            let (files, config) = job_model(spec)?;
            let data = load_data(spec, &files, &mut caches, &mut observer)?;
            let outputs = data.outputs();
            let autodiff = backend.device()?.autodiff();
            let model = load_classifier(&path, &config, outputs, spec.settings.pooling, &autodiff)?;
            let origin = format!("read from the kept weights {}", path.display());
            ForExport { model, data, config, origin }
        }
        Weights::TrainAgain(start) => {
            let trained = fine_tune_spec(spec, start, backend, &mut caches, &mut observer)?;
            let origin = format!("trained again on {backend}");
            ForExport { model: trained.model, data: trained.data, config: trained.config, origin }
        }
    })
}

/// Multi-label: the threshold validation chose for the job's weights, which its test
/// predictions were decided at (None for the other tasks).
fn stored_threshold(spec: &JobSpec, row: &JobResultRow) -> Result<Option<f64>> {
    if spec.data.task != Task::MultiLabel {
        return Ok(None);
    }
    let scores: TaskScores = serde_json::from_str(row.val_scores.as_deref().unwrap_or("null"))
        .with_context(|| format!("job {}'s stored validation scores", row.job_key))?;
    let threshold = scores.threshold();
    ensure!(threshold.is_some(), "job {} stored no multi-label threshold", row.job_key);
    Ok(threshold)
}

/// The test metric of `outputs`, refused when it (or the loss) differs from what the store
/// holds beyond float noise: the folder must be the model the report describes.
fn check_against_store(
    row: &JobResultRow,
    metric: Metric,
    data: &EncodedData,
    outputs: &SplitOutputs,
    threshold: Option<f64>,
    origin: &str,
) -> Result<f64> {
    let truth = &data.test.targets;
    let (scores, _) = score(&data.labels, truth, &outputs.predictions(data, threshold));
    let value = scores.get(metric).expect("the metric was checked against the task");
    let loss = outputs.loss(data, truth);
    let (stored, stored_loss) =
        (row.test_metric.unwrap_or(f64::NAN), row.test_loss.unwrap_or(f64::NAN));
    let allowed = match metric {
        Metric::Accuracy => 1.0 / data.test.len().max(1) as f64 + 1e-12,
        _ => METRIC_TOLERANCE,
    };
    if (value - stored).abs() > allowed || (loss - stored_loss).abs() > LOSS_TOLERANCE {
        bail!(
            "job {}, {origin}, gives test {name} {value:.4} (loss {loss:.5}), but the store holds {stored:.4} \
             (loss {stored_loss:.5}); the export would not be the model the report describes (was the model folder or data changed?)",
            row.job_key,
            name = metric.name(),
        );
    }
    Ok(value)
}

/// The files the folder is made from: the model's own, or for scratch with its own
/// vocabulary, its learnt tokenizer and its config written into `scratch_dir`.
fn job_files(spec: &JobSpec, train: &[Example], scratch_dir: &Path) -> Result<ModelFiles> {
    let (files, config) = model_files(&spec.model.dir)?;
    let (Some(learnt), Some(scratch)) = (learnt_tokenizer(spec, train)?, &spec.scratch_model)
    else {
        return Ok(files);
    };
    let files = ModelFiles {
        config: scratch_dir.join("config.json"),
        tokenizer: scratch_dir.join("tokenizer.json"),
        ..files
    };
    std::fs::write(&files.config, serde_json::to_string(&scratch.config(config.max_tokens()))?)?;
    std::fs::write(&files.tokenizer, learnt.to_string(false).map_err(|e| anyhow!("{e}"))?)?;
    Ok(files)
}

/// Deletes the kept weights of done jobs outside `keep` (`[train] keep = "best-per-cell"`,
/// after a run's report): weights of jobs still running or pending are never touched.
/// Returns how many files were deleted.
pub fn prune_kept_weights(home: &FileHome, done: &[&str], keep: &[&str]) -> Result<usize> {
    let mut deleted = 0;
    for key in done.iter().filter(|k| !keep.contains(k)) {
        let path = home.weights(key);
        if path.is_file() {
            std::fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
