//! `report.md`: setup, recommendation, cell table, charts, perplexities and caveats.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

use serde_json::Value;
use thaw_analysis::{Baselines, MajorityBaseline, Setup};
use thaw_metrics::Metric;
use thaw_store::{SearchAction, StatusCounts, WorkStatus};

use crate::SweepData;
use crate::charts::ChartFile;
use crate::recommend::{self, perplexity_reading};
use thaw_analysis::Split;
use thaw_analysis::baseline::{describe, is_above};
use thaw_analysis::cells::{Cell, CellKey, format_lr, percent_with_ci};
use thaw_analysis::labels::{self, Names, train_size_text};

/// The whole report as markdown; chart links are relative to `report_dir`.
pub fn render(
    data: &SweepData,
    cells: &[Cell],
    split: Split,
    charts: &[ChartFile],
    report_dir: &Path,
    show_all_lrs: bool,
) -> String {
    let names = Names::new(cells);
    let mut md = String::new();
    let _ = writeln!(md, "# thaw report: {}\n", data.sweep.name);
    md.push_str(&progress_line(data));
    md.push_str(&setup_section(data, split));
    md.push_str(&recommendation_section(data, cells, &names, split));
    md.push_str(&crate::advice::section(data, cells));
    md.push_str(&crate::mlm_freeze::section(cells, &data.stages, split));
    md.push_str(&cells_section(cells, &names, split, data.baselines(), data.metric()));
    md.push_str(&charts_section(charts, report_dir));
    md.push_str(&search_section(data, cells, &names));
    md.push_str(&stages_section(data));
    md.push_str(&caveats_section(data, cells, &names, split));
    md.push_str(&method_section(split, data.metric()));
    if show_all_lrs {
        md.push_str(&all_lrs_section(cells, &names, data.metric()));
    }
    md
}

fn status_counts(data: &SweepData) -> StatusCounts {
    let mut counts = StatusCounts::default();
    for r in &data.rows {
        counts.add(r.status);
    }
    counts
}

fn progress_line(data: &SweepData) -> String {
    let c = status_counts(data);
    if c.total() > 0 && c.done == c.total() {
        format!("Sweep finished: all {} jobs done.\n\n", c.total())
    } else {
        format!(
            "**Partial results:** {} of {} jobs done, {} failed, {} pending, {} running. The numbers below cover finished jobs only and will move as the sweep goes on.\n\n",
            c.done,
            c.total(),
            c.failed,
            c.pending,
            c.running
        )
    }
}

fn setup_section(data: &SweepData, split: Split) -> String {
    let setup = data.setup.as_ref();
    let mut rows: Vec<(String, String)> = vec![
        ("Model".into(), data.model()),
        ("Dataset".into(), data.dataset()),
        ("Examples".into(), setup.map_or("not recorded".into(), examples_text)),
    ];
    if let Some(b) = data.baselines() {
        let name = if b.test.is_majority_class() { "Majority-class baseline" } else { "Baseline" };
        rows.push((name.into(), baseline_text(b)));
    }
    rows.extend(grid_rows(data));
    if let Some(grid) = setup.and_then(|s| s.grid.as_ref()) {
        rows.push(("Grid as configured".into(), typed_text(grid)));
    }
    if let Some(trainer) = setup.and_then(|s| s.trainer.as_ref()) {
        rows.push(("Trainer".into(), typed_text(trainer)));
    }
    rows.push((
        "Backend".into(),
        setup.and_then(|s| s.backend.clone()).unwrap_or_else(|| backends_from_rows(data)),
    ));
    rows.push(("Device".into(), devices_from_rows(data)));
    rows.push((
        "Hardware".into(),
        setup
            .and_then(|s| s.hardware.as_ref())
            .map_or("not recorded".to_string(), |h| format!("{} ({} cores)", h.cpu, h.cores)),
    ));
    if let Some(setup) = setup {
        rows.extend(other_setup_rows(setup));
    }
    rows.push((
        "Reported metric".into(),
        format!(
            "{split} {m}{}; the learning rate of each cell is always chosen on validation {m}",
            if data.metric() == Metric::Accuracy { " and macro-F1" } else { "" },
            m = data.metric().title()
        ),
    ));
    let mut md = String::from("## Setup\n\n| | |\n|---|---|\n");
    for (k, v) in rows {
        let _ = writeln!(md, "| {} | {} |", escape(&k), escape(&v));
    }
    md.push('\n');
    md
}

