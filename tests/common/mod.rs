//! What the binary-level test files share: running `thaw`, writing a tiny sweep file, and
//! reading the SQLite file as a user would.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::Command;

pub const THAW: &str = env!("CARGO_BIN_EXE_thaw");

pub fn thaw(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(THAW).args(args).current_dir(dir).output().expect("run thaw");
    if !out.status.success() {
        eprintln!(
            "thaw {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A tiny real sweep on the built-in Rotten Tomatoes data (validation and test capped).
pub fn sweep_file(dir: &Path, name: &str, grid: &str) -> PathBuf {
    let data = "builtin = \"rotten_tomatoes\"\nmax_length = 24\nmax_validation = 32\nmax_test = 48";
    sweep_file_with_data(dir, name, data, grid)
}

/// The same tiny sweep with `data` as the body of its `[data]` section.
pub fn sweep_file_with_data(dir: &Path, name: &str, data: &str, grid: &str) -> PathBuf {
    let body = format!(
        r#"
[sweep]
name = "{name}"

[model]
hub = "sentence-transformers/all-MiniLM-L6-v2"

[data]
{data}

[train]
epochs = 1
batch_size = 16
pooling = "mean"

[intermediate.task]
steps = 3
batch_size = 8
head_warmup_steps = 4

[grid]
{grid}
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, body).unwrap();
    path
}

pub fn sqlite_rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    // Through the store crate would hide schema mistakes; read the file as a user would.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use sqlx::Row;
        let url = format!("sqlite://{}?mode=ro", db.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&pool).await.unwrap();
        rows.iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        r.try_get::<String, _>(i)
                            .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                            .or_else(|_| r.try_get::<f64, _>(i).map(|v| v.to_string()))
                            .unwrap_or_else(|_| "NULL".into())
                    })
                    .collect()
            })
            .collect()
    })
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
