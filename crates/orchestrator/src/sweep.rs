//! `thaw run`: a sweep file to finished work. The plan (or what the adaptive search asks for
//! so far) is registered in the store, worker processes run it, and an adaptive search looks
//! at the stored results and adds its next jobs, until it adds nothing. A run interrupted at
//! any point resumes where it stopped: the store holds every decision and result.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use thaw_analysis::cells::{best_job_per_cell, format_lr};
use thaw_analysis::labels::cell_label;
use thaw_store::{Location, PlanSummary, Store, WorkStatus};
use thaw_train::BackendKind;

use crate::export::prune_kept_weights;
use crate::files::FileHome;
use crate::launch::{RunSummary, WorkerCommand, run_workers, wait_for_other_workers};
use crate::plan::{Plan, build_plan};
use crate::register::register;
use crate::search::{Next, next, observe};
use crate::spec::{Keep, Source, read};
use crate::worker::worker_id;

/// A sweep file read and planned for `backend`.
pub fn load(file: &Path, backend: BackendKind) -> Result<(Source, Plan)> {
    let (source, spec) = read(file)?;
    let plan = build_plan(&source, &spec, backend)?;
    Ok((source, plan))
}

/// Where a sweep's SQLite database lives unless `--db` says otherwise.
pub fn default_db(sweep: &str) -> PathBuf {
    Path::new("results").join(format!("{sweep}.db"))
}

/// Where a sweep's report is written unless `--out` says otherwise.
pub fn default_report_dir(sweep: &str) -> PathBuf {
    Path::new("results").join(sweep)
}

/// How `thaw run` runs a sweep.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker processes at once; 0 only registers the plan.
    pub workers: usize,
    pub backend: BackendKind,
    /// The database; None: `results/<sweep>.db`.
    pub db: Option<Location>,
    /// Put failed jobs and stages back to pending first.
    pub retry_failed: bool,
}

/// How a run ended.
pub struct SweepRun {
    pub store: Store,
    pub sweep: String,
    pub keep: Keep,
    /// Counts of the sweep's jobs as the store holds them at the end.
    pub outcome: RunSummary,
    /// `--workers 0`: the plan was registered and nothing ran.
    pub registered_only: bool,
}

/// Registers the sweep of `file` and runs it to the end (or until Ctrl-C), printing its
/// progress on stderr.
pub async fn run(file: &Path, options: &RunOptions) -> Result<SweepRun> {
    let started = Instant::now();
    options.backend.check_built()?;
    let (source, plan) = load(file, options.backend)?;
    // Absolute: stage checkpoints are stored by path, and workers may join from another folder.
    let db = options.db.clone().unwrap_or_else(|| Location::Sqlite(default_db(&plan.sweep)));
    let db = db.absolute()?;
    let store = Store::connect(&db, Some(&worker_id(" (thaw run)"))).await?;
    // Before the search reads the store: a failed rung given another try is not yet a loss.
    if options.retry_failed {
        let n = store.retry_failed(&plan.sweep).await?;
        eprintln!("{n} failed jobs/stages back to pending");
    }
    let mut step = search_step(&store, &plan).await?;
    let registered = register(&store, &source, &plan, &step.jobs).await?;
    record_decisions(&store, &plan.sweep, &step).await?;
    announce(&store, &plan, &registered, &db).await?;
    let run = |outcome, registered_only| SweepRun {
        store: store.clone(),
        sweep: plan.sweep.clone(),
        keep: plan.keep,
        outcome,
        registered_only,
    };
    if options.workers == 0 {
        eprintln!(
            "registered only (--workers 0); start workers with `thaw worker --db {db}`{}",
            if plan.search.is_some() {
                "; the adaptive search adds its next jobs when `thaw run` is run again"
            } else {
                ""
            }
        );
        return Ok(run(RunSummary::default(), true));
    }
    let command = worker_command(&db, &plan.sweep, options.backend)?;
    let outcome =
        run_until_settled(&store, &source, &plan, &mut step, options.workers, &command).await?;
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
    for (key, why) in &outcome.failures {
        eprintln!("failed {key}: {why}");
    }
    Ok(run(outcome, false))
}

/// The sweep's size and state, and the plan's notes.
async fn announce(
    store: &Store,
    plan: &Plan,
    registered: &PlanSummary,
    db: &Location,
) -> Result<()> {
    let before = store.progress(&plan.sweep).await?;
    eprintln!(
        "sweep {}: {} jobs ({} new), {} done, {} failed, {} to run; {} MLM stages; database {}",
        plan.sweep,
        registered.total_jobs,
        registered.new_jobs,
        before.jobs.done,
        before.jobs.failed,
        before.jobs.pending + before.jobs.running,
        plan.stages.len(),
        db
    );
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    Ok(())
}