/// The setup's remaining fields, each in a row of its own when it was recorded.
fn other_setup_rows(setup: &Setup) -> Vec<(String, String)> {
    let rows = [
        ("Description", setup.description.clone()),
        ("Max length (tokens)", setup.max_length.map(|n| n.to_string())),
        ("Rules applied", setup.rules.clone()),
        ("Scratch with its own vocabulary", setup.scratch_model.as_ref().map(typed_text)),
        ("search", setup.search.as_ref().map(typed_text)),
    ];
    rows.into_iter().filter_map(|(label, text)| Some((label.to_string(), text?))).collect()
}

/// "always predicting 'fresh': test 60.4 % accuracy, macro-F1 37.7 % (48 examples); validation
/// ...", or the training mean, or the tag O, with the sweep's metric.
fn baseline_text(b: &Baselines) -> String {
    let split = |name: &str, m: &MajorityBaseline| {
        let extra = match (m.metric, m.rmse) {
            (Metric::Accuracy, _) => format!(", macro-F1 {:.1} %", 100.0 * m.macro_f1),
            (_, Some(rmse)) => format!(", RMSE {rmse:.3}"),
            _ => String::new(),
        };
        format!(
            "{name} {:.1} % {}{extra} ({} examples)",
            100.0 * m.metric_value,
            m.metric.title(),
            m.examples
        )
    };
    format!(
        "always predicting {}: {}; {}",
        b.test.predictor(),
        split("test", &b.test),
        split("validation", &b.validation)
    )
}

fn examples_text(setup: &Setup) -> String {
    let parts: Vec<String> = [
        ("train", setup.train_examples),
        ("validation", setup.validation_examples),
        ("test", setup.test_examples),
    ]
    .iter()
    .filter_map(|(label, n)| Some(format!("{label} {}", (*n)?)))
    .collect();
    if parts.is_empty() { "not recorded".into() } else { parts.join(", ") }
}

/// The grid as the plan actually holds it (what ran, whatever the TOML said).
fn grid_rows(data: &SweepData) -> Vec<(String, String)> {
    let rows = &data.rows;
    let join = |values: BTreeSet<String>| values.into_iter().collect::<Vec<_>>().join(", ");
    let layers: BTreeSet<i64> = rows.iter().map(|r| r.num_layers).collect();
    let mut unfrozen: Vec<i64> =
        rows.iter().map(|r| r.unfrozen_layers).collect::<BTreeSet<_>>().into_iter().collect();
    unfrozen.sort();
    let mut lrs: Vec<f64> = rows.iter().map(|r| r.lr).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    let seeds: BTreeSet<i64> = rows.iter().map(|r| r.seed).collect();
    let intermediates = join(
        rows.iter()
            .map(|r| match r.mlm_freeze {
                Some(f) if r.intermediate != "none" => {
                    format!("{} (MLM freeze {f})", r.intermediate)
                }
                _ => r.intermediate.clone(),
            })
            .collect(),
    );
    vec![
        ("Encoder layers".into(), join(layers.iter().map(i64::to_string).collect())),
        ("Init".into(), join(rows.iter().map(|r| r.init.to_string()).collect())),
        ("Intermediate MLM".into(), intermediates),
        (
            "Unfrozen layers".into(),
            unfrozen.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
        ),
        ("Learning rates".into(), lrs.iter().map(|&l| format_lr(l)).collect::<Vec<_>>().join(", ")),
        (
            "Seeds".into(),
            format!(
                "{} ({})",
                seeds.len(),
                seeds.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ),
        ),
        (
            "Training-set sizes".into(),
            join(rows.iter().map(|r| train_size_text(r.train_size)).collect()),
        ),
        ("Pooling".into(), join(rows.iter().map(|r| r.pooling.clone()).collect())),
        ("Jobs in the plan".into(), rows.len().to_string()),
    ]
}

