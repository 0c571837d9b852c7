//! Beyond one machine, end to end with real servers: a sweep on a real PostgreSQL server
//! (password-protected) whose workers start from empty folders with only the URL, one of
//! them killed mid-job; and the same sweep submitted to a real one-node Slurm cluster with a
//! task cancelled mid-job. Every job must be done exactly once, the results must equal a
//! SQLite run's, and the password must appear in no log, database row or batch script.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{THAW, thaw};
use thaw_store::testing::PgServer;
use thaw_store::{Location, Store, WorkStatus};

const PASSWORD: &str = "pw-Zq81-never-shown";

/// A small real sweep whose data files live only in `submit/` (the registering machine's
/// folder): a stage shared by two jobs, and two jobs without one.
fn sweep_with_own_data(root: &Path, name: &str) -> PathBuf {
    let submit = root.join("submit");
    std::fs::create_dir_all(&submit).unwrap();
    let builtin = thaw_assets::dataset_dir("rotten_tomatoes").unwrap();
    for (split, lines) in [("train", 200), ("validation", 40), ("test", 48)] {
        let text = std::fs::read_to_string(builtin.join(format!("{split}.jsonl"))).unwrap();
        // Both labels in every split: take lines from the start and the end.
        let all: Vec<&str> = text.lines().collect();
        let half = lines / 2;
        let picked: Vec<&str> =
            all[..half].iter().chain(all[all.len() - half..].iter()).copied().collect();
        std::fs::write(submit.join(format!("{split}.jsonl")), picked.join("\n") + "\n").unwrap();
    }
    let data = "train = \"train.jsonl\"\nvalidation = \"validation.jsonl\"\ntest = \"test.jsonl\"\nmax_length = 24";
    let grid = "freeze = [4, 6]\nintermediate = [\"none\", \"task\"]\nseeds = [1]\ntrain_size = [64]\nlr = [3e-3]";
    common::sweep_file_with_data(&submit, name, data, grid)
}

