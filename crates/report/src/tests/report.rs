//! End-to-end: fixture sweeps in a real store, through `write_report`, checked on the
//! recommendation the numbers should lead to.

use crate::tests::fixtures::{self, Fate, Scenario};
use crate::{ReportOptions, write_report};
use thaw_analysis::{Baselines, MajorityBaseline, Setup, Split};

/// The fixture comes back too: dropping it deletes the files.
async fn report_text(
    scenario: Scenario,
    split: Split,
) -> (String, crate::ReportFiles, fixtures::Fixture) {
    let fixture = scenario.build().await;
    // THAW_REPORT_DEMO_DIR keeps the output for a look.
    let out_dir = std::env::var_os("THAW_REPORT_DEMO_DIR").map_or_else(
        || fixture.out_dir.clone(),
        |d| std::path::PathBuf::from(d).join(format!("{}-{split}", fixture.sweep)),
    );
    let options = ReportOptions { out_dir, split, show_all_lrs: false };
    let files = write_report(&fixture.store, &fixture.sweep, &options).await.expect("report");
    let text = std::fs::read_to_string(&files.report_md).expect("report.md");
    (text, files, fixture)
}

/// The "## Recommendation" section only, so assertions cannot match the caveats or tables.
fn recommendation(text: &str) -> &str {
    let start = text.find("## Recommendation").expect("recommendation section");
    let end = text[start..].find("\n## Cells").map_or(text.len(), |e| start + e);
    &text[start..end]
}

#[tokio::test]
async fn partial_freezing_that_wins_clearly_is_named_the_best() {
    let (text, files, _fixture) = report_text(fixtures::partial_freezing_wins(), Split::Test).await;
    let rec = recommendation(&text);
    assert!(rec.contains("**Best cell: *pretrained, no MLM, 2/4 layers unfrozen* at lr 3e-5: test accuracy 90.9 ± 0.3 % over 3 seeds.**"), "{rec}");
    assert!(rec.contains("told apart from every other cell tried"), "{rec}");
    assert!(
        rec.contains("This is partial freezing: the bottom 2 of 4 encoder layers stay frozen."),
        "{rec}"
    );
    assert!(!rec.contains("Cannot separate"), "{rec}");
    // Nothing else is within the best cell's CI, so no cheaper alternative is offered.
    assert!(
        rec.contains("No other cell's validation mean lies within the best cell's CI"),
        "{rec}"
    );
    // Task MLM was 4 points worse in every cell.
    assert!(rec.contains("Intermediate MLM on **task** text (pretrained init): it hurt."), "{rec}");
    assert!(rec.contains("Scratch is not competitive."), "{rec}");
    assert!(rec.contains("task text: perplexity 7.5 before MLM, 5.2 after MLM (31% lower), so close to the pretraining data"), "{rec}");
    // Setup comes from setup_json.
    assert!(text.contains("| Examples | train 2000, validation 500, test 872 |"), "{text}");
    assert!(text.contains("| Hardware | NVIDIA H100 80GB (8 cores) |"), "{text}");
    assert!(text.contains("| Device | wgpu on NVIDIA H100 80GB HBM3 |"), "{text}");
    assert!(text.contains("| Trainer | batch_size: 32; epochs: 4; keep: none; "), "{text}");
    assert!(text.contains("| Learning rates | 1e-5, 3e-5, 1e-4 |"));
    // Head only does best at 1e-4, but one of its seeds failed there: the clean 3e-5 is selected.
    assert!(text.contains("| pretrained, no MLM | 0/4 (head only) |"), "{text}");
    assert!(text.contains("| 3 | 0 | 0 | 3e-5 |  |"), "{text}");
    // Caveats: the failed seed, the pending job, the edges.
    assert!(
        text.contains("lost seeds to failed jobs") && text.contains("(failed: 1 at lr 1e-4)"),
        "{text}"
    );
    assert!(text.contains("First error: \"out of memory\""), "{text}");
    assert!(text.contains("still have pending or running seeds"), "{text}");
    assert!(text.contains("picked the smallest or largest lr tried"), "{text}");
    assert!(
        text.contains("**Partial results:** 133 of 135 jobs done, 1 failed, 1 pending, 0 running."),
        "{text}"
    );
    // Charts are embedded by relative path and exist.
    assert!(text.contains("![Test accuracy vs unfrozen layers: bert-base-uncased@86b5e09 on glue/sst2](charts/accuracy_vs_unfrozen.png)"));
    assert!(files.charts.iter().all(|c| c.exists()));
    assert_eq!(files.charts.len(), 8);
}