fn backends_from_rows(data: &SweepData) -> String {
    let seen: BTreeSet<&str> = data.rows.iter().filter_map(|r| r.backend.as_deref()).collect();
    if seen.is_empty() {
        "not recorded".into()
    } else {
        seen.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// The devices the results came from, each with its backend ("wgpu on NVIDIA H100 80GB").
fn devices_from_rows(data: &SweepData) -> String {
    let seen: BTreeSet<String> = data
        .rows
        .iter()
        .filter_map(|r| Some(format!("{} on {}", r.backend.as_deref()?, r.device.as_deref()?)))
        .collect();
    if seen.is_empty() {
        "not recorded".into()
    } else {
        seen.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// A recorded setup field as a short readable string (as [`json_text`] writes its JSON).
fn typed_text<T: serde::Serialize>(value: &T) -> String {
    json_text(&serde_json::to_value(value).unwrap_or(Value::Null))
}

/// JSON as a short readable string: objects become "key: value; ...".
fn json_text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(json_text).collect::<Vec<_>>().join(", "),
        Value::Object(map) => {
            map.iter().map(|(k, v)| format!("{k}: {}", json_text(v))).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    }
}

/// Table cells must not break the table.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn train_sizes(cells: &[Cell]) -> Vec<Option<i64>> {
    let sizes: BTreeSet<Option<i64>> = cells.iter().map(|c| c.key.train_size).collect();
    // "all" (None) reads best last, after the explicit sizes.
    let (all, explicit): (Vec<_>, Vec<_>) = sizes.into_iter().partition(|s| s.is_none());
    explicit.into_iter().chain(all).collect()
}

fn recommendation_section(data: &SweepData, cells: &[Cell], names: &Names, split: Split) -> String {
    let mut md = String::from("## Recommendation\n\n");
    let sizes = train_sizes(cells);
    for size in &sizes {
        if sizes.len() > 1 {
            let _ = writeln!(md, "### Training-set size {}\n", train_size_text(*size));
        }
        let paragraphs =
            recommend::recommend(&cells_of_size(cells, *size), names, split, data.baselines());
        for paragraph in paragraphs {
            let _ = writeln!(md, "- {paragraph}");
        }
        md.push('\n');
    }
    if let Some(p) = recommend::perplexity_paragraph(&data.stages) {
        let _ = writeln!(md, "{p}\n");
    }
    md
}

fn cells_section(
    cells: &[Cell],
    names: &Names,
    split: Split,
    baselines: Option<&Baselines>,
    metric: Metric,
) -> String {
    let several_sizes = train_sizes(cells).len() > 1;
    let shown_baseline = baselines.map(|b| match split {
        Split::Test => &b.test,
        Split::Validation => &b.validation,
    });
    let mut md = format!(
        "## Cells\n\nEach row is one configuration at its selected learning rate (best mean validation {m}). \
         {values} in percent ± the 95% CI half-width over seeds (Student t; a single seed of a metric other than \
         accuracy: over the examples, by bootstrap); n counts finished seeds, failed and pending seeds are not in the means.{}\n\n",
        shown_baseline.map_or(String::new(), |b| format!(
            " \"{}\" marks a cell whose interval reaches down to {} on the {split} split.",
            not_above(b),
            describe(b)
        )),
        m = metric.title(),
        values = if metric == Metric::Accuracy {
            format!("Accuracy and macro-F1 are {split}-set means")
        } else {
            format!("{} is the {split}-set mean", first_upper(metric.title()))
        },
    );
    let size_header = if several_sizes { " Train size |" } else { "" };
    // Macro-F1 is a second column only where it is not the metric and exists (classification).
    let with_macro_f1 = metric == Metric::Accuracy;
    let _ = writeln!(
        md,
        "| Series | Unfrozen layers |{size_header} {} {} % |{} n | Failed | Pending | Selected lr | lr note | Train time s |",
        labels_capitalised(split),
        metric.title(),
        if with_macro_f1 { " Macro-F1 % |" } else { "" }
    );
    let _ = writeln!(
        md,
        "|---|---|{}---|{}---|---|---|---|---|---|",
        if several_sizes { "---|" } else { "" },
        if with_macro_f1 { "---|" } else { "" }
    );
    for cell in cells {
        let s = cell.summary();
        let size = if several_sizes {
            format!(" {} |", train_size_text(s.train_size))
        } else {
            String::new()
        };
        let time = match (s.train_seconds_mean, s.train_seconds_ci95) {
            (Some(m), Some(h)) => format!("{} ± {}", seconds_text(m), seconds_text(h)),
            (Some(m), None) => seconds_text(m),
            _ => "-".into(),
        };
        let macro_f1 = if with_macro_f1 {
            format!(" {} |", percent_with_ci(s.macro_f1_mean, s.macro_f1_ci95, s.n))
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "| {} | {} |{size} {} |{macro_f1} {} | {} | {} | {} | {} | {} |",
            escape(&names.series(&cell.key.series())),
            labels::unfrozen_text(s.unfrozen_layers, s.num_layers).replace(" layers unfrozen", ""),
            accuracy_text(cell, shown_baseline),
            s.n,
            s.failed,
            s.unfinished,
            s.selected_lr.map_or("-".into(), format_lr),
            s.edge.map_or(String::new(), |e| e.to_string()),
            time
        );
    }
    md.push('\n');
    md
}

/// The displayed accuracy with its interval, marked when the interval reaches down to the
/// majority class of the displayed split.
fn accuracy_text(cell: &Cell, baseline: Option<&MajorityBaseline>) -> String {
    let s = cell.summary();
    let text = match cell.metric() {
        Some(e) if e.ci95.is_none() && e.examples_ci95.is_some() => format!(
            "{:.1} ± {:.1} (n=1, bootstrap over examples)",
            100.0 * e.mean,
            100.0 * e.examples_ci95.unwrap_or_default()
        ),
        _ => percent_with_ci(s.metric_mean, s.metric_ci95, s.n),
    };
    match (cell.metric(), baseline) {
        (Some(shown), Some(b)) if !is_above(&shown, b) => format!("{text} ({})", not_above(b)),
        _ => text,
    }
}

/// `text` with its first letter upper-case ("entity F1" -> "Entity F1").
fn first_upper(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or(String::new(), |c| c.to_uppercase().chain(chars).collect())
}

/// The table's mark for a cell not above the task's baseline.
fn not_above(baseline: &MajorityBaseline) -> &'static str {
    if baseline.is_majority_class() { "not above majority" } else { "not above baseline" }
}

fn labels_capitalised(split: Split) -> &'static str {
    match split {
        Split::Test => "Test",
        Split::Validation => "Validation",
    }
}

