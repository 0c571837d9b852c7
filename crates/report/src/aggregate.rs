//! Per-cell statistics from the `job_results` rows, with a learning-rate selection that never
//! looks at test metrics.
//!
//! A *cell* is one configuration: (init, intermediate, mlm_freeze, pooling, freeze, train_size). Its jobs
//! differ only by learning rate and seed. For each cell:
//!
//! 1. every lr is summarised over its *done* seeds (failed, pending and running seeds are
//!    counted but never enter a mean);
//! 2. an lr with a failed seed (usually a diverged run) ranks below every lr without one, so
//!    it cannot win on the seeds that survived; among the rest, the lr with the best mean
//!    **validation** accuracy is selected; ties (means within
//!    [`TIE_TOLERANCE`]) go to the higher mean validation macro-F1, then the lower mean
//!    validation loss, then the smaller lr (the more conservative choice);
//! 3. the cell reports the displayed metric (test by default), macro-F1 and training time at
//!    that lr: mean and Student-t 95% CI over seeds (no interval with a single seed).
//!
//! Picking the lr on test accuracy would let the test set choose the winner and bias every
//! reported number upwards; that is why the test columns are never read during selection.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thaw_store::{Init, JobResultRow, WorkStatus, parse_correct};

use crate::stats::{Estimate, SeedScores};

/// Two mean validation scores closer than this are a tie (they come from the same few
/// numbers averaged in different orders, so exact float equality is too strict).
pub const TIE_TOLERANCE: f64 = 1e-9;

/// Which split's accuracy and macro-F1 are displayed. The lr is always picked on validation.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    #[default]
    Test,
    Validation,
}

impl Metric {
    pub fn accuracy(self, row: &JobResultRow) -> Option<f64> {
        match self {
            Metric::Test => row.test_accuracy,
            Metric::Validation => row.val_accuracy,
        }
    }

    pub fn macro_f1(self, row: &JobResultRow) -> Option<f64> {
        match self {
            Metric::Test => row.test_macro_f1,
            Metric::Validation => row.val_macro_f1,
        }
    }

    /// Which examples of the split a job predicted right, as stored.
    pub fn correct(self, row: &JobResultRow) -> Option<&str> {
        match self {
            Metric::Test => row.test_correct.as_deref(),
            Metric::Validation => row.val_correct.as_deref(),
        }
    }

    /// "test" or "validation".
    pub fn split(self) -> &'static str {
        match self {
            Metric::Test => "test",
            Metric::Validation => "validation",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.split())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "test" => Ok(Metric::Test),
            "validation" | "val" => Ok(Metric::Validation),
            other => Err(format!("unknown metric '{other}': use test or validation")),
        }
    }
}

/// The selected lr sits at an end of the lrs tried, so a better one may lie beyond it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Edge {
    #[serde(rename = "edge: try smaller")]
    TrySmaller,
    #[serde(rename = "edge: try larger")]
    TryLarger,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Edge::TrySmaller => "edge: try smaller",
            Edge::TryLarger => "edge: try larger",
        })
    }
}

/// One configuration of the sweep; its jobs differ only by lr and seed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellKey {
    pub init: Init,
    pub intermediate: String,
    pub mlm_freeze: Option<i64>,
    /// "mean" or "cls": a different head input is a different strategy, never averaged together.
    pub pooling: String,
    pub freeze: i64,
    pub train_size: Option<i64>,
    /// The fine-tuning strategy by its sweep-file name; "plain" (a fixed depth) is left out
    /// of the JSON, so cells stored by the search before strategies existed still match.
    #[serde(default = "plain", skip_serializing_if = "is_plain")]
    pub strategy: String,
}

fn plain() -> String {
    "plain".into()
}

fn is_plain(strategy: &str) -> bool {
    strategy == "plain"
}

impl CellKey {
    pub fn of(row: &JobResultRow) -> CellKey {
        CellKey {
            init: row.init,
            intermediate: row.intermediate.clone(),
            mlm_freeze: row.mlm_freeze,
            pooling: row.pooling.clone(),
            freeze: row.freeze,
            train_size: row.train_size,
            strategy: row.strategy.clone(),
        }
    }

    /// A fixed freeze depth with one learning rate: no `[strategy.NAME]`.
    pub fn is_plain(&self) -> bool {
        is_plain(&self.strategy)
    }

