//! What a sweep's examples ask of the model ([`Task`]) and the number every choice on
//! validation compares ([`Metric`]), as sweep files spell them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The shape of a dataset's labels, and so of the head, loss and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// One label per text (or per text pair).
    #[default]
    Classification,
    /// One number per text (or per text pair).
    Regression,
    /// One tag per word.
    Tokens,
    /// A set of labels per text (or per text pair), possibly empty: one yes/no per label.
    MultiLabel,
}

impl Task {
    pub const ALL: [Task; 4] =
        [Task::Classification, Task::Regression, Task::Tokens, Task::MultiLabel];

    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
            Task::Tokens => "tokens",
            Task::MultiLabel => "multi_label",
        }
    }

    /// The metric a sweep of this task is judged by when its file names none.
    pub fn default_metric(self) -> Metric {
        match self {
            Task::Classification => Metric::Accuracy,
            Task::Regression => Metric::Spearman,
            Task::Tokens => Metric::EntityF1,
            Task::MultiLabel => Metric::MicroF1,
        }
    }

    /// The metrics a sweep of this task may be judged by.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Task::Classification => &[Metric::Accuracy, Metric::MacroF1],
            Task::Regression => &[Metric::Spearman, Metric::Pearson],
            Task::Tokens => &[Metric::EntityF1, Metric::TokenAccuracy],
            Task::MultiLabel => &[Metric::MicroF1],
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A primary metric: higher is better for every one of them.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    #[default]
    Accuracy,
    MacroF1,
    /// seqeval's micro-averaged entity F1 (default mode, BIO/IOB2).
    EntityF1,
    /// Tags right over words tagged (for tag sets without B-/I- prefixes, such as POS).
    TokenAccuracy,
    Spearman,
    Pearson,
    /// Multi-label: F1 over every (example, label) decision pooled.
    MicroF1,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Accuracy,
        Metric::MacroF1,
        Metric::EntityF1,
        Metric::TokenAccuracy,
        Metric::Spearman,
        Metric::Pearson,
        Metric::MicroF1,
    ];

    /// As sweep files and the store spell it.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::MacroF1 => "macro_f1",
            Metric::EntityF1 => "entity_f1",
            Metric::TokenAccuracy => "token_accuracy",
            Metric::Spearman => "spearman",
            Metric::Pearson => "pearson",
            Metric::MicroF1 => "micro_f1",
        }
    }

    /// As a report's reader reads it ("entity F1").
    pub fn title(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::MacroF1 => "macro-F1",
            Metric::EntityF1 => "entity F1",
            Metric::TokenAccuracy => "token accuracy",
            Metric::Spearman => "Spearman",
            Metric::Pearson => "Pearson",
            Metric::MicroF1 => "micro-F1",
        }
    }

    /// The task whose metrics include this one.
    pub fn task(self) -> Task {
        *Task::ALL.iter().find(|t| t.metrics().contains(&self)).expect("every metric has a task")
    }

    /// The mean over examples of a per-example score (accuracy's right-or-wrong): its
    /// one-seed interval is a normal one over examples. The others are resampled.
    pub fn is_mean_over_examples(self) -> bool {
        self == Metric::Accuracy
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A split's targets in the form training consumes, or (in the same form) a model's
/// predictions for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// Class ids.
    Classes(Vec<usize>),
    /// In the target's own units.
    Scores(Vec<f64>),
    /// Per example, one tag id per word.
    Tags(Vec<Vec<usize>>),
    /// Per example, one yes/no per label (in the order of the split's label names).
    LabelSets(Vec<Vec<bool>>),
}

/// Everything one split's predictions scored, by task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TaskScores {
    Classification {
        accuracy: f64,
        macro_f1: f64,
    },
    Regression {
        spearman: f64,
        pearson: f64,
        /// In the target's own units.
        rmse: f64,
    },
    Tokens {
        entity_f1: f64,
        entity_precision: f64,
        entity_recall: f64,
        token_accuracy: f64,
        /// Entity F1 per type, sorted by type.
        f1_by_type: Vec<(String, f64)>,
    },
    MultiLabel {
        micro_f1: f64,
        macro_f1: f64,
        /// The probability from which a label is predicted, chosen on validation; None for
        /// predictions that need none (the per-label majority baseline).
        threshold: Option<f64>,
    },
}

impl TaskScores {
    /// The value of `metric`, when this task reports it.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match (self, metric) {
            (TaskScores::Classification { accuracy, .. }, Metric::Accuracy) => Some(*accuracy),
            (TaskScores::Classification { macro_f1, .. }, Metric::MacroF1) => Some(*macro_f1),
            (TaskScores::Regression { spearman, .. }, Metric::Spearman) => Some(*spearman),
            (TaskScores::Regression { pearson, .. }, Metric::Pearson) => Some(*pearson),
            (TaskScores::Tokens { entity_f1, .. }, Metric::EntityF1) => Some(*entity_f1),
            (TaskScores::Tokens { token_accuracy, .. }, Metric::TokenAccuracy) => {
                Some(*token_accuracy)
            }
            (TaskScores::MultiLabel { micro_f1, .. }, Metric::MicroF1) => Some(*micro_f1),
            _ => None,
        }
    }

    /// Multi-label scores marked with the threshold their predictions were decided at.
    pub fn at_threshold(self, threshold: f64) -> Self {
        match self {
            TaskScores::MultiLabel { micro_f1, macro_f1, .. } => {
                TaskScores::MultiLabel { micro_f1, macro_f1, threshold: Some(threshold) }
            }
            other => other,
        }
    }

    /// The multi-label threshold these scores were decided at.
    pub fn threshold(&self) -> Option<f64> {
        match self {
            TaskScores::MultiLabel { threshold, .. } => *threshold,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_defaults_to_one_of_its_metrics_and_names_round_trip() {
        for task in Task::ALL {
            assert!(task.metrics().contains(&task.default_metric()));
            for &m in task.metrics() {
                assert_eq!(m.task(), task);
                assert_eq!(Metric::parse(m.name()), Some(m));
            }
        }
        assert_eq!(Metric::parse("f1"), None);
    }
}
