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
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use thaw_store::{Init, JobResultRow, WorkStatus, parse_correct};

use crate::bootstrap;
use crate::costs::{JobCosts, is_done};
use crate::lr_choice::LrCandidate;
use crate::split::Split;
use crate::stats::{Estimate, SeedScores};

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
    /// The sweep's metric on validation.
    pub val_metric: Option<Estimate>,
    pub val_macro_f1: Option<Estimate>,
    pub val_loss: Option<Estimate>,
    /// The sweep's metric on the displayed split (test unless asked otherwise).
    pub metric: Option<Estimate>,
    pub macro_f1: Option<Estimate>,
    pub train_seconds: Option<Estimate>,
    /// The done jobs behind these numbers, so charts can plot them one by one.
    pub done_job_keys: Vec<String>,
    /// The displayed metric per done seed (and per example where stored): differences.
    pub scores: SeedScores,
    /// Validation per done seed (and per example): what choices and racing compare.
    pub validation_scores: SeedScores,
}

fn seed_scores(done: &[&JobResultRow], split: Split) -> SeedScores {
    SeedScores {
        metric: done.iter().filter_map(|r| split.metric(r).map(|a| (r.seed, a))).collect(),
        correct: done
            .iter()
            .filter_map(|r| split.correct(r).and_then(parse_correct).map(|c| (r.seed, c)))
            .collect(),
        examples: done
            .iter()
            .filter_map(|r| {
                let examples = serde_json::from_str(split.per_example(r)?).ok()?;
                Some((r.seed, examples))
            })
            .collect(),
    }
}

/// The estimate of one split's metric over `scores`' seeds; a single seed of a metric that is
/// not a mean over examples carries its bootstrap interval over the examples.
fn metric_estimate(scores: &SeedScores) -> Option<Estimate> {
    let mut estimate = Estimate::of(&scores.metric.iter().map(|(_, v)| *v).collect::<Vec<_>>())?;
    if let [(_, examples)] = scores.examples.as_slice()
        && estimate.n == 1
        && !examples.metric.is_mean_over_examples()
    {
        estimate.examples_ci95 = bootstrap::interval(examples);
    }
    Some(estimate)
}

impl LrSummary {
    fn candidate(&self) -> LrCandidate {
        let mean = |e: Option<Estimate>| e.map(|e| e.mean);
        LrCandidate {
            lr: self.lr,
            failed: self.failed,
            val_metric: mean(self.val_metric),
            val_macro_f1: mean(self.val_macro_f1),
            val_loss: mean(self.val_loss),
        }
    }

    fn of(lr: f64, rows: &[&JobResultRow], split: Split, costs: &JobCosts) -> LrSummary {
        let done: Vec<&JobResultRow> = rows.iter().copied().filter(|r| is_done(r)).collect();
        let collect = |f: &dyn Fn(&JobResultRow) -> Option<f64>| -> Option<Estimate> {
            Estimate::of(&done.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
        };
        let scores = seed_scores(&done, split);
        let validation_scores = seed_scores(&done, Split::Validation);
        LrSummary {
            lr,
            done: done.len(),
            failed: rows.iter().filter(|r| r.status == WorkStatus::Failed).count(),
            unfinished: rows.iter().filter(|r| r.status.is_unfinished()).count(),
            val_metric: metric_estimate(&validation_scores),
            val_macro_f1: collect(&|r| r.val_macro_f1),
            val_loss: collect(&|r| r.val_loss),
            metric: metric_estimate(&scores),
            macro_f1: collect(&|r| split.macro_f1(r)),
            train_seconds: collect(&|r| costs.get(&r.job_key)),
            done_job_keys: done.iter().map(|r| r.job_key.clone()).collect(),
            scores,
            validation_scores,
        }
    }
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
    pub split: Split,
}

impl Cell {
    pub fn unfrozen_layers(&self) -> i64 {
        self.num_layers - self.key.freeze
    }

    pub fn selected_lr(&self) -> Option<&LrSummary> {
        self.selected.map(|i| &self.lrs[i])
    }

    /// The displayed accuracy at the selected lr.
    pub fn metric(&self) -> Option<Estimate> {
        self.selected_lr().and_then(|l| l.metric)
    }

