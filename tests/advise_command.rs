//! `thaw advise` end to end on a tiny real sweep: real MiniLM weights, real Rotten Tomatoes
//! snippets, no job trained. One row per encoder depth, each reading finite and in range,
//! and a sweep of another task refused by name.

mod common;

use common::*;

#[test]
fn advise_reads_every_depth_of_the_frozen_model_without_training() {
    let dir = tempfile::tempdir().unwrap();
    let grid = "freeze = [0, 6]\nseeds = [1]\ntrain_size = [96]\nlr = { full = [1e-4], head_only = [3e-3] }";
    let file = sweep_file(dir.path(), "advice", grid);
    let out = thaw(dir.path(), &["advise", file.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("96 training and 32 validation examples"), "{text}");
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip_while(|l| !l.starts_with("depth  LogME"))
        .skip(1)
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 7, "the embeddings and six layers: {text}");
    for (depth, row) in rows.iter().enumerate() {
        assert_eq!(row[0], depth as f64);
        assert!(row[1].is_finite() && row[2].is_finite() && row[2] >= 0.0, "{row:?}");
        assert!((0.0..=100.0).contains(&row[3]) && (0.0..=100.0).contains(&row[4]), "{row:?}");
    }
    // Nothing was registered or trained: no database appears.
    assert!(!dir.path().join("results/advice.db").exists());

    let data = "builtin = \"sts_b\"\ntask = \"regression\"\ntext_pair_field = \"text_pair\"\nmax_length = 32";
    let scores = sweep_file_with_data(dir.path(), "scores", data, grid);
    let refused = thaw(dir.path(), &["advise", scores.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("task is 'regression'"));
}
