//! `thaw advise`'s forecast as the store keeps it and the report reads it: each cell's
//! predicted validation metric, the pick and why, and what the advice cost against the grid;
//! then, once the sweep has run, how the forecast compares with what was measured.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use thaw_metrics::Metric;

use crate::cells::CellKey;

/// How a cell's score was predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Its own short fine-tuning probe.
    Probe,
    /// An intermediate-MLM cell, not probed (the advisor trains no MLM stage): taken as its
    /// counterpart without MLM at the same depth.
    AsWithoutMlm,
}

/// One cell of the grid, forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellForecast {
    pub cell: CellKey,
    pub num_layers: i64,
    /// The predicted validation metric.
    pub predicted: f64,
    /// Its probe's validation loss: what orders cells whose predictions are equal (several
    /// probes still on the same plateau), as the trainer orders epochs. None: not stored.
    #[serde(default)]
    pub predicted_loss: Option<f64>,
    pub evidence: Evidence,
    /// Seconds one of its full jobs should take: the probe's throughput times the job's
    /// examples and epochs.
    pub job_seconds: f64,
    /// The probe it rests on: its learning rate (the cell's best on validation) and how many
    /// training examples its one epoch saw.
    pub probe_lr: f64,
    pub probe_examples: usize,
    /// Its probe's gradient-to-weight norm ratio per encoder layer (index 0 = the lowest),
    /// averaged over the probe's steps; None for a layer that stayed frozen. Empty for a cell
    /// without its own probe.
    #[serde(default)]
    pub gradient_ratios: Vec<Option<f64>>,
}

/// The frozen features' readings at one encoder depth (classification), as stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DepthReading {
    pub depth: usize,
    pub logme: f64,
    pub h_score: f64,
    pub knn_accuracy: f64,
    pub probe_accuracy: f64,
}

/// How far an intermediate-MLM corpus lies from the pretraining data, read before any MLM step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlmReading {
    /// The stage's name in the sweep file (`task` is the training split's own text).
    pub corpus: String,
    /// Held-out masked-LM perplexity per token of the pretrained model.
    pub perplexity: f64,
    /// Mean characters of text per masked token: how finely the vocabulary cuts the text.
    pub chars_per_token: f64,
    pub heldout_docs: usize,
    /// Steps a fresh MLM head was fitted on the frozen encoder before the reading (None: the
    /// checkpoint's own head): a fitted head's perplexity is an upper bound.
    pub head_warmup_steps: Option<usize>,
    /// Seconds per head warm-up step: what prices the grid's MLM stages (a lower bound: their
    /// steps also train encoder layers). None without a warm-up.
    pub step_seconds: Option<f64>,
    pub seconds: f64,
}

impl MlmReading {
    /// The masked-LM loss per character of text, nats: comparable across tokenizations, where
    /// per-token perplexity is not.
    pub fn loss_per_character(&self) -> f64 {
        self.perplexity.ln() / self.chars_per_token.max(f64::MIN_POSITIVE)
    }
}

/// What `thaw advise` predicts for a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub sweep: String,
    pub metric: Metric,
    /// Best predicted first.
    pub cells: Vec<CellForecast>,
    /// Index into `cells`: the recommended cell.
    pub pick: usize,
    /// Cells predicted within this much of the best count as equal: the validation split's
    /// sampling error at the best predicted score.
    pub tolerance: f64,
    /// Why, in words.
    pub reason: String,
    /// What the advice spent (frozen features and short probes), seconds.
    pub advisor_seconds: f64,
    /// What every job of the grid would take, estimated from the probes' throughput, and its
    /// MLM stages at the MLM readings' step speed, seconds.
    pub grid_seconds: f64,
    /// The share of each cell's training set its probe trained on, and for how many epochs
    /// (LP-FT: at least its head epochs and one).
    pub probe_fraction: f64,
    #[serde(default = "one")]
    pub probe_epochs: usize,
    /// The frozen readings per depth (classification; empty otherwise).
    #[serde(default)]
    pub frozen: Vec<DepthReading>,
    /// The intermediate-MLM corpora's readings (empty when the grid has no MLM stage).
    #[serde(default)]
    pub mlm: Vec<MlmReading>,
}

fn one() -> usize {
    1
}

impl Forecast {
    pub fn picked(&self) -> &CellForecast {
        &self.cells[self.pick]
    }

    /// The advice's cost as a fraction of the grid's.
    pub fn compute_fraction(&self) -> f64 {
        self.advisor_seconds / self.grid_seconds.max(1e-9)
    }
}