fn charts_section(charts: &[ChartFile], report_dir: &Path) -> String {
    let mut md = String::from("## Charts\n\n");
    for chart in charts {
        let png = relative(&chart.png, report_dir);
        let svg = relative(&chart.svg, report_dir);
        let _ = writeln!(
            md,
            "### {}\n\n![{}]({png})\n\n{} ([SVG]({svg}))\n",
            chart.title, chart.title, chart.caption
        );
    }
    md
}

fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// Seconds with one decimal, or two significant digits below one second (head-only jobs on
/// cached activations train in hundredths of a second; "0.0" would hide that they ran).
fn seconds_text(s: f64) -> String {
    if s >= 1.0 || s == 0.0 { format!("{s:.1}") } else { format!("{s:.2}") }
}

/// The adaptive search's story: what it ran, what it pruned and when, which cells got more
/// seeds and why it stopped. Empty for a grid sweep.
fn search_section(data: &SweepData, cells: &[Cell], names: &Names) -> String {
    let Some(setup) = &data.setup else { return String::new() };
    let Some(search) = &setup.search else { return String::new() };
    let mut md = String::from("## How the search spent its compute\n\n");
    let mut rules = Vec::new();
    if let Some(h) = search.halving {
        let epochs = setup.trainer.as_ref().map_or(0, |t| t.epochs);
        let seeds = h.rung_seeds;
        rules.push(format!(
            "learning rates by successive halving: within each cell every lr trained a rung (the first {} of {epochs} epochs, on the cell's first {}), and the best 1/{} by rung validation {} went on to full training",
            h.rung_epochs,
            if seeds == 1 { "seed".to_string() } else { format!("{seeds} seeds") },
            h.rate,
            setup.metric.title()
        ));
    }
    if let Some(r) = search.seeds {
        let mut race = format!(
            "seeds raced: every cell started with {} seeds; while the leader (best validation mean) could not be told apart from other cells, it and those cells got one more seed each, up to {}",
            r.min, r.max
        );
        if let Some(b) = search.budget_minutes {
            race += &format!(", within {b:.0} minutes of worker time");
        }
        rules.push(race);
    }
    let _ = writeln!(
        md,
        "Adaptive search: {}. Every decision read validation numbers only.\n",
        rules.join("; ")
    );
    let rungs = data.rungs.iter().filter(|r| r.status == WorkStatus::Done).count();
    let full = data.rows.iter().filter(|r| r.status == WorkStatus::Done).count();
    let grid = search.grid_jobs;
    let _ = writeln!(
        md,
        "It ran {full} full jobs and {rungs} rung jobs, {:.1} worker-minutes in all (each job from its claim to its stored result); the full grid of the same learning rates and seeds is {grid} full jobs.\n",
        data.job_seconds / 60.0
    );
    if data.decisions.is_empty() {
        md.push_str("No decision has been made yet.\n\n");
        return md;
    }
    md.push_str("| Round | Decision | Cell | lr / seed | Why |\n|---|---|---|---|---|\n");
    let label = |cell_json: &str| -> String {
        let key: Option<CellKey> = serde_json::from_str(cell_json).ok();
        match key.and_then(|k| cells.iter().find(|c| c.key == k)) {
            Some(cell) => names.cell(cell),
            None if cell_json.is_empty() => "(the search)".to_string(),
            None => cell_json.to_string(),
        }
    };
    for d in data.decisions.iter().filter(|d| d.action != SearchAction::Stop) {
        let what = match (d.lr, d.seed) {
            (Some(lr), _) => format!("lr {}", format_lr(lr)),
            (None, Some(seed)) => format!("seed {seed}"),
            _ => String::new(),
        };
        let action = d.action.done_text();
        let _ = writeln!(
            md,
            "| {} | {action} | {} | {what} | {} |",
            d.round,
            escape(&label(&d.cell)),
            escape(&d.reason)
        );
    }
    md.push('\n');
    match data.decisions.iter().rev().find(|d| d.action == SearchAction::Stop) {
        Some(stop) => {
            let _ = writeln!(md, "**Why it stopped** (round {}): {}.\n", stop.round, stop.reason);
        }
        None => md.push_str("The search has not stopped yet: run the same command to go on.\n\n"),
    }
    md
}

