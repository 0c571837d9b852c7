//! `thaw run`: N worker processes on one sweep, their progress drawn with indicatif.
//!
//! Workers are child processes (the same binary, `thaw worker --child`), not threads:
//! each has its own device and RNG (same seed, same result, whatever else runs), a
//! crash takes down one job, not the sweep, and a child whose parent dies sees its
//! stdin close, gives its job back and exits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use thaw_store::Store;
use thaw_train::Event;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::worker::{MAX_ATTEMPTS, Outcome, STALE_AFTER, WorkerMessage, requeue};

/// How to start one worker process: the program and its arguments, and the database
/// password, which reaches the child through its environment (PGPASSWORD), never its
/// command line (`ps` shows that to every user).
#[derive(Clone)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for WorkerCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerCommand")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("password", &self.password.as_ref().map(|_| "(set)"))
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub done: usize,
    pub failed: usize,
    pub pending: usize,
    pub interrupted: bool,
    pub failures: Vec<(String, String)>,
}

struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    workers: HashMap<usize, ProgressBar>,
}

impl Bars {
    fn new(total: usize, done: usize, visible: bool) -> Self {
        let multi = MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let bar = multi.add(ProgressBar::new(total as u64));
        bar.set_style(
            ProgressStyle::with_template("{spinner} jobs {pos}/{len} [{bar:30}] {elapsed_precise} elapsed, ETA {eta_precise}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_position(done as u64);
        bar.enable_steady_tick(Duration::from_millis(250));
        Bars { multi, total: bar, workers: HashMap::new() }
    }

    fn worker(&mut self, slot: usize) -> &ProgressBar {
        let multi = &self.multi;
        self.workers.entry(slot).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("  w{prefix} {msg}").expect("template"));
            bar.set_prefix(slot.to_string());
            bar
        })
    }

    /// A line above the bars (or on stderr when bars are hidden).
    fn line(&self, text: String) {
        if self.multi.is_hidden() {
            eprintln!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }
}

fn describe(event: &Event) -> Option<String> {
    match event {
        Event::Phase { phase, detail } => Some(format!("{phase:?}: {detail}")),
        Event::Step { phase, epoch, step, steps, loss, examples_per_second } => Some(format!(
            "{phase:?} epoch {epoch} step {step}/{steps} loss {loss:.4} ({examples_per_second:.1} ex/s)"
        )),
        Event::Epoch(m) => {
            Some(format!("epoch {} val metric {:.4} loss {:.4}", m.epoch, m.val_metric, m.val_loss))
        }
        Event::Trainable { step, frozen_depth, trainable_params } => Some(format!(
            "step {step}: layers from {frozen_depth} up and the head train ({trainable_params} parameters)"
        )),
        // Every step's ratios would drown the log; the probes that ask for them collect them.
        Event::GradientRatios { .. } => None,
    }
}