/// The sampling error (95%) of a validation score `p` over `examples` examples, at least one
/// point: what tells two probes' scores apart.
pub fn tolerance(p: f64, examples: usize) -> f64 {
    let p = p.clamp(0.0, 1.0);
    (1.959_963_984_540_054 * (p * (1.0 - p) / examples.max(1) as f64).sqrt()).max(0.01)
}

/// The forecast's order: the higher prediction first; equal predictions, the lower probe
/// loss first (a cell without one after a cell with one).
pub fn forecast_order(a: &CellForecast, b: &CellForecast) -> Ordering {
    let loss = |c: &CellForecast| c.predicted_loss.unwrap_or(f64::INFINITY);
    b.predicted.total_cmp(&a.predicted).then(loss(a).total_cmp(&loss(b)))
}

/// Sorts `cells` in [`forecast_order`] (then the cheaper first) and picks, among those within
/// `tolerance` of the best, the one whose jobs are cheapest (ties: the earlier in the order).
pub fn rank_and_pick(cells: &mut [CellForecast], tolerance: f64) -> usize {
    cells.sort_by(|a, b| forecast_order(a, b).then(a.job_seconds.total_cmp(&b.job_seconds)));
    let best = cells.first().map_or(0.0, |c| c.predicted);
    (0..cells.len())
        .filter(|&i| cells[i].predicted >= best - tolerance)
        .min_by(|&a, &b| cells[a].job_seconds.total_cmp(&cells[b].job_seconds))
        .unwrap_or(0)
}

/// The rule `[search] prior = "advise"` prunes by: a cell predicted more than `margin`
/// below the best is given one seed and one rung until its own results say otherwise.
pub fn predicted_far_below(forecast: &Forecast, cell: &CellKey, margin: f64) -> bool {
    let best = forecast.cells.first().map_or(0.0, |c| c.predicted);
    forecast.cells.iter().any(|c| &c.cell == cell && c.predicted < best - margin)
}

/// The forecast against the sweep's measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Hindsight {
    /// Per forecast cell with a measurement: (predicted rank, measured rank), 1-based.
    pub ranks: Vec<(CellKey, usize, usize)>,
    /// Kendall's tau-b between the predicted order and measured validation means.
    pub kendall_tau: Option<f64>,
    /// The pick lies in the verdict's best group.
    pub hit: bool,
}

/// Compares `forecast` with `measured` (each cell's validation mean at its selected lr) and
/// the verdict's best group.
pub fn hindsight(forecast: &Forecast, measured: &[(CellKey, f64)], best: &[CellKey]) -> Hindsight {
    let pairs: Vec<(&CellForecast, f64)> = forecast
        .cells
        .iter()
        .filter_map(|c| measured.iter().find(|(k, _)| k == &c.cell).map(|(_, m)| (c, *m)))
        .collect();
    let rank = |values: Vec<f64>| -> Vec<usize> {
        values.iter().map(|v| 1 + values.iter().filter(|&&o| o > *v).count()).collect()
    };
    // Predicted: ranked in the forecast's order (ties only where prediction and loss agree).
    let predicted_ranks: Vec<usize> = pairs
        .iter()
        .map(|(c, _)| {
            1 + pairs.iter().filter(|(o, _)| forecast_order(o, c) == Ordering::Less).count()
        })
        .collect();
    let measured_ranks = rank(pairs.iter().map(|(_, m)| *m).collect());
    let ranks = pairs
        .iter()
        .zip(predicted_ranks.iter().zip(&measured_ranks))
        .map(|((c, _), (&p, &m))| (c.cell.clone(), p, m))
        .collect();
    let xs: Vec<f64> = predicted_ranks.iter().map(|&r| -(r as f64)).collect();
    let ys: Vec<f64> = pairs.iter().map(|(_, m)| *m).collect();
    Hindsight {
        ranks,
        kendall_tau: kendall_tau_b(&xs, &ys),
        hit: best.contains(&forecast.picked().cell),
    }
}

