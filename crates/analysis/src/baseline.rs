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

use thaw_metrics::{Metric, Task};

use crate::stats::Estimate;

/// The task's trivial predictor on a split: always the most frequent label (classification),
/// the training mean (regression: no correlation), every word `O` (word tagging: no entity),
/// the labels frequent enough in training, the same for every text (multi-label: see
/// `thaw_metrics::multi_label::text_blind_prediction`).
/// The score a cell must beat to have learned anything. Recorded at plan time in the sweep's
/// setup (`baseline`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MajorityBaseline {
    /// What it always predicts: the most frequent label (ties: the first in sorted order),
    /// the training mean, the tag `O`, a phrase naming multi-label's text-blind labels.
    pub label: String,
    /// Its value of the sweep's metric (named `accuracy` in setups from before tasks).
    #[serde(alias = "accuracy")]
    pub metric_value: f64,
    /// Macro-F1 of always predicting `label` (classification; thaw's metric: classes never
    /// predicted score 0).
    #[serde(default)]
    pub macro_f1: f64,
    /// Regression: its RMSE in the target's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// The metric `metric_value` is of.
    #[serde(default)]
    pub metric: Metric,
    pub examples: usize,
}

impl MajorityBaseline {
    /// Classification's trivial predictor is a class, which the report calls the majority
    /// class; the other tasks' (the training mean, all-O) it calls the baseline.
    pub fn is_majority_class(&self) -> bool {
        self.metric.task() == Task::Classification
    }

    /// "majority class" or "baseline".
    pub fn name(&self) -> &'static str {
        if self.is_majority_class() { "majority class" } else { "baseline" }
    }

    /// What it always predicts, as a sentence quotes it: 'fresh', 'O', the training mean 2.701.
    pub fn predictor(&self) -> String {
        match self.metric.task() {
            Task::Regression | Task::MultiLabel => self.label.clone(),
            Task::Classification | Task::Tokens => format!("'{}'", self.label),
        }
    }
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

/// The lower end of the 95% interval of `estimate`, a mean of `metric` over seeds measured
/// on `examples` examples each. A single seed of accuracy gets the binomial interval over
/// examples, a single seed of another metric its bootstrap interval over the examples; one
/// without stored examples has none, so its lower end is -inf (never above anything).
pub fn lower_bound(estimate: &Estimate, metric: Metric, examples: usize) -> f64 {
    match (estimate.ci95, estimate.examples_ci95) {
        (Some(half), _) => estimate.mean - half,
        (None, _) if metric.is_mean_over_examples() => {
            let p = estimate.mean.clamp(0.0, 1.0);
            estimate.mean - Z_975 * (p * (1.0 - p) / examples.max(1) as f64).sqrt()
        }
        (None, Some(half)) => estimate.mean - half,
        (None, None) => f64::NEG_INFINITY,
    }
}

/// True when the whole 95% interval of `estimate` lies above the baseline's value.
pub fn is_above(estimate: &Estimate, baseline: &MajorityBaseline) -> bool {
    lower_bound(estimate, baseline.metric, baseline.examples) > baseline.metric_value
}

/// "always predicting 'fresh' (60.4 %)", "predicting the training mean 2.70 (Spearman 0.000)".
pub fn describe(baseline: &MajorityBaseline) -> String {
    match baseline.metric {
        Metric::Accuracy => {
            format!(
                "always predicting '{}' ({:.1} %)",
                baseline.label,
                100.0 * baseline.metric_value
            )
        }
        Metric::MacroF1 | Metric::EntityF1 | Metric::TokenAccuracy => format!(
            "always predicting '{}' ({} {:.1} %)",
            baseline.label,
            baseline.metric.title(),
            100.0 * baseline.metric_value
        ),
        Metric::MicroF1 => format!(
            "always predicting {}, whatever the text ({} {:.1} %)",
            baseline.label,
            baseline.metric.title(),
            100.0 * baseline.metric_value
        ),
        Metric::Spearman | Metric::Pearson => format!(
            "always predicting {} ({} {:.3}{})",
            baseline.label,
            baseline.metric.title(),
            baseline.metric_value,
            baseline.rmse.map(|r| format!(", RMSE {r:.3}")).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(accuracy: f64, examples: usize) -> MajorityBaseline {
        MajorityBaseline {
            label: "fresh".into(),
            metric_value: accuracy,
            macro_f1: accuracy / (1.0 + accuracy),
            rmse: None,
            metric: Metric::Accuracy,
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
        assert!((lower_bound(&one, Metric::Accuracy, 100) - (0.70 - 0.0898)).abs() < 1e-4);
        assert!(is_above(&one, &baseline(0.60, 100)));
        assert!(!is_above(&one, &baseline(0.62, 100)));
        assert_eq!(describe(&baseline(0.604, 10)), "always predicting 'fresh' (60.4 %)");
    }

    #[test]
    fn one_seed_of_a_metric_without_a_per_example_mean_is_above_only_by_its_bootstrap() {
        let one = Estimate::of(&[0.9]).unwrap();
        let all_o = MajorityBaseline {
            label: "O".into(),
            metric_value: 0.0,
            macro_f1: 0.0,
            rmse: None,
            metric: Metric::EntityF1,
            examples: 200,
        };
        assert!(!is_above(&one, &all_o), "no interval, no claim");
        let resampled = |half| Estimate { examples_ci95: Some(half), ..one };
        assert!(is_above(&resampled(0.1), &all_o));
        assert!(!is_above(&resampled(0.95), &all_o), "an interval reaching below the baseline");
        let seeds = Estimate::of(&[0.30, 0.32, 0.34]).unwrap();
        assert!(is_above(&seeds, &all_o));
        assert_eq!(describe(&all_o), "always predicting 'O' (entity F1 0.0 %)");
    }
}