    pub fn series(&self) -> SeriesKey {
        SeriesKey {
            init: self.init,
            intermediate: self.intermediate.clone(),
            mlm_freeze: self.mlm_freeze,
            pooling: self.pooling.clone(),
            strategy: self.strategy.clone(),
        }
    }
}

/// What one line of the charts follows across freeze depths (and training-set sizes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    pub init: Init,
    pub intermediate: String,
    pub mlm_freeze: Option<i64>,
    pub pooling: String,
    pub strategy: String,
}

impl SeriesKey {
    pub fn is_scratch(&self) -> bool {
        self.init.is_scratch()
    }

    pub fn has_mlm(&self) -> bool {
        self.intermediate != "none"
    }

    pub fn is_plain(&self) -> bool {
        is_plain(&self.strategy)
    }

    /// Pretrained before scratch, no MLM before MLM, then by name and MLM freeze depth, plain
    /// before the other strategies.
    fn sort_key(&self) -> (bool, bool, Init, &str, Option<i64>, &str, bool, &str) {
        (
            self.is_scratch(),
            self.has_mlm(),
            self.init,
            self.intermediate.as_str(),
            self.mlm_freeze,
            self.pooling.as_str(),
            !self.is_plain(),
            self.strategy.as_str(),
        )
    }
}

impl Ord for SeriesKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for SeriesKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The jobs of one cell at one learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSummary {
    pub lr: f64,
    pub done: usize,
    pub failed: usize,
    /// Pending or running.
    pub unfinished: usize,
    pub val_accuracy: Option<Estimate>,
    pub val_macro_f1: Option<Estimate>,
    pub val_loss: Option<Estimate>,
    /// The displayed metric's accuracy (test unless asked otherwise).
    pub accuracy: Option<Estimate>,
    pub macro_f1: Option<Estimate>,
    pub train_seconds: Option<Estimate>,
    /// The done jobs behind these numbers, so charts can plot them one by one.
    pub done_job_keys: Vec<String>,
    /// The displayed metric per done seed (and per example where stored): differences.
    pub scores: SeedScores,
    /// Validation per done seed (and per example): what choices and racing compare.
    pub validation_scores: SeedScores,
}

fn seed_scores(
    done: &[&JobResultRow],
    accuracy: impl Fn(&JobResultRow) -> Option<f64>,
    correct: impl Fn(&JobResultRow) -> Option<&str>,
) -> SeedScores {
    SeedScores {
        accuracy: done.iter().filter_map(|r| accuracy(r).map(|a| (r.seed, a))).collect(),
        correct: done
            .iter()
            .filter_map(|r| correct(r).and_then(parse_correct).map(|c| (r.seed, c)))
            .collect(),
    }
}

impl LrSummary {
    fn candidate(&self) -> LrCandidate {
        let mean = |e: Option<Estimate>| e.map(|e| e.mean);
        LrCandidate {
            lr: self.lr,
            failed: self.failed,
            val_accuracy: mean(self.val_accuracy),
            val_macro_f1: mean(self.val_macro_f1),
            val_loss: mean(self.val_loss),
        }
    }

    fn of(lr: f64, rows: &[&JobResultRow], metric: Metric, costs: &JobCosts) -> LrSummary {
        let done: Vec<&JobResultRow> = rows.iter().copied().filter(|r| is_done(r)).collect();
        let collect = |f: &dyn Fn(&JobResultRow) -> Option<f64>| -> Option<Estimate> {
            Estimate::of(&done.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
        };
        LrSummary {
            lr,
            done: done.len(),
            failed: rows.iter().filter(|r| r.status == WorkStatus::Failed).count(),
            unfinished: rows.iter().filter(|r| r.status.is_unfinished()).count(),
            val_accuracy: collect(&|r| r.val_accuracy),
            val_macro_f1: collect(&|r| r.val_macro_f1),
            val_loss: collect(&|r| r.val_loss),
            accuracy: collect(&|r| metric.accuracy(r)),
            macro_f1: collect(&|r| metric.macro_f1(r)),
            train_seconds: collect(&|r| costs.get(&r.job_key)),
            done_job_keys: done.iter().map(|r| r.job_key.clone()).collect(),
            scores: seed_scores(&done, |r| metric.accuracy(r), |r| metric.correct(r)),
            validation_scores: seed_scores(&done, |r| r.val_accuracy, |r| r.val_correct.as_deref()),
        }
    }
}

/// What each done job's training cost: its own steps plus an equal share of the frozen-prefix
/// passes of its prefix group (the jobs, of any seed or lr, that reused one cached
/// computation). Charging the pass only to the job that happened to compute it would make
/// the others look free and make the cost depend on claim order.
#[derive(Debug, Clone, Default)]
pub struct JobCosts(HashMap<String, f64>);

impl JobCosts {
    pub fn of(rows: &[JobResultRow]) -> JobCosts {
        let done: Vec<&JobResultRow> =
            rows.iter().filter(|r| is_done(r) && r.train_seconds.is_some()).collect();
        let mut groups: HashMap<&str, (f64, usize)> = HashMap::new();
        for r in &done {
            let g = groups.entry(r.prefix_group.as_str()).or_default();
            g.0 += r.prefix_seconds.unwrap_or(0.0);
            g.1 += 1;
        }
        JobCosts(
            done.iter()
                .map(|r| {
                    let (prefix, n) = groups[r.prefix_group.as_str()];
                    (r.job_key.clone(), r.train_seconds.unwrap_or(0.0) + prefix / n as f64)
                })
                .collect(),
        )
    }

