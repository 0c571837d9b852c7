//! `thaw advise` end to end on tiny real sweeps: real MiniLM weights, real Rotten Tomatoes
//! snippets. One row of frozen readings per encoder depth, each finite and in range; every
//! cell forecast from its short probe, the pick marked and explained; the forecast stored,
//! and the report of the sweep run afterwards setting it beside the verdict. A regression
//! sweep gets its forecast from the probes alone. The probes' gradient-to-weight ratios
//! cover exactly the layers each trained, and an MLM corpus is read before any MLM step.

mod common;

use common::*;

fn readings(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .skip_while(|l| !l.starts_with("depth  LogME"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect()
}

#[test]
fn advise_forecasts_every_cell_stores_it_and_the_report_sets_it_beside_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let grid = "freeze = [0, 6]\nseeds = [1]\ntrain_size = [96]\nlr = { full = [1e-4], head_only = [3e-3] }";
    let file = sweep_file(dir.path(), "advice", grid);
    let out = thaw(dir.path(), &["advise", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("96 training and 32 validation examples"), "{text}");
    let rows = readings(&text);
    assert_eq!(rows.len(), 7, "the embeddings and six layers: {text}");
    for (depth, row) in rows.iter().enumerate() {
        assert_eq!(row[0], depth as f64);
        assert!(row[1].is_finite() && row[2].is_finite() && row[2] >= 0.0, "{row:?}");
        assert!((0.0..=100.0).contains(&row[3]) && (0.0..=100.0).contains(&row[4]), "{row:?}");
    }
    assert!(text.contains("1. pretrained, no MLM") && text.contains("2. pretrained, no MLM"));
    assert_eq!(text.matches("<- pick").count(), 1, "{text}");
    assert!(text.contains("Short probes (one epoch on") && text.contains("Recommended:"), "{text}");
    let db = dir.path().join("results/advice.db");
    let stored = sqlite_rows(&db, "SELECT forecast FROM advice WHERE sweep = 'advice'");
    assert_eq!(stored.len(), 1);
    assert!(stored[0][0].contains("\"pick\"") && stored[0][0].contains("\"probe_lr\""));
    assert_eq!(stored[0][0].matches("\"logme\"").count(), 7, "stored with its frozen readings");

    assert!(thaw(dir.path(), &["run", file.to_str().unwrap()]).status.success());
    let report = std::fs::read_to_string(dir.path().join("results/advice/report.md")).unwrap();
    let section = report.split("## The advice before the sweep").nth(1).expect("the section");
    assert!(section.contains("Predicted rank") && section.contains("Measured rank"), "{section}");
    assert!(section.contains("the verdict's best group") && section.contains("Kendall's tau"));
    assert!(section.contains("(pick)"));
}

#[test]
fn probes_measure_their_trained_layers_gradients_and_the_mlm_corpus_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let grid = "freeze = [0, 3]\nintermediate = [\"none\", \"task\"]\nseeds = [1]\ntrain_size = [64]\nlr = { full = [1e-4], partial = [1e-4] }";
    let file = sweep_file(dir.path(), "pulls", grid);
    let out = thaw(dir.path(), &["advise", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Gradient-to-weight norm ratio per encoder layer"), "{text}");
    assert!(text.contains("masked-LM perplexity is "), "{text}");
    assert!(text.contains(" per token on the task text ("), "{text}");
    let db = dir.path().join("results/pulls.db");
    let stored = sqlite_rows(&db, "SELECT forecast FROM advice WHERE sweep = 'pulls'");
    let forecast: thaw_analysis::advice::Forecast = serde_json::from_str(&stored[0][0]).unwrap();
    for cell in &forecast.cells {
        let frozen: Vec<bool> = cell.gradient_ratios.iter().map(Option::is_none).collect();
        match (cell.cell.intermediate.as_str(), cell.cell.freeze) {
            ("none", 0) => assert_eq!(frozen, [false; 6], "{cell:?}"),
            ("none", 3) => assert_eq!(frozen, [true, true, true, false, false, false]),
            _ => assert!(frozen.is_empty(), "an MLM cell has no probe of its own: {cell:?}"),
        }
        for ratio in cell.gradient_ratios.iter().flatten() {
            assert!(ratio.is_finite() && *ratio > 0.0, "{cell:?}");
        }
    }
    let [task] = forecast.mlm.as_slice() else { panic!("one corpus: {:?}", forecast.mlm) };
    assert_eq!(task.corpus, "task");
    assert!(task.perplexity > 1.0 && task.perplexity.is_finite(), "{task:?}");
    assert!((2.0..8.0).contains(&task.chars_per_token), "English under WordPiece: {task:?}");
    assert_eq!(task.head_warmup_steps, Some(4), "MiniLM has no MLM head; the stage's 4 steps");
}

#[test]
fn a_regression_sweep_is_forecast_from_its_probes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let grid = "freeze = [0, 6]\nseeds = [1]\ntrain_size = [96]\nlr = { full = [1e-4], head_only = [3e-3] }";
    let data = "builtin = \"sts_b\"\ntask = \"regression\"\ntext_pair_field = \"text_pair\"\nmax_length = 32\nmax_validation = 32";
    let scores = sweep_file_with_data(dir.path(), "scores", data, grid);
    let out = thaw(dir.path(), &["advise", scores.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(readings(&text).is_empty(), "frozen readings are for classification: {text}");
    assert!(text.contains("Forecast (validation Spearman"), "{text}");
    assert_eq!(text.matches("<- pick").count(), 1, "{text}");
}

#[test]
fn a_search_with_the_advise_prior_needs_the_stored_advice_and_then_runs() {
    let dir = tempfile::tempdir().unwrap();
    let grid = "freeze = [0, 6]\ntrain_size = [64]\nlr = { full = [1e-4], head_only = [3e-3] }\n\n[search]\nseeds = { min = 2, max = 2 }\nprior = \"advise\"";
    let file = sweep_file(dir.path(), "primed", grid);
    let refused = thaw(dir.path(), &["run", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("has no stored advice in this database; run `thaw advise FILE` first"),
        "{said}"
    );
    assert!(thaw(dir.path(), &["advise", file.to_str().unwrap()]).status.success());
    let run = thaw(dir.path(), &["run", file.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let db = dir.path().join("results/primed.db");
    let done = sqlite_rows(&db, "SELECT COUNT(*) FROM job_results WHERE status = 'done'");
    let done: usize = done[0][0].parse().unwrap();
    assert!(
        (3..=4).contains(&done),
        "2 cells, 2 seeds each, one trimmed by the prior or not: {done}"
    );
}