fn spawn(command: &WorkerCommand) -> Result<Child> {
    let mut child = Command::new(&command.program);
    if let Some(password) = &command.password {
        child.env("PGPASSWORD", password);
    }
    child
        .args(&command.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(false)
        .spawn()
        .with_context(|| format!("cannot start worker {}", command.program.display()))
}

/// Runs the sweep's pending work with `jobs` worker processes until none is left or
/// Ctrl-C; then every job a worker held goes back to pending.
pub async fn run_workers(
    store: &Store,
    sweep: &str,
    jobs: usize,
    command: &WorkerCommand,
    show_bars: bool,
) -> Result<RunSummary> {
    let requeued = requeue(store).await?;
    let progress = store.progress(sweep).await?;
    let mut bars =
        Bars::new(progress.jobs.total(), progress.jobs.done + progress.jobs.failed, show_bars);
    if !requeued.is_empty() {
        bars.line(format!("requeued {} abandoned jobs/stages from an earlier run", requeued.len()));
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Option<String>)>();
    let mut children = Vec::new();
    for slot in 0..jobs.max(1) {
        let mut child = spawn(command)?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send((slot, Some(line)));
            }
            let _ = tx.send((slot, None));
        });
        children.push((child, stdin));
    }
    drop(tx);

    let mut worker_ids: HashMap<usize, String> = HashMap::new();
    let mut open = children.len();
    let mut summary = RunSummary::default();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while open > 0 {
        tokio::select! {
            _ = &mut ctrl_c, if !interrupted.load(Ordering::Relaxed) => {
                interrupted.store(true, Ordering::Relaxed);
                bars.line("stopping: running jobs go back to pending (Ctrl-C again is not needed)".into());
                // Closing stdin asks each child to stop; in a terminal they also got the SIGINT.
                for (_, stdin) in children.iter_mut() {
                    stdin.take();
                }
            }
            message = rx.recv() => {
                let Some((slot, line)) = message else { break };
                let Some(line) = line else {
                    open -= 1;
                    bars.worker(slot).finish_and_clear();
                    continue;
                };
                let Ok(message) = serde_json::from_str::<WorkerMessage>(&line) else {
                    bars.line(format!("w{slot}: {line}"));
                    continue;
                };
                match message {
                    WorkerMessage::Started { worker, label, .. } => {
                        worker_ids.insert(slot, worker);
                        if bars.multi.is_hidden() {
                            bars.line(format!("   start w{slot} {label}"));
                        }
                        bars.worker(slot).set_message(label);
                    }
                    WorkerMessage::Progress { event: Event::Epoch(m), .. } if bars.multi.is_hidden() => {
                        bars.line(format!("         w{slot} epoch {}: val metric {:.4}, loss {:.4} ({:.0}s)", m.epoch, m.val_metric, m.val_loss, m.seconds));
                    }
                    WorkerMessage::Progress { event, .. } => {
                        if let Some(text) = describe(&event) {
                            let bar = bars.worker(slot);
                            let label = bar.message();
                            let head = label.split(" | ").next().unwrap_or("").to_string();
                            bar.set_message(format!("{head} | {text}"));
                        }
                    }
                    WorkerMessage::Finished { label, outcome, detail, key, .. } => {
                        bars.line(format!("{:>8} {label}: {detail}", format!("{outcome:?}").to_lowercase()));
                        if outcome == Outcome::Failed {
                            summary.failures.push((key, detail));
                        }
                        // From the store, not a count of messages: stages are not jobs, and a
                        // failed stage fails its waiting jobs without any message.
                        if let Ok(p) = store.progress(sweep).await {
                            bars.total.set_position((p.jobs.done + p.jobs.failed) as u64);
                        }
                    }
                }
            }
        }
    }
    for (mut child, _) in children {
        let _ = child.wait().await;
    }
    // Safety net for whatever a child still held. After Ctrl-C it goes back to pending with the
    // attempt not counted; a child that crashed or was killed used up an attempt, so work that
    // kills its worker every time is failed after MAX_ATTEMPTS instead of looping forever.
    if interrupted.load(Ordering::Relaxed) {
        for id in worker_ids.values() {
            store.release_worker(id).await?;
        }
    } else {
        let back = store
            .requeue_abandoned(STALE_AFTER, MAX_ATTEMPTS, |w| worker_ids.values().any(|id| id == w))
            .await?;
        if !back.is_empty() {
            bars.line(format!("{} jobs/stages were held by a worker that died: requeued, or failed after {MAX_ATTEMPTS} attempts", back.len()));
        }
    }
    bars.total.finish_and_clear();
    summary.interrupted = interrupted.load(Ordering::Relaxed);
    summary.recount(store, sweep).await
}

impl RunSummary {
    /// The sweep's job counts as the store holds them now (work other processes finished
    /// included).
    pub async fn recount(self, store: &Store, sweep: &str) -> Result<RunSummary> {
        let progress = store.progress(sweep).await?;
        Ok(RunSummary {
            done: progress.jobs.done,
            failed: progress.jobs.failed,
            pending: progress.jobs.pending + progress.jobs.running,
            ..self
        })
    }
}

/// How waiting for other processes' work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Waited {
    /// Jobs or stages whose worker died while we waited: pending again, for us to run.
    pub requeued: usize,
    pub interrupted: bool,
}

/// After this run's workers found nothing left to claim, the sweep's running jobs and stages
/// are held by other processes (another `thaw run`, `thaw worker`s on this or other
/// machines). Waits until they finish, so the caller's report covers the whole sweep and its
/// exit code says how the sweep ended; a holder that dies is requeued by the heartbeat rules.
pub async fn wait_for_other_workers(store: &Store, sweep: &str) -> Result<Waited> {
    let mut told = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let requeued = requeue(store).await?.len();
        let progress = store.progress(sweep).await?;
        if requeued > 0 || (progress.jobs.running == 0 && progress.stages.running == 0) {
            return Ok(Waited { requeued, interrupted: false });
        }
        if !told {
            let mut holders: Vec<&str> =
                progress.running.iter().map(|r| r.worker.as_str()).collect();
            holders.sort_unstable();
            holders.dedup();
            eprintln!(
                "waiting for {} job{} and {} MLM stage{} that other workers hold ({}); Ctrl-C stops waiting, not them",
                progress.jobs.running,
                if progress.jobs.running == 1 { "" } else { "s" },
                progress.stages.running,
                if progress.stages.running == 1 { "" } else { "s" },
                if holders.is_empty() {
                    "see `thaw status`".to_string()
                } else {
                    holders.join(", ")
                }
            );
            told = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = &mut ctrl_c => return Ok(Waited { requeued: 0, interrupted: true }),
        }
    }
}
