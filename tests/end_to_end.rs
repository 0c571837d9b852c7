//! The `thaw` binary end to end on tiny real sweeps: real MiniLM weights (through the
//! asset route), real Rotten Tomatoes snippets, a real SQLite file, real charts.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_tiny_real_sweep_fills_the_database_and_writes_charts_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let grid = r#"freeze = [0, 3, 6]
init = ["pretrained", "scratch"]
intermediate = ["none", "task"]
seeds = [1, 2]
train_size = [48]
lr = { full = [5e-5], partial = [1e-4], head_only = [3e-3], scratch = [3e-4] }"#;
    let file = sweep_file(dir.path(), "tiny", grid);
    // Keeping weights changes no job key: the plan below is the same with or without it.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("[train]\n", "[train]\nkeep = \"best-per-cell\"\n"))
        .unwrap();
    let plan = thaw(dir.path(), &["plan", file.to_str().unwrap()]);
    assert!(plan.status.success());
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan_text.contains("14 jobs, 1 shared intermediate-MLM stage\n"), "{plan_text}");

    let run = thaw(dir.path(), &["run", file.to_str().unwrap()]);
    assert!(run.status.success(), "thaw run failed");
    let db = dir.path().join("results/tiny.db");
    // The write-ahead log was folded into the file at exit: the .db alone holds every result.
    let wal = dir.path().join("results/tiny.db-wal");
    assert!(std::fs::metadata(&wal).map_or(true, |m| m.len() == 0), "results left in {wal:?}");
    let counts = sqlite_rows(&db, "SELECT status, COUNT(*) FROM jobs GROUP BY status");
    assert_eq!(counts, vec![vec!["done".to_string(), "14".to_string()]]);
    let stage = sqlite_rows(
        &db,
        "SELECT status, perplexity_before > 1.0, perplexity_after > 1.0 FROM stages",
    );
    assert_eq!(stage, vec![vec!["done".to_string(), "1".into(), "1".into()]]);
    let rows = sqlite_rows(
        &db,
        "SELECT init, intermediate, freeze, unfrozen_layers, test_accuracy, trainable_params, prefix_cache FROM job_results ORDER BY ord",
    );
    for r in &rows {
        let acc: f64 = r[4].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{r:?}");
        assert_eq!(r[2].parse::<i64>().unwrap() + r[3].parse::<i64>().unwrap(), 6);
    }
    // Frozen jobs of the second seed reuse the first seed's prefix activations.
    assert!(rows.iter().any(|r| r[2] == "3" && r[6] == "reused"), "{rows:?}");
    let head_only: Vec<i64> =
        rows.iter().filter(|r| r[2] == "6").map(|r| r[5].parse().unwrap()).collect();
    assert!(
        head_only.iter().all(|&n| n == 384 * 2 + 2),
        "a head-only job trains only the head: {head_only:?}"
    );
    let epochs = sqlite_rows(&db, "SELECT COUNT(*) FROM epochs");
    assert_eq!(epochs, vec![vec!["14".to_string()]]);
    // Per-example correctness, one character per validation (32) and test (48) example,
    // agrees with the stored accuracies.
    for r in sqlite_rows(
        &db,
        "SELECT val_correct, val_accuracy, test_correct, test_accuracy FROM results",
    ) {
        for (bits, accuracy, n) in [(&r[0], &r[1], 32), (&r[2], &r[3], 48)] {
            assert_eq!(bits.len(), n, "{r:?}");
            let right = bits.chars().filter(|&c| c == '1').count() as f64 / n as f64;
            assert!((right - accuracy.parse::<f64>().unwrap()).abs() < 1e-9, "{r:?}");
        }
    }

    let report_dir = dir.path().join("results/tiny");
    let report = std::fs::read_to_string(report_dir.join("report.md")).expect("report.md");
    assert!(report.contains("sentence-transformers/all-MiniLM-L6-v2"), "report names the model");
    let mut pngs = 0;
    let mut svgs = 0;
    for entry in walk(&report_dir) {
        let bytes = std::fs::read(&entry).unwrap();
        match entry.extension().and_then(|e| e.to_str()) {
            Some("png") => {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", entry.display());
                pngs += 1;
            }
            Some("svg") => {
                assert!(String::from_utf8_lossy(&bytes).contains("<svg"), "{}", entry.display());
                svgs += 1;
            }
            _ => {}
        }
    }
    assert!(pngs >= 4 && pngs == svgs, "charts: {pngs} png, {svgs} svg");

    let results = thaw(dir.path(), &["results", "--db", db.to_str().unwrap(), "--format", "csv"]);
    assert!(results.status.success());
    let csv = String::from_utf8_lossy(&results.stdout);
    assert!(
        csv.starts_with("job_key,init,intermediate,freeze,unfrozen_layers,seed,lr,train_size"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 15);
    assert!(csv.lines().next().unwrap().contains(",strategy,metric,val_metric,test_metric,"));
    assert!(
        csv.lines().nth(1).unwrap().contains(",accuracy,"),
        "every row names its metric: {csv}"
    );
    let aggregate = thaw(dir.path(), &["results", "--db", db.to_str().unwrap(), "--aggregate"]);
    assert!(aggregate.status.success());
    let status = thaw(dir.path(), &["status", "--db", db.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("14 total, 14 done"));

    // Running again finds nothing to do and reruns nothing.
    let before = sqlite_rows(&db, "SELECT job_key, finished_at FROM results ORDER BY job_key");
    assert!(thaw(dir.path(), &["run", file.to_str().unwrap(), "--no-report"]).status.success());
    assert_eq!(
        sqlite_rows(&db, "SELECT job_key, finished_at FROM results ORDER BY job_key"),
        before
    );

    exports_are_the_stored_models(dir.path(), &db);
}

/// `thaw export` on the finished tiny sweep: the recommended job trained again is the model
/// the store describes (its test logits give the stored accuracy), the folders hold
/// Hugging Face tensor names, and a stored result that retraining cannot reproduce is refused.
fn exports_are_the_stored_models(dir: &Path, db: &Path) {
    // keep = "best-per-cell": one weights file per cell (7 cells of 2 seeds) survives the run.
    let kept: Vec<PathBuf> = walk(&dir.join("results/tiny.weights"));
    assert_eq!(kept.len(), 7, "{kept:?}");
    let db_arg = db.to_str().unwrap();
    let best = dir.join("export-best");
    let out = thaw(dir, &["export", "--db", db_arg, "--best", "--out", best.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("read from the kept weights"));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(best.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"], serde_json::json!(["BertModel"]));
    assert_eq!(config["id2label"], serde_json::json!({"0": "fresh", "1": "rotten"}));
    let job = config["thaw"]["job"].as_str().unwrap().to_string();

    let names = |file: &Path| -> BTreeMap<String, Vec<usize>> {
        let bytes = std::fs::read(file).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec())).collect()
    };
    let encoder = names(&best.join("model.safetensors"));
    assert_eq!(encoder.len(), 5 + 6 * 16, "embeddings and six layers, no pooler, no head");
    assert_eq!(encoder["encoder.layer.5.attention.self.query.weight"], vec![384, 384]);
    assert_eq!(encoder["encoder.layer.0.intermediate.dense.weight"], vec![1536, 384]);
    let head = names(&best.join("classifier.safetensors"));
    assert_eq!(head["classifier.weight"], vec![2, 384]);
    assert_eq!(head["classifier.bias"], vec![2]);

    // The exported model's own test logits reproduce the accuracy the store holds for the job.
    let predictions = std::fs::read_to_string(best.join("test_predictions.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> =
        predictions.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 48);
    let correct = rows
        .iter()
        .filter(|r| {
            let logits: Vec<f64> =
                r["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let predicted = if logits[1] > logits[0] { 1 } else { 0 };
            config["id2label"][predicted.to_string()] == r["label"]
        })
        .count();
    let stored: f64 =
        sqlite_rows(db, &format!("SELECT test_accuracy FROM results WHERE job_key = '{job}'"))[0]
            [0]
        .parse()
        .unwrap();
    assert!((correct as f64 / 48.0 - stored).abs() < 1e-9, "{correct}/48 vs stored {stored}");
    assert!(
        std::fs::read_to_string(best.join("README.md")).unwrap().contains("The sweep's verdict")
    );

    let stage_key = sqlite_rows(db, "SELECT key FROM stages")[0][0].clone();
    let stage = dir.join("export-stage");
    let out = thaw(
        dir,
        &["export", "--db", db_arg, "--stage", &stage_key, "--out", stage.to_str().unwrap()],
    );
    assert!(out.status.success());
    let masked_lm = names(&stage.join("model.safetensors"));
    assert!(
        masked_lm.contains_key("cls.predictions.bias")
            && masked_lm.contains_key("bert.embeddings.word_embeddings.weight")
    );
    let check: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stage.join("mlm_check.json")).unwrap())
            .unwrap();
    assert!(
        check["loss"].as_f64().unwrap().is_finite()
            && !check["targets"].as_array().unwrap().is_empty()
    );

    // A job whose weights were not kept is trained again, and reproduces its stored result.
    let kept_keys: Vec<String> =
        kept.iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    let pruned = sqlite_rows(db, "SELECT job_key FROM results ORDER BY job_key")
        .into_iter()
        .map(|r| r[0].clone())
        .find(|k| !kept_keys.contains(k))
        .unwrap();
    let again = dir.join("export-again");
    let out =
        thaw(dir, &["export", "--db", db_arg, "--job", &pruned, "--out", again.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("trained again on flex"));

    // A result the model cannot reproduce is refused, and nothing is written.
    sqlite_exec(db, &format!("UPDATE results SET test_metric = 0.01 WHERE job_key = '{job}'"));
    let refused = dir.join("export-refused");
    let out =
        thaw(dir, &["export", "--db", db_arg, "--job", &job, "--out", refused.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would not be the model"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!refused.exists());
}

fn sqlite_exec(db: &Path, sql: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&pool).await.unwrap();
    });
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kill_group(child: &Child) {
    // The run and its worker children share a process group: kill -9 them all at once.
    let status = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Starts `thaw run FILE --no-report` in its own process group and kills the whole group
/// with -9 once `count_sql` (a COUNT over the database) reaches `at_least`.
fn run_and_kill_after(dir: &Path, file: &Path, db: &Path, count_sql: &str, at_least: i64) {
    let mut run = Command::new(THAW);
    run.args(["run", file.to_str().unwrap(), "--no-report"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut run, 0);
    let mut child = run.spawn().unwrap();
    wait_until(Duration::from_secs(300), || {
        // Before the schema exists the query fails: keep polling.
        let done =
            std::panic::catch_unwind(|| sqlite_rows(db, count_sql)[0][0].parse::<i64>().unwrap());
        db.exists() && done.unwrap_or(0) >= at_least
    });
    kill_group(&child);
    child.wait().unwrap();
}

/// key -> finished_at, from a query selecting those two columns.
fn finished_at(db: &Path, sql: &str) -> BTreeMap<String, String> {
    sqlite_rows(db, sql).into_iter().map(|r| (r[0].clone(), r[1].clone())).collect()
}

#[test]
fn a_sweep_killed_mid_run_resumes_without_losing_or_repeating_work() {
    let dir = tempfile::tempdir().unwrap();
    let grid = r#"freeze = [0]
seeds = [1, 2, 3, 4, 5, 6, 7, 8]
train_size = [96]
lr = [5e-5]"#;
    let file = sweep_file(dir.path(), "killed", grid);
    let db = dir.path().join("results/killed.db");
    run_and_kill_after(dir.path(), &file, &db, "SELECT COUNT(*) FROM results", 2);
    let finished_before = finished_at(&db, "SELECT job_key, finished_at FROM results");
    let running = sqlite_rows(&db, "SELECT COUNT(*) FROM jobs WHERE status = 'running'");
    assert!(
        finished_before.len() >= 2 && finished_before.len() < 8,
        "killed mid-sweep: {} done, {running:?} running",
        finished_before.len()
    );

    let again = thaw(dir.path(), &["run", file.to_str().unwrap(), "--no-report"]);
    assert!(again.status.success());
    let after = finished_at(&db, "SELECT job_key, finished_at FROM results");
    assert_eq!(after.len(), 8, "every job done");
    for (key, at) in &finished_before {
        assert_eq!(
            after.get(key),
            Some(at),
            "job {key} finished before the kill was not run again"
        );
    }
    let statuses =
        sqlite_rows(&db, "SELECT status, COUNT(*), MAX(attempts) FROM jobs GROUP BY status");
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0][0..2], ["done".to_string(), "8".to_string()]);
    assert!(statuses[0][2].parse::<i64>().unwrap() <= 2, "{statuses:?}");
}

/// Two cells, three learning rates each, halving and racing: 6 rungs (seed 1), then full jobs.
fn adaptive_sweep(dir: &Path) -> PathBuf {
    let grid = r#"freeze = [0, 6]
train_size = [64]
lr = { full = [2e-5, 1e-4, 5e-4], head_only = [1e-3, 3e-3, 1e-2] }

[search]
lr = "halving"
seeds = { min = 2, max = 3 }"#;
    let file = sweep_file(dir, "adaptive", grid);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("epochs = 1\n", "epochs = 2\n")).unwrap();
    file
}

#[test]
fn an_adaptive_sweep_killed_mid_search_resumes_to_the_same_decisions() {
    // The same sweep uninterrupted: what the search decides when nothing goes wrong.
    let straight = tempfile::tempdir().unwrap();
    let file = adaptive_sweep(straight.path());
    let plan = thaw(straight.path(), &["plan", file.to_str().unwrap()]);
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan_text.contains("between 10 and 12 jobs (rungs included), against 18 for the full grid"),
        "{plan_text}"
    );
    assert!(thaw(straight.path(), &["run", file.to_str().unwrap()]).status.success());
    let db = straight.path().join("results/adaptive.db");
    let decisions = |db: &Path| {
        sqlite_rows(db, "SELECT decision, action, reason FROM search_decisions ORDER BY decision")
    };
    let expected = decisions(&db);
    let count = |db: &Path, action: &str| expected_count(&decisions(db), action);
    assert_eq!((count(&db, "prune"), count(&db, "promote"), count(&db, "stop")), (4, 2, 1));
    let rungs = sqlite_rows(&db, "SELECT COUNT(*) FROM jobs WHERE rung = 1 AND status = 'done'");
    assert_eq!(rungs[0][0], "6");
    // Pruned learning rates have a rung and no full job; kept ones have full jobs and no test
    // number comes from a rung.
    let pruned_full = sqlite_rows(
        &db,
        "SELECT COUNT(*) FROM search_decisions d JOIN job_results v ON v.lr = d.lr AND v.rung IS NULL WHERE d.action = 'prune'",
    );
    assert_eq!(pruned_full[0][0], "0");
    assert_eq!(
        sqlite_rows(
            &db,
            "SELECT COUNT(*) FROM results r JOIN jobs j ON j.key = r.job_key WHERE j.rung IS NOT NULL"
        )[0][0],
        "0"
    );
    let report =
        std::fs::read_to_string(straight.path().join("results/adaptive/report.md")).unwrap();
    assert!(report.contains("## How the search spent its compute"), "{report}");
    assert!(report.contains("**Why it stopped**"), "{report}");
    assert!(report.contains("| pruned |"), "{report}");

    // Killed once some rungs are done, then run again: nothing done is redone, and the search
    // ends with exactly the decisions of the uninterrupted run.
    let dir = tempfile::tempdir().unwrap();
    let file = adaptive_sweep(dir.path());
    let db = dir.path().join("results/adaptive.db");
    let done_jobs = "SELECT key, finished_at FROM jobs WHERE status = 'done'";
    run_and_kill_after(
        dir.path(),
        &file,
        &db,
        "SELECT COUNT(*) FROM jobs WHERE status = 'done'",
        3,
    );
    let finished_before = finished_at(&db, done_jobs);
    assert!(finished_before.len() < 10, "killed before the search ended");
    assert!(thaw(dir.path(), &["run", file.to_str().unwrap()]).status.success());
    let after = finished_at(&db, done_jobs);
    for (key, at) in &finished_before {
        assert_eq!(after.get(key), Some(at), "job {key} done before the kill was not run again");
    }
    let attempts = sqlite_rows(&db, "SELECT MAX(attempts) FROM jobs");
    assert!(attempts[0][0].parse::<i64>().unwrap() <= 2, "{attempts:?}");
    let resumed: Vec<Vec<String>> = decisions(&db);
    let ids = |rows: &[Vec<String>]| rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&resumed), ids(&expected), "same seeds, same backend: the same search");
    assert_eq!(
        after.len(),
        sqlite_rows(
            &straight.path().join("results/adaptive.db"),
            "SELECT COUNT(*) FROM jobs WHERE status = 'done'"
        )[0][0]
            .parse::<usize>()
            .unwrap()
    );
}

