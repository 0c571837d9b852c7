use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use plotters::style::{BLACK, RGBColor};

use crate::charts::pareto::pareto_steps;
use crate::charts::*;
use crate::tests::fixtures::{self, Scenario};
use crate::{ReportOptions, SweepData, render_report};
use thaw_analysis::Split;
use thaw_analysis::cells::Cell;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

struct Rendered {
    data: SweepData,
    files: Vec<PathBuf>,
    cells: Vec<Cell>,
}

/// Builds the scenario's store, renders its report, and keeps the data for the checks.
/// Set THAW_REPORT_DEMO_DIR to keep the output for a look.
async fn rendered(scenario: Scenario, show_all_lrs: bool) -> (fixtures::Fixture, Rendered) {
    let fixture = scenario.build().await;
    let out_dir = match std::env::var_os("THAW_REPORT_DEMO_DIR") {
        Some(dir) => PathBuf::from(dir).join(format!(
            "{}{}",
            fixture.sweep,
            if show_all_lrs { "-all-lrs" } else { "" }
        )),
        None => fixture.out_dir.clone(),
    };
    let data = SweepData::load(&fixture.store, &fixture.sweep).await.expect("load");
    let options = ReportOptions { out_dir, split: Split::Test, show_all_lrs };
    let files = render_report(&data, &options).expect("render").charts;
    let cells = thaw_analysis::cells::cells(&data.rows, Split::Test);
    (fixture, Rendered { data, files, cells })
}

fn file<'a>(files: &'a [PathBuf], name: &str) -> &'a Path {
    files
        .iter()
        .find(|f| f.file_name().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("{name} not among {files:?}"))
}

fn assert_png(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("png readable");
    assert!(bytes.starts_with(PNG_MAGIC), "{} lacks the PNG signature", path.display());
    assert_eq!(&bytes[12..16], b"IHDR", "{} has no IHDR first", path.display());
    let decoded =
        image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).expect("png decodes");
    (decoded.width(), decoded.height())
}

fn read_svg(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("svg readable");
    assert!(text.starts_with("<svg"), "{} does not open with <svg", path.display());
    assert!(text.trim_end().ends_with("</svg>"), "{} is not closed", path.display());
    text
}

fn hex(colour: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2)
}

/// Series-weight polylines (2 px) stroked with `colour` at full opacity; axes, grid and
/// error bars are 1 px and do not count.
fn solid_polylines(svg: &str, colour: RGBColor) -> usize {
    let stroke = format!("stroke=\"{}\"", hex(colour));
    svg.lines()
        .filter(|l| {
            l.contains("<polyline")
                && l.contains(&stroke)
                && l.contains("opacity=\"1\"")
                && l.contains("stroke-width=\"2\"")
        })
        .count()
}

fn has_text(svg: &str, text: &str) -> bool {
    svg.contains(&format!(">{text}<")) || svg.contains(&format!(">\n{text}\n<"))
}

