//! What each example of a split contributes to its metric, kept so the metric can be
//! recomputed on any resample of the examples: the paired bootstrap that gives a one-seed
//! result of entity F1, macro-F1 or Spearman its interval (over the split's examples, as
//! accuracy's right-or-wrong gives one without resampling).

use serde::{Deserialize, Serialize};

use crate::classification::{accuracy_and_macro_f1, f1};
use crate::correlation::{pearson, spearman};
use crate::entities::entities;
use crate::task::{Metric, Targets};

/// A split's per-example record for `metric`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerExample {
    pub metric: Metric,
    pub parts: Parts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parts {
    /// Single-label classification: (true, predicted) class ids, and how many classes.
    Classes { classes: usize, pairs: Vec<(u32, u32)> },
    /// Word tagging, per sentence: [entities found right, entities predicted, true entities,
    /// words tagged right, words]. Entities never cross sentences, so sums give the split's.
    Sentences(Vec<[u32; 5]>),
    /// Regression: (predicted, true) in the target's units.
    Scores(Vec<(f64, f64)>),
    /// Multi-label, per example: [labels predicted right, labels predicted wrongly, labels
    /// missed]. Micro-F1 pools them, so sums give the split's.
    LabelCounts(Vec<[u32; 3]>),
}

impl PerExample {
    /// The record of `predicted` against `truth`; `labels` names the tags of word tagging.
    pub fn of(metric: Metric, labels: &[String], truth: &Targets, predicted: &Targets) -> Self {
        let parts = match (truth, predicted) {
            (Targets::Classes(t), Targets::Classes(p)) => Parts::Classes {
                classes: labels.len(),
                pairs: t.iter().zip(p).map(|(&t, &p)| (t as u32, p as u32)).collect(),
            },
            (Targets::Scores(t), Targets::Scores(p)) => {
                Parts::Scores(p.iter().copied().zip(t.iter().copied()).collect())
            }
            (Targets::Tags(t), Targets::Tags(p)) => Parts::Sentences(
                t.iter().zip(p).map(|(t, p)| sentence_counts(labels, t, p)).collect(),
            ),
            (Targets::LabelSets(t), Targets::LabelSets(p)) => {
                Parts::LabelCounts(t.iter().zip(p).map(|(t, p)| label_counts(t, p)).collect())
            }
            _ => panic!("predictions of another task than the truth's"),
        };
        PerExample { metric, parts }
    }