fn stages_section(data: &SweepData) -> String {
    if data.stages.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "## Intermediate MLM stages\n\nMasked-LM perplexity on held-out text of each stage, before and after intermediate training. \
         Before-MLM perplexity of the pretrained model hints at how far the text is from its pretraining data \
         (heuristic: below 10 close, 10–50 moderate, above 50 far; tokenizer and masking rate shift these numbers).\n\n\
         | Stage | Init | MLM freeze | Status | Perplexity before | Perplexity after | Characters per token | Reading |\n|---|---|---|---|---|---|---|---|\n",
    );
    let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    for s in &data.stages {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            escape(&s.name),
            s.init,
            s.mlm_freeze,
            s.status,
            num(s.perplexity_before),
            num(s.perplexity_after),
            num(s.heldout_chars_per_token),
            perplexity_reading(s)
        );
    }
    md.push('\n');
    md
}

fn caveats_section(data: &SweepData, cells: &[Cell], names: &Names, split: Split) -> String {
    let mut caveats: Vec<String> = Vec::new();
    let list = |picked: Vec<String>| -> String {
        let more = picked.len().saturating_sub(6);
        let mut text = picked.into_iter().take(6).collect::<Vec<_>>().join("; ");
        if more > 0 {
            let _ = write!(text, "; and {more} more");
        }
        text
    };
    let few: Vec<String> = cells
        .iter()
        .filter(|c| c.selected.is_some())
        .filter(|c| c.selected_lr().is_some_and(|l| l.done < 3))
        .map(|c| format!("{} (n = {})", names.cell(c), c.selected_lr().map_or(0, |l| l.done)))
        .collect();
    if !few.is_empty() {
        caveats.push(format!(
            "{} cell(s) have fewer than 3 finished seeds at their selected lr, so their intervals are wide (n = 2) or missing (n = 1): {}.",
            few.len(),
            list(few)
        ));
    }
    if overlapping_top(cells) {
        caveats.push("The top cells' validation 95% CIs overlap: the ranking among them is not settled (see the recommendation).".into());
    }
    let failed: Vec<String> = cells
        .iter()
        .filter_map(|c| failures(c).map(|f| format!("{} ({f})", names.cell(c))))
        .collect();
    if !failed.is_empty() {
        caveats.push(format!(
            "{} cell(s) lost seeds to failed jobs (excluded from the means; an lr with a failed seed is selected only when every lr has one): {}.{}",
            failed.len(),
            list(failed),
            first_error(data)
        ));
    }
    let pending: Vec<String> = cells
        .iter()
        .filter(|c| c.failed_and_unfinished().1 > 0)
        .map(|c| format!("{} ({} pending)", names.cell(c), c.failed_and_unfinished().1))
        .collect();
    if !pending.is_empty() {
        caveats.push(format!("{} cell(s) still have pending or running seeds at the selected lr; their numbers will change: {}.", pending.len(), list(pending)));
    }
    let empty: Vec<String> =
        cells.iter().filter(|c| c.selected.is_none()).map(|c| names.cell(c)).collect();
    if !empty.is_empty() {
        caveats.push(format!(
            "{} cell(s) have no finished job at all and are missing from the comparison: {}.",
            empty.len(),
            list(empty)
        ));
    }
    let edges: Vec<String> =
        cells.iter().filter_map(|c| Some(format!("{} ({})", names.cell(c), c.edge?))).collect();
    if !edges.is_empty() {
        caveats.push(format!(
            "{} cell(s) picked the smallest or largest lr tried, so a better lr may lie outside the grid: {}.",
            edges.len(),
            list(edges)
        ));
    }
    if split == Split::Validation {
        caveats.push(format!("Displayed numbers are validation {m}, the split that also chose each lr, so they are optimistic; use test {m} for final claims.", m = data.metric().title()));
    }
    let mut md = String::from("## Caveats\n\n");
    if caveats.is_empty() {
        md.push_str("None found: every cell has at least 3 finished seeds, no failures or pending jobs, the top cell is separated and no lr sits at the edge of its grid.\n");
    }
    for c in caveats {
        let _ = writeln!(md, "- {c}");
    }
    md.push('\n');
    md
}