#[tokio::test]
async fn scratch_that_wins_is_reported_as_beating_pretrained() {
    let (text, _, _fixture) = report_text(fixtures::scratch_wins(), Split::Test).await;
    let rec = recommendation(&text);
    // Two training-set sizes: one recommendation each, "all" last.
    let small = rec.find("### Training-set size 500").expect("size 500 section");
    let all = rec.find("### Training-set size all").expect("size all section");
    assert!(small < all);
    let all_part = &rec[all..];
    assert!(all_part.contains("**Best cell: *scratch, no MLM, 4/4 layers unfrozen (full fine-tuning), train size all* at lr 1e-5"), "{all_part}");
    assert!(all_part.contains("**Scratch beats pretrained.**"), "{all_part}");
    assert!(all_part.contains("difference (scratch − pretrained) +18."), "{all_part}");
    // Both cells finished seeds 1, 2 and 3: the difference is paired over them.
    assert!(all_part.contains("paired over 3 shared seeds)"), "{all_part}");
    assert!(rec.contains("Intermediate MLM: not part of this sweep."));
    assert!(text.contains("Sweep finished: all 108 jobs done."), "{text}");
    assert!(text.contains("![Test accuracy vs training-set size"), "train-size chart embedded");
}

#[tokio::test]
async fn overlapping_intervals_are_not_separated() {
    let (text, _, _fixture) = report_text(fixtures::overlapping(), Split::Test).await;
    let rec = recommendation(&text);
    assert!(rec.contains("**Cannot separate the top cells.**"), "{rec}");
    assert!(rec.contains("The data do not single out a winner"), "{rec}");
    assert!(!rec.contains("**Best cell"), "{rec}");
    assert!(
        rec.contains("Intermediate MLM on **wiki** text (pretrained init): no clear effect"),
        "{rec}"
    );
    assert!(rec.contains("Scratch vs pretrained: this sweep does not run both inits."), "{rec}");
    assert!(rec.contains("wiki text: perplexity 64.0 before MLM"), "{rec}");
    assert!(rec.contains("far from the pretraining data (> 50)"), "{rec}");
    assert!(text.contains("fewer than 3 finished seeds"), "{text}");
    assert!(text.contains("The top cells' validation 95% CIs overlap"), "{text}");
    // A setup_json that lacks most keys still gives a setup table.
    assert!(text.contains("| Dataset | imdb |"), "{text}");
    assert!(text.contains("| Hardware | not recorded |"), "{text}");
    assert!(text.contains("| Examples | not recorded |"), "{text}");
    assert!(text.contains("| Backend | wgpu |"), "falls back to the results' backend: {text}");
}

/// Validation and test disagree on purpose: the cell with the better validation mean is the
/// one recommended, and its (worse) test number is what the report quotes.
#[tokio::test]
async fn the_recommendation_chooses_on_validation_never_on_test() {
    let mut scenario = fixtures::overlapping();
    scenario.series = vec![(thaw_store::Init::Pretrained, "none", None)];
    scenario.freezes = vec![0, 2];
    scenario.lrs = vec![1e-5];
    scenario.seeds = vec![1, 2, 3];
    scenario.fate = |p| {
        let (val, test) = if p.freeze == 0 { (0.90, 0.80) } else { (0.80, 0.90) };
        Fate::Done {
            val_accuracy: val + 0.002 * p.noise(1),
            test_accuracy: test + 0.002 * p.noise(2),
            train_seconds: 10.0 + p.unfrozen() as f64,
        }
    };
    let (text, _, _fixture) = report_text(scenario, Split::Test).await;
    let rec = recommendation(&text);
    assert!(rec.contains("**Best cell: *pretrained, no MLM, 2/2 layers unfrozen (full fine-tuning)* at lr 1e-5: test accuracy 80."), "{rec}");
    assert!(!rec.contains("Best cell: *pretrained, no MLM, 0/2"), "{rec}");
}

#[tokio::test]
async fn a_sweep_with_nothing_finished_still_gets_a_report() {
    let mut scenario = fixtures::overlapping();
    scenario.fate = |_| Fate::Pending;
    scenario.setup_json = "not json at all".into();
    let (text, files, _fixture) = report_text(scenario, Split::Test).await;
    assert!(
        text.contains("No cell has a finished job yet, so there is nothing to recommend."),
        "{text}"
    );
    assert!(text.contains("have no finished job at all"), "{text}");
    assert!(files.charts.is_empty());
}