    /// Seconds for a done job; None for one without a result.
    pub fn get(&self, job_key: &str) -> Option<f64> {
        self.0.get(job_key).copied()
    }
}

/// A job counts as a result only once it is done and its result row is there.
fn is_done(row: &JobResultRow) -> bool {
    row.status == WorkStatus::Done && row.val_accuracy.is_some()
}

/// A cell with every lr it tried and the one selected on validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub key: CellKey,
    pub num_layers: i64,
    /// Ascending by lr; every lr of the plan, whatever its jobs' status.
    pub lrs: Vec<LrSummary>,
    /// Index into `lrs`; None while no lr has a done seed.
    pub selected: Option<usize>,
    pub edge: Option<Edge>,
    pub metric: Metric,
}

impl Cell {
    pub fn unfrozen_layers(&self) -> i64 {
        self.num_layers - self.key.freeze
    }

    pub fn selected_lr(&self) -> Option<&LrSummary> {
        self.selected.map(|i| &self.lrs[i])
    }

    /// The displayed accuracy at the selected lr.
    pub fn accuracy(&self) -> Option<Estimate> {
        self.selected_lr().and_then(|l| l.accuracy)
    }

    /// Validation accuracy at the selected lr: what every choice looks at.
    pub fn validation_accuracy(&self) -> Option<Estimate> {
        self.selected_lr().and_then(|l| l.val_accuracy)
    }

    pub fn train_seconds(&self) -> Option<Estimate> {
        self.selected_lr().and_then(|l| l.train_seconds)
    }

    /// Failed and unfinished seeds at the selected lr, or over the whole cell when none is selected.
    pub fn failed_and_unfinished(&self) -> (usize, usize) {
        match self.selected_lr() {
            Some(l) => (l.failed, l.unfinished),
            None => self.lrs.iter().fold((0, 0), |(f, u), l| (f + l.failed, u + l.unfinished)),
        }
    }

    pub fn summary(&self) -> CellSummary {
        let selected = self.selected_lr();
        let pick = |f: fn(&LrSummary) -> Option<Estimate>| selected.and_then(f);
        let accuracy = pick(|l| l.accuracy);
        let macro_f1 = pick(|l| l.macro_f1);
        let seconds = pick(|l| l.train_seconds);
        let (failed, unfinished) = self.failed_and_unfinished();
        CellSummary {
            init: self.key.init,
            intermediate: self.key.intermediate.clone(),
            mlm_freeze: self.key.mlm_freeze,
            pooling: self.key.pooling.clone(),
            strategy: self.key.strategy.clone(),
            freeze: self.key.freeze,
            unfrozen_layers: self.unfrozen_layers(),
            num_layers: self.num_layers,
            train_size: self.key.train_size,
            metric: self.metric,
            lrs_tried: self.lrs.len(),
            selected_lr: selected.map(|l| l.lr),
            edge: self.edge,
            n: selected.map_or(0, |l| l.done),
            failed,
            unfinished,
            accuracy_mean: accuracy.map(|e| e.mean),
            accuracy_ci95: accuracy.and_then(|e| e.ci95),
            accuracy_sd: accuracy.and_then(|e| e.sd),
            macro_f1_mean: macro_f1.map(|e| e.mean),
            macro_f1_ci95: macro_f1.and_then(|e| e.ci95),
            train_seconds_mean: seconds.map(|e| e.mean),
            train_seconds_ci95: seconds.and_then(|e| e.ci95),
            val_accuracy_mean: pick(|l| l.val_accuracy).map(|e| e.mean),
        }
    }
}

