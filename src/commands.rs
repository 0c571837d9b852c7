use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use thaw_orchestrator::launch::{WorkerCommand, run_workers};
use thaw_orchestrator::plan::Plan;
use thaw_orchestrator::runner::{Sink, Worker, WorkerMessage, WorkerOptions, worker_id};
use thaw_store::{JobResultRow, NewJob, NewStage, NewSweep, Store};

use crate::cli::{Backend, Cli, Command, Format, Metric, Target};

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Plan { file, jobs } => plan(&file, jobs),
        Command::Run { file, jobs, backend, db, retry_failed, no_report } => run(&file, jobs, backend, db, retry_failed, no_report).await,
        Command::Worker { db, sweep, backend, child } => worker(&db, sweep, backend, child).await,
        Command::Status(target) => status(&target).await,
        Command::Results { target, format, aggregate, metric } => results(&target, format, aggregate, metric).await,
        Command::Report { target, out, metric, all_lrs } => report(&target, out, metric, all_lrs).await,
        Command::Fetch { assets } => {
            let names: Vec<&str> = assets.iter().map(String::as_str).collect();
            thaw_assets::fetch(&names)?;
            println!("assets ready in {}", thaw_assets::cache_dir().display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_plan(file: &Path) -> Result<(thaw_orchestrator::spec::Source, Plan)> {
    let (source, spec) = thaw_orchestrator::read(file)?;
    let plan = thaw_orchestrator::build_plan(&source, &spec)?;
    Ok((source, plan))
}

fn default_db(sweep: &str) -> PathBuf {
    Path::new("results").join(format!("{sweep}.db"))
}

fn default_report_dir(sweep: &str) -> PathBuf {
    Path::new("results").join(sweep)
}

fn plan(file: &Path, list_jobs: bool) -> Result<ExitCode> {
    let (_, plan) = load_plan(file)?;
    println!("sweep {}: model {} ({} layers), data {}", plan.sweep, plan.model.origin, plan.model.num_layers, plan.data.name);
    let stages = plan.stages.len();
    println!("{} jobs, {stages} shared intermediate-MLM stage{}", plan.jobs.len(), if stages == 1 { "" } else { "s" });
    for stage in &plan.stages {
        let users = plan.jobs.iter().filter(|j| j.spec.stage_key.as_deref() == Some(stage.key.as_str())).count();
        println!(
            "  stage {}  '{}' init={} mlm_freeze={} steps={}  -> serves {users} jobs",
            stage.key,
            stage.spec.name,
            stage.spec.init.as_str(),
            stage.mlm_freeze,
            stage.spec.settings.steps
        );
    }
    let mut cells: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    for j in &plan.jobs {
        let cell = format!(
            "{:<10} {:<12} mlm_freeze={:<4} freeze={:<2} train_size={:<6} pooling={}",
            j.spec.init.as_str(),
            j.spec.intermediate,
            j.mlm_freeze.map(|k| k.to_string()).unwrap_or("-".into()),
            j.spec.freeze,
            j.spec.train_size.map(|n| n.to_string()).unwrap_or("all".into()),
            j.pooling.as_str()
        );
        let entry = cells.entry(cell).or_default();
        if !entry.0.contains(&j.lr) {
            entry.0.push(j.lr);
        }
        entry.1 += 1;
    }
    println!("cells ({}):", cells.len());
    for (cell, (lrs, n)) in &cells {
        let lrs: Vec<String> = lrs.iter().map(|lr| format!("{lr:e}")).collect();
        println!("  {cell}  lr=[{}]  {n} jobs", lrs.join(", "));
    }
    for note in &plan.notes {
        println!("note: {note}");
    }
    if list_jobs {
        for j in &plan.jobs {
            println!(
                "  {} {} {} k={} lr={:e} seed={} n={}",
                j.key,
                j.spec.init.as_str(),
                j.spec.intermediate,
                j.spec.freeze,
                j.lr,
                j.spec.seed,
                j.spec.train_size.map(|n| n.to_string()).unwrap_or("all".into())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn register(store: &Store, source: &thaw_orchestrator::spec::Source, plan: &Plan) -> Result<thaw_store::PlanSummary> {
    let sweep = NewSweep {
        name: plan.sweep.clone(),
        spec_path: source.path.display().to_string(),
        spec_toml: source.text.clone(),
        model: plan.model.origin.clone(),
        dataset: plan.data.name.clone(),
        setup_json: plan.setup.to_string(),
    };
    let stages: Vec<NewStage> = plan
        .stages
        .iter()
        .map(|s| NewStage {
            key: s.key.clone(),
            name: s.spec.name.clone(),
            init: s.spec.init.as_str().into(),
            mlm_freeze: s.mlm_freeze as i64,
            spec_json: serde_json::to_string(&s.spec).expect("json"),
        })
        .collect();
    let jobs: Vec<NewJob> = plan
        .jobs
        .iter()
        .map(|j| NewJob {
            key: j.key.clone(),
            stage_key: j.spec.stage_key.clone(),
            init: j.spec.init.as_str().into(),
            intermediate: j.spec.intermediate.clone(),
            mlm_freeze: j.mlm_freeze.map(|k| k as i64),
            freeze: j.spec.freeze as i64,
            num_layers: plan.model.num_layers as i64,
            seed: j.spec.seed as i64,
            lr: j.lr,
            train_size: j.spec.train_size.map(|n| n as i64),
            pooling: j.pooling.as_str().into(),
            prefix_group: j.spec.prefix_group(),
            spec_json: serde_json::to_string(&j.spec).expect("json"),
        })
        .collect();
    Ok(store.register_plan(&sweep, &stages, &jobs).await?)
}

fn hardware(backend: thaw_worker::BackendKind) -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    serde_json::json!({ "cpu": cpu, "cores": cores, "backend": backend.as_str() })
}

async fn run(file: &Path, jobs: usize, backend: Backend, db: Option<PathBuf>, retry_failed: bool, no_report: bool) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let backend = thaw_worker::BackendKind::from(backend);
    backend.check_built()?;
    let (source, mut plan) = load_plan(file)?;
    if let serde_json::Value::Object(setup) = &mut plan.setup {
        setup.insert("hardware".into(), hardware(backend));
        setup.insert("backend".into(), backend.as_str().into());
    }
    // Absolute: stage checkpoints are stored by path, and workers may join from another folder.
    let db = std::path::absolute(db.unwrap_or_else(|| default_db(&plan.sweep)))?;
    let store = Store::open(&db).await?;
    let summary = register(&store, &source, &plan).await?;
    if retry_failed {
        let n = store.retry_failed(&plan.sweep).await?;
        eprintln!("{n} failed jobs/stages back to pending");
    }
    let before = store.progress(&plan.sweep).await?;
    eprintln!(
        "sweep {}: {} jobs ({} new), {} done, {} failed, {} to run; {} MLM stages; database {}",
        plan.sweep,
        summary.total_jobs,
        summary.new_jobs,
        before.jobs.done,
        before.jobs.failed,
        before.jobs.pending + before.jobs.running,
        plan.stages.len(),
        db.display()
    );
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    if jobs == 0 {
        eprintln!("registered only (--jobs 0); start workers with `thaw worker --db {}`", db.display());
        return Ok(ExitCode::SUCCESS);
    }
    let command = WorkerCommand {
        program: std::env::current_exe().context("cannot find the thaw executable")?,
        args: vec![
            "worker".into(),
            "--db".into(),
            db.display().to_string(),
            "--sweep".into(),
            plan.sweep.clone(),
            "--backend".into(),
            backend.as_str().into(),
            "--child".into(),
        ],
    };
    let show_bars = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let outcome = run_workers(&store, &plan.sweep, jobs, &command, show_bars).await?;
    eprintln!(
        "{} done, {} failed, {} pending after {:.0}s{}",
        outcome.done,
        outcome.failed,
        outcome.pending,
        started.elapsed().as_secs_f64(),
        if outcome.interrupted { " (stopped; run the same command to resume)" } else { "" }
    );
    for (key, why) in &outcome.failures {
        eprintln!("failed {key}: {why}");
    }
    if outcome.interrupted {
        return Ok(ExitCode::from(130));
    }
    if !no_report {
        let files = write_report(&store, &plan.sweep, &default_report_dir(&plan.sweep), Metric::Test, false).await?;
        eprintln!("report: {}", files.display());
    }
    Ok(if outcome.failed > 0 || outcome.pending > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn stop_on_ctrl_c(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, Ordering::Relaxed);
        }
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
        WorkerMessage::Finished { label, outcome, detail, .. } => eprintln!("{outcome:?} {label}: {detail}"),
        WorkerMessage::Progress { event: thaw_worker::Event::Epoch(m), .. } => {
            eprintln!("  epoch {} val acc {:.4} loss {:.4} ({:.1}s)", m.epoch, m.val_accuracy, m.val_loss, m.seconds)
        }
        WorkerMessage::Progress { .. } => {}
    })
}

async fn worker(db: &Path, sweep: Option<String>, backend: Backend, child: bool) -> Result<ExitCode> {
    let backend = thaw_worker::BackendKind::from(backend);
    backend.check_built()?;
    if !db.is_file() {
        bail!("{}: no such database; start the sweep with `thaw run FILE` first", db.display());
    }
    let store = Store::open(db).await?;
    let sweep = store.sweep(sweep.as_deref()).await?.name;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_ctrl_c(stop.clone());
    if child {
        stop_on_stdin_eof(stop.clone());
    }
    let options = WorkerOptions {
        db: std::path::absolute(db)?,
        sweep,
        backend,
        worker_id: worker_id(""),
        stop,
        sink: if child { child_sink() } else { console_sink() },
    };
    let finished = Worker::new(store, options).run().await?;
    if !child {
        eprintln!("worker finished {finished} jobs/stages; nothing left to claim");
    }
    Ok(ExitCode::SUCCESS)
}

/// The database a read-only command looks at: --db, the sweep file's default, or the only one in results/.
async fn open_target(target: &Target) -> Result<(Store, String)> {
    let db = match (&target.db, &target.file) {
        (Some(db), _) => db.clone(),
        (None, Some(file)) => {
            let (_, spec) = thaw_orchestrator::read(file)?;
            default_db(spec.sweep.name.get_ref())
        }
        (None, None) => {
            let found: Vec<PathBuf> = std::fs::read_dir("results")
                .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "db")).collect())
                .unwrap_or_default();
            match found.as_slice() {
                [one] => one.clone(),
                [] => bail!("no database in results/; give --db PATH or the sweep file"),
                many => bail!(
                    "several databases in results/ ({}); give --db PATH or the sweep file",
                    many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
    };
    if !db.is_file() {
        bail!("{}: no such database; has the sweep been run (`thaw run FILE`)?", db.display());
    }
    let store = Store::open(&db).await?;
    let sweep = store.sweep(target.sweep.as_deref()).await?.name;
    Ok((store, sweep))
}

async fn status(target: &Target) -> Result<ExitCode> {
    let (store, sweep) = open_target(target).await?;
    let p = store.progress(&sweep).await?;
    println!("sweep {sweep}");
    println!("jobs:   {} total, {} done, {} running, {} pending, {} failed", p.jobs.total(), p.jobs.done, p.jobs.running, p.jobs.pending, p.jobs.failed);
    println!("stages: {} total, {} done, {} running, {} pending, {} failed", p.stages.total(), p.stages.done, p.stages.running, p.stages.pending, p.stages.failed);
    for r in &p.running {
        let age = r.heartbeat_at.map(|h| thaw_store::now() - h).unwrap_or(f64::NAN);
        println!("running {} on {} (heartbeat {age:.0}s ago)", r.key, r.worker);
    }
    for s in store.stages(&sweep).await? {
        if let Some(error) = &s.error.filter(|_| s.status == "failed") {
            println!("failed stage {} '{}': {error}", s.key, s.name);
        }
    }
    for j in store.job_results(&sweep).await?.iter().filter(|j| j.status == "failed") {
        println!("failed {} ({} {} k={} seed={}): {}", j.job_key, j.init, j.intermediate, j.freeze, j.seed, j.error.as_deref().unwrap_or("?"));
    }
    Ok(ExitCode::SUCCESS)
}

const JOB_COLUMNS: [&str; 15] = [
    "job_key", "init", "intermediate", "freeze", "unfrozen_layers", "seed", "lr", "train_size", "pooling", "val_accuracy",
    "test_accuracy", "test_macro_f1", "train_seconds", "status", "error",
];

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_default()
}

fn job_cells(j: &JobResultRow) -> Vec<String> {
    vec![
        j.job_key.clone(),
        j.init.clone(),
        j.intermediate.clone(),
        j.freeze.to_string(),
        j.unfrozen_layers.to_string(),
        j.seed.to_string(),
        format!("{:e}", j.lr),
        j.train_size.map(|n| n.to_string()).unwrap_or("all".into()),
        j.pooling.clone(),
        fixed(j.val_accuracy, 4),
        fixed(j.test_accuracy, 4),
        fixed(j.test_macro_f1, 4),
        fixed(j.train_seconds, 1),
        j.status.clone(),
        opt(&j.error),
    ]
}

pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> =
        (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].len()]).max().unwrap_or(0)).collect();
    let line = |cells: Vec<&str>| cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string();
    println!("{}", line(header.to_vec()));
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

