//! `thaw export`: a finished job as a folder that Hugging Face `transformers` loads, or an
//! intermediate-MLM stage as a `*ForMaskedLM` folder of its family.
//!
//! A job's model comes from its kept weights when the sweep kept them (`[train] keep`),
//! else it is trained again from its stored spec: same seed, same backend, same data and
//! prefix-cache rules, which reproduce its result (the determinism test guards that). Either
//! way the export computes the test split's logits and refuses a model whose test accuracy
//! or loss differs from the stored result beyond float noise, so the folder is the model the
//! report describes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Map, Value, json};
use thaw_store::{JobResultRow, StageRow, Store, WorkKind, WorkStatus};
use thaw_train::data::{Example, Task};
use thaw_train::encode::EncodedData;
use thaw_train::finetune::split_logits;
use thaw_train::hf_folder::{FolderContents, write_folder};
use thaw_train::load::{is_current_checkpoint, load_classifier, load_masked_lm};
use thaw_train::mlm::fixed_mask_check;
use thaw_train::model::Classifier;
use thaw_train::tokenize::TextTokenizer;
use thaw_train::weights::{NamedTensor, hf_tensors};
use thaw_train::{BackendKind, ModelConfig, ModelFiles, Observer, Start};

use crate::files::{self, FileHome};
use crate::inputs::{
    Caches, fine_tune_spec, job_model, learnt_tokenizer, load_data, model_files, stage_texts,
    start_of,
};
use crate::jobspec::{JobSpec, StageSpec};

/// Retrained test loss may differ from the stored one by this much (float noise: a frozen
/// prefix computed in other batches rounds differently); accuracy by at most one example.
const LOSS_TOLERANCE: f64 = 1e-3;

