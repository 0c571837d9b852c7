//! thaw-report: turns a sweep stored by `thaw-store` into charts (PNG and SVG), a `report.md`
//! with a recommendation drawn from the numbers, and the tables `thaw results` and `thaw
//! status` print.
//!
//! It reads only the store, never a running sweep's memory, so any finished or half-finished
//! sweep can be reported. Each cell's learning rate is picked on validation accuracy alone
//! (see `thaw_analysis::cells`); test numbers are only ever reported.
//!
//! ```no_run
//! # async fn demo(store: &thaw_store::Store) -> anyhow::Result<()> {
//! use thaw_analysis::Split;
//! use thaw_report::{ReportOptions, write_report};
//! let options = ReportOptions { out_dir: "results/my-sweep".into(), split: Split::Test, show_all_lrs: false };
//! let files = write_report(store, "my-sweep", &options).await?;
//! println!("{}", files.report_md.display());
//! # Ok(()) }
//! ```

pub mod advice;
pub mod charts;
pub mod html;
pub mod markdown;
pub mod mlm_freeze;
pub mod recommend;
pub mod status;
pub mod tables;

use std::collections::HashMap;
use std::path::PathBuf;
use thaw_metrics::Metric;

use anyhow::{Context, Result};
use thaw_analysis::Split;
use thaw_analysis::advice::Forecast;
use thaw_analysis::cells::{self};
use thaw_analysis::{Baselines, Setup};
use thaw_store::{DecisionRow, EpochRow, JobResultRow, RungRow, StageRow, Store, SweepRow};

#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Receives `report.md` and a `charts/` folder.
    pub out_dir: PathBuf,
    /// Which split's accuracy is displayed (lrs are always chosen on validation).
    pub split: Split,
    /// Also draw every lr faintly and list every (cell, lr) in the report.
    pub show_all_lrs: bool,
}

impl ReportOptions {
    pub fn new(out_dir: impl Into<PathBuf>) -> ReportOptions {
        ReportOptions { out_dir: out_dir.into(), split: Split::Test, show_all_lrs: false }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    pub report_md: PathBuf,
    /// The same report as one self-contained page (charts inline).
    pub report_html: PathBuf,
    /// Every chart file written, PNG and SVG.
    pub charts: Vec<PathBuf>,
}

/// Everything a report reads from the store about one sweep.
#[derive(Debug, Clone)]
pub struct SweepData {
    pub sweep: SweepRow,
    /// The sweep as planned; None for a sweep registered before setups were recorded.
    pub setup: Option<Setup>,
    pub rows: Vec<JobResultRow>,
    pub epochs: Vec<EpochRow>,
    pub stages: Vec<StageRow>,
    /// The adaptive search's rung jobs and decisions (empty for a grid).
    pub rungs: Vec<RungRow>,
    pub decisions: Vec<DecisionRow>,
    /// Worker time the sweep's done jobs used, rungs included, in seconds.
    pub job_seconds: f64,
    /// The latest forecast of `thaw advise` for the sweep, if any.
    pub advice: Option<Forecast>,
}

impl SweepData {
    /// The metric the sweep is judged by (accuracy for setups from before tasks).
    pub fn metric(&self) -> Metric {
        self.setup.as_ref().map_or(Metric::Accuracy, |s| s.metric)
    }

    pub async fn load(store: &Store, sweep: &str) -> Result<SweepData> {
        let sweep_row = store.sweep(Some(sweep)).await?;
        let rows = store
            .job_results(sweep)
            .await
            .with_context(|| format!("reading the jobs of sweep '{sweep}'"))?;
        let epochs = store
            .epochs(sweep)
            .await
            .with_context(|| format!("reading the epochs of sweep '{sweep}'"))?;
        let stages = store
            .stages(sweep)
            .await
            .with_context(|| format!("reading the stages of sweep '{sweep}'"))?;
        let rungs = store.rung_results(sweep).await?;
        let decisions = store.decisions(sweep).await?;
        let job_seconds = store.job_seconds(sweep).await?;
        // A forecast stored by another version that no longer parses is left out.
        let advice = store.latest_advice(sweep).await?.and_then(|j| serde_json::from_str(&j).ok());
        let setup = Setup::parse(&sweep_row.setup_json);
        Ok(SweepData {
            sweep: sweep_row,
            setup,
            rows,
            epochs,
            stages,
            rungs,
            decisions,
            job_seconds,
            advice,
        })
    }

    /// The training examples of the sweep's largest training-set size (the whole split without
    /// a train_size axis), when the orchestrator recorded it.
    fn full_train_size(&self) -> Option<i64> {
        self.setup.as_ref()?.train_examples.map(|n| n as i64)
    }

    /// The majority-class baselines the orchestrator recorded at plan time (None for sweeps
    /// planned before baselines existed).
    pub fn baselines(&self) -> Option<&Baselines> {
        self.setup.as_ref()?.baseline.as_ref()
    }