/// One cell as a flat record (only scalars, so it writes straight to CSV as well as JSON).
/// Accuracy and macro-F1 are fractions in [0, 1] from the `metric` split; `*_ci95` is the
/// half-width of the Student-t 95% interval and is empty when `n` < 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    pub init: Init,
    pub intermediate: String,
    pub mlm_freeze: Option<i64>,
    pub pooling: String,
    pub strategy: String,
    pub freeze: i64,
    pub unfrozen_layers: i64,
    pub num_layers: i64,
    pub train_size: Option<i64>,
    pub metric: Metric,
    pub lrs_tried: usize,
    /// Chosen on mean validation accuracy; empty while no seed is done.
    pub selected_lr: Option<f64>,
    pub edge: Option<Edge>,
    /// Done seeds at the selected lr.
    pub n: usize,
    /// Failed seeds at the selected lr (excluded from the means).
    pub failed: usize,
    /// Pending or running seeds at the selected lr.
    pub unfinished: usize,
    pub accuracy_mean: Option<f64>,
    pub accuracy_ci95: Option<f64>,
    pub accuracy_sd: Option<f64>,
    pub macro_f1_mean: Option<f64>,
    pub macro_f1_ci95: Option<f64>,
    pub train_seconds_mean: Option<f64>,
    pub train_seconds_ci95: Option<f64>,
    /// The selection score: mean validation accuracy at the selected lr.
    pub val_accuracy_mean: Option<f64>,
}

/// Flat per-cell records, in the order of [`cells`].
pub fn aggregate(rows: &[JobResultRow], metric: Metric) -> Vec<CellSummary> {
    cells(rows, metric).iter().map(Cell::summary).collect()
}

/// Every cell with all its lrs, ordered by series, then train size, then unfrozen layers
/// (head only first).
pub fn cells(rows: &[JobResultRow], metric: Metric) -> Vec<Cell> {
    let mut by_cell: BTreeMap<CellKey, Vec<&JobResultRow>> = BTreeMap::new();
    for row in rows {
        by_cell.entry(CellKey::of(row)).or_default().push(row);
    }
    let costs = JobCosts::of(rows);
    let mut cells: Vec<Cell> =
        by_cell.into_iter().map(|(key, rows)| build_cell(key, &rows, metric, &costs)).collect();
    cells.sort_by(|a, b| {
        (a.key.series(), a.key.train_size, a.unfrozen_layers()).cmp(&(
            b.key.series(),
            b.key.train_size,
            b.unfrozen_layers(),
        ))
    });
    cells
}

fn build_cell(key: CellKey, rows: &[&JobResultRow], metric: Metric, costs: &JobCosts) -> Cell {
    let mut by_lr: Vec<(f64, Vec<&JobResultRow>)> = Vec::new();
    for row in rows {
        match by_lr.iter_mut().find(|(lr, _)| lr.to_bits() == row.lr.to_bits()) {
            Some((_, group)) => group.push(row),
            None => by_lr.push((row.lr, vec![row])),
        }
    }
    by_lr.sort_by(|a, b| a.0.total_cmp(&b.0));
    let lrs: Vec<LrSummary> =
        by_lr.iter().map(|(lr, group)| LrSummary::of(*lr, group, metric, costs)).collect();
    let selected = select_lr(&lrs);
    let edge = edge_of(selected, lrs.len());
    Cell { key, num_layers: rows[0].num_layers, lrs, selected, edge, metric }
}

/// Index of the lr with the best validation scores (see the module doc for the tie rules).
pub fn select_lr(lrs: &[LrSummary]) -> Option<usize> {
    lrs.iter()
        .enumerate()
        .filter(|(_, l)| l.val_accuracy.is_some())
        .max_by(|(_, a), (_, b)| selection_order(a, b))
        .map(|(i, _)| i)
}

/// Greater means a better candidate.
fn selection_order(a: &LrSummary, b: &LrSummary) -> Ordering {
    a.candidate().selection_order(&b.candidate())
}

