//! One worker: claims stages and jobs from the store, runs them with thaw-train on a
//! blocking thread, keeps a heartbeat, records results. Many workers (the child processes of
//! `thaw run`, or `thaw worker` processes anywhere that can open the file) share a sweep
//! through the store's atomic claim.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use thaw_store::{Claimed, EpochRow, ResultRow, StageOutcomeRow, Store, WorkKind, correct_text};
use thaw_train::data::{Example, read_corpus};
use thaw_train::encode::{EncodedData, TokenMemo, encode_splits_with};
use thaw_train::finetune::{FineTuneOutcome, fine_tune_returning_model};
use thaw_train::load::is_current_checkpoint;
use thaw_train::model::Classifier;
use thaw_train::prefix::PrefixCache;
use thaw_train::tokenize::TextTokenizer;
use thaw_train::weights::save_safetensors;
use thaw_train::{
    BackendKind, BertConfig, Event, FineTuneJob, MlmJob, ModelFiles, Observer, Start, TrainError,
};

use crate::files::{self, FileHome};
use crate::jobspec::{Corpus, JobSpec, StageSpec};
use crate::keys;
use crate::spec::Init;

/// How often a running job refreshes its heartbeat, and when a silent one counts as abandoned.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
pub const STALE_AFTER: Duration = Duration::from_secs(60);
pub const MAX_ATTEMPTS: i64 = 3;

/// What a worker reports while it works (also the JSON lines a child worker prints).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
    Started { worker: String, key: String, label: String },
    Progress { worker: String, key: String, event: Event },
    Finished { worker: String, key: String, label: String, outcome: Outcome, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    Failed,
    Released,
}

pub type Sink = Arc<dyn Fn(WorkerMessage) + Send + Sync>;

/// This process's identity in the store: host and pid, so a dead local worker is recognised,
/// and the Slurm array task it runs in, if any, so `thaw status` can say where a job runs.
pub fn worker_id(suffix: &str) -> String {
    format!("{}:{}{}{suffix}", hostname(), std::process::id(), slurm_task())
}

/// ` [slurm 1234_5]` inside a Slurm array task (` [slurm 1234]` in a plain job), else "".
fn slurm_task() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID"), var("SLURM_JOB_ID")) {
        (Some(array), Some(task), _) => format!(" [slurm {array}_{task}]"),
        (_, _, Some(job)) => format!(" [slurm {job}]"),
        _ => String::new(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// True when `worker` ran on this host in a process that no longer exists, or has exited
/// and waits to be reaped (a zombie holds its pid but runs nothing).
pub fn is_dead_locally(worker: &str) -> bool {
    let mut parts = worker.splitn(2, ':');
    let (Some(host), Some(rest)) = (parts.next(), parts.next()) else { return false };
    let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if host != hostname() || pid.is_empty() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (name) state ...": the name may hold spaces and parentheses, the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X')),
        Err(_) => true,
    }
}

pub fn requeue(store: &Store) -> impl Future<Output = thaw_store::Result<Vec<String>>> + '_ {
    store.requeue_abandoned(STALE_AFTER, MAX_ATTEMPTS, is_dead_locally)
}

/// Per-process reuse: tokenized data and frozen-prefix activations survive across jobs.
#[derive(Default)]
pub(crate) struct Caches {
    tokens: HashMap<String, Arc<EncodedData>>,
    /// Token ids per (model, max length): each text is tokenized once per worker process.
    memos: HashMap<(String, usize), TokenMemo>,
    prefix: Option<PrefixCache>,
}

pub struct WorkerOptions {
    /// Where stage checkpoints and kept weights are written, and data snapshots read.
    pub home: FileHome,
    pub sweep: String,
    pub backend: BackendKind,
    pub worker_id: String,
    pub stop: Arc<AtomicBool>,
    pub sink: Sink,
}

pub struct Worker {
    store: Store,
    options: WorkerOptions,
    caches: Arc<Mutex<Caches>>,
    last_group: Option<String>,
}

