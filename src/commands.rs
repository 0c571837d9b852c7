//! Each subcommand as one call into the crates that do the work.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use thaw_analysis::Split;
use thaw_orchestrator::advise;
use thaw_orchestrator::cluster::{self, SlurmOptions};
use thaw_orchestrator::export::{export_job, export_stage};
use thaw_orchestrator::files::FileHome;
use thaw_orchestrator::spec::Keep;
use thaw_orchestrator::sweep::{self, RunOptions, default_report_dir, open_reader};
use thaw_report::tables::{self, Format};
use thaw_store::{Location, Store};

use crate::cli::{Cli, Command, Target};

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Plan { file, jobs, backend } => {
            print!("{}", sweep::load(&file, backend)?.1.describe(jobs));
        }
        Command::Advise { file, db } => print!("{}", advise::run(file, db).await?.describe()),
        Command::Run { file, workers, backend, db, retry_failed, no_report } => {
            let options = RunOptions { workers, backend, db, retry_failed };
            return run(&file, &options, no_report).await;
        }
        Command::Worker { db, sweep, backend, child } => {
            thaw_orchestrator::worker::serve(&db, sweep, backend, child).await?;
        }
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
            cluster::slurm(&file, &cluster.db, cluster.backend, &options, dry_run).await?;
        }
        Command::K8s { file, cluster, image, secret } => {
            cluster::k8s(&file, &cluster.db, cluster.backend, cluster.workers, &image, &secret)?;
        }
        Command::Status(target) => {
            let (store, sweep) = open(&target).await?;
            print!("{}", thaw_report::status::status(&store, &sweep).await?);
        }
        Command::Results { target, format, aggregate, split } => {
            results(&target, format, aggregate, split).await?;
        }
        Command::Report { target, out, split, all_lrs, html } => {
            let (store, sweep) = open(&target).await?;
            let out = out.unwrap_or_else(|| default_report_dir(&sweep));
            let files = write_report(&store, &sweep, &out, split, all_lrs).await?;
            println!("{}", if html { files.report_html } else { files.report_md }.display());
        }
        Command::Serve { db, bind } => {
            let db =
                db.map_or_else(|| sweep::only_database_in_results().map(Location::Sqlite), Ok)?;
            thaw_serve::run(&db, bind).await?;
        }
        Command::Export { target, job, best, stage, out } => {
            export(&target, job, best, stage, &out).await?;
        }
        Command::Fetch { assets } => {
            let names: Vec<&str> = assets.iter().map(String::as_str).collect();
            thaw_assets::fetch(&names)?;
            println!("assets ready in {}", thaw_assets::cache_dir().display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `thaw run`: the sweep run to its end, then its report and the weights it keeps. Exit
/// code 1 when jobs failed or are left, 130 when stopped.
async fn run(file: &Path, options: &RunOptions, no_report: bool) -> Result<ExitCode> {
    let run = sweep::run(file, options).await?;
    if run.registered_only || run.outcome.interrupted {
        run.store.close().await;
        return Ok(ExitCode::from(if run.registered_only { 0 } else { 130 }));
    }
    if !no_report {
        let out = default_report_dir(&run.sweep);
        let report = write_report(&run.store, &run.sweep, &out, Split::Test, false).await?;
        eprintln!("report: {} (and {})", report.report_md.display(), report.report_html.display());
    }
    if run.keep == Keep::BestPerCell {
        let deleted = sweep::keep_best_per_cell(&run.store, &run.sweep).await?;
        eprintln!("kept weights: each cell's best seed; {deleted} other files deleted");
    }
    let finished = run.outcome.failed == 0 && run.outcome.pending == 0;
    run.store.close().await;
    Ok(if finished { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn open(target: &Target) -> Result<(Store, String)> {
    open_reader(target.db.as_ref(), target.file.as_deref(), target.sweep.as_deref()).await
}

async fn results(target: &Target, format: Format, aggregate: bool, split: Split) -> Result<()> {
    let (store, sweep) = open(target).await?;
    let rows = store.job_results(&sweep).await?;
    let text = if aggregate {
        tables::cells(&thaw_analysis::cells::aggregate(&rows, split), format)?
    } else {
        tables::jobs(&rows, format)?
    };
    print!("{text}");
    Ok(())
}

async fn write_report(
    store: &Store,
    sweep: &str,
    out: &Path,
    split: Split,
    show_all_lrs: bool,
) -> Result<thaw_report::ReportFiles> {
    let options = thaw_report::ReportOptions { out_dir: out.to_path_buf(), split, show_all_lrs };
    thaw_report::write_report(store, sweep, &options).await
}

/// `thaw export`: a job, the report's recommended job (`--best`) or an MLM stage.
async fn export(
    target: &Target,
    job: Option<String>,
    best: bool,
    stage: Option<String>,
    out: &Path,
) -> Result<()> {
    let (store, sweep) = open(target).await?;
    let home = FileHome::for_store(&store)?;
    let exported = match (job, stage) {
        (_, Some(stage)) => export_stage(&store, &home, &sweep, &stage, out).await?,
        (Some(job), None) => export_job(&store, &home, &sweep, &job, None, out).await?,
        (None, None) => {
            debug_assert!(best, "clap requires one of --job, --best, --stage");
            let data = thaw_report::SweepData::load(&store, &sweep).await?;
            let (row, verdict) =
                thaw_report::recommend::recommended_job(&data.rows, data.baselines())
                    .context("no cell has a finished job yet, so there is no best one to export")?;
            export_job(&store, &home, &sweep, &row.job_key, Some(verdict), out).await?
        }
    };
    eprintln!("{}", exported.summary);
    println!("{}", exported.folder.display());
    Ok(())
}
