//! The web view and report.html in a real browser (headless chromium over DevTools): a real
//! tiny sweep registered, served while a worker runs it, its pages read as a user reads them.
//! Everything runs in this process (thaw's own crates), so the browser tooling stays a
//! dev-dependency of this crate alone.

mod common;

use std::path::Path;
use std::time::Duration;

use common::browser::{Browser, http_get};
use serde_json::Value;
use sha2::{Digest, Sha256};
use thaw_analysis::Split;
use thaw_orchestrator::sweep::{self, RunOptions};
use thaw_store::{Location, Store};
use thaw_train::BackendKind;

/// A label named like an attack: every page must show it as text.
const HOSTILE_LABEL: &str = "<script>alert(1)</script>";

/// Rotten Tomatoes lines with one label renamed to [`HOSTILE_LABEL`] and the other to
/// "fresh"; the test split leans to the hostile one, so the baseline names it.
fn write_data(dir: &Path) {
    let builtin = thaw_assets::dataset_dir("rotten_tomatoes").unwrap();
    for (split, hostile, fresh) in [("train", 60, 60), ("validation", 16, 16), ("test", 24, 12)] {
        let text = std::fs::read_to_string(builtin.join(format!("{split}.jsonl"))).unwrap();
        let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let first = rows[0]["label"].clone();
        let (a, b): (Vec<&Value>, Vec<&Value>) = rows.iter().partition(|r| r["label"] == first);
        let renamed = |r: &Value, label: &str| {
            let mut r = r.clone();
            r["label"] = Value::from(label);
            r.to_string()
        };
        let lines: Vec<String> = (a.iter().take(hostile).map(|r| renamed(r, HOSTILE_LABEL)))
            .chain(b.iter().take(fresh).map(|r| renamed(r, "fresh")))
            .collect();
        std::fs::write(dir.join(format!("{split}.jsonl")), lines.join("\n") + "\n").unwrap();
    }
}