    pub fn len(&self) -> usize {
        match &self.parts {
            Parts::Classes { pairs, .. } => pairs.len(),
            Parts::Sentences(s) => s.len(),
            Parts::Scores(s) => s.len(),
            Parts::LabelCounts(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The metric over the examples `picked` (repeats allowed: a bootstrap resample).
    pub fn metric_on(&self, picked: &[usize]) -> f64 {
        match &self.parts {
            Parts::Classes { classes, pairs } => {
                let (t, p): (Vec<usize>, Vec<usize>) =
                    picked.iter().map(|&i| (pairs[i].0 as usize, pairs[i].1 as usize)).unzip();
                let (accuracy, macro_f1) = accuracy_and_macro_f1(&p, &t, *classes);
                if self.metric == Metric::MacroF1 { macro_f1 } else { accuracy }
            }
            Parts::Sentences(counts) => {
                let mut sums = [0u64; 5];
                for &i in picked {
                    for (s, &c) in sums.iter_mut().zip(&counts[i]) {
                        *s += c as u64;
                    }
                }
                let [right, predicted, real, words_right, words] = sums.map(|s| s as f64);
                match self.metric {
                    Metric::TokenAccuracy => words_right / words.max(1.0),
                    // seqeval's micro F1: 0 when nothing is predicted or nothing is true.
                    _ if predicted + real == 0.0 => 0.0,
                    _ => 2.0 * right / (predicted + real),
                }
            }
            Parts::Scores(pairs) => {
                let (p, t): (Vec<f64>, Vec<f64>) = picked.iter().map(|&i| pairs[i]).unzip();
                let value =
                    if self.metric == Metric::Pearson { pearson(&p, &t) } else { spearman(&p, &t) };
                // A resample whose values are all tied has no correlation: count it as none.
                if value.is_finite() { value } else { 0.0 }
            }
            Parts::LabelCounts(counts) => {
                let [tp, fp, fn_] = picked.iter().fold([0.0; 3], |sum, &i| {
                    let c = counts[i].map(f64::from);
                    [sum[0] + c[0], sum[1] + c[1], sum[2] + c[2]]
                });
                f1(tp, fp, fn_)
            }
        }
    }

    /// The metric over every example.
    pub fn metric_value(&self) -> f64 {
        self.metric_on(&(0..self.len()).collect::<Vec<_>>())
    }
}

fn label_counts(truth: &[bool], predicted: &[bool]) -> [u32; 3] {
    let count = |want: (bool, bool)| {
        truth.iter().zip(predicted).filter(|&(&t, &p)| (p, t) == want).count() as u32
    };
    [count((true, true)), count((true, false)), count((false, true))]
}

fn sentence_counts(labels: &[String], truth: &[usize], predicted: &[usize]) -> [u32; 5] {
    let names = |tags: &[usize]| -> Vec<Vec<&str>> {
        vec![tags.iter().map(|&i| labels[i].as_str()).collect()]
    };
    let real = entities(&names(truth));
    let found = entities(&names(predicted));
    let right = found.iter().filter(|e| real.contains(e)).count();
    let words_right = truth.iter().zip(predicted).filter(|(t, p)| t == p).count();
    [right, found.len(), real.len(), words_right, truth.len()].map(|c| c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::entity_scores;

    fn names(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn sums_over_sentences_give_seqevals_micro_f1_and_token_accuracy() {
        let labels = names(&["B-PER", "I-PER", "B-LOC", "O"]);
        let truth = Targets::Tags(vec![vec![0, 1, 3, 2], vec![3, 2], vec![0, 3]]);
        let predicted = Targets::Tags(vec![vec![0, 1, 3, 3], vec![1, 2], vec![0, 0]]);
        let per = PerExample::of(Metric::EntityF1, &labels, &truth, &predicted);
        let tags = |t: &Targets| -> Vec<Vec<String>> {
            let Targets::Tags(s) = t else { unreachable!() };
            s.iter().map(|s| s.iter().map(|&i| labels[i].clone()).collect()).collect()
        };
        let whole = entity_scores(&tags(&truth), &tags(&predicted));
        assert!((per.metric_value() - whole.micro.f1).abs() < 1e-12);
        let words = PerExample { metric: Metric::TokenAccuracy, ..per.clone() };
        assert!((words.metric_value() - whole.token_accuracy).abs() < 1e-12);
        // A resample counts a sentence as often as it is drawn: sentence 0 (1 of its 2
        // entities found, nothing spurious) twice is 2 right of 2 predicted and 4 true.
        assert!((per.metric_on(&[0, 0]) - 2.0 * 2.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn resampled_classes_and_scores_are_scored_as_the_whole_split_is() {
        let per = PerExample::of(
            Metric::MacroF1,
            &names(&["a", "b"]),
            &Targets::Classes(vec![0, 1, 1, 0]),
            &Targets::Classes(vec![0, 1, 0, 0]),
        );
        // Class a: tp 2, fp 1 -> F1 0.8; class b: tp 1, fn 1 -> F1 2/3.
        assert!((per.metric_value() - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        let scores = PerExample::of(
            Metric::Spearman,
            &[],
            &Targets::Scores(vec![1.0, 2.0, 3.0]),
            &Targets::Scores(vec![0.1, 0.3, 0.2]),
        );
        assert!((scores.metric_value() - 0.5).abs() < 1e-12);
        assert_eq!(scores.metric_on(&[0, 0, 0]), 0.0, "all tied: no correlation");
    }

    #[test]
    fn label_counts_pool_to_the_splits_micro_f1() {
        let truth =
            vec![vec![true, false, true], vec![false, false, false], vec![true, true, false]];
        let predicted =
            vec![vec![true, true, false], vec![false, false, true], vec![true, true, false]];
        let per = PerExample::of(
            Metric::MicroF1,
            &names(&["a", "b", "c"]),
            &Targets::LabelSets(truth.clone()),
            &Targets::LabelSets(predicted.clone()),
        );
        let (micro, _) = crate::multi_label::micro_and_macro_f1(&predicted, &truth);
        assert!((per.metric_value() - micro).abs() < 1e-12);
        // Example 2 alone: both its labels found, nothing spurious.
        assert_eq!(per.metric_on(&[2]), 1.0);
        // Example 1 alone: one spurious label and nothing true: F1 0.
        assert_eq!(per.metric_on(&[1]), 0.0);
    }
}
