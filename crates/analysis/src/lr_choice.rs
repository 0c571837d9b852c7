//! How a learning rate is chosen: the one order the report's selection over finished jobs
//! and the adaptive search's halving over rungs both rank candidates by.

use std::cmp::Ordering;

/// Two mean validation scores closer than this are a tie (they come from the same few
/// numbers averaged in different orders, so exact float equality is too strict).
pub const TIE_TOLERANCE: f64 = 1e-9;

/// What choosing a learning rate compares, from any validation numbers: the report's
/// selection over finished jobs and the adaptive search's halving over rungs use this one
/// order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrCandidate {
    pub lr: f64,
    /// Seeds that failed (usually diverged).
    pub failed: usize,
    /// Means over the done seeds; None without one.
    /// The sweep's metric.
    pub val_metric: Option<f64>,
    pub val_macro_f1: Option<f64>,
    pub val_loss: Option<f64>,
}

impl LrCandidate {
    /// Greater means better: no failed seed, then the validation metric, macro-F1, lower loss
    /// (means within [`TIE_TOLERANCE`] tie), then the smaller lr.
    pub fn selection_order(&self, other: &LrCandidate) -> Ordering {
        let (a, b) = (self, other);
        // Fewer failures is better: (a.failed == 0) > (b.failed == 0) when only a is clean.
        (a.failed == 0)
            .cmp(&(b.failed == 0))
            .then_with(|| compare_scores(a.val_metric, b.val_metric))
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
