//! `thaw worker` as a process: it opens the store, joins the sweep, stops cleanly on Ctrl-C
//! or SIGTERM (giving its job back), and reports to its console, or, as a child of `thaw
//! run`, in JSON lines on stdout, stopping when its parent closes stdin.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use thaw_store::{Location, Store};
use thaw_train::BackendKind;

use super::{Worker, WorkerOptions, liveness::worker_id, messages::Sink, messages::WorkerMessage};
use crate::files::FileHome;

/// Joins `sweep` (the database's only one when None) on `db` and works until nothing is
/// left for `backend`; `child` when started by `thaw run`.
pub async fn serve(
    db: &Location,
    sweep: Option<String>,
    backend: BackendKind,
    child: bool,
) -> Result<()> {
    backend.check_built()?;
    if let Some(file) = db.file().filter(|f| !f.is_file()) {
        bail!("{}: no such database; start the sweep with `thaw run FILE` first", file.display());
    }
    let id = worker_id("");
    let store = Store::connect(db, Some(&id)).await?;
    let sweep = store.sweep(sweep.as_deref()).await?.name;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone());
    if child {
        stop_on_stdin_eof(stop.clone());
    }
    let options = WorkerOptions {
        home: FileHome::for_store(&store)?,
        sweep: sweep.clone(),
        backend,
        worker_id: id,
        stop,
        sink: if child { child_sink() } else { console_sink() },
    };
    let finished = Worker::new(store.clone(), options).run().await?;
    if !child {
        eprintln!("worker finished {finished} jobs/stages; nothing left to claim on {backend}");
        for (other, n) in store.pending_by_backend(&sweep).await? {
            if other != backend.as_str() {
                eprintln!(
                    "{n} pending jobs are planned for {other}: start workers with --backend {other}"
                );
            }
        }
    }
    store.close().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (Slurm's scancel and time limit, Kubernetes deleting a pod): the
/// worker gives its job back and exits.
fn stop_on_signals(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.store(true, Ordering::Relaxed);
    });
}

/// A child worker stops when its parent closes stdin (or dies: the pipe closes too).
fn stop_on_stdin_eof(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut sink = String::new();
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read_line(&mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
        stop.store(true, Ordering::Relaxed);
    });
}

fn child_sink() -> Sink {
    Arc::new(|message: WorkerMessage| {
        let line = serde_json::to_string(&message).expect("json");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })
}

fn console_sink() -> Sink {
    Arc::new(|message: WorkerMessage| match message {
        WorkerMessage::Started { label, key, .. } => eprintln!("start {key} {label}"),
        WorkerMessage::Finished { label, outcome, detail, .. } => {
            eprintln!("{outcome:?} {label}: {detail}")
        }
        WorkerMessage::Progress { event: thaw_train::Event::Epoch(m), .. } => {
            eprintln!(
                "  epoch {} val metric {:.4} loss {:.4} ({:.1}s)",
                m.epoch, m.val_metric, m.val_loss, m.seconds
            )
        }
        WorkerMessage::Progress { .. } => {}
    })
}