/// One runtime per test thread: a store's connections live on the runtime that opened them.
fn block_on<T>(future: impl Future<Output = T>) -> T {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// Job key -> (status, attempts, val accuracy, test accuracy, best epoch).
fn outcomes(store: &Store, sweep: &str) -> BTreeMap<String, (WorkStatus, i64, String)> {
    block_on(store.job_results(sweep))
        .unwrap()
        .into_iter()
        .map(|r| {
            let numbers = format!(
                "val {:?} test {:?} best epoch {:?}",
                r.val_accuracy, r.test_accuracy, r.best_epoch
            );
            (r.job_key, (r.status, r.attempts, numbers))
        })
        .collect()
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "gave up after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `dir/cache`, a thaw cache holding only the model (as a hub cache would on a machine
/// that never saw the sweep): data and checkpoints must come from the database.
fn cache_of_another_machine(dir: &Path) -> PathBuf {
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(thaw_assets::cache_dir().join("hf"), cache.join("hf")).unwrap();
    cache
}

/// A worker process started in `dir` (an empty folder) with only the URL and, in its
/// environment, the password. It gets a cache of its own, as on another machine, holding
/// only the model (as a hub cache would): data snapshots and stage checkpoints must come
/// from the database.
fn worker(dir: &Path, url: &str) -> Child {
    let cache = cache_of_another_machine(dir);
    Command::new(THAW)
        .args(["worker", "--db", url])
        .current_dir(dir)
        .env("PGPASSWORD", PASSWORD)
        .env("THAW_CACHE", &cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The report's recommendation and the cells' accuracy columns: what must not depend on the
/// database (times differ from run to run).
fn report_verdict(folder: &Path) -> String {
    let text = std::fs::read_to_string(folder.join("report.md")).unwrap();
    let recommendation = text
        .split("## Recommendation")
        .nth(1)
        .and_then(|r| r.lines().find(|l| l.starts_with("- **")))
        .unwrap_or_default()
        .to_string();
    let cells: Vec<String> = text
        .split("## Cells")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Series"))
        .take_while(|l| !l.is_empty())
        .map(|l| l.split('|').take(9).collect::<Vec<_>>().join("|"))
        .collect();
    format!("{recommendation}\n{}", cells.join("\n"))
}

fn password_free(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD), "the password appears in {what}");
}

/// Everything the server stores for `database`, as text (pg_dump through the server's own
/// binaries), and the server's log.
fn database_text(server: &PgServer, database: &str) -> String {
    let dump = server.dump(database).unwrap();
    format!("{dump}\n{}", server.log())
}

#[test]
fn a_postgres_sweep_with_a_killed_worker_finishes_every_job_once_like_sqlite() {
    let root = tempfile::tempdir().unwrap();
    let file = sweep_with_own_data(root.path(), "pgsweep");
    let server = PgServer::start_with_password(PASSWORD).unwrap();
    let url = block_on(server.create_database("sweeps")).unwrap();
    let public = url.clone();
    let with_password = url.replace("postgres://thaw@", &format!("postgres://thaw:{PASSWORD}@"));

    // Register from the submitting folder, then take its data away: workers must get it
    // from the database.
    let registered = thaw(
        &root.path().join("submit"),
        &["run", file.to_str().unwrap(), "--db", &with_password, "--workers", "0"],
    );
    assert!(registered.status.success());
    let mut logs = String::from_utf8_lossy(&registered.stderr).to_string();
    assert!(logs.contains("4 jobs (4 new)"), "{logs}");
    let store = block_on(Store::connect(&Location::parse(&with_password).unwrap(), None)).unwrap();
    for split in ["train", "validation", "test"] {
        std::fs::remove_file(root.path().join(format!("submit/{split}.jsonl"))).unwrap();
    }

    // Four workers from empty folders; the first to hold a job is killed with SIGKILL.
    let folders: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut workers: Vec<Child> = folders.iter().map(|f| worker(f.path(), &public)).collect();
    let mut victim = None;
    wait_until(Duration::from_secs(600), "a worker to hold a job", || {
        let running = block_on(store.progress("pgsweep")).unwrap().running;
        victim = running.first().map(|r| r.worker.clone());
        victim.is_some()
    });
    let victim = victim.unwrap();
    let pid: u32 = victim
        .split(':')
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    let killed = workers.iter().position(|w| w.id() == pid).expect("the holder is one of ours");
    workers[killed].kill().unwrap();
    let mut outputs = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        let out = w.wait_with_output().unwrap();
        if i != killed {
            assert!(out.status.success(), "worker {i}:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        outputs.push(out);
    }
    for out in &outputs {
        logs.push_str(&String::from_utf8_lossy(&out.stdout));
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let postgres = outcomes(&store, "pgsweep");
    eprintln!("killed {victim}; jobs (status, attempts, numbers): {postgres:#?}");
    assert_eq!(postgres.len(), 4);
    assert!(postgres.values().all(|(status, _, _)| *status == WorkStatus::Done), "{postgres:?}");
    let retried: Vec<_> = postgres.values().filter(|(_, attempts, _)| *attempts > 1).collect();
    assert!(retried.len() <= 1, "only the killed worker's job ran twice: {postgres:?}");
    let from_database: Vec<String> = folders
        .iter()
        .map(|f| f.path().join("cache/store"))
        .filter(|store| store.exists())
        .flat_map(|store| common::walk(&store))
        .map(|p| p.display().to_string())
        .collect();
    eprintln!("files the workers wrote or read from the database: {from_database:#?}");
    assert!(from_database.iter().any(|p| p.ends_with("/train.jsonl")), "data came as snapshots");
    // A machine that ran nothing exports the stage: its checkpoint comes from the database.
    let elsewhere = tempfile::tempdir().unwrap();
    let stage_key = block_on(store.stages("pgsweep")).unwrap().remove(0).key;
    let cache = cache_of_another_machine(elsewhere.path());
    let exported = Command::new(THAW)
        .args(["export", "--db", &public, "--stage", &stage_key, "--out", "mlm"])
        .current_dir(elsewhere.path())
        .env("PGPASSWORD", PASSWORD)
        .env("THAW_CACHE", &cache)
        .output()
        .unwrap();
    logs.push_str(&String::from_utf8_lossy(&exported.stderr));
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    assert!(elsewhere.path().join("mlm/model.safetensors").is_file());
    assert!(
        cache.join("store/stages-in").read_dir().unwrap().count() == 1,
        "the checkpoint was read from the database"
    );
    for f in &folders {
        assert!(!f.path().join("results").exists(), "workers write nothing into their folder");
    }

    // The same sweep on SQLite (its data put back): the same results, the same verdict.
    let file = sweep_with_own_data(root.path(), "pgsweep");
    let reference =
        thaw(&root.path().join("submit"), &["run", file.to_str().unwrap(), "--db", "ref.db"]);
    assert!(reference.status.success());
    let sqlite = block_on(Store::open(&root.path().join("submit/ref.db"))).unwrap();
    let strip = |m: BTreeMap<String, (WorkStatus, i64, String)>| -> BTreeMap<String, String> {
        m.into_iter().map(|(k, (_, _, numbers))| (k, numbers)).collect()
    };
    assert_eq!(strip(postgres), strip(outcomes(&sqlite, "pgsweep")), "same keys, same results");
    let reported = thaw(root.path(), &["report", "--db", &with_password, "--out", "pg-report"]);
    logs.push_str(&String::from_utf8_lossy(&reported.stderr));
    assert!(reported.status.success());
    assert_eq!(
        report_verdict(&root.path().join("pg-report")),
        report_verdict(&root.path().join("submit/results/pgsweep"))
    );
    let status = thaw(root.path(), &["status", "--db", &with_password]);
    logs.push_str(&String::from_utf8_lossy(&status.stdout));
    password_free("the workers' and commands' output", &logs);
    password_free("the database or the server log", &database_text(&server, "sweeps"));
}

/// A one-node Slurm cluster on this machine, stopped when dropped.
struct Slurm {
    dir: tempfile::TempDir,
}

impl Slurm {
    fn start() -> Slurm {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services/slurm.sh");
        let out = Command::new(&script).arg("start").arg(dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "starting Slurm failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Slurm { dir }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services/slurm.sh");
        let _ = Command::new(script).arg("stop").arg(self.dir.path()).status();
    }
}

#[test]
fn a_slurm_array_with_a_cancelled_task_finishes_every_job_once() {
    let root = tempfile::tempdir().unwrap();
    let file = sweep_with_own_data(root.path(), "slurmsweep");
    let server = PgServer::start_with_password(PASSWORD).unwrap();
    let url = block_on(server.create_database("sweeps")).unwrap();
    let with_password = url.replace("postgres://thaw@", &format!("postgres://thaw:{PASSWORD}@"));
    let slurm = Slurm::start();

    let submitted = slurm
        .command(THAW)
        .args(["slurm", file.to_str().unwrap(), "--db", &with_password, "--workers", "3"])
        .args(["--time", "30:00", "--sbatch-arg=--job-name=thaw-test"])
        .current_dir(root.path())
        .output()
        .unwrap();
    let mut logs = String::from_utf8_lossy(&submitted.stderr).to_string();
    assert!(submitted.status.success(), "{logs}");
    let array = String::from_utf8_lossy(&submitted.stdout).trim().to_string();
    let script =
        std::fs::read_to_string(root.path().join("results/slurm/thaw-slurmsweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-2"), "{script}");

    let store = block_on(Store::connect(&Location::parse(&with_password).unwrap(), None)).unwrap();
    // Cancel the array task that holds the first running job, while it runs.
    let mut holder = None;
    wait_until(Duration::from_secs(600), "an array task to hold a job", || {
        let running = block_on(store.progress("slurmsweep")).unwrap().running;
        holder = running.iter().find_map(|r| {
            let tag = r.worker.split("[slurm ").nth(1)?;
            Some(tag.trim_end_matches(']').to_string())
        });
        holder.is_some()
    });
    let task = holder.unwrap();
    assert!(task.starts_with(&format!("{array}_")), "{task} is a task of array {array}");
    let status = thaw(root.path(), &["status", "--db", &with_password]);
    let status_text = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status_text.contains(&format!("[slurm {task}]")),
        "status names the task:\n{status_text}"
    );
    let cancelled = slurm.command("scancel").arg(&task).status().unwrap();
    assert!(cancelled.success());
    wait_until(Duration::from_secs(900), "the array to finish", || {
        let out = slurm.command("squeue").args(["-h", "-j", &array]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().is_empty()
    });
    let done = outcomes(&store, "slurmsweep");
    eprintln!("cancelled task {task}; jobs (status, attempts, numbers): {done:#?}");
    assert_eq!(done.len(), 4);
    assert!(done.values().all(|(status, _, _)| *status == WorkStatus::Done), "{done:?}");
    for entry in std::fs::read_dir(root.path().join("results/slurm")).unwrap() {
        logs.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    logs.push_str(&status_text);
    password_free("the batch script and the task logs", &logs);
    password_free("the database or the server log", &database_text(&server, "sweeps"));
}
