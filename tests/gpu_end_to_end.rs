//! The GPU path end to end through the `thaw` binary, on whatever Vulkan device the machine
//! has (lavapipe, Mesa's Vulkan on the CPU, in CI). Built only with `--features wgpu`.

#![cfg(feature = "wgpu")]

mod common;

use std::process::Command;

use common::*;

/// The must-show of the GPU path, small enough for lavapipe: the same sweep on flex and then
/// on wgpu into one database keeps both sets of results, the wgpu run trains (a prefix
/// cached on the device included) and reports, and the two backends agree.
#[test]
fn a_tiny_sweep_runs_on_wgpu_beside_its_flex_results() {
    let dir = tempfile::tempdir().unwrap();
    let grid = r#"freeze = [0, 4, 6]
seeds = [1]
train_size = [32]
lr = { full = [1e-4], partial = [1e-4], head_only = [3e-3] }"#;
    let file = sweep_file(dir.path(), "gpu", grid);
    let db = dir.path().join("results/gpu.db");
    let run = |backend: &str| {
        // As on a server without a desktop session (scripts/test.sh sets the variable for
        // the test processes): thaw must keep the loaders quiet by itself.
        let out = Command::new(THAW)
            .args(["run", file.to_str().unwrap(), "--backend", backend])
            .current_dir(dir.path())
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "thaw run --backend {backend} failed:\n{stderr}");
        stderr
    };
    run("flex");
    let on_gpu = run("wgpu");
    assert!(on_gpu.contains("3 jobs (3 new), 0 done"), "{on_gpu}");
    // The Vulkan loader's complaints about a missing XDG_RUNTIME_DIR are not for the user.
    assert!(!on_gpu.contains("XDG_RUNTIME_DIR"), "loader noise in the terminal:\n{on_gpu}");
    let by_backend =
        sqlite_rows(&db, "SELECT backend, COUNT(*) FROM results GROUP BY backend ORDER BY backend");
    assert_eq!(
        by_backend,
        vec![vec!["flex".to_string(), "3".into()], vec!["wgpu".to_string(), "3".into()]]
    );
    // Same data, seed and schedule; only dropout masks (each device draws its own) and float
    // rounding differ. Two steps leave the models near chance on 48 test examples, where
    // accuracy flips on tiny logit differences; the losses are continuous and must agree.
    let by_depth = sqlite_rows(
        &db,
        "SELECT j.freeze,
                MAX(CASE WHEN r.backend = 'flex' THEN r.val_loss END), MAX(CASE WHEN r.backend = 'wgpu' THEN r.val_loss END),
                MAX(CASE WHEN r.backend = 'flex' THEN r.test_loss END), MAX(CASE WHEN r.backend = 'wgpu' THEN r.test_loss END),
                MAX(CASE WHEN r.backend = 'flex' THEN r.test_accuracy END), MAX(CASE WHEN r.backend = 'wgpu' THEN r.test_accuracy END)
         FROM results r JOIN jobs j ON j.key = r.job_key GROUP BY j.freeze ORDER BY j.freeze",
    );
    eprintln!(
        "freeze, val loss flex/wgpu, test loss flex/wgpu, test accuracy flex/wgpu: {by_depth:?}"
    );
    // Measured: 2-3 % apart (the heads start from each device's own random draw). A backend
    // computing something else lands far away or not at all.
    for row in &by_depth {
        let value = |i: usize| row[i].parse::<f64>().unwrap();
        for (flex, gpu) in [(value(1), value(2)), (value(3), value(4))] {
            assert!(((gpu - flex) / flex).abs() < 0.05, "losses apart: {row:?}");
        }
        assert!((0.0..=1.0).contains(&value(6)), "{row:?}");
    }
    let devices = sqlite_rows(&db, "SELECT DISTINCT device FROM results WHERE backend = 'wgpu'");
    assert_eq!(devices.len(), 1, "one device: {devices:?}");
    let report = std::fs::read_to_string(dir.path().join("results/gpu/report.md")).unwrap();
    assert!(report.contains("| Backend | wgpu |"), "the report names the backend it shows");
    assert!(
        report.contains(&format!("wgpu on {}", devices[0][0])),
        "the report names the device: {report}"
    );
    let charts = walk(&dir.path().join("results/gpu"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .count();
    assert!(charts >= 2, "charts drawn from the wgpu results: {charts}");
}