#[tokio::test]
async fn every_chart_is_written_as_valid_png_and_svg() {
    // Two training-set sizes, so the train-size chart is drawn too.
    let (_fixture, r) = rendered(fixtures::scratch_wins(), false).await;
    let stems: BTreeSet<String> =
        r.files.iter().map(|f| f.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    let expected: BTreeSet<String> = [
        "accuracy_vs_unfrozen",
        "time_vs_unfrozen",
        "accuracy_vs_time",
        "learning_curves",
        "accuracy_vs_train_size",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(stems, expected);
    for f in &r.files {
        match f.extension().and_then(|e| e.to_str()) {
            Some("png") => {
                let (w, h) = assert_png(f);
                assert!(w >= 1000 && h >= 600, "{} is {w}x{h}", f.display());
            }
            Some("svg") => {
                let svg = read_svg(f);
                // Titles name the model and the dataset.
                assert!(svg.contains("bert-base-uncased@86b5e09 on glue/sst2"), "{}", f.display());
            }
            other => panic!("unexpected chart file type {other:?}"),
        }
    }
    assert_eq!(r.files.len(), 10);
}

#[tokio::test]
async fn accuracy_chart_draws_one_line_per_series_with_scratch_dashed() {
    let (_fixture, r) = rendered(fixtures::partial_freezing_wins(), false).await;
    let svg = read_svg(file(&r.files, "accuracy_vs_unfrozen.svg"));
    assert!(
        svg.contains("mean ± 95% CI over n = 2–3 seeds, each cell at its best validation lr"),
        "subtitle"
    );
    for label in ["pretrained, no MLM", "pretrained + task MLM", "scratch, no MLM"] {
        assert!(has_text(&svg, label), "legend lacks {label}");
    }
    // Series 0 and 1 (pretrained) are solid: one polyline for the data, one legend sample.
    assert_eq!(solid_polylines(&svg, series_colour(0)), 2);
    assert_eq!(solid_polylines(&svg, series_colour(1)), 2);
    // Scratch is dashed: many short pieces.
    assert!(solid_polylines(&svg, series_colour(2)) > 6, "scratch line should be dashed");
    assert_eq!(solid_polylines(&svg, series_colour(3)), 0, "no fourth series");
    // Pretrained points are circles: 5 cells each plus a legend marker, two series.
    assert_eq!(svg.matches("<circle").count(), 2 * (5 + 1));
    // One CI band per series.
    let bands =
        svg.lines().filter(|l| l.contains("<polygon") && l.contains("opacity=\"0.15\"")).count();
    assert_eq!(bands, 3);
}

#[tokio::test]
async fn show_all_lrs_adds_a_faint_line_per_lr() {
    let (_fixture, r) = rendered(fixtures::partial_freezing_wins(), true).await;
    let svg = read_svg(file(&r.files, "accuracy_vs_unfrozen.svg"));
    for series in 0..3 {
        let stroke = format!("stroke=\"{}\"", hex(series_colour(series)));
        let faint = svg
            .lines()
            .filter(|l| {
                l.contains("<polyline") && l.contains(&stroke) && l.contains("opacity=\"0.35\"")
            })
            .count();
        assert_eq!(faint, 3, "series {series}: one faint line per lr");
    }
    assert!(has_text(&svg, "every lr tried (mean)"));
}

#[tokio::test]
async fn time_chart_has_the_same_series() {
    let (_fixture, r) = rendered(fixtures::partial_freezing_wins(), false).await;
    let svg = read_svg(file(&r.files, "time_vs_unfrozen.svg"));
    assert!(has_text(&svg, "training time per job (s)"));
    assert_eq!(solid_polylines(&svg, series_colour(0)), 2);
    assert_eq!(solid_polylines(&svg, series_colour(1)), 2);
    assert!(solid_polylines(&svg, series_colour(2)) > 6);
}

#[tokio::test]
async fn pareto_chart_plots_every_selected_job_and_the_front() {
    let (_fixture, r) = rendered(fixtures::partial_freezing_wins(), false).await;
    let svg = read_svg(file(&r.files, "accuracy_vs_time.svg"));
    let pretrained_jobs: usize = r
        .cells
        .iter()
        .filter(|c| c.key.init == thaw_store::Init::Pretrained)
        .map(|c| c.selected_lr().unwrap().done)
        .sum();
    assert_eq!(
        pretrained_jobs, 30,
        "10 pretrained cells x 3 seeds at their selected lr (the failed seed's lr is not selected)"
    );
    let legend_circles = 2;
    assert_eq!(svg.matches("<circle").count(), pretrained_jobs + legend_circles);
    let scratch_jobs: usize = r
        .cells
        .iter()
        .filter(|c| c.key.init == thaw_store::Init::Scratch)
        .map(|c| c.selected_lr().unwrap().done)
        .sum();
    let triangles = svg
        .lines()
        .filter(|l| l.contains("<polygon") && l.contains(&hex(series_colour(2))))
        .count();
    assert_eq!(triangles, scratch_jobs + 1);
    assert_eq!(solid_polylines(&svg, BLACK), 2, "front plus its legend sample");
    assert!(has_text(&svg, "Pareto front"));
}

#[test]
fn pareto_front_is_a_staircase_of_improvements() {
    let points = [(10.0, 0.80), (20.0, 0.70), (30.0, 0.90), (15.0, 0.85), (15.0, 0.60)];
    let steps = pareto_steps(&points, 40.0);
    assert_eq!(
        steps,
        vec![(10.0, 0.80), (15.0, 0.80), (15.0, 0.85), (30.0, 0.85), (30.0, 0.90), (40.0, 0.90)]
    );
    assert!(pareto_steps(&[], 1.0).is_empty());
}

#[tokio::test]
async fn learning_curves_draw_one_line_per_cell_in_one_panel_per_series() {
    let (_fixture, r) = rendered(fixtures::partial_freezing_wins(), false).await;
    let svg = read_svg(file(&r.files, "learning_curves.svg"));
    for label in ["pretrained, no MLM", "pretrained + task MLM", "scratch, no MLM"] {
        assert!(has_text(&svg, label), "panel caption {label}");
    }
    let cells_with_curves = r.cells.iter().filter(|c| c.selected.is_some()).count();
    let unfrozen_values =
        r.cells.iter().map(|c| c.unfrozen_layers()).collect::<BTreeSet<_>>().len();
    let lines =
        svg.lines().filter(|l| l.contains("<polyline") && l.contains("stroke-width=\"2\"")).count();
    assert_eq!(
        lines,
        cells_with_curves + unfrozen_values,
        "a line per cell plus the legend samples"
    );
    let (_, height) = assert_png(file(&r.files, "learning_curves.png"));
    assert!(height >= 600);
}

#[tokio::test]
async fn train_size_chart_has_one_line_per_series() {
    let (_fixture, r) = rendered(fixtures::scratch_wins(), false).await;
    let svg = read_svg(file(&r.files, "accuracy_vs_train_size.svg"));
    assert_eq!(
        solid_polylines(&svg, series_colour(0)),
        2,
        "pretrained: data line and legend sample"
    );
    assert!(solid_polylines(&svg, series_colour(1)) > 2, "scratch: dashed");
    assert!(has_text(&svg, "training examples (log scale)"));
    assert!(
        has_text(&svg, "500") && has_text(&svg, "2000 (all)"),
        "ticks sit on the sizes that ran"
    );
    // The per-layer charts show the full training set only, and say so.
    let unfrozen = read_svg(file(&r.files, "accuracy_vs_unfrozen.svg"));
    assert!(unfrozen.contains("train size all"));
}

#[tokio::test]
async fn a_single_train_size_draws_no_train_size_chart() {
    let (_fixture, r) = rendered(fixtures::partial_freezing_wins(), false).await;
    assert!(!r.files.iter().any(|f| f.to_string_lossy().contains("train_size")));
    assert_eq!(r.files.len(), 8);
    assert!(!r.data.epochs.is_empty());
}

#[test]
fn depth_colours_run_from_dark_to_light() {
    let brightness = |c: RGBColor| c.0 as u32 + c.1 as u32 + c.2 as u32;
    let colours: Vec<RGBColor> = (0..=12).map(|u| curves::depth_colour(u, 12)).collect();
    assert!(colours.windows(2).all(|w| brightness(w[0]) <= brightness(w[1])), "{colours:?}");
    assert_ne!(colours[0], colours[12]);
}

#[tokio::test]
async fn a_full_size_grid_with_many_series_keeps_every_series_and_elides_long_names() {
    let (_fixture, r) = rendered(fixtures::wide_grid(), true).await;
    let svg = read_svg(file(&r.files, "accuracy_vs_unfrozen.svg"));
    for label in [
        "pretrained, no MLM",
        "pretrained + task MLM (MLM freeze 0)",
        "pretrained + task MLM (MLM freeze 6)",
        "scratch, no MLM",
        "scratch + task MLM",
    ] {
        assert!(has_text(&svg, label), "legend lacks {label}");
    }
    // The long corpus name does not fit the legend column and is cut with an ellipsis.
    assert!(
        svg.lines().any(|l| l.starts_with("pretrained + pubmed-abstracts") && l.ends_with('…')),
        "long label elided"
    );
    for series in 0..6 {
        assert!(solid_polylines(&svg, series_colour(series)) >= 2, "series {series} drawn");
    }
    // Every layer count from 0 to 12 is a tick.
    for u in 0..=12 {
        assert!(has_text(&svg, &u.to_string()), "tick {u}");
    }
    let curves = read_svg(file(&r.files, "learning_curves.svg"));
    assert!(has_text(&curves, "12 (full)") && has_text(&curves, "0 (head only)"));
    let (_, height) = assert_png(file(&r.files, "learning_curves.png"));
    assert!(height > 900, "three rows of panels need room: {height}");
}

#[tokio::test]
async fn the_accuracy_chart_names_each_cells_selected_lr_when_few_series() {
    // One series: each point carries its selected lr (validation picks 1e-5 in this fixture).
    let mut one_series = fixtures::overlapping();
    one_series.series.truncate(1);
    let (_fixture, r) = rendered(one_series, false).await;
    let svg = read_svg(file(&r.files, "accuracy_vs_unfrozen.svg"));
    assert_eq!(svg.matches("\nlr 1e-5\n").count(), 3, "one label per cell");
    assert!(!svg.contains("lr 3e-5"));
    // Two series: close lines would make the labels collide; report.md's table names the lrs.
    let (_fixture, r) = rendered(fixtures::overlapping(), false).await;
    assert!(!read_svg(file(&r.files, "accuracy_vs_unfrozen.svg")).contains("\nlr "));
}
