//! The majority-class baseline. A cell has learned something only when its interval lies
//! above always predicting the split's most frequent label; one whose interval reaches down
//! to that rate is "not above the majority class" and is never called best, competitive or
//! cheapest-good-enough.
//!
//! Decisions compare validation accuracy with the validation split's baseline (the test
//! split never chooses); the report shows test accuracy against the test split's baseline.
//! The interval is the Student-t one over seeds; a single seed has none, so the binomial
//! (normal-approximation) interval over the split's examples stands in for it.

use serde::{Deserialize, Serialize};

use crate::stats::Estimate;

/// Always predicting a split's most frequent label: the score a cell must beat to have
/// learned anything. Recorded at plan time in the sweep's setup (`baseline`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MajorityBaseline {
    /// The most frequent label of the split (ties: the first in sorted order).
    pub label: String,
    pub accuracy: f64,
    /// Macro-F1 of always predicting `label` (thaw's metric: classes never predicted score 0).
    pub macro_f1: f64,
    pub examples: usize,
}

/// The majority-class baseline of the splits the report reads: validation (which decisions
/// use) and test (which the report shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    pub validation: MajorityBaseline,
    pub test: MajorityBaseline,
}

/// The two-sided 95% normal quantile.
const Z_975: f64 = 1.959_963_984_540_054;

/// The lower end of the 95% interval of an accuracy `estimate` measured on `examples` examples.
pub fn lower_bound(estimate: &Estimate, examples: usize) -> f64 {
    match estimate.ci95 {
        Some(half) => estimate.mean - half,
        None => {
            let p = estimate.mean.clamp(0.0, 1.0);
            estimate.mean - Z_975 * (p * (1.0 - p) / examples.max(1) as f64).sqrt()
        }
    }
}

/// True when the whole 95% interval of `accuracy` lies above the majority-class rate.
pub fn is_above(accuracy: &Estimate, baseline: &MajorityBaseline) -> bool {
    lower_bound(accuracy, baseline.examples) > baseline.accuracy
}

/// "always predicting 'fresh' (60.4 %)".
pub fn describe(baseline: &MajorityBaseline) -> String {
    format!("always predicting '{}' ({:.1} %)", baseline.label, 100.0 * baseline.accuracy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(accuracy: f64, examples: usize) -> MajorityBaseline {
        MajorityBaseline {
            label: "fresh".into(),
            accuracy,
            macro_f1: accuracy / (1.0 + accuracy),
            examples,
        }
    }

    #[test]
    fn a_cell_is_above_the_majority_class_only_when_its_interval_is() {
        // 3 seeds, mean 0.70 ± 0.05: above 0.60, not above 0.66.
        let seeds = Estimate::of(&[0.68, 0.70, 0.72]).unwrap();
        let half = seeds.ci95.unwrap();
        assert!(is_above(&seeds, &baseline(0.70 - half - 0.001, 500)));
        assert!(!is_above(&seeds, &baseline(0.70 - half + 0.001, 500)));
        // Exactly the majority rate (a model that learned nothing) is never above it.
        let constant = Estimate::of(&[0.604, 0.604]).unwrap();
        assert!(!is_above(&constant, &baseline(0.604, 500)));
        // One seed: the binomial interval over the split's examples, 1.96 * sqrt(0.7 * 0.3 / 100) = 0.0898.
        let one = Estimate::of(&[0.70]).unwrap();
        assert!((lower_bound(&one, 100) - (0.70 - 0.0898)).abs() < 1e-4);
        assert!(is_above(&one, &baseline(0.60, 100)));
        assert!(!is_above(&one, &baseline(0.62, 100)));
        assert_eq!(describe(&baseline(0.604, 10)), "always predicting 'fresh' (60.4 %)");
    }
}