fn sweep_file(dir: &Path) -> std::path::PathBuf {
    let text = r#"
[sweep]
name = "served"

[model]
hub = "sentence-transformers/all-MiniLM-L6-v2"

[data]
train = "train.jsonl"
validation = "validation.jsonl"
test = "test.jsonl"
max_length = 24

[train]
epochs = 1
batch_size = 16
pooling = "mean"

[grid]
freeze = [5, 6]
seeds = [1, 2]
lr = [3e-3]
"#;
    let path = dir.join("served.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

fn sha256(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// The text of the table that follows the "Cells" heading.
const CELLS_TABLE: &str = "(() => { const h = [...document.querySelectorAll('h2')].find(h => h.textContent.trim() === 'Cells'); let e = h; while (e && e.tagName !== 'TABLE') e = e.nextElementSibling; return e ? e.innerText : ''; })()";

#[test]
fn a_running_sweep_in_the_browser_live_safe_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let db = Location::Sqlite(dir.path().join("results/served.db"));
    let rt = runtime();
    let options = RunOptions {
        workers: 0,
        backend: BackendKind::Flex,
        db: Some(db.clone()),
        retry_failed: false,
    };
    rt.block_on(sweep::run(&sweep_file(dir.path()), &options)).unwrap();

    let reader = rt.block_on(Store::open_read_only(&db, Some("test"))).unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(thaw_serve::serve(reader, listener));
    let base = format!("http://127.0.0.1:{port}");

    let mut browser = Browser::start();
    browser.open(&format!("{base}/"));
    assert_eq!(browser.text("document.querySelector('#live a').textContent"), "served");
    browser.open(&format!("{base}/sweeps/served/"));
    assert_eq!(browser.text("document.getElementById('jobs-done').textContent"), "0 / 4");
    browser.eval("window.thawMarker = 42");

    // A worker runs the sweep while the page is open: the numbers move without a reload.
    let worker = rt.spawn({
        let db = db.clone();
        async move { thaw_orchestrator::worker::serve(&db, None, BackendKind::Flex, false).await }
    });
    let done = "document.getElementById('jobs-done').textContent";
    browser.wait_for(Duration::from_secs(300), done, |v| v != "0 / 4");
    assert_eq!(browser.eval("window.thawMarker"), 42, "the page was reloaded");
    rt.block_on(worker).unwrap().unwrap();
    browser.wait_for(Duration::from_secs(30), done, |v| v == "4 / 4");
    let status = "document.getElementById('live-status').textContent";
    browser.wait_for(Duration::from_secs(30), status, |v| {
        v.as_str().is_some_and(|s| s.starts_with("finished"))
    });
    assert_eq!(browser.eval("window.thawMarker"), 42, "the page was reloaded");

    // The cells table holds what `thaw results --aggregate` computes from the database.
    let cells_text = browser.text(CELLS_TABLE);
    let writer = rt.block_on(Store::connect(&db, None)).unwrap();
    let rows = rt.block_on(writer.job_results("served")).unwrap();
    let summaries = thaw_analysis::cells::aggregate(&rows, Split::Test);
    assert_eq!(summaries.len(), 2);
    for s in &summaries {
        let shown = thaw_analysis::cells::percent_with_ci(s.metric_mean, s.metric_ci95, s.n);
        assert!(cells_text.contains(&shown), "{shown} not in the cells table:\n{cells_text}");
    }

    // The charts render; the hostile label is text and ran nothing.
    let widths = browser.eval(
        "[...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect().width)",
    );
    let widths = widths.as_array().unwrap().clone();
    assert!(widths.len() >= 3 && widths.iter().all(|w| w.as_f64().unwrap() > 300.0), "{widths:?}");
    assert!(browser.text("document.body.innerText").contains(HOSTILE_LABEL));
    assert_eq!(browser.eval("document.scripts.length"), 1, "only the app's own script");
    assert!(browser.screenshot_png().starts_with(b"\x89PNG"));

    // A job's page: its status, epochs and spec.
    let job = browser.text("document.querySelector('#jobs a').getAttribute('href')");
    browser.open(&format!("{base}/sweeps/served/{job}"));
    assert_eq!(browser.text("document.getElementById('status').textContent"), "done");
    assert!(
        browser.eval("document.querySelectorAll('#epochs tbody tr').length").as_u64() >= Some(1)
    );

    // Reading writes nothing, and a path outside the app is a 404.
    let file = db.file().unwrap().to_path_buf();
    let before = sha256(&file);
    let job_page = format!("/sweeps/served/{job}");
    for path in
        ["/", "/sweeps/served/", &job_page, "/sweeps/served/charts/accuracy_vs_unfrozen.svg"]
    {
        assert_eq!(http_get(port, path).0, 200, "{path}");
    }
    for path in [
        "/../Cargo.toml",
        "/sweeps/served/charts/..%2F..%2Fserved.toml",
        "/sweeps/nope/",
        "/etc/passwd",
    ] {
        assert_eq!(http_get(port, path).0, 404, "{path}");
    }
    assert_eq!(sha256(&file), before, "thaw serve wrote to the database");

    // report.html from disk: the same cells, offline, no script, no error.
    let out = dir.path().join("report");
    let files = rt
        .block_on(thaw_report::write_report(
            &writer,
            "served",
            &thaw_report::ReportOptions::new(&out),
        ))
        .unwrap();
    browser.open(&format!("file://{}", files.report_html.display()));
    assert_eq!(browser.text(CELLS_TABLE), cells_text);
    assert!(browser.eval("document.querySelectorAll('figure svg').length").as_u64() >= Some(3));
    assert_eq!(browser.eval("document.scripts.length"), 0);
    assert!(browser.text("document.body.innerText").contains(HOSTILE_LABEL));

    let problems = browser.problems();
    assert!(problems.is_empty(), "the pages reported problems: {problems:#?}");
}