/// What choosing a learning rate compares, from any validation numbers: the report's
/// selection over finished jobs and the adaptive search's halving over rungs use this one
/// order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrCandidate {
    pub lr: f64,
    /// Seeds that failed (usually diverged).
    pub failed: usize,
    /// Means over the done seeds; None without one.
    pub val_accuracy: Option<f64>,
    pub val_macro_f1: Option<f64>,
    pub val_loss: Option<f64>,
}

impl LrCandidate {
    /// Greater means better: no failed seed, then validation accuracy, macro-F1, lower loss
    /// (means within [`TIE_TOLERANCE`] tie), then the smaller lr.
    pub fn selection_order(&self, other: &LrCandidate) -> Ordering {
        let (a, b) = (self, other);
        // Fewer failures is better: (a.failed == 0) > (b.failed == 0) when only a is clean.
        (a.failed == 0)
            .cmp(&(b.failed == 0))
            .then_with(|| compare_scores(a.val_accuracy, b.val_accuracy))
            .then_with(|| compare_scores(a.val_macro_f1, b.val_macro_f1))
            // Lower loss is better, so the arguments swap.
            .then_with(|| compare_scores(b.val_loss, a.val_loss))
            .then_with(|| b.lr.total_cmp(&a.lr))
    }
}

/// Higher is greater; a missing score loses; values within the tie tolerance are equal.
fn compare_scores(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) if (x - y).abs() <= TIE_TOLERANCE => Ordering::Equal,
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}

fn edge_of(selected: Option<usize>, lrs_tried: usize) -> Option<Edge> {
    match selected {
        _ if lrs_tried < 2 => None,
        Some(0) => Some(Edge::TrySmaller),
        Some(i) if i + 1 == lrs_tried => Some(Edge::TryLarger),
        _ => None,
    }
}

/// "87.3 ± 1.2", "87.3 (n=1, no CI)" or "-"; fractions shown as percent.
pub fn percent_with_ci(mean: Option<f64>, ci95: Option<f64>, n: usize) -> String {
    match (mean, ci95) {
        (None, _) => "-".to_string(),
        (Some(m), Some(h)) => format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * h),
        (Some(m), None) => format!("{:.1} (n={n}, no CI)", 100.0 * m),
    }
}

