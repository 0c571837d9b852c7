use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail, ensure};
use thaw_orchestrator::cluster::{SlurmOptions, k8s_manifest, slurm_script, submit_slurm};
use thaw_orchestrator::export::{export_job, export_stage, prune_kept_weights};
use thaw_orchestrator::files::FileHome;
use thaw_orchestrator::launch::{RunSummary, WorkerCommand, run_workers, wait_for_other_workers};
use thaw_orchestrator::plan::Plan;
use thaw_orchestrator::runner::{Sink, Worker, WorkerMessage, WorkerOptions, worker_id};
use thaw_orchestrator::search::{Next, cell_label, next as next_step, observe};
use thaw_orchestrator::spec::Keep;
use thaw_report::Metric;
use thaw_report::tables::{self, Format};
use thaw_store::{Location, Store, WorkStatus};
use thaw_train::BackendKind;

use crate::cli::{Cli, ClusterArgs, Command, Target};

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Plan { file, jobs, backend } => plan(&file, jobs, backend),
        Command::Run { file, workers, backend, db, retry_failed, no_report } => {
            run(&file, workers, backend, db, retry_failed, no_report).await
        }
        Command::Worker { db, sweep, backend, child } => worker(&db, sweep, backend, child).await,
        Command::Slurm {
            file,
            cluster,
            partition,
            time,
            gres,
            cpus_per_task,
            sbatch_args,
            dry_run,
        } => {
            let options = SlurmOptions {
                workers: cluster.workers,
                partition,
                time,
                gres,
                cpus_per_task,
                sbatch_args,
                log_dir: std::path::absolute("results/slurm")?,
            };
            slurm(&file, &cluster, options, dry_run).await
        }
        Command::K8s { file, cluster, image, secret } => k8s(&file, &cluster, &image, &secret),
        Command::Status(target) => status(&target).await,
        Command::Results { target, format, aggregate, metric } => {
            results(&target, format, aggregate, metric).await
        }
        Command::Report { target, out, metric, all_lrs } => {
            report(&target, out, metric, all_lrs).await
        }
        Command::Export { target, job, best, stage, out } => {
            export(&target, job, best, stage, &out).await
        }
        Command::Fetch { assets } => {
            let names: Vec<&str> = assets.iter().map(String::as_str).collect();
            thaw_assets::fetch(&names)?;
            println!("assets ready in {}", thaw_assets::cache_dir().display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_plan(file: &Path, backend: BackendKind) -> Result<(thaw_orchestrator::spec::Source, Plan)> {
    let (source, spec) = thaw_orchestrator::read(file)?;
    let plan = thaw_orchestrator::build_plan(&source, &spec, backend)?;
    Ok((source, plan))
}

fn default_db(sweep: &str) -> PathBuf {
    Path::new("results").join(format!("{sweep}.db"))
}

fn default_report_dir(sweep: &str) -> PathBuf {
    Path::new("results").join(sweep)
}

fn plan(file: &Path, list_jobs: bool, backend: BackendKind) -> Result<ExitCode> {
    let (_, plan) = load_plan(file, backend)?;
    print!("{}", plan.describe(list_jobs));
    Ok(ExitCode::SUCCESS)
}

async fn run(
    file: &Path,
    workers: usize,
    backend: BackendKind,
    db: Option<Location>,
    retry_failed: bool,
    no_report: bool,
) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    backend.check_built()?;
    let (source, plan) = load_plan(file, backend)?;
    // Absolute: stage checkpoints are stored by path, and workers may join from another folder.
    let db = db.unwrap_or_else(|| Location::Sqlite(default_db(&plan.sweep))).absolute()?;
    let store = Store::connect(&db, Some(&worker_id(" (thaw run)"))).await?;
    // Before the search reads the store: a failed rung given another try is not yet a loss.
    if retry_failed {
        let n = store.retry_failed(&plan.sweep).await?;
        eprintln!("{n} failed jobs/stages back to pending");
    }
    let mut step = search_step(&store, &plan).await?;
    let summary = thaw_orchestrator::register(&store, &source, &plan, &step.jobs).await?;
    record_decisions(&store, &plan.sweep, &step).await?;
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
        db
    );
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    if workers == 0 {
        eprintln!(
            "registered only (--workers 0); start workers with `thaw worker --db {}`{}",
            db,
            if plan.search.is_some() {
                "; the adaptive search adds its next jobs when `thaw run` is run again"
            } else {
                ""
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let command = WorkerCommand {
        program: std::env::current_exe().context("cannot find the thaw executable")?,
        args: vec![
            "worker".into(),
            "--db".into(),
            db.to_string(),
            "--sweep".into(),
            plan.sweep.clone(),
            "--backend".into(),
            backend.as_str().into(),
            "--child".into(),
        ],
        password: password_of(&db),
    };
    let show_bars = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A grid runs once; an adaptive search runs what it holds, then decides what comes next
    // from the stored results, until it adds nothing.
    let mut failures = Vec::new();
    let outcome = loop {
        let mut outcome = run_workers(&store, &plan.sweep, workers, &command, show_bars).await?;
        failures.append(&mut outcome.failures);
        if outcome.interrupted {
            break outcome;
        }
        // What is left may be running in other processes: wait for it rather than call the
        // sweep unfinished, and run what comes back from a holder that died.
        let waited = wait_for_other_workers(&store, &plan.sweep).await?;
        if waited.interrupted {
            break RunSummary { interrupted: true, ..outcome };
        }
        if waited.requeued > 0 {
            continue;
        }
        if plan.search.is_none() {
            break outcome;
        }
        let held = step.jobs.len();
        step = search_step(&store, &plan).await?;
        thaw_orchestrator::register(&store, &source, &plan, &step.jobs).await?;
        record_decisions(&store, &plan.sweep, &step).await?;
        if step.jobs.len() == held {
            break outcome;
        }
    };
    // Counted now: jobs other workers finished while this run waited are in.
    let outcome = outcome.recount(&store, &plan.sweep).await?;
    eprintln!(
        "{} done, {} failed, {} pending after {:.0}s{}",
        outcome.done,
        outcome.failed,
        outcome.pending,
        started.elapsed().as_secs_f64(),
        if outcome.interrupted { " (stopped; run the same command to resume)" } else { "" }
    );
    for (key, why) in &failures {
        eprintln!("failed {key}: {why}");
    }
    if outcome.interrupted {
        return Ok(ExitCode::from(130));
    }
    if !no_report {
        let files = write_report(
            &store,
            &plan.sweep,
            &default_report_dir(&plan.sweep),
            Metric::Test,
            false,
        )
        .await?;
        eprintln!("report: {}", files.display());
    }
    if plan.keep == Keep::BestPerCell {
        let deleted = keep_best_per_cell(&store, &plan.sweep).await?;
        eprintln!("kept weights: each cell's best seed; {deleted} other files deleted");
    }
    Ok(if outcome.failed > 0 || outcome.pending > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The jobs the sweep holds now: the whole grid, or what the adaptive search asks for given
/// what the store holds.
async fn search_step(store: &Store, plan: &Plan) -> Result<Next> {
    let Some(search) = &plan.search else {
        return Ok(Next { jobs: plan.jobs.clone(), decisions: Vec::new(), finished: true });
    };
    let observed = observe(store, &plan.sweep).await?;
    Ok(next_step(plan, search, &observed))
}

/// Stores the step's decisions and prints those not stored before.
async fn record_decisions(store: &Store, sweep: &str, step: &Next) -> Result<()> {
    for i in store.record_decisions(sweep, &step.decisions).await? {
        let d = &step.decisions[i];
        let what = match (d.lr, d.seed) {
            (Some(lr), _) => format!(" lr {}", thaw_report::aggregate::format_lr(lr)),
            (None, Some(seed)) => format!(" seed {seed}"),
            _ => String::new(),
        };
        let cell = serde_json::from_str(&d.cell)
            .map(|c| format!(" ({})", cell_label(&c)))
            .unwrap_or_default();
        eprintln!("search: {}{what}{cell}: {}", d.action.done_text(), d.reason);
    }
    Ok(())
}

/// `[train] keep = "best-per-cell"`: of the done jobs' kept weights, only each cell's best
/// seed (at its selected lr, chosen on validation) stays.
async fn keep_best_per_cell(store: &Store, sweep: &str) -> Result<usize> {
    let rows = store.job_results(sweep).await?;
    let keep: Vec<&str> = thaw_report::recommend::best_job_per_cell(&rows)
        .into_iter()
        .map(|r| r.job_key.as_str())
        .collect();
    let done: Vec<&str> =
        rows.iter().filter(|r| r.status == WorkStatus::Done).map(|r| r.job_key.as_str()).collect();
    prune_kept_weights(&FileHome::for_store(store)?, &done, &keep)
}

/// The password a PostgreSQL URL carried, for a child process's environment.
fn password_of(db: &Location) -> Option<String> {
    match db {
        Location::Postgres(url) => url.password().map(String::from),
        Location::Sqlite(_) => None,
    }
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
                "  epoch {} val acc {:.4} loss {:.4} ({:.1}s)",
                m.epoch, m.val_accuracy, m.val_loss, m.seconds
            )
        }
        WorkerMessage::Progress { .. } => {}
    })
}

async fn worker(
    db: &Location,
    sweep: Option<String>,
    backend: BackendKind,
    child: bool,
) -> Result<ExitCode> {
    backend.check_built()?;
    if let Some(file) = db.file().filter(|f| !f.is_file()) {
        bail!("{}: no such database; start the sweep with `thaw run FILE` first", file.display());
    }
    let id = worker_id("");
    let store = Store::connect(db, Some(&id)).await?;
    let sweep = store.sweep(sweep.as_deref()).await?.name;
    let sweep_name = sweep.clone();
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone());
    if child {
        stop_on_stdin_eof(stop.clone());
    }
    let options = WorkerOptions {
        home: FileHome::for_store(&store)?,
        sweep,
        backend,
        worker_id: id,
        stop,
        sink: if child { child_sink() } else { console_sink() },
    };
    let finished = Worker::new(store.clone(), options).run().await?;
    if !child {
        eprintln!("worker finished {finished} jobs/stages; nothing left to claim on {backend}");
        for (other, n) in store.pending_by_backend(&sweep_name).await? {
            if other != backend.as_str() {
                eprintln!(
                    "{n} pending jobs are planned for {other}: start workers with --backend {other}"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The database a command reads: --db, the sweep file's default, or the only one in results/.
async fn open_target(target: &Target) -> Result<(Store, String)> {
    let db = match (&target.db, &target.file) {
        (Some(db), _) => db.clone(),
        (None, Some(file)) => {
            let (_, spec) = thaw_orchestrator::read(file)?;
            Location::Sqlite(default_db(spec.sweep.name.get_ref()))
        }
        (None, None) => {
            let found: Vec<PathBuf> = std::fs::read_dir("results")
                .map(|dir| {
                    dir.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "db"))
                        .collect()
                })
                .unwrap_or_default();
            match found.as_slice() {
                [one] => Location::Sqlite(one.clone()),
                [] => bail!("no database in results/; give --db PATH or the sweep file"),
                many => bail!(
                    "several databases in results/ ({}); give --db PATH or the sweep file",
                    many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
    };
    if let Some(file) = db.file().filter(|f| !f.is_file()) {
        bail!("{}: no such database; has the sweep been run (`thaw run FILE`)?", file.display());
    }
    let store = Store::connect(&db, Some("thaw (reader)")).await?;
    let sweep = store.sweep(target.sweep.as_deref()).await?.name;
    Ok((store, sweep))
}

async fn status(target: &Target) -> Result<ExitCode> {
    let (store, sweep) = open_target(target).await?;
    let p = store.progress(&sweep).await?;
    println!("sweep {sweep}");
    println!(
        "jobs:   {} total, {} done, {} running, {} pending, {} failed",
        p.jobs.total(),
        p.jobs.done,
        p.jobs.running,
        p.jobs.pending,
        p.jobs.failed
    );
    println!(
        "stages: {} total, {} done, {} running, {} pending, {} failed",
        p.stages.total(),
        p.stages.done,
        p.stages.running,
        p.stages.pending,
        p.stages.failed
    );
    for r in &p.running {
        println!(
            "running {} on {} for {:.0}s (heartbeat {:.0}s ago)",
            r.key,
            r.worker,
            r.running_for.unwrap_or(f64::NAN),
            r.heartbeat_age.unwrap_or(f64::NAN)
        );
    }
    for s in store.stages(&sweep).await? {
        if let Some(error) = &s.error.filter(|_| s.status == WorkStatus::Failed) {
            println!("failed stage {} '{}': {error}", s.key, s.name);
        }
    }
    for j in store.job_results(&sweep).await?.iter().filter(|j| j.status == WorkStatus::Failed) {
        println!(
            "failed {} ({} {} k={} seed={}): {}",
            j.job_key,
            j.init,
            j.intermediate,
            j.freeze,
            j.seed,
            j.error.as_deref().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn results(
    target: &Target,
    format: Format,
    aggregate: bool,
    metric: Metric,
) -> Result<ExitCode> {
    let (store, sweep) = open_target(target).await?;
    let rows = store.job_results(&sweep).await?;
    let text = if aggregate {
        tables::cells(&thaw_report::aggregate::aggregate(&rows, metric), format)?
    } else {
        tables::jobs(&rows, format)?
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

async fn write_report(
    store: &Store,
    sweep: &str,
    out: &Path,
    metric: Metric,
    show_all_lrs: bool,
) -> Result<PathBuf> {
    let options = thaw_report::ReportOptions { out_dir: out.to_path_buf(), metric, show_all_lrs };
    Ok(thaw_report::write_report(store, sweep, &options).await?.report_md)
}

async fn report(
    target: &Target,
    out: Option<PathBuf>,
    metric: Metric,
    all_lrs: bool,
) -> Result<ExitCode> {
    let (store, sweep) = open_target(target).await?;
    let out = out.unwrap_or_else(|| default_report_dir(&sweep));
    let md = write_report(&store, &sweep, &out, metric, all_lrs).await?;
    println!("{}", md.display());
    Ok(ExitCode::SUCCESS)
}

async fn export(
    target: &Target,
    job: Option<String>,
    best: bool,
    stage: Option<String>,
    out: &Path,
) -> Result<ExitCode> {
    let (store, sweep) = open_target(target).await?;
    let home = FileHome::for_store(&store)?;
    let exported = match (job, stage) {
        (_, Some(stage)) => export_stage(&store, &home, &sweep, &stage, out).await?,
        (Some(job), None) => export_job(&store, &home, &sweep, &job, None, out).await?,
        (None, None) => {
            debug_assert!(best, "clap requires one of --job, --best, --stage");
            let data = thaw_report::SweepData::load(&store, &sweep).await?;
            let (row, verdict) =
                thaw_report::recommend::recommended_job(&data.rows, data.baselines().as_ref())
                    .context("no cell has a finished job yet, so there is no best one to export")?;
            export_job(&store, &home, &sweep, &row.job_key, Some(verdict), out).await?
        }
    };
    eprintln!("{}", exported.summary);
    println!("{}", exported.folder.display());
    Ok(ExitCode::SUCCESS)
}

/// The PostgreSQL store a cluster's workers share (SQLite's locking is not for many machines).
fn cluster_store(args: &ClusterArgs) -> Result<&thaw_store::PgUrl> {
    match &args.db {
        Location::Postgres(url) => Ok(url),
        Location::Sqlite(path) => bail!(
            "--db {}: cluster workers share a PostgreSQL store (postgres://USER@HOST:PORT/DATABASE); \
             a SQLite file is for workers on one machine (`thaw run --workers N`)",
            path.display()
        ),
    }
}

/// `thaw slurm`: registers the plan on the PostgreSQL store, writes the batch script beside
/// the task logs and submits it as one array (or, with --dry-run, prints it).
async fn slurm(
    file: &Path,
    args: &ClusterArgs,
    options: SlurmOptions,
    dry_run: bool,
) -> Result<ExitCode> {
    let url = cluster_store(args)?;
    args.backend.check_built()?;
    let (source, plan) = load_plan(file, args.backend)?;
    ensure!(
        plan.search.is_none(),
        "{}: thaw slurm runs grids; an adaptive search ([search]) decides its next jobs in `thaw run`, which can use the same --db",
        file.display()
    );
    let program = std::env::current_exe().context("cannot find the thaw executable")?;
    let script = slurm_script(&program, url, &plan.sweep, args.backend, &options)?;
    if dry_run {
        print!("{script}");
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::connect(&args.db, Some("thaw slurm")).await?;
    let summary = thaw_orchestrator::register(&store, &source, &plan, &plan.jobs).await?;
    std::fs::create_dir_all(&options.log_dir)
        .with_context(|| format!("creating {}", options.log_dir.display()))?;
    let script_path = options.log_dir.join(format!("thaw-{}.sbatch", plan.sweep));
    std::fs::write(&script_path, &script)
        .with_context(|| format!("writing {}", script_path.display()))?;
    let array = submit_slurm(&script_path, url.password())?;
    eprintln!(
        "sweep {}: {} jobs ({} new) on {}; Slurm array {array} of {} workers (script {}, logs {}/thaw-{}-{array}_*.out)",
        plan.sweep,
        summary.total_jobs,
        summary.new_jobs,
        url.describe(),
        options.workers,
        script_path.display(),
        options.log_dir.display(),
        plan.sweep
    );
    eprintln!(
        "follow with `thaw status --db {}`; report with `thaw report --db {}`",
        args.db, args.db
    );
    println!("{array}");
    Ok(ExitCode::SUCCESS)
}

/// `thaw k8s`: prints the Indexed Job manifest; nothing is registered or submitted.
fn k8s(file: &Path, args: &ClusterArgs, image: &str, secret: &str) -> Result<ExitCode> {
    cluster_store(args)?;
    let (_, plan) = load_plan(file, args.backend)?;
    let manifest = k8s_manifest(&plan.sweep, args.backend, args.workers, image, secret);
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    eprintln!(
        "register the sweep first (`thaw run {} --db {} --workers 0`), create the Secret \
         (`kubectl create secret generic {secret} --from-literal=url=postgres://USER:PASSWORD@HOST:PORT/DATABASE`), \
         then `kubectl apply -f` this manifest",
        file.display(),
        args.db
    );
    Ok(ExitCode::SUCCESS)
}
