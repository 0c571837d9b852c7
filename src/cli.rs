use std::path::PathBuf;

use clap::{Parser, Subcommand};
use thaw_report::Metric;
use thaw_report::tables::Format;
use thaw_train::BackendKind;

/// thaw: measure whether to freeze, unfreeze, intermediate-train or train from scratch, on your data.
#[derive(Debug, Parser)]
#[command(name = "thaw", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the jobs and shared stages a sweep file expands to, without running anything.
    Plan {
        /// The sweep file (TOML).
        file: PathBuf,
        /// List every job, not only the counts per cell.
        #[arg(long)]
        jobs: bool,
        /// The backend the jobs are planned for (part of every key).
        #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
        backend: BackendKind,
    },
    /// Run a sweep: expand it into the database, run pending work, write the report.
    Run {
        file: PathBuf,
        /// Worker processes to run at once; 0 only registers the plan (join with `thaw worker`).
        /// (`--jobs` is accepted too, as earlier versions called it.)
        #[arg(long, alias = "jobs", default_value_t = 1)]
        workers: usize,
        #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
        backend: BackendKind,
        /// The database (default: results/<sweep name>.db).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Put failed jobs and stages back to pending first.
        #[arg(long)]
        retry_failed: bool,
        /// Skip writing the report at the end.
        #[arg(long)]
        no_report: bool,
    },
    /// Join a sweep already in a database: claim and run its pending work.
    Worker {
        #[arg(long)]
        db: PathBuf,
        /// The sweep's name (needed only when the database holds several).
        #[arg(long)]
        sweep: Option<String>,
        /// Claim only work planned for this backend (`thaw run --backend` plans it).
        #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
        backend: BackendKind,
        /// Speak JSON lines on stdout and stop when stdin closes (used by `thaw run`).
        #[arg(long, hide = true)]
        child: bool,
    },
    /// Counts per state, running jobs, failures with their reasons.
    Status(Target),
    /// One row per job, or per cell with --aggregate.
    Results {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Mean and 95% CI over seeds per cell, each cell at its best validation lr.
        #[arg(long)]
        aggregate: bool,
        /// With --aggregate: which accuracy to summarise.
        #[arg(long, value_enum, default_value_t = Metric::Test)]
        metric: Metric,
    },
    /// Write the charts and report.md of a sweep from its database.
    Report {
        #[command(flatten)]
        target: Target,
        /// Output folder (default: results/<sweep name>/).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Metric::Test)]
        metric: Metric,
        /// Also draw every learning rate tried, faintly.
        #[arg(long)]
        all_lrs: bool,
    },
    /// Write a finished job (from its kept weights, or trained again from its key) or an
    /// intermediate-MLM stage as a folder that Hugging Face transformers loads.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["job", "best", "stage"])))]
    Export {
        #[command(flatten)]
        target: Target,
        /// The job's key (`thaw results` lists them).
        #[arg(long)]
        job: Option<String>,
        /// The report's recommended cell, at its best seed on validation.
        #[arg(long)]
        best: bool,
        /// An intermediate-MLM stage's key, written as a BertForMaskedLM folder.
        #[arg(long)]
        stage: Option<String>,
        /// The folder to write (replaced if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Fetch the model and datasets of the asset route into the cache (done on first use anyway).
    Fetch {
        /// minilm, rotten_tomatoes, bbc_news (default: all).
        assets: Vec<String>,
    },
}

/// Which sweep database a read-only command looks at.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// A sweep file: its database is results/<name>.db unless --db says otherwise.
    pub file: Option<PathBuf>,
    /// The database (default: the sweep file's, or the only one in results/).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// The sweep's name, when the database holds several.
    #[arg(long)]
    pub sweep: Option<String>,
}