    pub fn model(&self) -> String {
        self.setup
            .as_ref()
            .and_then(|s| s.model.clone())
            .unwrap_or_else(|| self.sweep.model.clone())
    }

    pub fn dataset(&self) -> String {
        self.setup
            .as_ref()
            .and_then(|s| s.dataset.clone())
            .unwrap_or_else(|| self.sweep.dataset.clone())
    }
}

/// Reads sweep `sweep` from the store and writes `report.md` plus charts under `options.out_dir`.
pub async fn write_report(
    store: &Store,
    sweep: &str,
    options: &ReportOptions,
) -> Result<ReportFiles> {
    let data = SweepData::load(store, sweep).await?;
    render_report(&data, options)
}

/// The synchronous half of [`write_report`], for data already loaded.
pub fn render_report(data: &SweepData, options: &ReportOptions) -> Result<ReportFiles> {
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("creating {}", options.out_dir.display()))?;
    let cells = cells::cells(&data.rows, options.split);
    let (model, dataset) = (data.model(), data.dataset());
    let chart_data = chart_data(data, &cells, &model, &dataset, options);
    let chart_files = if cells.iter().any(|c| c.selected.is_some()) {
        charts::render_all(&chart_data, &options.out_dir.join("charts"))?
    } else {
        // Nothing finished yet: an empty chart says less than the report's own sentence.
        Vec::new()
    };
    let text = markdown::render(
        data,
        &cells,
        options.split,
        &chart_files,
        &options.out_dir,
        options.show_all_lrs,
    );
    let report_md = options.out_dir.join("report.md");
    std::fs::write(&report_md, &text)
        .with_context(|| format!("writing {}", report_md.display()))?;
    let mut svgs = HashMap::new();
    for chart in &chart_files {
        let svg = std::fs::read_to_string(&chart.svg)
            .with_context(|| format!("reading {}", chart.svg.display()))?;
        svgs.insert(chart.stem.to_string(), svg);
    }
    let report_html = options.out_dir.join("report.html");
    let page = html::page(&format!("thaw report: {}", data.sweep.name), &html::body(&text, &svgs));
    std::fs::write(&report_html, page)
        .with_context(|| format!("writing {}", report_html.display()))?;
    Ok(ReportFiles {
        report_md,
        report_html,
        charts: chart_files.iter().flat_map(|c| [c.png.clone(), c.svg.clone()]).collect(),
    })
}

/// The report's body as HTML with its charts inline, drawn in memory (nothing is written):
/// what `thaw serve` shows. Chart links point at `charts/STEM.svg` beside the page.
pub fn report_body_html(data: &SweepData, options: &ReportOptions) -> Result<String> {
    let cells = cells::cells(&data.rows, options.split);
    let (model, dataset) = (data.model(), data.dataset());
    let chart_data = chart_data(data, &cells, &model, &dataset, options);
    let svgs = if cells.iter().any(|c| c.selected.is_some()) {
        charts::render_svgs(&chart_data)?
    } else {
        Vec::new()
    };
    let chart_files: Vec<charts::ChartFile> = svgs
        .iter()
        .map(|c| charts::ChartFile {
            stem: c.stem,
            title: c.title.clone(),
            caption: c.caption.clone(),
            png: PathBuf::from(format!("charts/{}.png", c.stem)),
            svg: PathBuf::from(format!("charts/{}.svg", c.stem)),
        })
        .collect();
    let text = markdown::render(
        data,
        &cells,
        options.split,
        &chart_files,
        std::path::Path::new(""),
        options.show_all_lrs,
    );
    let svgs: HashMap<String, String> =
        svgs.into_iter().map(|c| (c.stem.to_string(), c.svg)).collect();
    Ok(html::body(&text, &svgs))
}

/// One chart of the sweep as SVG text, by its stem; None when the sweep has no such chart.
pub fn chart_svg(data: &SweepData, options: &ReportOptions, stem: &str) -> Result<Option<String>> {
    let cells = cells::cells(&data.rows, options.split);
    let (model, dataset) = (data.model(), data.dataset());
    let chart_data = chart_data(data, &cells, &model, &dataset, options);
    Ok(charts::render_svgs(&chart_data)?.into_iter().find(|c| c.stem == stem).map(|c| c.svg))
}

fn chart_data<'a>(
    data: &'a SweepData,
    cells: &'a [cells::Cell],
    model: &'a str,
    dataset: &'a str,
    options: &ReportOptions,
) -> charts::ChartData<'a> {
    charts::ChartData {
        model,
        dataset,
        split: options.split,
        cells,
        rows: &data.rows,
        epochs: &data.epochs,
        show_all_lrs: options.show_all_lrs,
        full_train_size: data.full_train_size(),
        metric: data.metric(),
        baseline: data.baselines().map(|b| match options.split {
            Split::Test => &b.test,
            Split::Validation => &b.validation,
        }),
    }
}

#[cfg(test)]
mod tests;
