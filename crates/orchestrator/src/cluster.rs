//! Workers on engines people already run: a Slurm job array, or a Kubernetes Indexed Job,
//! each task a `thaw worker` on the sweep's PostgreSQL store.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use thaw_store::{Location, PgUrl, Store};
use thaw_train::BackendKind;

use crate::register::register;
use crate::sweep::load;

/// What `thaw slurm` asks of Slurm besides the array.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub workers: usize,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub gres: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// More sbatch options, each one argument (`--mem=16G`).
    pub sbatch_args: Vec<String>,
    /// Where each task writes its log (`thaw-SWEEP-<array>_<task>.out`).
    pub log_dir: PathBuf,
}

/// `text` as one word for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The batch script of a sweep's worker array: every task runs `thaw worker` on the store.
/// The URL in it has no password (workers read PGPASSWORD, which sbatch passes on from the
/// submitting environment, or ~/.pgpass).
pub fn slurm_script(
    program: &Path,
    db: &PgUrl,
    sweep: &str,
    backend: BackendKind,
    options: &SlurmOptions,
) -> Result<String> {
    ensure!(options.workers > 0, "--workers must be at least 1");
    for arg in &options.sbatch_args {
        ensure!(
            arg.starts_with('-') && !arg.contains('\n'),
            "--sbatch-arg '{arg}' is not an sbatch option; write it as one argument: --sbatch-arg=--mem=16G"
        );
    }
    let name = format!("thaw-{sweep}");
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("# thaw sweep '{sweep}': {} workers on {}.", options.workers, db.describe()),
        "# No password here: tasks read PGPASSWORD (passed on by sbatch) or ~/.pgpass.".into(),
        format!("#SBATCH --job-name={}", shell_quote(&name)),
        format!("#SBATCH --array=0-{}", options.workers - 1),
        format!(
            "#SBATCH --output={}",
            shell_quote(&options.log_dir.join(format!("{name}-%A_%a.out")).display().to_string())
        ),
    ];
    let mut option = |flag: &str, value: Option<String>| {
        if let Some(value) = value {
            lines.push(format!("#SBATCH --{flag}={}", shell_quote(&value)));
        }
    };
    option("partition", options.partition.clone());
    option("time", options.time.clone());
    option("gres", options.gres.clone());
    option("cpus-per-task", options.cpus_per_task.map(|c| c.to_string()));
    for arg in &options.sbatch_args {
        lines.push(format!("#SBATCH {arg}"));
    }
    lines.push(String::new());
    // exec: the worker is the task's process, so scancel's SIGTERM reaches it and it gives its
    // job back before Slurm's SIGKILL; a task killed outright is requeued by the heartbeat.
    lines.push(format!(
        "exec {} worker --db {} --sweep {} --backend {}",
        shell_quote(&program.display().to_string()),
        shell_quote(db.public().as_str()),
        shell_quote(sweep),
        backend.as_str()
    ));
    Ok(lines.join("\n") + "\n")
}

/// Submits the batch script with `sbatch --parsable`; the password, if the URL had one,
/// travels in sbatch's environment. Returns the array's job id.
pub fn submit_slurm(script: &Path, password: Option<&str>) -> Result<String> {
    let mut sbatch = Command::new("sbatch");
    sbatch.arg("--parsable").arg(script);
    if let Some(password) = password {
        sbatch.env("PGPASSWORD", password);
    }
    let out = sbatch.output().context(
        "cannot run sbatch: is Slurm's client installed here (and SLURM_CONF set when the cluster needs it)?",
    )?;
    if !out.status.success() {
        bail!("sbatch refused the array: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout.trim().split(';').next().unwrap_or_default().to_string();
    ensure!(!id.is_empty(), "sbatch printed no job id");
    Ok(id)
}

/// A name Kubernetes accepts (RFC 1123 label: lowercase alphanumerics and '-', 63 at most).
fn k8s_name(text: &str) -> String {
    let mut name: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_matches('-').to_string()
}

/// An Indexed Job running `workers` thaw workers, one per pod, all on the sweep's store; the
/// URL (password included) comes from the Secret `secret`, key `url`, as THAW_DB.
pub fn k8s_manifest(
    sweep: &str,
    backend: BackendKind,
    workers: usize,
    image: &str,
    secret: &str,
) -> Value {
    let name = k8s_name(&format!("thaw-{sweep}"));
    let labels = json!({ "app.kubernetes.io/name": "thaw", "thaw/sweep": k8s_name(sweep) });
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "completionMode": "Indexed",
            "completions": workers,
            "parallelism": workers,
            // A pod that dies is not rerun: its job goes back to pending through the heartbeat
            // rules, and the other workers take it.
            "backoffLimitPerIndex": 0,
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "worker",
                        "image": image,
                        "command": ["thaw"],
                        "args": ["worker", "--sweep", sweep, "--backend", backend.as_str()],
                        "env": [
                            { "name": "THAW_DB", "valueFrom": { "secretKeyRef": { "name": secret, "key": "url" } } },
                            { "name": "THAW_CACHE", "value": "/cache" }
                        ],
                        "volumeMounts": [{ "name": "cache", "mountPath": "/cache" }]
                    }],
                    "volumes": [{ "name": "cache", "emptyDir": {} }]
                }
            }
        }
    })
}

