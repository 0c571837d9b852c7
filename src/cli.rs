use std::path::PathBuf;

use clap::{Parser, Subcommand};
use thaw_analysis::Split;
use thaw_report::tables::Format;
use thaw_store::Location;
use thaw_train::BackendKind;

/// `--db`: a SQLite file (a path or sqlite://PATH) or postgres://USER@HOST:PORT/DATABASE.
fn parse_location(text: &str) -> Result<Location, String> {
    Location::parse(text)
}

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
    /// Forecast the verdict from frozen features and short probes of every cell, for the report.
    Advise {
        file: PathBuf,
        #[arg(long, value_parser = parse_location)]
        db: Option<Location>,
    },
    /// Run a sweep: expand it into the database, run pending work, write the report.
    Run {
        file: PathBuf,
        /// Worker processes to run at once; 0 only registers the plan (join with `thaw worker`).
        #[arg(long, default_value_t = 1)]
        workers: usize,
        #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
        backend: BackendKind,
        /// The database: a SQLite file (default: results/<sweep name>.db) or
        /// postgres://USER@HOST:PORT/DATABASE (password: PGPASSWORD or ~/.pgpass).
        #[arg(long, value_parser = parse_location)]
        db: Option<Location>,
        /// Put failed jobs and stages back to pending first.
        #[arg(long)]
        retry_failed: bool,
        /// Skip writing the report at the end.
        #[arg(long)]
        no_report: bool,
    },
    /// Join a sweep already in a database: claim and run its pending work.
    Worker {
        /// The sweep's database: a SQLite file or postgres://USER@HOST:PORT/DATABASE (also
        /// read from THAW_DB; the password from PGPASSWORD or ~/.pgpass).
        #[arg(long, env = "THAW_DB", hide_env_values = true, value_parser = parse_location)]
        db: Location,
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
    /// Register a sweep on a PostgreSQL store and submit its workers to Slurm as one job
    /// array, each task a `thaw worker --db URL`.
    Slurm {
        file: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Slurm partition (sbatch --partition).
        #[arg(long)]
        partition: Option<String>,
        /// Time limit per task (sbatch --time, e.g. 2:00:00).
        #[arg(long)]
        time: Option<String>,
        /// Generic resources per task (sbatch --gres, e.g. gpu:1).
        #[arg(long)]
        gres: Option<String>,
        /// CPU cores per task (sbatch --cpus-per-task).
        #[arg(long)]
        cpus_per_task: Option<u32>,
        /// Any other sbatch option, as one argument (repeatable): --sbatch-arg=--mem=16G.
        #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
        sbatch_args: Vec<String>,
        /// Print the batch script instead of submitting it (registers nothing).
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a Kubernetes Indexed Job manifest (JSON, which kubectl reads) running a sweep's
    /// workers, one per pod, the database URL from a Secret. Register the sweep first with
    /// `thaw run FILE --db URL --workers 0`.
    K8s {
        file: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The container image with the thaw binary on its PATH.
        #[arg(long, default_value = "thaw:latest")]
        image: String,
        /// The Secret whose key `url` holds the database URL (password included).
        #[arg(long, default_value = "thaw-db")]
        secret: String,
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
        /// With --aggregate: which split's accuracy to summarise.
        #[arg(long, value_enum, default_value_t = Split::Test)]
        split: Split,
    },
    /// Write the charts, report.md and report.html (one self-contained page) of a sweep from
    /// its database; prints report.md's path (report.html's with --html).
    Report {
        #[command(flatten)]
        target: Target,
        /// Output folder (default: results/<sweep name>/).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Split::Test)]
        split: Split,
        /// Also draw every learning rate tried, faintly.
        #[arg(long)]
        all_lrs: bool,
        /// Print the path of report.html (to open in a browser) instead of report.md's.
        #[arg(long)]
        html: bool,
    },
    /// A local web view of every sweep in a database, live while workers run: progress,
    /// workers, cells, charts, each job. It only reads (SQLite read-only, PostgreSQL in
    /// read-only transactions).
    Serve {
        /// A SQLite file or postgres://USER@HOST:PORT/DATABASE (default: the only .db in results/).
        #[arg(long, value_parser = parse_location)]
        db: Option<Location>,
        /// Where to listen. Localhost only by default: a sweep's data stays on this machine
        /// unless you bind another address.
        #[arg(long, default_value = "127.0.0.1:8300")]
        bind: std::net::SocketAddr,
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
        /// minilm, rotten_tomatoes, bbc_news, b3db, sts_b, wnut_2016, snli, cooking (default: all).
        assets: Vec<String>,
    },
}

/// What `thaw slurm` and `thaw k8s` share: the store and how many workers.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The PostgreSQL store every worker reaches: postgres://USER@HOST:PORT/DATABASE.
    #[arg(long, value_parser = parse_location)]
    pub db: Location,
    /// Worker tasks (array size, or pods).
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// The backend the jobs are planned for and the workers claim.
    #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
    pub backend: BackendKind,
}

/// Which sweep database a read-only command looks at.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// A sweep file: its database is results/<name>.db unless --db says otherwise.
    pub file: Option<PathBuf>,
    /// The database: a SQLite file (default: the sweep file's, or the only one in results/)
    /// or postgres://USER@HOST:PORT/DATABASE.
    #[arg(long, value_parser = parse_location)]
    pub db: Option<Location>,
    /// The sweep's name, when the database holds several.
    #[arg(long)]
    pub sweep: Option<String>,
}