/// How many documents the masked-LM check of a stage export masks and scores.
const MLM_CHECK_DOCS: usize = 32;

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
        row.status == WorkStatus::Done && row.test_accuracy.is_some(),
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
    ensure!(
        spec.data.task == Task::Classification,
        "thaw export writes single-label classifiers; this sweep's task is '{}' (its jobs' results are in the store, and `thaw results` lists them)",
        spec.data.task
    );
    let device = backend.device()?;
    let ForExport { model, data, config, origin } = job_model_for_export(spec, weights, backend)?;
    let (model, logits) =
        split_logits(model, &data.test, data.pad, spec.settings.batch_size * 2, &device)?;
    let accuracy = check_against_store(row, &logits, data.test.classes(), &origin)?;
    let splits = spec.data.load(spec.train_size)?;
    let predictions: Vec<String> = splits
        .test
        .iter()
        .zip(data.test.classes())
        .zip(&logits)
        .map(|((example, &label), logits)| {
            json!({"text": example.text, "label": data.labels[label], "logits": logits}).to_string()
        })
        .collect();
    // Scratch with its own vocabulary: its learnt tokenizer.json and its config.json, written
    // where the folder writer reads a model's files from (kept until the folder is written).
    let own_files = tempfile::tempdir()?;
    let files = job_files(spec, &splits.train, own_files.path())?;
    let about = Provenance { origin: &origin, verdict: verdict.as_deref(), config: &config };
    let card = job_card(spec, row, accuracy, &about, data.test.len());
    let contents = FolderContents {
        files: &files,
        config: job_config(spec, row, &config, &data.labels),
        max_length: spec.data.max_length,
        card,
        extra: vec![("test_predictions.jsonl".into(), predictions.join("\n") + "\n")],
        extra_tensors: vec![("classifier.safetensors".into(), head_tensors(&model))],
    };
    // The encoder alone, so AutoModel reads every tensor of model.safetensors and nothing is left over.
    write_folder(&hf_tensors(&model.encoder), &contents, out)?;
    Ok(Exported {
        folder: out.to_path_buf(),
        summary: format!(
            "job {}: {origin}, test accuracy {accuracy:.4} (stored {:.4}), {} test predictions written",
            row.job_key,
            row.test_accuracy.unwrap_or(f64::NAN),
            logits.len()
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
            let labels = data.labels.len();
            let autodiff = backend.device()?.autodiff();
            let model = load_classifier(&path, &config, labels, spec.settings.pooling, &autodiff)?;
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

/// The test accuracy of `logits`, refused when it (or the loss) differs from what the store
/// holds beyond float noise: the folder must be the model the report describes.
fn check_against_store(
    row: &JobResultRow,
    logits: &[Vec<f32>],
    labels: &[usize],
    origin: &str,
) -> Result<f64> {
    let (accuracy, loss) = accuracy_and_loss(logits, labels);
    let (stored_accuracy, stored_loss) =
        (row.test_accuracy.unwrap_or(f64::NAN), row.test_loss.unwrap_or(f64::NAN));
    let one_example = 1.0 / labels.len().max(1) as f64;
    if (accuracy - stored_accuracy).abs() > one_example + 1e-12
        || (loss - stored_loss).abs() > LOSS_TOLERANCE
    {
        bail!(
            "job {}, {origin}, gives test accuracy {accuracy:.4} (loss {loss:.5}), but the store holds {stored_accuracy:.4} \
             (loss {stored_loss:.5}); the export would not be the model the report describes (was the model folder or data changed?)",
            row.job_key,
        );
    }
    Ok(accuracy)
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

/// What config.json says besides the model's own: the bare encoder's class, the labels, and
/// how thaw's head reads the encoder.
fn job_config(
    spec: &JobSpec,
    row: &JobResultRow,
    config: &ModelConfig,
    labels: &[String],
) -> Map<String, Value> {
    let id2label: Map<String, Value> =
        labels.iter().enumerate().map(|(i, l)| (i.to_string(), json!(l))).collect();
    let label2id: Map<String, Value> =
        labels.iter().enumerate().map(|(i, l)| (l.clone(), json!(i))).collect();
    let mut fields = Map::new();
    fields.insert("architectures".into(), json!([config.architecture(false)]));
    fields.insert("id2label".into(), Value::Object(id2label));
    fields.insert("label2id".into(), Value::Object(label2id));
    fields.insert(
        "thaw".into(),
        json!({
            "job": row.job_key,
            "sweep": row.sweep,
            "pooling": spec.settings.pooling.as_str(),
            "max_length": spec.data.max_length,
            "head": "classifier.safetensors (classifier.weight, classifier.bias)",
        }),
    );
    fields
}

/// The classification head as `classifier.weight` ([labels, hidden], as PyTorch stores it) and `classifier.bias`.
fn head_tensors(model: &Classifier) -> Vec<NamedTensor> {
    hf_tensors(&model.classifier)
        .into_iter()
        .map(|t| NamedTensor { name: format!("classifier.{}", t.name), ..t })
        .collect()
}

/// Accuracy and mean cross-entropy of `logits` against class ids `labels`.
fn accuracy_and_loss(logits: &[Vec<f32>], labels: &[usize]) -> (f64, f64) {
    let (mut correct, mut loss) = (0usize, 0.0f64);
    for (row, &label) in logits.iter().zip(labels) {
        let predicted = (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
        correct += usize::from(predicted == label);
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let log_sum = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
        loss += log_sum - row[label] as f64;
    }
    let n = labels.len().max(1) as f64;
    (correct as f64 / n, loss / n)
}

/// Where an exported model came from, for its card.
struct Provenance<'a> {
    /// "read from the kept weights ..." or "trained again on ...".
    origin: &'a str,
    /// The sweep's recommendation, when the export is the recommended cell's.
    verdict: Option<&'a str>,
    config: &'a ModelConfig,
}

fn job_card(
    spec: &JobSpec,
    row: &JobResultRow,
    export_accuracy: f64,
    about: &Provenance,
    test_examples: usize,
) -> String {
    let (origin, verdict) = (about.origin, about.verdict);
    let pooling = spec.settings.pooling.as_str();
    // Only the families whose base class carries a pooler take (and need) this argument.
    let without_pooler = match about.config.model_type() {
        "bert" | "roberta" | "xlm-roberta" => ", add_pooling_layer=False",
        _ => "",
    };
    let class = about.config.architecture(false);
    let cell = format!(
        "{} init, intermediate MLM: {}{}, {} of {} encoder layers frozen ({} unfrozen), {pooling} pooling, training examples: {}",
        spec.init,
        row.intermediate,
        row.mlm_freeze.map_or(String::new(), |k| format!(" (MLM freeze {k})")),
        spec.freeze,
        row.num_layers,
        row.unfrozen_layers,
        spec.train_size.map_or("all".to_string(), |n| n.to_string()),
    );
    let percent = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2} %", 100.0 * v));
    format!(
        "# {sweep}: job {key}\n\n\
         A text classifier fine-tuned by thaw from `{model}` on `{data}`, exported with `thaw export`.\n\n\
         | | |\n|---|---|\n\
         | cell | {cell} |\n| seed | {seed} |\n| learning rate | {lr:e} |\n| epochs | {epochs} (best on validation: {best_epoch}) |\n\
         | max length | {max_length} tokens |\n\
         | validation accuracy | {val} |\n| test accuracy | {test} ({test_examples} examples; this export, {origin}: {exported:.2} %) |\n\
         | test macro-F1 | {f1} |\n\n\
         {verdict}\
         ## Use it\n\n\
         thaw's head reads the encoder's {pooling_text}, not BERT's pooler, so load the encoder with \
         `transformers` and apply the head, kept in `classifier.safetensors`, in a few lines (no custom code; \
         `model.safetensors` is a plain `{class}` without pooler):\n\n\
         ```python\n\
         import torch\n\
         from safetensors.torch import load_file\n\
         from transformers import AutoModel, AutoTokenizer\n\
         \n\
         def load(folder):\n\
         \x20   tokenizer = AutoTokenizer.from_pretrained(folder)\n\
         \x20   encoder = AutoModel.from_pretrained(folder{without_pooler}).eval()\n\
         \x20   head = load_file(f\"{{folder}}/classifier.safetensors\")\n\
         \x20   return tokenizer, encoder, head[\"classifier.weight\"], head[\"classifier.bias\"]\n\
         \n\
         def logits(texts, tokenizer, encoder, weight, bias, pooling=\"{pooling}\", max_length={max_length}):\n\
         \x20   batch = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors=\"pt\")\n\
         \x20   with torch.inference_mode():\n\
         \x20       hidden = encoder(**batch).last_hidden_state\n\
         \x20       if pooling == \"cls\":\n\
         \x20           pooled = hidden[:, 0]\n\
         \x20       else:\n\
         \x20           keep = batch[\"attention_mask\"].unsqueeze(-1).to(hidden.dtype)\n\
         \x20           pooled = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1)\n\
         \x20       return pooled @ weight.T + bias\n\
         ```\n\n\
         Labels: `config.json`'s `id2label`. `test_predictions.jsonl` holds thaw's own logits for the test split, \
         which `scripts/check_export.py` compares with these.\n",
        sweep = row.sweep,
        key = row.job_key,
        model = spec.model.origin,
        data = spec.data.name,
        seed = spec.seed,
        lr = spec.settings.lr,
        epochs = spec.settings.epochs,
        best_epoch = row.best_epoch.unwrap_or(0),
        max_length = spec.data.max_length,
        val = percent(row.val_accuracy),
        test = percent(row.test_accuracy),
        exported = 100.0 * export_accuracy,
        f1 = percent(row.test_macro_f1),
        // "(below)" points into the report, which the card does not include.
        verdict = verdict.map_or(String::new(), |v| format!(
            "The sweep's verdict: {}\n\n",
            v.replace(" (below)", "")
        )),
        pooling_text =
            if pooling == "cls" { "[CLS] hidden state" } else { "mean over non-padding tokens" },
    )
}

/// Writes intermediate-MLM stage `key` of `sweep` as a `*ForMaskedLM` folder, with a
/// masked-LM check (fixed masks and thaw's loss on them) for `scripts/check_export.py`.
pub async fn export_stage(
    store: &Store,
    home: &FileHome,
    sweep: &str,
    key: &str,
    out: &Path,
) -> Result<Exported> {
    let stage: StageRow =
        store.stages(sweep).await?.into_iter().find(|s| s.key == key).ok_or_else(|| {
            anyhow!("sweep '{sweep}' has no stage {key}; `thaw plan FILE` lists them")
        })?;
    ensure!(stage.status == WorkStatus::Done, "stage {key} is {}, not done", stage.status);
    let checkpoint = current_checkpoint(store, home, key).await?;
    let mut spec: StageSpec = serde_json::from_str(
        &store.spec_json(WorkKind::Stage, key).await?.context("the stage's spec is missing")?,
    )
    .context("the stage's spec in the database")?;
    files::localise_data(store, home, &mut spec.data).await?;
    files::localise_corpus(store, home, &mut spec.corpus).await?;
    let out = out.to_path_buf();
    tokio::task::spawn_blocking(move || {
        files::locate_model(&mut spec.model)?;
        write_stage(&spec, &stage, &checkpoint, &out)
    })
    .await
    .map_err(|e| anyhow!("the export thread failed: {e}"))?
}

fn write_stage(
    spec: &StageSpec,
    stage: &StageRow,
    checkpoint: &Path,
    out: &Path,
) -> Result<Exported> {
    let (files, config) = model_files(&spec.model.dir)?;
    let device = BackendKind::Flex.device()?;
    let model = load_masked_lm(checkpoint, &config, &device)?;
    let tokenizer = TextTokenizer::from_file(&files.tokenizer, spec.settings.max_length)?;
    let texts = stage_texts(spec)?;
    let sample: Vec<&str> = texts.iter().take(MLM_CHECK_DOCS).map(String::as_str).collect();
    let check = fixed_mask_check(&model, &tokenizer, &sample, spec.settings.mask_prob, 0, &device)?;
    let class = config.architecture(true);
    let mut config_fields = Map::new();
    config_fields.insert("architectures".into(), json!([class]));
    config_fields.insert("tie_word_embeddings".into(), json!(true));
    if let ModelConfig::DebertaV2(_) = config {
        // The head's names are `cls.predictions.*`, as transformers 5's default (legacy) class has them.
        config_fields.insert("legacy".into(), json!(true));
    }
    let card = format!(
        "# Intermediate-MLM stage {key}\n\n\
         `{model}` after {steps} masked-LM steps on {corpus} ({init} init, embeddings and the bottom {freeze} layers frozen), \
         written by thaw as a `{class}` folder: `AutoModelForMaskedLM.from_pretrained(folder)` loads it, and thaw \
         reads it as a model with its own MLM head (`[model] path = \"folder\"`; no head warm-up).\n\n\
         Held-out masked-LM perplexity: {before} before, {after} after.\n\n\
         `mlm_check.json` holds {docs} documents masked with fixed masks and thaw's loss on them ({loss:.5}); \
         `scripts/check_export.py` has `transformers` compute the same loss.\n",
        key = stage.key,
        model = spec.model.origin,
        steps = spec.settings.steps,
        corpus = match &spec.corpus {
            crate::jobspec::Corpus::Task => format!("the training text of `{}`", spec.data.name),
            crate::jobspec::Corpus::File { path, .. } => format!("`{}`", path.display()),
        },
        init = spec.init,
        freeze = spec.settings.freeze,
        before = stage.perplexity_before.map_or("-".into(), |p| format!("{p:.2}")),
        after = stage.perplexity_after.map_or("-".into(), |p| format!("{p:.2}")),
        docs = sample.len(),
        loss = check.loss,
    );
    let contents = FolderContents {
        files: &files,
        config: config_fields,
        max_length: spec.settings.max_length,
        card,
        extra: vec![("mlm_check.json".into(), serde_json::to_string(&check)? + "\n")],
        extra_tensors: Vec::new(),
    };
    write_folder(&model.named_tensors(&config), &contents, out)?;
    Ok(Exported {
        folder: out.to_path_buf(),
        summary: format!(
            "stage {}: {class} folder; masked-LM loss on the fixed-mask check {:.5}",
            stage.key, check.loss
        ),
    })
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