#[tokio::test]
async fn validation_metric_is_displayed_and_flagged_as_optimistic() {
    let (text, _, _fixture) =
        report_text(fixtures::partial_freezing_wins(), Split::Validation).await;
    assert!(text.contains("validation accuracy 92."), "the best cell's validation mean: {text}");
    assert!(text.contains("| Series | Unfrozen layers | Validation accuracy % |"), "{text}");
    assert!(text.contains("Displayed numbers are validation accuracy"), "{text}");
}

#[tokio::test]
async fn show_all_lrs_lists_every_learning_rate() {
    let fixture = fixtures::overlapping().build().await;
    let options =
        ReportOptions { out_dir: fixture.out_dir.clone(), split: Split::Test, show_all_lrs: true };
    let files = write_report(&fixture.store, &fixture.sweep, &options).await.expect("report");
    let text = std::fs::read_to_string(&files.report_md).unwrap();
    let section = &text[text.find("## Every learning rate").expect("section")..];
    // 2 series x 3 freeze depths x 2 lrs.
    assert_eq!(section.lines().filter(|l| l.starts_with("| pretrained")).count(), 12);
    assert_eq!(section.matches("| yes |").count(), 6, "one selected lr per cell");
}

#[tokio::test]
async fn an_unknown_sweep_is_an_error() {
    let fixture = fixtures::overlapping().build().await;
    let err = write_report(&fixture.store, "nope", &ReportOptions::new(fixture.out_dir.clone()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no sweep named 'nope'"), "{err}");
}

/// The setup a sweep planned today records: the majority-class rate of validation and test.
fn with_baseline(validation: f64, test: f64) -> String {
    let baseline = |accuracy: f64, examples: usize| MajorityBaseline {
        label: "fresh".into(),
        metric_value: accuracy,
        macro_f1: accuracy / (1.0 + accuracy),
        rmse: None,
        metric: thaw_metrics::Metric::Accuracy,
        examples,
    };
    let mut setup = Setup::parse(&fixtures::default_setup()).unwrap();
    setup.baseline =
        Some(Baselines { validation: baseline(validation, 500), test: baseline(test, 872) });
    setup.to_json()
}

/// The quickstart's old trap: scratch sitting exactly at the majority class (it learned
/// nothing) was called "competitive". It is now named for what it is, and marked in the table.
#[tokio::test]
async fn a_cell_at_the_majority_class_is_never_competitive() {
    let mut scenario = fixtures::scratch_wins();
    scenario.train_sizes = vec![None];
    scenario.setup_json = with_baseline(0.60, 0.604);
    scenario.fate = |p| {
        let (val, test) = if p.init.is_scratch() {
            (0.60, 0.604)
        } else {
            (0.66 + 0.03 * p.unfrozen() as f64, 0.65 + 0.03 * p.unfrozen() as f64)
        };
        Fate::Done {
            val_accuracy: val + if p.init.is_scratch() { 0.0 } else { 0.004 * p.noise(1) },
            test_accuracy: test + if p.init.is_scratch() { 0.0 } else { 0.004 * p.noise(2) },
            train_seconds: 10.0 + p.unfrozen() as f64,
        }
    };
    let (text, files, _fixture) = report_text(scenario, Split::Test).await;
    let rec = recommendation(&text);
    assert!(rec.contains("**Scratch is not above the majority class:**"), "{rec}");
    assert!(rec.contains("always predicting 'fresh' (60.4 %) on test"), "{rec}");
    assert!(!rec.contains("competitive:"), "{rec}");
    assert!(rec.contains("**Best cell: *pretrained, no MLM, 4/4"), "{rec}");
    assert!(
        text.contains(
            "| Majority-class baseline | always predicting 'fresh': test 60.4 % accuracy"
        ),
        "{text}"
    );
    assert!(text.contains("60.4 ± 0.0 (not above majority)"), "{text}");
    let svg = files
        .charts
        .iter()
        .find(|p| p.to_string_lossy().ends_with("accuracy_vs_unfrozen.svg"))
        .unwrap();
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(
        svg.contains("majority class: always &apos;fresh&apos; (60.4 %)")
            || svg.contains("majority class: always 'fresh' (60.4 %)"),
        "legend names the baseline"
    );
}

/// Nothing above the majority class: no best cell, no cheapest one, and the report says why.
#[tokio::test]
async fn when_no_cell_beats_the_majority_class_nothing_is_recommended() {
    let mut scenario = fixtures::overlapping();
    scenario.setup_json = with_baseline(0.86, 0.85);
    let (text, _, _fixture) = report_text(scenario, Split::Test).await;
    let rec = recommendation(&text);
    assert!(rec.contains("**No cell is shown to beat the majority class.** Always predicting 'fresh' scores 86.0 % on validation"), "{rec}");
    assert!(
        rec.contains(
            "No cell beats the majority class, so none is named the cheapest good enough."
        ),
        "{rec}"
    );
    assert!(!rec.contains("Best cell:") && !rec.contains("Cheapest cell"), "{rec}");
}

#[tokio::test]
async fn a_one_seed_sweep_is_compared_over_its_examples() {
    // The partial-freezing sweep with seed 1 only: no seed-level interval exists, but the
    // stored per-example predictions pair cells over the same validation and test examples.
    let scenario = Scenario { seeds: vec![1], ..fixtures::partial_freezing_wins() };
    let (text, _, _fixture) = report_text(scenario, Split::Test).await;
    let rec = recommendation(&text);
    assert!(rec.contains("**Best cell: *pretrained, no MLM, 2/4 layers unfrozen*"), "{rec}");
    assert!(rec.contains("With one seed this rests on the validation examples alone"), "{rec}");
    // Task MLM (-4 points on 500 test examples of seed 1) is judged over those examples.
    assert!(rec.contains("paired over the 500 examples of seed 1"), "{rec}");
    assert!(!rec.contains("too few seeds for an interval"), "{rec}");
}

#[tokio::test]
async fn the_mlm_freeze_grid_is_read_in_words_and_drawn() {
    let (text, files, _fixture) = report_text(fixtures::mlm_freeze_grid(), Split::Test).await;
    let start = text.find("## MLM freeze × downstream freeze").expect("the section");
    let section = &text[start..text[start..].find("\n## Cells").map_or(text.len(), |e| start + e)];
    // Head only is best after half-frozen MLM, and that is not the matching depth.
    assert!(
        section.contains("- Downstream freeze 4, 0/4 layers unfrozen (head only): best on validation with MLM freeze 2"),
        "{section}"
    );
    assert!(section.contains("the matching depth (MLM freeze 4) scores"), "{section}");
    assert!(section.contains("*Half-frozen MLM (freeze 2), then head only*: 81.0"), "{section}");
    // Its three comparisons, each with a paired interval, and what each costs.
    for what in [
        "Against no MLM, head only (76.0",
        "Against full MLM (freeze 0), head only (77.1",
        "Against full fine-tuning without MLM (80.0",
    ] {
        assert!(section.contains(what), "{what} in {section}");
    }
    assert!(section.contains("paired over 3 shared seeds"), "{section}");
    assert!(section.contains("s for its MLM stage"), "{section}");
    // One perplexity reading per corpus, with each stage's "after".
    assert!(
        text.contains("task text: perplexity 7.5 before MLM; after MLM 5.2 with MLM freeze 0 (31% lower), 5.2 with MLM freeze 2"),
        "{text}"
    );
    let grid = files.charts.iter().find(|p| p.ends_with("mlm_freeze_grid.png")).expect("the chart");
    assert_eq!(&std::fs::read(grid).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
}

#[tokio::test]
async fn strategies_are_cells_and_series_of_their_own() {
    let (text, files, _fixture) = report_text(fixtures::strategies_compared(), Split::Test).await;
    let rec = recommendation(&text);
    assert!(
        rec.contains("**Best cell: *pretrained, no MLM, gradual, 4/4 layers unfrozen (full fine-tuning)* at lr 3e-5"),
        "{rec}"
    );
    assert!(rec.contains("told apart from every other cell tried"), "{rec}");
    assert!(rec.contains("Strategy **gradual**: it helped. Its best cell *pretrained, no MLM, gradual, 4/4 layers unfrozen (full fine-tuning)*"), "{rec}");
    assert!(rec.contains("Strategy **llrd**: "), "{rec}");
    let chart = files
        .charts
        .iter()
        .find(|f| f.file_name().is_some_and(|n| n == "accuracy_vs_unfrozen.svg"))
        .expect("the accuracy chart");
    let svg = std::fs::read_to_string(chart).unwrap();
    for series in
        ["pretrained, no MLM, plain", "pretrained, no MLM, llrd", "pretrained, no MLM, gradual"]
    {
        assert!(svg.lines().any(|l| l.trim() == series), "legend lacks {series}");
    }
    // Six cells in the table, each strategy at each depth.
    assert_eq!(text.matches("| pretrained, no MLM, llrd | ").count(), 2, "{text}");
}
