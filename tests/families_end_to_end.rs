//! Every encoder family through the whole of thaw, as a user with a local checkpoint
//! (`[model] path`) meets it: a sweep over freeze depths down to head only, with task MLM on
//! the families whose checkpoints carry their own masked-LM head, the report, and the
//! recommended job exported as a folder of the family's own names. The checkpoints are the
//! tiny random ones transformers wrote for the parity tests.

mod common;

use std::path::{Path, PathBuf};

use common::{sqlite_rows, thaw};

fn family_folder(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/train/tests/fixtures/families").join(family)
}

/// A small sweep on `family`'s checkpoint: freeze 0..=L, one seed, with task MLM when asked.
fn sweep(dir: &Path, family: &str, with_mlm: bool) -> PathBuf {
    let intermediate = if with_mlm { r#"["none", "task"]"# } else { r#"["none"]"# };
    let body = format!(
        r#"
[sweep]
name = "{family}"

[model]
path = "{model}"

[data]
builtin = "rotten_tomatoes"
max_length = 24
max_validation = 32
max_test = 32

[train]
epochs = 1
batch_size = 16
pooling = "cls"

[intermediate.task]
steps = 3
batch_size = 8

[grid]
freeze = "all"
intermediate = {intermediate}
seeds = [1]
lr = {{ full = [1e-3], partial = [1e-3], head_only = [3e-3] }}
train_size = [48]
"#,
        model = family_folder(family).display()
    );
    let path = dir.join(format!("{family}.toml"));
    std::fs::write(&path, body).unwrap();
    path
}

fn check_family(family: &str, layers: usize, own_mlm_head: bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep(dir.path(), family, own_mlm_head);
    let out = thaw(dir.path(), &["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{family}: {}", String::from_utf8_lossy(&out.stderr));
    let db = dir.path().join(format!("results/{family}.db"));
    let jobs = (layers + 1) * if own_mlm_head { 2 } else { 1 };
    let done = sqlite_rows(&db, "SELECT COUNT(*) FROM jobs WHERE status = 'done'");
    assert_eq!(done[0][0], jobs.to_string(), "{family}: every depth 0..={layers} ran");
    let head_only = sqlite_rows(
        &db,
        &format!("SELECT trainable_params FROM job_results WHERE freeze = {layers}"),
    );
    assert!(head_only.iter().all(|r| r[0] != "NULL"), "{family}: head only ran");
    if own_mlm_head {
        // The checkpoint's own masked-LM head is read: no fresh head fitted first.
        let warmup = sqlite_rows(&db, "SELECT head_warmup_steps IS NULL FROM stages");
        assert_eq!(warmup, vec![vec!["1".to_string()]], "{family}: the own head is used");
    }
    let report =
        std::fs::read_to_string(dir.path().join(format!("results/{family}/report.md"))).unwrap();
    assert!(report.contains("## Setup"), "{family}: a report");

    let export = dir.path().join("export");
    let out = thaw(
        dir.path(),
        &["export", file.to_str().unwrap(), "--best", "--out", export.to_str().unwrap()],
    );
    assert!(out.status.success(), "{family}: {}", String::from_utf8_lossy(&out.stderr));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("config.json")).unwrap())
            .unwrap();
    let class = config["architectures"][0].as_str().unwrap().to_string();
    assert!(class.ends_with("Model"), "{family}: the bare encoder's class, {class}");
    let bytes = std::fs::read(export.join("model.safetensors")).unwrap();
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .names()
        .into_iter()
        .map(String::from)
        .collect();
    // The bare encoder's names, as the family's base class holds them: no task-class prefix.
    let source = std::fs::read(family_folder(family).join("model.safetensors")).unwrap();
    let expected: Vec<String> = safetensors::SafeTensors::deserialize(&source)
        .unwrap()
        .names()
        .into_iter()
        .filter_map(|n| {
            n.split_once('.')
                .filter(|(p, _)| {
                    ["bert", "roberta", "distilbert", "electra", "deberta", "model"].contains(p)
                })
                .map(|(_, rest)| rest.to_string())
        })
        .collect();
    let (mut names, mut expected) = (names, expected);
    names.sort();
    expected.sort();
    assert_eq!(names, expected, "{family}: the export holds exactly the encoder's tensors");
}

#[test]
fn every_family_runs_a_sweep_and_exports_its_best_job() {
    for (family, layers, own_head) in [
        ("bert", 2, false),
        ("roberta", 2, true),
        ("xlm-roberta", 2, false),
        ("distilbert", 2, false),
        ("electra-discriminator", 2, false),
        ("deberta-v2", 2, false),
        ("modernbert", 3, true),
    ] {
        check_family(family, layers, own_head);
    }
}