    /// Validation accuracy at the selected lr: what every choice looks at.
    pub fn validation_metric(&self) -> Option<Estimate> {
        self.selected_lr().and_then(|l| l.val_metric)
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
        let metric = pick(|l| l.metric);
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
            split: self.split,
            lrs_tried: self.lrs.len(),
            selected_lr: selected.map(|l| l.lr),
            edge: self.edge,
            n: selected.map_or(0, |l| l.done),
            failed,
            unfinished,
            metric_mean: metric.map(|e| e.mean),
            metric_ci95: metric.and_then(|e| e.ci95),
            metric_sd: metric.and_then(|e| e.sd),
            macro_f1_mean: macro_f1.map(|e| e.mean),
            macro_f1_ci95: macro_f1.and_then(|e| e.ci95),
            train_seconds_mean: seconds.map(|e| e.mean),
            train_seconds_ci95: seconds.and_then(|e| e.ci95),
            val_metric_mean: pick(|l| l.val_metric).map(|e| e.mean),
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
    pub split: Split,
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
    pub metric_mean: Option<f64>,
    pub metric_ci95: Option<f64>,
    pub metric_sd: Option<f64>,
    pub macro_f1_mean: Option<f64>,
    pub macro_f1_ci95: Option<f64>,
    pub train_seconds_mean: Option<f64>,
    pub train_seconds_ci95: Option<f64>,
    /// The selection score: mean validation accuracy at the selected lr.
    pub val_metric_mean: Option<f64>,
}

/// Flat per-cell records, in the order of [`cells`].
pub fn aggregate(rows: &[JobResultRow], split: Split) -> Vec<CellSummary> {
    cells(rows, split).iter().map(Cell::summary).collect()
}

/// Every cell with all its lrs, ordered by series, then train size, then unfrozen layers
/// (head only first).
pub fn cells(rows: &[JobResultRow], split: Split) -> Vec<Cell> {
    let mut by_cell: BTreeMap<CellKey, Vec<&JobResultRow>> = BTreeMap::new();
    for row in rows {
        by_cell.entry(CellKey::of(row)).or_default().push(row);
    }
    let costs = JobCosts::of(rows);
    let mut cells: Vec<Cell> =
        by_cell.into_iter().map(|(key, rows)| build_cell(key, &rows, split, &costs)).collect();
    cells.sort_by(|a, b| {
        (a.key.series(), a.key.train_size, a.unfrozen_layers()).cmp(&(
            b.key.series(),
            b.key.train_size,
            b.unfrozen_layers(),
        ))
    });
    cells
}

fn build_cell(key: CellKey, rows: &[&JobResultRow], split: Split, costs: &JobCosts) -> Cell {
    let mut by_lr: Vec<(f64, Vec<&JobResultRow>)> = Vec::new();
    for row in rows {
        match by_lr.iter_mut().find(|(lr, _)| lr.to_bits() == row.lr.to_bits()) {
            Some((_, group)) => group.push(row),
            None => by_lr.push((row.lr, vec![row])),
        }
    }
    by_lr.sort_by(|a, b| a.0.total_cmp(&b.0));
    let lrs: Vec<LrSummary> =
        by_lr.iter().map(|(lr, group)| LrSummary::of(*lr, group, split, costs)).collect();
    let selected = select_lr(&lrs);
    let edge = edge_of(selected, lrs.len());
    Cell { key, num_layers: rows[0].num_layers, lrs, selected, edge, split }
}

/// The done job of `cell`, at its selected lr, with the best validation accuracy (ties:
/// lower validation loss, then the smaller seed).
pub fn best_seed<'a>(cell: &Cell, rows: &'a [JobResultRow]) -> Option<&'a JobResultRow> {
    let keys = &cell.selected_lr()?.done_job_keys;
    rows.iter().filter(|r| keys.contains(&r.job_key)).max_by(|a, b| {
        let score =
            |r: &JobResultRow| (r.val_metric.unwrap_or(f64::MIN), -r.val_loss.unwrap_or(f64::MAX));
        let (sa, sb) = (score(a), score(b));
        sa.0.total_cmp(&sb.0).then(sa.1.total_cmp(&sb.1)).then(b.seed.cmp(&a.seed))
    })
}

/// Each cell's best seed at its selected lr: the jobs whose weights `[train] keep =
/// "best-per-cell"` keeps, and among which `thaw export --best` chooses.
pub fn best_job_per_cell(rows: &[JobResultRow]) -> Vec<&JobResultRow> {
    cells(rows, Split::Test).iter().filter_map(|c| best_seed(c, rows)).collect()
}

