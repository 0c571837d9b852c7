//! `thaw serve` and report.html in a real browser (headless chromium over DevTools): a real
//! tiny sweep registered, served while a worker runs it, its pages read as a user reads them.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::browser::{Browser, http_get};
use common::{THAW, sweep_file_with_data, thaw};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A label named like an attack: every page must show it as text.
const HOSTILE_LABEL: &str = "<script>alert(1)</script>";

/// Rotten Tomatoes lines with the negative label renamed to [`HOSTILE_LABEL`] and the
/// positive to "fresh"; the test split leans negative, so the baseline names the hostile one.
fn write_data(dir: &Path) {
    let builtin = thaw_assets::dataset_dir("rotten_tomatoes").unwrap();
    for (split, negatives, positives) in
        [("train", 60, 60), ("validation", 16, 16), ("test", 24, 12)]
    {
        let text = std::fs::read_to_string(builtin.join(format!("{split}.jsonl"))).unwrap();
        let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let first = rows[0]["label"].clone();
        let (neg, pos): (Vec<&Value>, Vec<&Value>) = rows.iter().partition(|r| r["label"] == first);
        let renamed = |r: &Value, label: &str| {
            let mut r = r.clone();
            r["label"] = Value::from(label);
            r.to_string()
        };
        let lines: Vec<String> = neg
            .iter()
            .take(negatives)
            .map(|r| renamed(r, HOSTILE_LABEL))
            .chain(pos.iter().take(positives).map(|r| renamed(r, "fresh")))
            .collect();
        std::fs::write(dir.join(format!("{split}.jsonl")), lines.join("\n") + "\n").unwrap();
    }
}

fn start_serve(dir: &Path, db: &Path) -> (Child, u16) {
    let mut serve = Command::new(THAW)
        .args(["serve", "--db", db.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port = line.trim().trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
    (serve, port)
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
    let data = "train = \"train.jsonl\"\nvalidation = \"validation.jsonl\"\ntest = \"test.jsonl\"\nmax_length = 24";
    let grid = "freeze = [5, 6]\nseeds = [1, 2]\nlr = [3e-3]";
    let file = sweep_file_with_data(dir.path(), "served", data, grid);
    let db = dir.path().join("results/served.db");
    assert!(thaw(dir.path(), &["run", file.to_str().unwrap(), "--workers", "0"]).status.success());

    let (mut serve, port) = start_serve(dir.path(), &db);
    let base = format!("http://127.0.0.1:{port}");
    let mut browser = Browser::start();
    browser.open(&format!("{base}/"));
    assert_eq!(browser.text("document.querySelector('#live a').textContent"), "served");
    browser.open(&format!("{base}/sweeps/served/"));
    assert_eq!(browser.text("document.getElementById('jobs-done').textContent"), "0 / 4");
    browser.eval("window.thawMarker = 42");

    // A worker runs the sweep while the page is open: the numbers move without a reload.
    let worker = Command::new(THAW)
        .args(["worker", "--db", db.to_str().unwrap()])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = "document.getElementById('jobs-done').textContent";
    browser.wait_for(Duration::from_secs(300), done, |v| v != "0 / 4");
    assert_eq!(browser.eval("window.thawMarker"), 42, "the page was reloaded");
    let out = worker.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    browser.wait_for(Duration::from_secs(30), done, |v| v == "4 / 4");
    browser.wait_for(
        Duration::from_secs(30),
        "document.getElementById('live-status').textContent",
        |v| v.as_str().is_some_and(|s| s.starts_with("finished")),
    );
    assert_eq!(browser.eval("window.thawMarker"), 42, "the page was reloaded");

    // The cells table holds what `thaw results` computes from the database.
    let cells_text = browser.text(CELLS_TABLE);
    let results = thaw(
        dir.path(),
        &["results", "--db", db.to_str().unwrap(), "--aggregate", "--format", "json"],
    );
    let summaries: Vec<Value> = serde_json::from_slice(&results.stdout).unwrap();
    assert_eq!(summaries.len(), 2);
    for s in &summaries {
        let mean = 100.0 * s["accuracy_mean"].as_f64().unwrap();
        let shown = match s["accuracy_ci95"].as_f64() {
            Some(h) => format!("{mean:.1} ± {:.1}", 100.0 * h),
            None => format!("{mean:.1} (n={}, no CI)", s["n"]),
        };
        assert!(cells_text.contains(&shown), "{shown} not in the cells table:\n{cells_text}");
    }

    // The charts render; the hostile label is text and ran nothing.
    let charts = browser.eval(
        "[...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect().width)",
    );
    let widths = charts.as_array().unwrap();
    assert!(widths.len() >= 3 && widths.iter().all(|w| w.as_f64().unwrap() > 300.0), "{charts}");
    assert!(browser.text("document.body.innerText").contains(HOSTILE_LABEL));
    assert_eq!(browser.eval("document.scripts.length"), 1, "only the app's own script");
    let shot = dir.path().join("sweep.png");
    browser.screenshot(&shot);
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
    if let Ok(keep) = std::env::var("THAW_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }

    // A job's page: its status, epochs and spec.
    let job = browser.text("document.querySelector('#jobs a').getAttribute('href')");
    browser.open(&format!("{base}/sweeps/served/{job}"));
    assert_eq!(browser.text("document.getElementById('status').textContent"), "done");
    assert!(
        browser.eval("document.querySelectorAll('#epochs tbody tr').length").as_u64() >= Some(1)
    );

    // Reading writes nothing, and a path outside the app is a 404.
    let before = sha256(&db);
    for path in [
        "/",
        "/sweeps/served/",
        &format!("/sweeps/served/{job}"),
        "/sweeps/served/charts/accuracy_vs_unfrozen.svg",
    ] {
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
    assert_eq!(sha256(&db), before, "thaw serve wrote to the database");

    // report.html from disk: the same cells, offline, no error.
    let report = thaw(dir.path(), &["report", "--db", db.to_str().unwrap(), "--html"]);
    let html = String::from_utf8(report.stdout).unwrap();
    browser.open(&format!("file://{}", dir.path().join(html.trim()).display()));
    assert_eq!(browser.text(CELLS_TABLE), cells_text);
    assert!(browser.eval("document.querySelectorAll('figure svg').length").as_u64() >= Some(3));
    assert_eq!(browser.eval("document.scripts.length"), 0);
    assert!(browser.text("document.body.innerText").contains(HOSTILE_LABEL));

    let problems = browser.problems();
    assert!(problems.is_empty(), "the pages reported problems: {problems:#?}");
    let _ = serve.kill();
}

#[test]
fn serving_a_missing_database_is_an_error_that_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nothing.db");
    let out = thaw(dir.path(), &["serve", "--db", db.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing.db") && err.contains("no such file"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "serve created a file");
}
