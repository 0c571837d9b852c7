//! What running a job or a stage takes, shared by a worker and `thaw export` (which trains a
//! job again exactly as its worker did): the model's files and architecture, the data
//! tokenized (once per worker process), the start weights, and the training call itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thaw_train::data::{Example, read_corpus};
use thaw_train::encode::{EncodedData, TokenMemo, encode_splits_with};
use thaw_train::finetune::{FineTuneOutcome, fine_tune_returning_model};
use thaw_train::model::Classifier;
use thaw_train::prefix::PrefixCache;
use thaw_train::tokenize::TextTokenizer;
use thaw_train::{BackendKind, FineTuneJob, ModelConfig, ModelFiles, Observer, Start};

use crate::jobspec::{Corpus, JobSpec, StageSpec};
use crate::keys;
use crate::spec::Init;

/// Per-process reuse: tokenized data and frozen-prefix activations survive across jobs.
#[derive(Default)]
pub struct Caches {
    tokens: HashMap<String, Arc<EncodedData>>,
    /// Token ids per (model, max length): each text is tokenized once per worker process.
    memos: HashMap<(String, usize), TokenMemo>,
    prefix: Option<PrefixCache>,
}

/// Where a job or stage's encoder starts: the MLM stage's checkpoint when it has one, else
/// the checkpoint's weights or random ones, as its init says.
pub fn start_of(init: Init, stage_checkpoint: Option<PathBuf>) -> Start {
    match (stage_checkpoint, init) {
        (Some(path), _) => Start::Checkpoint(path),
        (None, Init::Pretrained) => Start::Pretrained,
        (None, Init::Scratch | Init::ScratchOwnVocab) => Start::Scratch,
    }
}

pub fn model_files(dir: &Path) -> thaw_train::Result<(ModelFiles, ModelConfig)> {
    let files = ModelFiles::in_dir(dir)?;
    let config = ModelConfig::from_file(&files.config)?;
    Ok((files, config))
}

/// The model a job trains: the checkpoint's files and architecture, or for scratch with its
/// own vocabulary the `[scratch]` size (the checkpoint's files then only give the folder).
pub fn job_model(spec: &JobSpec) -> thaw_train::Result<(ModelFiles, ModelConfig)> {
    let (files, config) = model_files(&spec.model.dir)?;
    let config = match &spec.scratch_model {
        None => config,
        Some(scratch) => ModelConfig::Bert(scratch.config(config.max_tokens())),
    };
    Ok((files, config))
}

/// Scratch with its own vocabulary: the vocabulary learnt from the job's training split
/// `train` (the same every time: learning is deterministic). None for every other job.
pub fn learnt_tokenizer(
    spec: &JobSpec,
    train: &[Example],
) -> thaw_train::Result<Option<thaw_train::vocab::Tokenizer>> {
    let Some(scratch) = &spec.scratch_model else { return Ok(None) };
    let texts: Vec<&str> = train.iter().map(|e| e.text.as_str()).collect();
    scratch.learn_tokenizer(&texts).map(Some)
}

pub fn load_data(
    spec: &JobSpec,
    files: &ModelFiles,
    caches: &mut Caches,
    observer: &mut Observer,
) -> thaw_train::Result<Arc<EncodedData>> {
    let d = &spec.data;
    let vocabulary = keys::vocabulary_identity(spec);
    let key = format!("{vocabulary}|{}|{:?}", d.identity, spec.train_size);
    if let Some(hit) = caches.tokens.get(&key) {
        return Ok(hit.clone());
    }
    observer
        .phase(thaw_train::Phase::Tokenize, format!("{} (max_length {})", d.name, d.max_length));
    let splits = d.load(spec.train_size)?;
    if let Some(scratch) = &spec.scratch_model {
        observer.phase(
            thaw_train::Phase::Tokenize,
            format!("learning a {}-token vocabulary from the training text", scratch.vocab_size),
        );
    }
    let tokenizer = match learnt_tokenizer(spec, &splits.train)? {
        None => TextTokenizer::from_file(&files.tokenizer, d.max_length)?,
        Some(learnt) => TextTokenizer::from_tokenizer(
            learnt,
            d.max_length,
            "the vocabulary learnt from the training text",
        )?,
    };
    let memo = caches.memos.entry((vocabulary, d.max_length)).or_default();
    let encoded = encode_splits_with(&tokenizer, &splits, key.clone(), memo)?;
    caches.tokens.insert(key, encoded.clone());
    Ok(encoded)
}

/// What training a job gives: its outcome, the best epoch's model, the data it saw, and the
/// model's config (the names its weights are saved under come from it).
pub struct Trained {
    pub outcome: FineTuneOutcome,
    pub model: Classifier,
    pub data: Arc<EncodedData>,
    pub config: ModelConfig,
}

/// Trains `spec` from `start` as a worker does (same data, same prefix cache rules), so
/// `thaw export` retraining a job reproduces the result its worker stored.
pub fn fine_tune_spec(
    spec: &JobSpec,
    start: Start,
    backend: BackendKind,
    caches: &mut Caches,
    observer: &mut Observer,
) -> thaw_train::Result<Trained> {
    fine_tune_as(spec, &fine_tune_job(spec, start, backend), caches, observer)
}

/// The trainer's job for `spec`.
pub fn fine_tune_job(spec: &JobSpec, start: Start, backend: BackendKind) -> FineTuneJob {
    FineTuneJob {
        start,
        freeze: spec.freeze,
        seed: spec.seed,
        settings: spec.settings.clone(),
        backend,
        start_identity: keys::start_identity(spec),
        stop_after_epochs: spec.rung,
        measure_gradient_ratios: false,
    }
}

/// Trains `job` on the data and model `spec` names.
pub fn fine_tune_as(
    spec: &JobSpec,
    job: &FineTuneJob,
    caches: &mut Caches,
    observer: &mut Observer,
) -> thaw_train::Result<Trained> {
    let (files, config) = job_model(spec)?;
    let data = load_data(spec, &files, caches, observer)?;
    let budget = spec.prefix_cache_mb << 20;
    if caches.prefix.as_ref().is_none_or(|c| c.budget_bytes() != budget) {
        caches.prefix = Some(PrefixCache::new(budget));
    }
    let cache = caches.prefix.as_mut().filter(|c| c.budget_bytes() > 0);
    let (outcome, model) = fine_tune_returning_model(&files, &config, &data, job, cache, observer)?;
    Ok(Trained { outcome, model, data, config })
}

/// The text a stage trains on: only the training split's for task MLM (validation and
/// test stay unseen), or the corpus file's documents.
pub fn stage_texts(spec: &StageSpec) -> thaw_train::Result<Vec<String>> {
    match &spec.corpus {
        Corpus::Task => Ok(spec.data.load(None)?.train.into_iter().map(|e| e.text).collect()),
        Corpus::File { path, .. } => read_corpus(path),
    }
}