fn print_csv(header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    w.flush()?;
    Ok(())
}

async fn results(target: &Target, format: Format, aggregate: bool, metric: Metric) -> Result<ExitCode> {
    let (store, sweep) = open_target(target).await?;
    let rows = store.job_results(&sweep).await?;
    if aggregate {
        return print_aggregate(&rows, format, metric);
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Csv => print_csv(&JOB_COLUMNS, &rows.iter().map(job_cells).collect::<Vec<_>>())?,
        Format::Table => print_table(&JOB_COLUMNS[..14], &rows.iter().map(|r| job_cells(r)[..14].to_vec()).collect::<Vec<_>>()),
    }
    Ok(ExitCode::SUCCESS)
}

fn report_metric(metric: Metric) -> thaw_report::aggregate::Metric {
    match metric {
        Metric::Test => thaw_report::aggregate::Metric::Test,
        Metric::Validation => thaw_report::aggregate::Metric::Validation,
    }
}

fn print_aggregate(rows: &[JobResultRow], format: Format, metric: Metric) -> Result<ExitCode> {
    let summaries = thaw_report::aggregate::aggregate(rows, report_metric(metric));
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summaries)?),
        Format::Table => print!("{}", thaw_report::aggregate::format_table(&summaries)),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            for s in &summaries {
                w.serialize(s)?;
            }
            w.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn write_report(store: &Store, sweep: &str, out: &Path, metric: Metric, show_all_lrs: bool) -> Result<PathBuf> {
    let options = thaw_report::ReportOptions { out_dir: out.to_path_buf(), metric: report_metric(metric), show_all_lrs };
    Ok(thaw_report::write_report(store, sweep, &options).await?.report_md)
}

async fn report(target: &Target, out: Option<PathBuf>, metric: Metric, all_lrs: bool) -> Result<ExitCode> {
    let (store, sweep) = open_target(target).await?;
    let out = out.unwrap_or_else(|| default_report_dir(&sweep));
    let md = write_report(&store, &sweep, &out, metric, all_lrs).await?;
    println!("{}", md.display());
    Ok(ExitCode::SUCCESS)
}