/// Learning rates as people write them: 2e-5, 0.001 -> 1e-3.
pub fn format_lr(lr: f64) -> String {
    format!("{lr:e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job row with the given outcome; test metrics are set far from validation on purpose
    /// so a selection that peeked at them would pick differently.
    fn row(
        freeze: i64,
        lr: f64,
        seed: i64,
        status: WorkStatus,
        val: Option<(f64, f64, f64)>,
        test_acc: f64,
    ) -> JobResultRow {
        JobResultRow {
            sweep: "s".into(),
            ord: 0,
            job_key: format!("f{freeze}-lr{lr}-s{seed}"),
            init: Init::Pretrained,
            intermediate: "none".into(),
            mlm_freeze: None,
            freeze,
            unfrozen_layers: 4 - freeze,
            num_layers: 4,
            seed,
            lr,
            train_size: None,
            pooling: "cls".into(),
            status,
            attempts: 1,
            error: None,
            best_epoch: val.map(|_| 1),
            val_loss: val.map(|v| v.2),
            val_accuracy: val.map(|v| v.0),
            val_macro_f1: val.map(|v| v.1),
            test_loss: val.map(|_| 0.5),
            test_accuracy: val.map(|_| test_acc),
            test_macro_f1: val.map(|_| test_acc - 0.01),
            train_seconds: val.map(|_| 10.0 + seed as f64),
            eval_seconds: val.map(|_| 1.0),
            prefix_seconds: val.map(|_| 0.0),
            examples_per_second: val.map(|_| 100.0),
            trainable_params: val.map(|_| 1000),
            total_params: val.map(|_| 2000),
            prefix_cache: val.map(|_| "none".into()),
            backend: val.map(|_| "ndarray".into()),
            prefix_group: format!("g-f{freeze}"),
            val_correct: None,
            test_correct: None,
            device: None,
            strategy: "plain".into(),
        }
    }

    fn done(freeze: i64, lr: f64, seed: i64, val_acc: f64, test_acc: f64) -> JobResultRow {
        row(freeze, lr, seed, WorkStatus::Done, Some((val_acc, 0.5, 0.4)), test_acc)
    }

    fn cell_of(cells: &[Cell], freeze: i64) -> &Cell {
        cells.iter().find(|c| c.key.freeze == freeze).expect("cell present")
    }

    #[test]
    fn pooling_choices_are_separate_cells_and_named_in_labels() {
        let mut rows = vec![done(4, 1e-3, 0, 0.8, 0.8), done(4, 1e-3, 1, 0.8, 0.8)];
        let mut mean = done(4, 1e-3, 0, 0.6, 0.6);
        mean.pooling = "mean".into();
        rows.push(mean);
        let cells = cells(&rows, Metric::Test);
        assert_eq!(cells.len(), 2, "cls and mean pooling are never averaged together");
        let names = crate::labels::Names::new(&cells);
        let labels: Vec<String> = cells.iter().map(|c| names.series(&c.key.series())).collect();
        assert!(
            labels.iter().any(|l| l.ends_with("cls pooling"))
                && labels.iter().any(|l| l.ends_with("mean pooling")),
            "{labels:?}"
        );
        assert_eq!(
            aggregate(&rows, Metric::Test)
                .iter()
                .map(|s| s.n)
                .collect::<Vec<_>>()
                .iter()
                .sum::<usize>(),
            3
        );
    }

    #[test]
    fn best_lr_differs_by_cell_and_test_metrics_are_never_used() {
        let mut rows = Vec::new();
        for seed in 0..3 {
            // freeze 0: small lr best on validation, but large lr best on test.
            rows.push(done(0, 1e-5, seed, 0.90, 0.70));
            rows.push(done(0, 3e-5, seed, 0.85, 0.80));
            rows.push(done(0, 1e-4, seed, 0.80, 0.99));
            // freeze 2: middle lr best on validation.
            rows.push(done(2, 1e-5, seed, 0.70, 0.99));
            rows.push(done(2, 3e-5, seed, 0.88, 0.60));
            rows.push(done(2, 1e-4, seed, 0.75, 0.99));
            // freeze 4 (head only): largest lr best.
            rows.push(done(4, 1e-5, seed, 0.60, 0.99));
            rows.push(done(4, 3e-5, seed, 0.65, 0.99));
            rows.push(done(4, 1e-4, seed, 0.70, 0.50));
        }
        let cells = cells(&rows, Metric::Test);
        assert_eq!(cells.len(), 3);
        let f0 = cell_of(&cells, 0).summary();
        assert_eq!(f0.selected_lr, Some(1e-5));
        assert_eq!(f0.edge, Some(Edge::TrySmaller));
        assert!(
            (f0.accuracy_mean.unwrap() - 0.70).abs() < 1e-12,
            "reports test accuracy at the val-selected lr"
        );
        let f2 = cell_of(&cells, 2).summary();
        assert_eq!(f2.selected_lr, Some(3e-5));
        assert_eq!(f2.edge, None);
        assert!((f2.accuracy_mean.unwrap() - 0.60).abs() < 1e-12);
        let f4 = cell_of(&cells, 4).summary();
        assert_eq!(f4.selected_lr, Some(1e-4));
        assert_eq!(f4.edge, Some(Edge::TryLarger));
        // Head only comes first: cells are ordered by unfrozen layers.
        assert_eq!(cells.iter().map(|c| c.unfrozen_layers()).collect::<Vec<_>>(), vec![0, 2, 4]);
    }

    #[test]
    fn validation_metric_displays_validation_accuracy() {
        let rows = vec![done(0, 1e-5, 0, 0.9, 0.7), done(0, 1e-5, 1, 0.8, 0.6)];
        let s = &aggregate(&rows, Metric::Validation)[0];
        assert!((s.accuracy_mean.unwrap() - 0.85).abs() < 1e-12);
        assert_eq!(s.metric, Metric::Validation);
        let t = &aggregate(&rows, Metric::Test)[0];
        assert!((t.accuracy_mean.unwrap() - 0.65).abs() < 1e-12);
    }

    #[test]
    fn equal_val_accuracy_is_broken_by_macro_f1() {
        let rows = vec![
            row(0, 1e-5, 0, WorkStatus::Done, Some((0.8, 0.70, 0.3)), 0.9),
            row(0, 2e-5, 0, WorkStatus::Done, Some((0.8, 0.75, 0.9)), 0.1),
            row(0, 3e-5, 0, WorkStatus::Done, Some((0.8, 0.72, 0.1)), 0.9),
        ];
        assert_eq!(aggregate(&rows, Metric::Test)[0].selected_lr, Some(2e-5));
    }

    #[test]
    fn equal_accuracy_and_f1_is_broken_by_lower_loss() {
        let rows = vec![
            row(0, 1e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.5)), 0.9),
            row(0, 2e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.2)), 0.1),
            row(0, 3e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.4)), 0.9),
        ];
        assert_eq!(aggregate(&rows, Metric::Test)[0].selected_lr, Some(2e-5));
    }

    #[test]
    fn a_full_tie_goes_to_the_smaller_lr() {
        let rows = vec![
            row(0, 3e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.4)), 0.9),
            row(0, 1e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.4)), 0.1),
            row(0, 2e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.4)), 0.9),
        ];
        let s = &aggregate(&rows, Metric::Test)[0];
        assert_eq!(s.selected_lr, Some(1e-5));
        assert_eq!(s.edge, Some(Edge::TrySmaller));
    }

    #[test]
    fn means_differing_by_rounding_noise_count_as_a_tie() {
        // 0.1 + 0.2 != 0.3 in floating point; the rule must still see a tie and fall to F1.
        let rows = vec![
            row(0, 1e-5, 0, WorkStatus::Done, Some((0.1 + 0.2, 0.6, 0.4)), 0.9),
            row(0, 2e-5, 0, WorkStatus::Done, Some((0.3, 0.7, 0.4)), 0.1),
        ];
        assert_eq!(aggregate(&rows, Metric::Test)[0].selected_lr, Some(2e-5));
    }

    #[test]
    fn failed_seeds_are_excluded_from_means_but_counted() {
        let rows = vec![
            done(1, 1e-5, 0, 0.80, 0.70),
            done(1, 1e-5, 1, 0.82, 0.74),
            row(1, 1e-5, 2, WorkStatus::Failed, None, 0.0),
            row(1, 1e-5, 3, WorkStatus::Pending, None, 0.0),
            done(1, 1e-4, 0, 0.50, 0.99),
            row(1, 1e-4, 1, WorkStatus::Failed, None, 0.0),
            row(1, 1e-4, 2, WorkStatus::Failed, None, 0.0),
        ];
        let s = &aggregate(&rows, Metric::Test)[0];
        assert_eq!(s.selected_lr, Some(1e-5));
        assert_eq!((s.n, s.failed, s.unfinished), (2, 1, 1), "counts are for the selected lr only");
        assert!((s.accuracy_mean.unwrap() - 0.72).abs() < 1e-12);
        assert!(s.accuracy_ci95.is_some());
    }

    #[test]
    fn training_time_shares_each_prefix_pass_among_the_jobs_that_used_it() {
        let mut computed = done(4, 1e-3, 0, 0.8, 0.7);
        computed.prefix_seconds = Some(12.0);
        let reused = done(4, 1e-3, 1, 0.8, 0.7);
        let other_lr = done(4, 1e-2, 0, 0.7, 0.6);
        let rows = [computed, reused, other_lr];
        // One pass of 12 s served three jobs (two lrs): 4 s each, whoever computed it.
        let costs = JobCosts::of(&rows);
        assert_eq!(costs.get(&rows[0].job_key), Some(10.0 + 4.0));
        assert_eq!(costs.get(&rows[2].job_key), Some(10.0 + 4.0));
        let s = &aggregate(&rows, Metric::Test)[0];
        assert_eq!(s.selected_lr, Some(1e-3));
        assert_eq!(s.train_seconds_mean, Some(((10.0 + 4.0) + (11.0 + 4.0)) / 2.0));
    }

    #[test]
    fn an_lr_that_lost_a_seed_cannot_win_on_its_survivors() {
        let rows = vec![
            done(2, 1e-3, 0, 0.95, 0.60),
            row(2, 1e-3, 1, WorkStatus::Failed, None, 0.0),
            done(2, 1e-4, 0, 0.80, 0.78),
            done(2, 1e-4, 1, 0.81, 0.79),
        ];
        let s = &aggregate(&rows, Metric::Test)[0];
        assert_eq!(
            s.selected_lr,
            Some(1e-4),
            "the clean lr wins over a higher mean with a failed seed"
        );
        // When every lr lost seeds, validation decides among them as usual.
        let rows = vec![
            done(2, 1e-3, 0, 0.95, 0.6),
            row(2, 1e-3, 1, WorkStatus::Failed, None, 0.0),
            done(2, 1e-4, 0, 0.8, 0.78),
            row(2, 1e-4, 1, WorkStatus::Failed, None, 0.0),
        ];
        assert_eq!(aggregate(&rows, Metric::Test)[0].selected_lr, Some(1e-3));
    }

    #[test]
    fn a_single_seed_gives_a_mean_without_interval() {
        let rows = vec![done(0, 1e-5, 0, 0.8, 0.75), done(0, 1e-4, 0, 0.7, 0.9)];
        let s = &aggregate(&rows, Metric::Test)[0];
        assert_eq!(s.n, 1);
        assert_eq!(s.accuracy_mean, Some(0.75));
        assert_eq!(s.accuracy_ci95, None);
        assert_eq!(percent_with_ci(s.accuracy_mean, s.accuracy_ci95, s.n), "75.0 (n=1, no CI)");
    }

    #[test]
    fn a_cell_with_nothing_done_has_no_selection_and_counts_everything() {
        let rows = vec![
            row(3, 1e-5, 0, WorkStatus::Failed, None, 0.0),
            row(3, 1e-4, 0, WorkStatus::Running, None, 0.0),
        ];
        let s = &aggregate(&rows, Metric::Test)[0];
        assert_eq!(s.selected_lr, None);
        assert_eq!(s.edge, None);
        assert_eq!((s.n, s.failed, s.unfinished), (0, 1, 1));
        assert_eq!(s.accuracy_mean, None);
    }

    #[test]
    fn a_single_lr_is_never_at_an_edge() {
        let rows = vec![done(0, 1e-5, 0, 0.8, 0.75), done(0, 1e-5, 1, 0.8, 0.75)];
        assert_eq!(aggregate(&rows, Metric::Test)[0].edge, None);
    }

    #[test]
    fn cells_are_split_by_intermediate_init_and_train_size() {
        let mut a = done(0, 1e-5, 0, 0.8, 0.7);
        let mut b = a.clone();
        b.intermediate = "task".into();
        b.mlm_freeze = Some(0);
        let mut c = a.clone();
        c.init = Init::Scratch;
        a.train_size = Some(100);
        let d = done(0, 1e-5, 0, 0.8, 0.7);
        let cells = cells(&[a, b, c, d], Metric::Test);
        assert_eq!(cells.len(), 4);
        // Pretrained/no-MLM first, scratch last.
        assert_eq!(cells.last().unwrap().key.init, Init::Scratch);
        assert_eq!(cells[0].key.intermediate, "none");
    }

    #[test]
    fn summaries_serialise_to_json_and_table() {
        let rows = vec![
            done(0, 2e-5, 0, 0.8, 0.7),
            done(0, 2e-5, 1, 0.8, 0.72),
            done(0, 1e-5, 0, 0.6, 0.9),
        ];
        let s = aggregate(&rows, Metric::Test);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json[0]["metric"], "test");
        assert_eq!(json[0]["edge"], "edge: try larger");
        let table = crate::tables::cells(&s, crate::tables::Format::Table).unwrap();
        assert!(table.contains("71.0 ± "), "{table}");
        assert!(table.contains("2e-5"), "{table}");
        assert!(
            "validation".parse::<Metric>().unwrap() == Metric::Validation
                && "x".parse::<Metric>().is_err()
        );
    }

    #[test]
    fn summaries_write_as_csv_with_a_header() {
        let rows = vec![
            done(0, 2e-5, 0, 0.8, 0.7),
            done(0, 2e-5, 1, 0.8, 0.72),
            done(0, 1e-5, 0, 0.6, 0.9),
            done(2, 1e-5, 0, 0.6, 0.9),
        ];
        let mut writer = csv::Writer::from_writer(Vec::new());
        for s in aggregate(&rows, Metric::Test) {
            writer.serialize(s).expect("flat record");
        }
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with(
                "init,intermediate,mlm_freeze,pooling,strategy,freeze,unfrozen_layers,"
            ),
            "{text}"
        );
        // Fewer unfrozen layers first; one seed leaves the interval columns empty.
        assert_eq!(
            lines[1],
            "pretrained,none,,cls,plain,2,2,4,,test,1,0.00001,,1,0,0,0.9,,,0.89,,10.0,,0.6"
        );
        assert!(
            lines[2].starts_with(
                "pretrained,none,,cls,plain,0,4,4,,test,2,0.00002,edge: try larger,2,0,0,0.71,0.127"
            ),
            "{text}"
        );
    }
}