/// The PostgreSQL store a cluster's workers share (SQLite's locking is not for many machines).
pub fn cluster_store(db: &Location) -> Result<&PgUrl> {
    match db {
        Location::Postgres(url) => Ok(url),
        Location::Sqlite(path) => bail!(
            "--db {}: cluster workers share a PostgreSQL store (postgres://USER@HOST:PORT/DATABASE); \
             a SQLite file is for workers on one machine (`thaw run --workers N`)",
            path.display()
        ),
    }
}

/// `thaw slurm`: registers the plan of `file` on the PostgreSQL store `db`, writes the batch
/// script beside the task logs and submits it as one array (or, with `dry_run`, prints it
/// and registers nothing).
pub async fn slurm(
    file: &Path,
    db: &Location,
    backend: BackendKind,
    options: &SlurmOptions,
    dry_run: bool,
) -> Result<()> {
    let url = cluster_store(db)?;
    backend.check_built()?;
    let (source, plan) = load(file, backend)?;
    ensure!(
        plan.search.is_none(),
        "{}: thaw slurm runs grids; an adaptive search ([search]) decides its next jobs in `thaw run`, which can use the same --db",
        file.display()
    );
    let program = std::env::current_exe().context("cannot find the thaw executable")?;
    let script = slurm_script(&program, url, &plan.sweep, backend, options)?;
    if dry_run {
        print!("{script}");
        return Ok(());
    }
    let store = Store::connect(db, Some("thaw slurm")).await?;
    let summary = register(&store, &source, &plan, &plan.jobs).await?;
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
    eprintln!("follow with `thaw status --db {db}`; report with `thaw report --db {db}`");
    println!("{array}");
    Ok(())
}

/// `thaw k8s`: prints the Indexed Job manifest of the sweep of `file`; nothing is registered
/// or submitted.
pub fn k8s(
    file: &Path,
    db: &Location,
    backend: BackendKind,
    workers: usize,
    image: &str,
    secret: &str,
) -> Result<()> {
    cluster_store(db)?;
    let (_, plan) = load(file, backend)?;
    let manifest = k8s_manifest(&plan.sweep, backend, workers, image, secret);
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    eprintln!(
        "register the sweep first (`thaw run {} --db {db} --workers 0`), create the Secret \
         (`kubectl create secret generic {secret} --from-literal=url=postgres://USER:PASSWORD@HOST:PORT/DATABASE`), \
         then `kubectl apply -f` this manifest",
        file.display(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> PgUrl {
        PgUrl::parse("postgres://thaw:hunter2@db.lab:5432/sweeps").unwrap()
    }

    #[test]
    fn the_batch_script_runs_one_worker_per_array_task_and_holds_no_password() {
        let options = SlurmOptions {
            workers: 3,
            partition: Some("gpu".into()),
            time: Some("2:00:00".into()),
            gres: Some("gpu:1".into()),
            cpus_per_task: Some(8),
            sbatch_args: vec!["--mem=16G".into()],
            log_dir: PathBuf::from("/shared/logs"),
        };
        let script =
            slurm_script(Path::new("/opt/thaw"), &url(), "rt", BackendKind::Wgpu, &options)
                .unwrap();
        for line in [
            "#SBATCH --array=0-2",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=2:00:00",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=16G",
            "#SBATCH --output=/shared/logs/thaw-rt-%A_%a.out",
            "exec /opt/thaw worker --db postgres://thaw@db.lab:5432/sweeps --sweep rt --backend wgpu",
        ] {
            assert!(script.lines().any(|l| l == line), "missing {line:?} in\n{script}");
        }
        assert!(!script.contains("hunter2"));
        let bad = SlurmOptions { sbatch_args: vec!["mem=16G".into()], ..options };
        assert!(
            slurm_script(Path::new("/opt/thaw"), &url(), "rt", BackendKind::Flex, &bad).is_err()
        );
    }

    #[test]
    fn shell_quoting_keeps_words_whole() {
        assert_eq!(shell_quote("plain-word_1.db"), "plain-word_1.db");
        assert_eq!(shell_quote("two words"), "'two words'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_k8s_manifest_is_an_indexed_job_reading_the_url_from_a_secret() {
        let text = serde_json::to_string_pretty(&k8s_manifest(
            "My Sweep",
            BackendKind::Flex,
            5,
            "reg/thaw:1",
            "thaw-db",
        ))
        .unwrap();
        let manifest: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(manifest["apiVersion"], "batch/v1");
        assert_eq!(manifest["kind"], "Job");
        assert_eq!(manifest["metadata"]["name"], "thaw-my-sweep");
        let spec = &manifest["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["completions"], 5);
        assert_eq!(spec["parallelism"], 5);
        let container = &spec["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "reg/thaw:1");
        assert_eq!(
            container["args"],
            json!(["worker", "--sweep", "My Sweep", "--backend", "flex"])
        );
        let db =
            container["env"].as_array().unwrap().iter().find(|e| e["name"] == "THAW_DB").unwrap();
        assert_eq!(db["valueFrom"]["secretKeyRef"], json!({"name": "thaw-db", "key": "url"}));
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
        assert!(!text.contains("postgres://"));
    }
}