/// Kendall's tau-b (ties in either variable corrected, as scipy's `kendalltau`); None with
/// fewer than two pairs or when one side is all ties.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    let (mut concordant, mut discordant, mut ties_x, mut ties_y) = (0.0f64, 0.0, 0.0, 0.0);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {}
                (true, false) => ties_x += 1.0,
                (false, true) => ties_y += 1.0,
                _ if dx * dy > 0.0 => concordant += 1.0,
                _ => discordant += 1.0,
            }
        }
    }
    let denominator: f64 =
        ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)).sqrt();
    (denominator > 0.0).then(|| (concordant - discordant) / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use thaw_store::Init;

    fn key(freeze: i64) -> CellKey {
        CellKey {
            init: Init::Pretrained,
            intermediate: "none".into(),
            mlm_freeze: None,
            pooling: "mean".into(),
            freeze,
            train_size: Some(500),
            strategy: "plain".into(),
        }
    }

    fn forecast(scores: &[(i64, f64, f64)]) -> Forecast {
        let mut cells: Vec<CellForecast> = scores
            .iter()
            .map(|&(freeze, predicted, job_seconds)| CellForecast {
                cell: key(freeze),
                num_layers: 6,
                predicted,
                predicted_loss: None,
                evidence: Evidence::Probe,
                job_seconds,
                probe_lr: 1e-4,
                probe_examples: 100,
                gradient_ratios: Vec::new(),
            })
            .collect();
        let pick = rank_and_pick(&mut cells, 0.02);
        Forecast {
            sweep: "s".into(),
            metric: Metric::Accuracy,
            cells,
            pick,
            tolerance: 0.02,
            reason: String::new(),
            advisor_seconds: 5.0,
            grid_seconds: 100.0,
            probe_fraction: 0.2,
            probe_epochs: 1,
            frozen: Vec::new(),
            mlm: Vec::new(),
        }
    }

    #[test]
    fn the_pick_is_the_cheapest_cell_within_the_tolerance_of_the_best() {
        // Full fine-tuning 0.80 (60 s), half frozen 0.79 (30 s), head only 0.70 (5 s).
        let f = forecast(&[(0, 0.80, 60.0), (3, 0.79, 30.0), (6, 0.70, 5.0)]);
        assert_eq!(f.cells[0].cell.freeze, 0, "best predicted first");
        assert_eq!(f.picked().cell.freeze, 3, "within 2 points and half the cost");
        assert!((f.compute_fraction() - 0.05).abs() < 1e-12);
    }

    #[test]
    fn the_prior_prunes_only_cells_predicted_far_below_the_best() {
        let f = forecast(&[(0, 0.80, 60.0), (3, 0.79, 30.0), (6, 0.70, 5.0)]);
        assert!(predicted_far_below(&f, &key(6), 0.05));
        assert!(!predicted_far_below(&f, &key(3), 0.05));
        assert!(!predicted_far_below(&f, &key(0), 0.05));
        assert!(!predicted_far_below(&f, &key(2), 0.05), "a cell not forecast is never pruned");
    }

    #[test]
    fn hindsight_ranks_and_tau_against_the_measured_cells() {
        let f = forecast(&[(0, 0.80, 60.0), (3, 0.79, 30.0), (6, 0.70, 5.0)]);
        // Measured: half frozen best, then full, then head only: one swapped pair of three.
        let measured = vec![(key(0), 0.81), (key(3), 0.82), (key(6), 0.65)];
        let h = hindsight(&f, &measured, &[key(3), key(0)]);
        assert!(h.hit);
        assert!((h.kendall_tau.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!(h.ranks.contains(&(key(3), 2, 1)));
        let miss = hindsight(&f, &measured, &[key(0)]);
        assert!(!miss.hit);
    }

    #[test]
    fn equal_predictions_are_ordered_by_the_probes_loss_and_tau_reads_that_order() {
        // Three probes on the same plateau (0 %): the lower loss ranks first.
        let mut f = forecast(&[(0, 0.0, 60.0), (3, 0.0, 30.0), (6, 0.0, 5.0)]);
        for c in &mut f.cells {
            c.predicted_loss = Some(match c.cell.freeze {
                0 => 0.9,
                3 => 0.4,
                _ => 0.7,
            });
        }
        f.pick = rank_and_pick(&mut f.cells, 0.02);
        let order: Vec<i64> = f.cells.iter().map(|c| c.cell.freeze).collect();
        assert_eq!(order, [3, 6, 0]);
        assert_eq!(f.picked().cell.freeze, 6, "all within the tolerance: the cheapest");
        let measured = vec![(key(0), 0.50), (key(3), 0.70), (key(6), 0.60)];
        let h = hindsight(&f, &measured, &[key(3)]);
        assert_eq!(h.kendall_tau, Some(1.0), "the loss order is the measured order");
        assert!(h.ranks.contains(&(key(0), 3, 3)));
        // Without stored losses the three tie, and tau is undefined.
        for c in &mut f.cells {
            c.predicted_loss = None;
        }
        assert_eq!(hindsight(&f, &measured, &[key(3)]).kendall_tau, None);
    }

    #[test]
    fn kendall_tau_b_corrects_for_ties_as_scipy_does() {
        // scipy.stats.kendalltau([1, 2, 2, 3], [1, 3, 2, 4]) = 0.9128709291752769.
        let tau = kendall_tau_b(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((tau - 0.912_870_929_175_276_9).abs() < 1e-12, "{tau}");
        assert_eq!(kendall_tau_b(&[1.0, 1.0], &[1.0, 2.0]), None);
    }
}