/// "2 failed at lr 1e-4" over every lr of the cell; None when nothing failed.
fn failures(cell: &Cell) -> Option<String> {
    let at: Vec<String> = cell
        .lrs
        .iter()
        .filter(|l| l.failed > 0)
        .map(|l| format!("{} at lr {}", l.failed, format_lr(l.lr)))
        .collect();
    (!at.is_empty()).then(|| format!("failed: {}", at.join(", ")))
}

fn overlapping_top(cells: &[Cell]) -> bool {
    train_sizes(cells).iter().any(|size| recommend::top_cells_overlap(&cells_of_size(cells, *size)))
}

fn cells_of_size(cells: &[Cell], size: Option<i64>) -> Vec<&Cell> {
    cells.iter().filter(|c| c.key.train_size == size).collect()
}

fn first_error(data: &SweepData) -> String {
    data.rows
        .iter()
        .filter(|r| r.status == WorkStatus::Failed)
        .find_map(|r| r.error.as_deref())
        .map_or(String::new(), |e| {
            format!(" First error: \"{}\".", escape(&e.chars().take(120).collect::<String>()))
        })
}

/// How the baseline is defined and cleared, for the task of `metric`.
fn baseline_rule(metric: Metric) -> &'static str {
    match metric {
        Metric::Accuracy => {
            "The majority-class baseline is always predicting the split's most frequent label: a cell counts as having \
             learned something only when its 95% interval lies above that rate (one seed of accuracy: the binomial interval \
             over the split's examples stands in for the missing one)."
        }
        Metric::MacroF1 => {
            "The majority-class baseline is always predicting the split's most frequent label: a cell counts as having \
             learned something only when its 95% interval lies above that macro-F1 (one seed: the interval of a bootstrap \
             over the split's examples, 1,000 resamples, stands in for the missing one)."
        }
        _ => {
            "The baseline is the task's trivial predictor (the training mean for scores: no correlation; every word O for \
             tags: no entity): a cell counts as having learned something only when its 95% interval over seeds lies above \
             the baseline's score. A single seed gets the interval of a bootstrap over the split's examples (1,000 resamples); \
             a result stored without its per-example record has none and is never counted above it."
        }
    }
}