impl Worker {
    pub fn new(store: Store, options: WorkerOptions) -> Self {
        Worker { store, options, caches: Arc::new(Mutex::new(Caches::default())), last_group: None }
    }

    fn stopping(&self) -> bool {
        self.options.stop.load(Ordering::Relaxed)
    }

    /// Claims and runs work until the sweep has nothing left for this worker or a stop is asked.
    pub async fn run(&mut self) -> Result<usize> {
        let mut finished = 0;
        while !self.stopping() {
            requeue(&self.store).await?;
            let id = self.options.worker_id.clone();
            let backend = self.options.backend.as_str();
            if let Some(claimed) = self.store.claim_stage(&self.options.sweep, &id, backend).await?
            {
                self.run_claimed(claimed).await?;
                finished += 1;
                continue;
            }
            if let Some(claimed) = self
                .store
                .claim_job(&self.options.sweep, &id, backend, self.last_group.as_deref())
                .await?
            {
                self.run_claimed(claimed).await?;
                finished += 1;
                continue;
            }
            let progress = self.store.progress(&self.options.sweep).await?;
            // Work other workers hold may come back (its worker killed, a Slurm task
            // cancelled): stay, and take it over, until nothing is held anywhere. Jobs waiting
            // for a stage being run are among what is held.
            if progress.jobs.running == 0 && progress.stages.running == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(finished)
    }

    /// The claimed work as a task this machine can run: its spec read, its files local (data
    /// snapshots and stage checkpoints from the database when they travel), its start
    /// chosen. None when the work was handed back instead (a stage to redo first).
    async fn prepare(&mut self, claimed: &Claimed) -> Result<Option<Task>> {
        let (store, home, key) = (&self.store, &self.options.home, &claimed.key);
        Ok(Some(match claimed.kind {
            WorkKind::Stage => {
                let mut spec: StageSpec = serde_json::from_str(&claimed.spec_json)
                    .context("stage spec in the database")?;
                files::localise_data(store, home, &mut spec.data).await?;
                files::localise_corpus(store, home, &mut spec.corpus).await?;
                Task::Stage(spec, home.checkpoint(key))
            }
            WorkKind::Job => {
                let mut spec: JobSpec =
                    serde_json::from_str(&claimed.spec_json).context("job spec in the database")?;
                files::localise_data(store, home, &mut spec.data).await?;
                self.last_group = Some(keys::prefix_group(&spec));
                let start = match (&spec.stage_key, spec.init) {
                    (Some(stage), _) => {
                        match files::stage_checkpoint_file(store, home, stage).await? {
                            Some(path) if !is_current_checkpoint(&path) => {
                                // Written by an older thaw in a format this one does not read: run the
                                // stage again (it is next to be claimed) and give this job back.
                                store.redo_stage(stage).await?;
                                store.release(WorkKind::Job, key, &self.options.worker_id).await?;
                                return Ok(None);
                            }
                            Some(path) => Start::Checkpoint(path),
                            None => bail!("stage {stage} has no checkpoint"),
                        }
                    }
                    (None, Init::Pretrained) => Start::Pretrained,
                    (None, Init::Scratch | Init::ScratchOwnVocab) => Start::Scratch,
                };
                let keep = spec.keep_weights.then(|| home.weights(key));
                Task::Job(spec, start, keep)
            }
        }))
    }

    async fn run_claimed(&mut self, claimed: Claimed) -> Result<()> {
        let worker = self.options.worker_id.clone();
        let key = claimed.key.clone();
        let task = match self.prepare(&claimed).await {
            Ok(Some(task)) => task,
            Ok(None) => return Ok(()),
            Err(error) if is_database_error(&error) => {
                // The database went away mid-way: not the work's fault. Give it back (if the
                // database lets us) and stop this worker with the error.
                let _ = self.store.release(claimed.kind, &key, &worker).await;
                return Err(error);
            }
            Err(error) => {
                // What this machine cannot get (a snapshot, the model) fails the work with
                // the reason, as a training error does; the worker goes on.
                let message = format!("{error:#}");
                match claimed.kind {
                    WorkKind::Stage => self.store.fail_stage(&key, &worker, &message).await?,
                    WorkKind::Job => self.store.fail_job(&key, &worker, &message).await?,
                }
                (self.options.sink)(WorkerMessage::Finished {
                    worker,
                    key,
                    label: "preparing".into(),
                    outcome: Outcome::Failed,
                    detail: message,
                });
                return Ok(());
            }
        };
        let label = task.label();
        (self.options.sink)(WorkerMessage::Started {
            worker: worker.clone(),
            key: key.clone(),
            label: label.clone(),
        });

        let job_stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (caches, sink, stop, global_stop) = (
                self.caches.clone(),
                self.options.sink.clone(),
                job_stop.clone(),
                self.options.stop.clone(),
            );
            let (backend, worker, key) = (self.options.backend, worker.clone(), key.clone());
            tokio::task::spawn_blocking(move || {
                let mut on_event = |event: &Event| {
                    if global_stop.load(Ordering::Relaxed) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    sink(WorkerMessage::Progress {
                        worker: worker.clone(),
                        key: key.clone(),
                        event: event.clone(),
                    });
                };
                let mut observer = Observer { on_event: &mut on_event, stop: &stop };
                let mut caches = caches
                    .lock()
                    .expect("caches are replaced after a panic, so never seen poisoned");
                task.execute(backend, &mut caches, &mut observer)
            })
        };
        tokio::pin!(handle);
        let result = loop {
            tokio::select! {
                joined = &mut handle => break joined.unwrap_or_else(|e| {
                    // A panic poisons the shared caches: start the next job with fresh ones.
                    self.caches = Arc::new(Mutex::new(Caches::default()));
                    Err(TrainError::Invalid(format!("the training thread panicked: {}", panic_message(e))))
                }),
                _ = tokio::time::sleep(HEARTBEAT) => {
                    if self.stopping() {
                        job_stop.store(true, Ordering::Relaxed);
                    }
                    match self.store.heartbeat(claimed.kind, &key, &worker).await {
                        Ok(true) => {}
                        // Requeued behind our back (e.g. a long stall): stop, the result would be discarded.
                        Ok(false) => job_stop.store(true, Ordering::Relaxed),
                        // A busy or briefly unreadable database must not kill a training job; the
                        // next beat tries again (a long outage ends in a requeue and a discarded result).
                        Err(e) => tracing::warn!("heartbeat for {key} failed: {e}"),
                    }
                }
            }
        };
        let (outcome, detail) = match result {
            Ok(TaskOutput::Job { epochs, result }) => {
                let summary = format!(
                    "test acc {:.4} (val {:.4})",
                    result.test_accuracy, result.val_accuracy
                );
                match retrying(|| self.store.finish_job(&key, &worker, &epochs, &result)).await {
                    Ok(()) => (Outcome::Done, summary),
                    Err(thaw_store::StoreError::Conflict(why)) => (Outcome::Released, why),
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(TaskOutput::Rung { epochs }) => {
                let last = epochs.last().map_or(f64::NAN, |e| e.val_accuracy);
                let summary = format!("rung: val acc {last:.4} after {} epochs", epochs.len());
                match retrying(|| self.store.finish_rung(&key, &worker, &epochs)).await {
                    Ok(()) => (Outcome::Done, summary),
                    Err(thaw_store::StoreError::Conflict(why)) => (Outcome::Released, why),
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(TaskOutput::Stage(mut done)) => {
                if self.options.home.travels() {
                    // Stored before the stage is marked done: a done stage's checkpoint is there.
                    let checkpoint = PathBuf::from(&done.checkpoint_path);
                    done.checkpoint_sha256 =
                        Some(retrying(|| self.store.put_blob_file(&checkpoint)).await?);
                }
                let summary = format!(
                    "MLM perplexity {:.2} -> {:.2}",
                    done.perplexity_before, done.perplexity_after
                );
                match retrying(|| self.store.finish_stage(&key, &worker, &done)).await {
                    Ok(()) => (Outcome::Done, summary),
                    Err(thaw_store::StoreError::Conflict(why)) => (Outcome::Released, why),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(TrainError::Interrupted) => {
                self.store.release(claimed.kind, &key, &worker).await?;
                (Outcome::Released, "stopped before finishing; back to pending".to_string())
            }
            Err(error) => {
                let message = error.to_string();
                match claimed.kind {
                    WorkKind::Stage => self.store.fail_stage(&key, &worker, &message).await?,
                    WorkKind::Job => self.store.fail_job(&key, &worker, &message).await?,
                }
                (Outcome::Failed, message)
            }
        };
        (self.options.sink)(WorkerMessage::Finished { worker, key, label, outcome, detail });
        Ok(())
    }
}

/// Whether preparing failed because the database could not be read (rather than because
/// of the work itself: a missing model, a damaged file).
fn is_database_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<thaw_store::StoreError>(),
            Some(thaw_store::StoreError::Query(_))
        )
    })
}

/// A finished result is worth waiting for: store errors other than a lost claim (a busy
/// file, a server restarting, a connection lost) are retried with backoff, about two minutes
/// in all, before the worker gives up; the work is then requeued by the heartbeat rules.
async fn retrying<T, F, Fut>(mut write: F) -> thaw_store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = thaw_store::Result<T>>,
{
    let mut delay = Duration::from_secs(1);
    loop {
        match write().await {
            Err(thaw_store::StoreError::Conflict(why)) => {
                return Err(thaw_store::StoreError::Conflict(why));
            }
            Err(e) if delay <= Duration::from_secs(64) => {
                tracing::warn!("storing a finished result failed ({e}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into()),
        Err(e) => e.to_string(),
    }
}

enum Task {
    Stage(StageSpec, PathBuf),
    /// With the file to keep the fine-tuned weights in, when the sweep keeps them.
    Job(JobSpec, Start, Option<PathBuf>),
}

enum TaskOutput {
    Stage(StageOutcomeRow),
    Job {
        epochs: Vec<EpochRow>,
        result: ResultRow,
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

    fn label(&self) -> String {
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

    fn execute(
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

pub(crate) fn model_files(dir: &Path) -> thaw_train::Result<(ModelFiles, BertConfig)> {
    let files = ModelFiles::in_dir(dir)?;
    let config = BertConfig::from_file(&files.config)?;
    Ok((files, config))
}

/// The model a job trains: the checkpoint's files and architecture, or for scratch with its
/// own vocabulary the `[scratch]` size (the checkpoint's files then only give the folder).
pub(crate) fn job_model(spec: &JobSpec) -> thaw_train::Result<(ModelFiles, BertConfig)> {
    let (files, config) = model_files(&spec.model.dir)?;
    let config = match &spec.scratch_model {
        None => config,
        Some(scratch) => scratch.config(config.max_position_embeddings),
    };
    Ok((files, config))
}

/// Scratch with its own vocabulary: the vocabulary learnt from the job's training split
/// `train` (the same every time: learning is deterministic). None for every other job.
pub(crate) fn learnt_tokenizer(
    spec: &JobSpec,
    train: &[Example],
) -> thaw_train::Result<Option<thaw_train::vocab::Tokenizer>> {
    let Some(scratch) = &spec.scratch_model else { return Ok(None) };
    let texts: Vec<&str> = train.iter().map(|e| e.text.as_str()).collect();
    scratch.learn_tokenizer(&texts).map(Some)
}

pub(crate) fn load_data(
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

/// Trains `spec` from `start` as a worker does (same data, same prefix cache rules), so
/// `thaw export` retraining a job reproduces the result its worker stored.
pub(crate) fn fine_tune_spec(
    spec: &JobSpec,
    start: Start,
    backend: BackendKind,
    caches: &mut Caches,
    observer: &mut Observer,
) -> thaw_train::Result<(FineTuneOutcome, Classifier, Arc<EncodedData>)> {
    let (files, config) = job_model(spec)?;
    let data = load_data(spec, &files, caches, observer)?;
    let budget = spec.prefix_cache_mb << 20;
    if caches.prefix.as_ref().is_none_or(|c| c.budget_bytes() != budget) {
        caches.prefix = Some(PrefixCache::new(budget));
    }
    let job = FineTuneJob {
        start,
        freeze: spec.freeze,
        seed: spec.seed,
        settings: spec.settings.clone(),
        backend,
        start_identity: keys::start_identity(spec),
        stop_after_epochs: spec.rung,
    };
    let cache = caches.prefix.as_mut().filter(|c| c.budget_bytes() > 0);
    let (outcome, model) =
        fine_tune_returning_model(&files, &config, &data, &job, cache, observer)?;
    Ok((outcome, model, data))
}

fn run_job(
    spec: &JobSpec,
    start: Start,
    backend: BackendKind,
    keep: Option<&Path>,
    caches: &mut Caches,
    observer: &mut Observer,
) -> thaw_train::Result<TaskOutput> {
    let (out, model, _) = fine_tune_spec(spec, start, backend, caches, observer)?;
    let epochs: Vec<EpochRow> = out
        .epochs
        .iter()
        .map(|e| EpochRow {
            job_key: String::new(),
            epoch: e.epoch as i64,
            train_loss: e.train_loss,
            val_loss: e.val_loss,
            val_accuracy: e.val_accuracy,
            val_macro_f1: e.val_macro_f1,
            seconds: e.seconds,
        })
        .collect();
    let Some(test) = out.test else { return Ok(TaskOutput::Rung { epochs }) };
    if let Some(path) = keep {
        // Written (atomically) before the result is stored: a done job's kept weights exist.
        save_safetensors(&model, path)?;
    }
    let result = ResultRow {
        best_epoch: out.best_epoch as i64,
        val_loss: out.validation.loss,
        val_accuracy: out.validation.accuracy,
        val_macro_f1: out.validation.macro_f1,
        test_loss: test.loss,
        test_accuracy: test.accuracy,
        test_macro_f1: test.macro_f1,
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
    Ok(TaskOutput::Job { epochs, result })
}

/// The text a stage trains on: only the training split's for task MLM (validation and
/// test stay unseen), or the corpus file's documents.
pub(crate) fn stage_texts(spec: &StageSpec) -> thaw_train::Result<Vec<String>> {
    match &spec.corpus {
        Corpus::Task => Ok(spec.data.load(None)?.train.into_iter().map(|e| e.text).collect()),
        Corpus::File { path, .. } => read_corpus(path),
    }
}

fn run_stage(
    spec: &StageSpec,
    out: &Path,
    backend: BackendKind,
    observer: &mut Observer,
) -> thaw_train::Result<StageOutcomeRow> {
    let (files, config) = model_files(&spec.model.dir)?;
    let texts = stage_texts(spec)?;
    let start = match spec.init {
        Init::Pretrained => Start::Pretrained,
        Init::Scratch | Init::ScratchOwnVocab => Start::Scratch,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_worker_is_dead_once_its_process_has_exited_even_unreaped() {
        assert!(!is_dead_locally(&worker_id("")), "this process is alive");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = format!("{}:{} [slurm 7_1]", hostname(), child.id());
        // Exited but not yet waited for: a zombie, which still holds its /proc entry.
        std::thread::sleep(Duration::from_millis(300));
        assert!(is_dead_locally(&id), "an exited, unreaped worker is dead");
        child.wait().unwrap();
        assert!(is_dead_locally(&id), "a reaped worker is dead");
        assert!(!is_dead_locally("another-host:1"), "other hosts are judged by heartbeat only");
    }
}