/// Index of the lr with the best validation scores (see the module doc for the tie rules).
pub fn select_lr(lrs: &[LrSummary]) -> Option<usize> {
    lrs.iter()
        .enumerate()
        .filter(|(_, l)| l.val_metric.is_some())
        .max_by(|(_, a), (_, b)| selection_order(a, b))
        .map(|(i, _)| i)
}

/// Greater means a better candidate.
fn selection_order(a: &LrSummary, b: &LrSummary) -> Ordering {
    a.candidate().selection_order(&b.candidate())
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
    use crate::testing::{done, row};

    fn cell_of(cells: &[Cell], freeze: i64) -> &Cell {
        cells.iter().find(|c| c.key.freeze == freeze).expect("cell present")
    }

    #[test]
    fn a_one_seed_cell_of_entity_f1_gets_its_interval_from_its_examples_and_pairs_with_another() {
        use thaw_metrics::{Metric, PerExample, Targets};
        let labels: Vec<String> = ["B-PER", "O"].iter().map(|s| s.to_string()).collect();
        let truth = Targets::Tags((0..40).map(|i| vec![i % 2, 1, 0]).collect());
        let tagged = |wrong: usize| {
            let predicted = Targets::Tags(
                (0..40).map(|i| vec![if i < wrong { 1 } else { i % 2 }, 1, 0]).collect(),
            );
            let record = PerExample::of(Metric::EntityF1, &labels, &truth, &predicted);
            let mut r = done(0, 1e-3, 1, record.metric_value(), record.metric_value());
            r.metric = Some("entity_f1".into());
            r.val_per_example = Some(serde_json::to_string(&record).unwrap());
            r.test_per_example = r.val_per_example.clone();
            r
        };
        let (mut good, mut bad) = (tagged(3), tagged(30));
        bad.freeze = 3;
        bad.unfrozen_layers = 3;
        good.job_key = "good".into();
        let cells = cells(&[good, bad], Split::Test);
        let (good, bad) = (cell_of(&cells, 0), cell_of(&cells, 3));
        let estimate = good.validation_metric().unwrap();
        assert_eq!((estimate.n, estimate.ci95), (1, None));
        let half = estimate.examples_ci95.expect("resampled over the 40 sentences");
        assert!(half > 0.0 && half < 0.2, "{half}");
        let (d, pairing) = crate::stats::difference(
            &good.selected_lr().unwrap().validation_scores,
            &bad.selected_lr().unwrap().validation_scores,
        )
        .unwrap();
        assert_eq!(pairing, crate::stats::Pairing::Examples { seed: 1, n: 40 });
        assert!(d.mean > 0.0 && d.low().unwrap() > 0.0, "{d:?}");
    }

    #[test]
    fn pooling_choices_are_separate_cells_and_named_in_labels() {
        let mut rows = vec![done(4, 1e-3, 0, 0.8, 0.8), done(4, 1e-3, 1, 0.8, 0.8)];
        let mut mean = done(4, 1e-3, 0, 0.6, 0.6);
        mean.pooling = "mean".into();
        rows.push(mean);
        let cells = cells(&rows, Split::Test);
        assert_eq!(cells.len(), 2, "cls and mean pooling are never averaged together");
        let names = crate::labels::Names::new(&cells);
        let labels: Vec<String> = cells.iter().map(|c| names.series(&c.key.series())).collect();
        assert!(
            labels.iter().any(|l| l.ends_with("cls pooling"))
                && labels.iter().any(|l| l.ends_with("mean pooling")),
            "{labels:?}"
        );
        assert_eq!(
            aggregate(&rows, Split::Test)
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
        let cells = cells(&rows, Split::Test);
        assert_eq!(cells.len(), 3);
        let f0 = cell_of(&cells, 0).summary();
        assert_eq!(f0.selected_lr, Some(1e-5));
        assert_eq!(f0.edge, Some(Edge::TrySmaller));
        assert!(
            (f0.metric_mean.unwrap() - 0.70).abs() < 1e-12,
            "reports test accuracy at the val-selected lr"
        );
        let f2 = cell_of(&cells, 2).summary();
        assert_eq!(f2.selected_lr, Some(3e-5));
        assert_eq!(f2.edge, None);
        assert!((f2.metric_mean.unwrap() - 0.60).abs() < 1e-12);
        let f4 = cell_of(&cells, 4).summary();
        assert_eq!(f4.selected_lr, Some(1e-4));
        assert_eq!(f4.edge, Some(Edge::TryLarger));
        // Head only comes first: cells are ordered by unfrozen layers.
        assert_eq!(cells.iter().map(|c| c.unfrozen_layers()).collect::<Vec<_>>(), vec![0, 2, 4]);
    }

    #[test]
    fn validation_metric_displays_validation_accuracy() {
        let rows = vec![done(0, 1e-5, 0, 0.9, 0.7), done(0, 1e-5, 1, 0.8, 0.6)];
        let s = &aggregate(&rows, Split::Validation)[0];
        assert!((s.metric_mean.unwrap() - 0.85).abs() < 1e-12);
        assert_eq!(s.split, Split::Validation);
        let t = &aggregate(&rows, Split::Test)[0];
        assert!((t.metric_mean.unwrap() - 0.65).abs() < 1e-12);
    }

    #[test]
    fn equal_val_accuracy_is_broken_by_macro_f1() {
        let rows = vec![
            row(0, 1e-5, 0, WorkStatus::Done, Some((0.8, 0.70, 0.3)), 0.9),
            row(0, 2e-5, 0, WorkStatus::Done, Some((0.8, 0.75, 0.9)), 0.1),
            row(0, 3e-5, 0, WorkStatus::Done, Some((0.8, 0.72, 0.1)), 0.9),
        ];
        assert_eq!(aggregate(&rows, Split::Test)[0].selected_lr, Some(2e-5));
    }

    #[test]
    fn equal_accuracy_and_f1_is_broken_by_lower_loss() {
        let rows = vec![
            row(0, 1e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.5)), 0.9),
            row(0, 2e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.2)), 0.1),
            row(0, 3e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.4)), 0.9),
        ];
        assert_eq!(aggregate(&rows, Split::Test)[0].selected_lr, Some(2e-5));
    }

    #[test]
    fn a_full_tie_goes_to_the_smaller_lr() {
        let rows = vec![
            row(0, 3e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.4)), 0.9),
            row(0, 1e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.4)), 0.1),
            row(0, 2e-5, 0, WorkStatus::Done, Some((0.8, 0.7, 0.4)), 0.9),
        ];
        let s = &aggregate(&rows, Split::Test)[0];
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
        assert_eq!(aggregate(&rows, Split::Test)[0].selected_lr, Some(2e-5));
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
        let s = &aggregate(&rows, Split::Test)[0];
        assert_eq!(s.selected_lr, Some(1e-5));
        assert_eq!((s.n, s.failed, s.unfinished), (2, 1, 1), "counts are for the selected lr only");
        assert!((s.metric_mean.unwrap() - 0.72).abs() < 1e-12);
        assert!(s.metric_ci95.is_some());
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
        let s = &aggregate(&rows, Split::Test)[0];
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
        let s = &aggregate(&rows, Split::Test)[0];
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
        assert_eq!(aggregate(&rows, Split::Test)[0].selected_lr, Some(1e-3));
    }

    #[test]
    fn a_single_seed_gives_a_mean_without_interval() {
        let rows = vec![done(0, 1e-5, 0, 0.8, 0.75), done(0, 1e-4, 0, 0.7, 0.9)];
        let s = &aggregate(&rows, Split::Test)[0];
        assert_eq!(s.n, 1);
        assert_eq!(s.metric_mean, Some(0.75));
        assert_eq!(s.metric_ci95, None);
        assert_eq!(percent_with_ci(s.metric_mean, s.metric_ci95, s.n), "75.0 (n=1, no CI)");
    }

    #[test]
    fn a_cell_with_nothing_done_has_no_selection_and_counts_everything() {
        let rows = vec![
            row(3, 1e-5, 0, WorkStatus::Failed, None, 0.0),
            row(3, 1e-4, 0, WorkStatus::Running, None, 0.0),
        ];
        let s = &aggregate(&rows, Split::Test)[0];
        assert_eq!(s.selected_lr, None);
        assert_eq!(s.edge, None);
        assert_eq!((s.n, s.failed, s.unfinished), (0, 1, 1));
        assert_eq!(s.metric_mean, None);
    }

    #[test]
    fn a_single_lr_is_never_at_an_edge() {
        let rows = vec![done(0, 1e-5, 0, 0.8, 0.75), done(0, 1e-5, 1, 0.8, 0.75)];
        assert_eq!(aggregate(&rows, Split::Test)[0].edge, None);
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
        let cells = cells(&[a, b, c, d], Split::Test);
        assert_eq!(cells.len(), 4);
        // Pretrained/no-MLM first, scratch last.
        assert_eq!(cells.last().unwrap().key.init, Init::Scratch);
        assert_eq!(cells[0].key.intermediate, "none");
    }
}