fn method_section(split: Split, metric: Metric) -> String {
    let m = metric.title();
    let baseline = baseline_rule(metric);
    format!(
        "## How cells are scored\n\n\
         A cell is one (init, intermediate, MLM freeze, pooling, freeze, training-set size) configuration; its jobs differ by learning rate and seed. \
         For each lr the finished seeds are averaged. An lr with a failed seed (usually a diverged run) ranks below every lr without one; \
         among the rest, the lr with the best mean validation {m} is selected; ties go to the higher mean \
         validation macro-F1 (classification), then the lower mean validation loss, then the smaller lr. Test metrics never take part in the choice. \
         The cell then reports {split} {m} and training time at that lr: the mean and the 95% Student-t interval \
         over seeds (df = n − 1; one seed gives none, except the resampled one below). A difference between two cells (MLM or not, scratch or pretrained) \
         is paired over the seeds both cells finished when they share two or more (the Student-t interval of the per-seed differences: \
         seeds share the training subsample and data order, so that interval is the tighter honest one); with one shared seed it is \
         paired over that seed's examples (the split's own sampling error: for accuracy the normal interval of the mean per-example \
         difference, the interval McNemar's test inverts; for another metric a paired bootstrap, both cells scored on the same 1,000 \
         resamples of the examples, with the normal interval of the resampled differences), so a one-seed sweep still gets an interval; \
         with no shared seed it is Welch's interval on the \
         two means. Over seeds, the interval leaves out the test split's own sampling error (every seed sees the same examples). \
         Two cells are told apart when the paired interval of their validation {m} excludes zero (without a shared seed: \
         when their own intervals do not overlap); the adaptive search stops racing on the same rule. \
         The recommendation ranks cells, decides which ones it cannot tell apart and picks the cheapest alternative and the \
         cells it compares for MLM and scratch on validation {m} too; the numbers it quotes are {split} {m}. \
         An lr flagged \"edge\" is the smallest or largest of those tried for the cell. \
         {baseline} The recommendation applies this on validation, never names a cell below it best, \
         cheapest or competitive, and says so when no cell clears it; the tables mark cells that do not clear the {split} split's rate. \
         Training time is a job's training steps plus an equal share of the frozen-prefix pass it used (one cached pass serves \
         every seed and lr of a frozen depth, so each of those jobs pays its share); evaluation is not included.\n\n"
    )
}

fn all_lrs_section(cells: &[Cell], names: &Names, metric: Metric) -> String {
    let mut md = format!(
        "## Every learning rate\n\n| Cell | lr | Done | Failed | Pending | Validation {m} % | Reported {m} % | Selected |\n|---|---|---|---|---|---|---|---|\n",
        m = metric.title()
    );
    for cell in cells {
        for (i, lr) in cell.lrs.iter().enumerate() {
            let est = |e: Option<thaw_analysis::stats::Estimate>| {
                e.map_or("-".to_string(), |e| percent_with_ci(Some(e.mean), e.ci95, e.n))
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                escape(&names.cell(cell)),
                format_lr(lr.lr),
                lr.done,
                lr.failed,
                lr.unfinished,
                est(lr.val_metric),
                est(lr.metric),
                if cell.selected == Some(i) { "yes" } else { "" }
            );
        }
    }
    md.push('\n');
    md
}