/// Each worker process is this same program as `thaw worker --child`.
fn worker_command(db: &Location, sweep: &str, backend: BackendKind) -> Result<WorkerCommand> {
    Ok(WorkerCommand {
        program: std::env::current_exe().context("cannot find the thaw executable")?,
        args: vec![
            "worker".into(),
            "--db".into(),
            db.to_string(),
            "--sweep".into(),
            sweep.to_string(),
            "--backend".into(),
            backend.as_str().into(),
            "--child".into(),
        ],
        password: password_of(db),
    })
}

/// A grid runs once; an adaptive search runs what it holds, then decides what comes next
/// from the stored results, until it adds nothing. Work other processes hold is waited for,
/// and work a dead holder gave back is run.
async fn run_until_settled(
    store: &Store,
    source: &Source,
    plan: &Plan,
    step: &mut Next,
    workers: usize,
    command: &WorkerCommand,
) -> Result<RunSummary> {
    let show_bars = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut failures = Vec::new();
    loop {
        let mut outcome = run_workers(store, &plan.sweep, workers, command, show_bars).await?;
        failures.append(&mut outcome.failures);
        let with_failures =
            |outcome: RunSummary| RunSummary { failures: failures.clone(), ..outcome };
        if outcome.interrupted {
            return Ok(with_failures(outcome));
        }
        let waited = wait_for_other_workers(store, &plan.sweep).await?;
        if waited.interrupted {
            return Ok(with_failures(RunSummary { interrupted: true, ..outcome }));
        }
        if waited.requeued > 0 {
            continue;
        }
        if plan.search.is_none() {
            return Ok(with_failures(outcome));
        }
        let held = step.jobs.len();
        *step = search_step(store, plan).await?;
        register(store, source, plan, &step.jobs).await?;
        record_decisions(store, &plan.sweep, step).await?;
        if step.jobs.len() == held {
            return Ok(with_failures(outcome));
        }
    }
}

/// The jobs the sweep holds now: the whole grid, or what the adaptive search asks for given
/// what the store holds.
async fn search_step(store: &Store, plan: &Plan) -> Result<Next> {
    let Some(search) = &plan.search else {
        return Ok(Next { jobs: plan.jobs.clone(), decisions: Vec::new(), finished: true });
    };
    let observed = observe(store, &plan.sweep).await?;
    if search.prior && observed.forecast.is_none() {
        bail!(
            "[search] prior = \"advise\": sweep '{}' has no stored advice in this database; run `thaw advise FILE` first (with the same --db)",
            plan.sweep
        );
    }
    Ok(next(plan, search, &observed))
}

/// Stores the step's decisions and prints those not stored before.
async fn record_decisions(store: &Store, sweep: &str, step: &Next) -> Result<()> {
    for i in store.record_decisions(sweep, &step.decisions).await? {
        let d = &step.decisions[i];
        let what = match (d.lr, d.seed) {
            (Some(lr), _) => format!(" lr {}", format_lr(lr)),
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
/// seed (at its selected lr, chosen on validation) stays. Returns how many files went.
pub async fn keep_best_per_cell(store: &Store, sweep: &str) -> Result<usize> {
    let rows = store.job_results(sweep).await?;
    let keep: Vec<&str> =
        best_job_per_cell(&rows).into_iter().map(|r| r.job_key.as_str()).collect();
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

/// The store a read-only command looks at: `db`, the sweep file's default database, or the
/// only database in `results/`; and the sweep in it (`sweep`, or its only one).
pub async fn open_reader(
    db: Option<&Location>,
    file: Option<&Path>,
    sweep: Option<&str>,
) -> Result<(Store, String)> {
    let db = match (db, file) {
        (Some(db), _) => db.clone(),
        (None, Some(file)) => {
            let (_, spec) = read(file)?;
            Location::Sqlite(default_db(spec.sweep.name.get_ref()))
        }
        (None, None) => Location::Sqlite(only_database_in_results()?),
    };
    if let Some(file) = db.file().filter(|f| !f.is_file()) {
        bail!("{}: no such database; has the sweep been run (`thaw run FILE`)?", file.display());
    }
    let store = Store::connect(&db, Some("thaw (reader)")).await?;
    let sweep = store.sweep(sweep).await?.name;
    Ok((store, sweep))
}

/// The one `.db` file in `results/`; an error listing them when there are several or none.
pub fn only_database_in_results() -> Result<PathBuf> {
    let found: Vec<PathBuf> = std::fs::read_dir("results")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "db"))
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no database in results/; give --db PATH or the sweep file"),
        many => bail!(
            "several databases in results/ ({}); give --db PATH or the sweep file",
            many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}
