//! One worker: claims stages and jobs from the store, runs them with thaw-train on a
//! blocking thread, keeps a heartbeat, records results. Many workers (the child processes of
//! `thaw run`, or `thaw worker` processes anywhere that can open the file) share a sweep
//! through the store's atomic claim.
//!
//! [`task`] is what one claim runs, [`liveness`] the heartbeat rules and worker identities,
//! [`messages`] what a worker reports, [`process`] `thaw worker` as a process (signals, its
//! parent, its output).

mod liveness;
mod messages;
mod process;
mod task;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use thaw_store::{Claimed, Store, StoreError, WorkKind};
use thaw_train::load::is_current_checkpoint;
use thaw_train::{BackendKind, Event, Observer, TrainError};

use crate::files::{self, FileHome};
use crate::inputs::{Caches, start_of};
use crate::jobspec::{JobSpec, StageSpec};
use crate::keys;
use liveness::HEARTBEAT;
use task::{Task, TaskOutput};

pub use liveness::{MAX_ATTEMPTS, STALE_AFTER, is_dead_locally, requeue, worker_id};
pub use messages::{Outcome, Sink, WorkerMessage};
pub use process::serve;

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
            if let Some(claimed) = self.claim().await? {
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

    /// The next stage that pending jobs wait for, else the next job (preferably one that
    /// shares the last job's frozen prefix).
    async fn claim(&self) -> Result<Option<Claimed>> {
        let (sweep, id) = (&self.options.sweep, &self.options.worker_id);
        let backend = self.options.backend.as_str();
        if let Some(claimed) = self.store.claim_stage(sweep, id, backend).await? {
            return Ok(Some(claimed));
        }
        Ok(self.store.claim_job(sweep, id, backend, self.last_group.as_deref()).await?)
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
                let checkpoint = match &spec.stage_key {
                    None => None,
                    Some(stage) => match files::stage_checkpoint_file(store, home, stage).await? {
                        Some(path) if !is_current_checkpoint(&path) => {
                            // Written by an older thaw in a format this one does not read: run
                            // the stage again (it is next to be claimed) and give this job back.
                            store.redo_stage(stage).await?;
                            store.release(WorkKind::Job, key, &self.options.worker_id).await?;
                            return Ok(None);
                        }
                        Some(path) => Some(path),
                        None => bail!("stage {stage} has no checkpoint"),
                    },
                };
                let start = start_of(spec.init, checkpoint);
                let keep = spec.keep_weights.then(|| home.weights(key));
                Task::Job(spec, start, keep)
            }
        }))
    }

    /// Prepares, runs and records one claim; the worker goes on after the work's own
    /// failures and stops only on the database's.
    async fn run_claimed(&mut self, claimed: Claimed) -> Result<()> {
        let (worker, key) = (self.options.worker_id.clone(), claimed.key.clone());
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
                self.fail(claimed.kind, &key, &message).await?;
                let label = "preparing".to_string();
                let outcome = Outcome::Failed;
                let sink = &self.options.sink;
                sink(WorkerMessage::Finished { worker, key, label, outcome, detail: message });
                return Ok(());
            }
        };
        let label = task.label();
        let (worker_, key_, label_) = (worker.clone(), key.clone(), label.clone());
        (self.options.sink)(WorkerMessage::Started { worker: worker_, key: key_, label: label_ });
        let result = self.execute_with_heartbeat(task, claimed.kind, &key).await;
        let (outcome, detail) = self.record(claimed.kind, &key, result).await?;
        (self.options.sink)(WorkerMessage::Finished { worker, key, label, outcome, detail });
        Ok(())
    }

    /// Runs the task on a blocking thread, beating the heart every [`HEARTBEAT`] meanwhile;
    /// a stop asked of the worker, or a claim lost, stops the task.
    async fn execute_with_heartbeat(
        &mut self,
        task: Task,
        kind: WorkKind,
        key: &str,
    ) -> thaw_train::Result<TaskOutput> {
        let worker = self.options.worker_id.clone();
        let job_stop = Arc::new(AtomicBool::new(false));
        let handle = self.spawn(task, key, job_stop.clone());
        tokio::pin!(handle);
        loop {
            tokio::select! {
                joined = &mut handle => return joined.unwrap_or_else(|e| {
                    // A panic poisons the shared caches: start the next job with fresh ones.
                    self.caches = Arc::new(Mutex::new(Caches::default()));
                    Err(TrainError::Invalid(format!("the training thread panicked: {}", panic_message(e))))
                }),
                _ = tokio::time::sleep(HEARTBEAT) => {
                    if self.stopping() {
                        job_stop.store(true, Ordering::Relaxed);
                    }
                    match self.store.heartbeat(kind, key, &worker).await {
                        Ok(true) => {}
                        // Requeued behind our back (e.g. a long stall): stop, the result would be discarded.
                        Ok(false) => job_stop.store(true, Ordering::Relaxed),
                        // A busy or briefly unreadable database must not kill a training job; the
                        // next beat tries again (a long outage ends in a requeue and a discarded result).
                        Err(e) => tracing::warn!("heartbeat for {key} failed: {e}"),
                    }
                }
            }
        }
    }

    /// The task on a blocking thread, its progress sent to the sink.
    fn spawn(
        &self,
        task: Task,
        key: &str,
        stop: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<thaw_train::Result<TaskOutput>> {
        let (caches, sink, global_stop) =
            (self.caches.clone(), self.options.sink.clone(), self.options.stop.clone());
        let (backend, worker, key) =
            (self.options.backend, self.options.worker_id.clone(), key.to_string());
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
            let mut caches =
                caches.lock().expect("caches are replaced after a panic, so never seen poisoned");
            task.execute(backend, &mut caches, &mut observer)
        })
    }

    /// Stores what the task produced (or why it failed, or gives it back when it was
    /// stopped); returns the outcome and a line about it.
    async fn record(
        &self,
        kind: WorkKind,
        key: &str,
        result: thaw_train::Result<TaskOutput>,
    ) -> Result<(Outcome, String)> {
        let worker = &self.options.worker_id;
        let store = &self.store;
        let (stored, summary) = match result {
            Ok(TaskOutput::Job { epochs, result }) => {
                let summary = format!(
                    "test {} {:.4} (val {:.4})",
                    result.metric, result.test_metric, result.val_metric
                );
                (retrying(|| store.finish_job(key, worker, &epochs, &result)).await, summary)
            }
            Ok(TaskOutput::Rung { epochs }) => {
                let last = epochs.last().map_or(f64::NAN, |e| e.val_metric);
                let summary = format!("rung: val metric {last:.4} after {} epochs", epochs.len());
                (retrying(|| store.finish_rung(key, worker, &epochs)).await, summary)
            }
            Ok(TaskOutput::Stage(mut done)) => {
                if self.options.home.travels() {
                    // Stored before the stage is marked done: a done stage's checkpoint is there.
                    let checkpoint = PathBuf::from(&done.checkpoint_path);
                    done.checkpoint_sha256 =
                        Some(retrying(|| store.put_blob_file(&checkpoint)).await?);
                }
                let summary = format!(
                    "MLM perplexity {:.2} -> {:.2}",
                    done.perplexity_before, done.perplexity_after
                );
                (retrying(|| store.finish_stage(key, worker, &done)).await, summary)
            }
            Err(TrainError::Interrupted) => {
                store.release(kind, key, worker).await?;
                return Ok((
                    Outcome::Released,
                    "stopped before finishing; back to pending".to_string(),
                ));
            }
            Err(error) => {
                let message = error.to_string();
                self.fail(kind, key, &message).await?;
                return Ok((Outcome::Failed, message));
            }
        };
        match stored {
            Ok(()) => Ok((Outcome::Done, summary)),
            Err(StoreError::Conflict(why)) => Ok((Outcome::Released, why)),
            Err(e) => Err(e.into()),
        }
    }

    async fn fail(&self, kind: WorkKind, key: &str, message: &str) -> Result<()> {
        let worker = &self.options.worker_id;
        match kind {
            WorkKind::Stage => self.store.fail_stage(key, worker, message).await?,
            WorkKind::Job => self.store.fail_job(key, worker, message).await?,
        }
        Ok(())
    }
}

/// Whether preparing failed because the database could not be read (rather than because
/// of the work itself: a missing model, a damaged file).
fn is_database_error(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref::<StoreError>(), Some(StoreError::Query(_))))
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
            Err(StoreError::Conflict(why)) => return Err(StoreError::Conflict(why)),
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