fn expected_count(rows: &[Vec<String>], action: &str) -> usize {
    rows.iter().filter(|r| r[1] == action).count()
}

#[cfg(feature = "ndarray")]
#[test]
fn the_backend_is_part_of_a_results_identity() {
    let dir = tempfile::tempdir().unwrap();
    let grid = r#"freeze = [0, 6]
seeds = [1]
train_size = [32]
lr = { full = [1e-4], head_only = [3e-3] }"#;
    let file = sweep_file(dir.path(), "backends", grid);
    let db = dir.path().join("results/backends.db");
    let run = |backend: &str| {
        let out = thaw(dir.path(), &["run", file.to_str().unwrap(), "--backend", backend]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    run("flex");
    // The same sweep on another backend is other work: it runs, and the flex results stay.
    let second = run("ndarray");
    assert!(second.contains("2 jobs (2 new), 0 done"), "{second}");
    let by_backend =
        sqlite_rows(&db, "SELECT backend, COUNT(*) FROM results GROUP BY backend ORDER BY backend");
    assert_eq!(
        by_backend,
        vec![vec!["flex".to_string(), "2".into()], vec!["ndarray".to_string(), "2".into()]]
    );
    let report = std::fs::read_to_string(dir.path().join("results/backends/report.md")).unwrap();
    assert!(report.contains("| Backend | ndarray |"), "the report names the backend it shows");
    // Back on flex: its jobs are known and done, nothing runs again.
    let third = run("flex");
    assert!(third.contains("2 jobs (0 new), 2 done"), "{third}");
    assert_eq!(sqlite_rows(&db, "SELECT COUNT(*) FROM results")[0][0], "4");
}

#[test]
fn several_worker_processes_share_one_sweep_and_run_each_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let grid = r#"freeze = [6]
seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
train_size = [32]
lr = [3e-3]"#;
    let file = sweep_file(dir.path(), "shared", grid);
    let db = dir.path().join("results/shared.db");
    // --workers 0 registers the plan and starts no worker: the three below race for the jobs.
    let registered = thaw(dir.path(), &["run", file.to_str().unwrap(), "--workers", "0"]);
    assert!(registered.status.success());
    assert_eq!(
        sqlite_rows(&db, "SELECT COUNT(*) FROM jobs WHERE status = 'pending'"),
        vec![vec!["12".to_string()]]
    );
    let mut workers: Vec<Child> = (0..3)
        .map(|_| {
            Command::new(THAW)
                .args(["worker", "--db", db.to_str().unwrap(), "--child"])
                .current_dir(dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // A child worker stops when its stdin closes: hold the pipes open until all have finished.
    let _stdins: Vec<_> = workers.iter_mut().map(|w| w.stdin.take()).collect();
    let mut done_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut workers_seen = std::collections::BTreeSet::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "a worker failed:\n{}", String::from_utf8_lossy(&out.stderr));
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["type"] == "finished" && v["outcome"] == "done" {
                done_by
                    .entry(v["key"].as_str().unwrap().to_string())
                    .or_default()
                    .push(v["worker"].as_str().unwrap().to_string());
                workers_seen.insert(v["worker"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(done_by.len(), 12, "every job done");
    assert!(done_by.values().all(|w| w.len() == 1), "no job done twice: {done_by:?}");
    assert!(workers_seen.len() >= 2, "the work was shared: {workers_seen:?}");
    let attempts =
        sqlite_rows(&db, "SELECT MAX(attempts), COUNT(*) FROM jobs WHERE status = 'done'");
    assert_eq!(attempts, vec![vec!["1".to_string(), "12".to_string()]]);
}

/// Two `thaw run` of one sweep started at the same moment on a new database: both open it
/// (no schema race), share the jobs, and the one that runs out of work first waits for the
/// other's instead of calling the sweep unfinished: both exit 0, each job done once, and both
/// reports count every job.
#[test]
fn two_runs_of_one_sweep_started_together_both_finish_it() {
    let dir = tempfile::tempdir().unwrap();
    let grid = r#"freeze = [6]
seeds = [1, 2, 3, 4, 5, 6]
train_size = [32]
lr = [3e-3]"#;
    let file = sweep_file(dir.path(), "together", grid);
    let runs: Vec<Child> = (0..2)
        .map(|_| {
            Command::new(THAW)
                .args(["run", file.to_str().unwrap()])
                .current_dir(dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut logs = Vec::new();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "a run exited {:?}:\n{log}", out.status.code());
        assert!(log.contains("6 done, 0 failed, 0 pending"), "{log}");
        logs.push(log);
    }
    let db = dir.path().join("results/together.db");
    let attempts =
        sqlite_rows(&db, "SELECT MAX(attempts), COUNT(*) FROM jobs WHERE status = 'done'");
    assert_eq!(attempts, vec![vec!["1".to_string(), "6".to_string()]]);
}

#[test]
#[cfg(not(feature = "cuda"))]
fn asking_for_a_backend_this_build_lacks_is_one_clear_error_before_anything_is_registered() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "gpu", "freeze = [0]\nseeds = [1]");
    let out = thaw(dir.path(), &["run", file.to_str().unwrap(), "--backend", "cuda"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("built without the cuda backend") && stderr.contains("--features cuda"),
        "{stderr}"
    );
    assert!(!dir.path().join("results/gpu.db").exists(), "no sweep was registered");
}

#[test]
fn strategies_and_an_own_vocabulary_run_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let grid = r#"freeze = [0]
init = ["pretrained", "scratch-own-vocab"]
strategy = ["plain", "gradual"]
seeds = [1]
train_size = [48]
lr = { full = [5e-5], scratch = [3e-4] }"#;
    let file = sweep_file(dir.path(), "strategies", grid);
    let sections = "[strategy.gradual]\nunfreeze = \"gradual\"\nunfreeze_every = 1\n\n\
                    [scratch]\nvocab_size = 300\nlayers = 2\nhidden = 32\nheads = 2\n\n[grid]";
    let text = std::fs::read_to_string(&file).unwrap().replace("[grid]", sections);
    std::fs::write(&file, text).unwrap();
    let run = thaw(dir.path(), &["run", file.to_str().unwrap()]);
    assert!(run.status.success(), "thaw run failed");
    let db = dir.path().join("results/strategies.db");
    let rows = sqlite_rows(
        &db,
        "SELECT init, strategy, num_layers, unfrozen_layers, trainable_params, status FROM job_results ORDER BY ord",
    );
    let cells: Vec<(&str, &str, &str, &str)> =
        rows.iter().map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str(), r[5].as_str())).collect();
    // Scratch takes no strategy but plain (rule strategy-pretrained), and its own size.
    assert_eq!(
        cells,
        [
            ("pretrained", "plain", "6", "done"),
            ("pretrained", "gradual", "6", "done"),
            ("scratch-own-vocab", "plain", "2", "done")
        ]
    );
    // Gradual unfreezing ends where plain trains throughout: the same parameters.
    assert_eq!(rows[0][4], rows[1][4]);
    let small: i64 = rows[2][4].parse().unwrap();
    assert!((10_000..100_000).contains(&small), "a 2-layer, 32-wide encoder: {small}");
    let report = std::fs::read_to_string(dir.path().join("results/strategies/report.md")).unwrap();
    assert!(report.contains("Strategy **gradual**: "), "{report}");
    assert!(
        report.contains("| scratch-own-vocab (2 layers), no MLM, plain | 2/2 (full fine-tuning) |"),
        "{report}"
    );

    // Exported (trained again from its key, checked against the stored accuracy) with its
    // own vocabulary and size: a folder `transformers` can load.
    let key = sqlite_rows(&db, "SELECT key FROM jobs WHERE init = 'scratch-own-vocab'");
    let out = dir.path().join("own-vocab");
    let export = thaw(
        dir.path(),
        &[
            "export",
            "--db",
            db.to_str().unwrap(),
            "--job",
            &key[0][0],
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap()
    };
    let config = json("config.json");
    assert_eq!(
        (config["num_hidden_layers"].as_u64(), config["hidden_size"].as_u64()),
        (Some(2), Some(32))
    );
    let vocab = json("tokenizer.json")["model"]["vocab"].as_object().unwrap().len();
    assert!(vocab <= 300 && vocab > 50, "the learnt vocabulary: {vocab} tokens");
    assert_eq!(json("tokenizer.json")["normalizer"]["lowercase"], serde_json::json!(false));
}
