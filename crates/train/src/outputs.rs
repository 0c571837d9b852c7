//! A split's raw head outputs, for exports and the checks that an export is the stored model:
//! per example the logits over the classes or the standardized score, per word the logits at
//! its first token; per label of multi-label, its logit. From them follow the predictions and
//! the loss evaluation computed.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::backend::on_compute_threads;
use crate::batch::{eval_batches, token_batch, type_batch};
use thaw_metrics::multi_label::decide;

use crate::data::{Targets, Task};
use crate::encode::{EncodedData, EncodedSplit};
use crate::error::{Result, TrainError};
use crate::model::Classifier;
use crate::objective::outside_tag;

/// What the head gave each example of a split, in the split's order.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitOutputs {
    /// Per example: logits over the classes or the labels, or the one standardized score of
    /// regression.
    Sequence(Vec<Vec<f32>>),
    /// Per example and word: the logits at the word's first token, None where truncation cut
    /// the word (predicted `O`, left out of the loss, as evaluation does).
    Words(Vec<Vec<Option<Vec<f32>>>>),
}

/// The head's outputs for every example of `split`, computed from the tokens (embeddings
/// onward) in batches of `batch_size` on the plain `device`, dropout off. Returns the
/// inference model too (off the autodiff device, as exports want it).
pub fn split_outputs(
    model: Classifier,
    data: &EncodedData,
    split: &EncodedSplit,
    batch_size: usize,
    device: &Device,
) -> Result<(Classifier, SplitOutputs)> {
    on_compute_threads(|| {
        let model = model.valid();
        let outputs = match split.targets {
            Targets::Tags(_) => {
                SplitOutputs::Words(word_outputs(&model, data, split, batch_size, device)?)
            }
            _ => SplitOutputs::Sequence(sequence_outputs(&model, data, split, batch_size, device)?),
        };
        Ok((model, outputs))
    })
}

fn floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data().try_into_vec_as::<f32>().map_err(|e| TrainError::Backend(format!("{e:?}")))
}

fn sequence_outputs(
    model: &Classifier,
    data: &EncodedData,
    split: &EncodedSplit,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = vec![Vec::new(); split.len()];
    for picked in eval_batches(&split.lengths(), batch_size.max(1)) {
        let (ids, mask) = token_batch(&split.ids, &picked, data.pad, device);
        let logits = model.forward(ids, type_batch(split, &picked, device), &mask);
        let [_, width] = logits.dims();
        for (row, &i) in floats(logits)?.chunks_exact(width).zip(&picked) {
            out[i] = row.to_vec();
        }
    }
    Ok(out)
}

fn word_outputs(
    model: &Classifier,
    data: &EncodedData,
    split: &EncodedSplit,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<Option<Vec<f32>>>>> {
    let mut out = vec![Vec::new(); split.len()];
    for picked in eval_batches(&split.lengths(), batch_size.max(1)) {
        let (ids, mask) = token_batch(&split.ids, &picked, data.pad, device);
        let logits = model.token_forward(ids, type_batch(split, &picked, device), &mask);
        let [_, longest, width] = logits.dims();
        let values = floats(logits)?;
        for (row, &i) in picked.iter().enumerate() {
            let at = |token: usize| {
                let start = (row * longest + token) * width;
                values[start..start + width].to_vec()
            };
            out[i] = split.word_starts[i].iter().map(|start| start.map(at)).collect();
        }
    }
    Ok(out)
}

/// The first index of the largest value, as the backends' argmax picks among ties.
fn argmax(row: &[f32]) -> usize {
    (0..row.len()).rev().max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0)
}

/// Mean cross-entropy of `logits` at class `label`, in f64.
fn cross_entropy(logits: &[f32], label: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let log_sum = logits.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    log_sum - logits[label] as f64
}

/// Binary cross-entropy of one logit against a yes/no, in f64 and the stable form.
fn binary_cross_entropy(logit: f32, yes: bool) -> f64 {
    let x = logit as f64;
    x.max(0.0) - if yes { x } else { 0.0 } + (-x.abs()).exp().ln_1p()
}

/// Each label's probability: the sigmoid of its logit.
pub fn probabilities(rows: &[Vec<f32>]) -> Vec<Vec<f64>> {
    rows.iter().map(|r| r.iter().map(|&x| 1.0 / (1.0 + (-(x as f64)).exp())).collect()).collect()
}

impl SplitOutputs {
    /// The predictions these outputs make, as evaluation makes them: the top class or tag,
    /// scores in the target's own units, multi-label's labels whose probability reaches
    /// `threshold` (the one validation chose; required for multi-label).
    pub fn predictions(&self, data: &EncodedData, threshold: Option<f64>) -> Targets {
        match (self, data.task()) {
            (SplitOutputs::Sequence(rows), Task::Classification) => {
                Targets::Classes(rows.iter().map(|r| argmax(r)).collect())
            }
            (SplitOutputs::Sequence(rows), Task::Regression) => {
                let scale = data.standardization.expect("regression data is standardized");
                Targets::Scores(rows.iter().map(|r| scale.to_units(r[0] as f64)).collect())
            }
            (SplitOutputs::Sequence(rows), Task::MultiLabel) => {
                let threshold = threshold.expect("multi-label predictions need their threshold");
                Targets::LabelSets(decide(&probabilities(rows), threshold))
            }
            (SplitOutputs::Sequence(_), Task::Tokens) => {
                panic!("word tagging has outputs per word")
            }
            (SplitOutputs::Words(sentences), _) => {
                let outside = outside_tag(&data.labels);
                Targets::Tags(
                    sentences
                        .iter()
                        .map(|words| {
                            words.iter().map(|w| w.as_deref().map_or(outside, argmax)).collect()
                        })
                        .collect(),
                )
            }
        }
    }

    /// The loss evaluation reports against `truth`: mean cross-entropy per example or per
    /// tagged word, or mean squared error on the standardized score.
    pub fn loss(&self, data: &EncodedData, truth: &Targets) -> f64 {
        let (sum, count) = match (self, truth) {
            (SplitOutputs::Sequence(rows), Targets::Classes(classes)) => (
                rows.iter().zip(classes).map(|(r, &c)| cross_entropy(r, c)).sum::<f64>(),
                rows.len(),
            ),
            (SplitOutputs::Sequence(rows), Targets::Scores(scores)) => {
                let scale = data.standardization.expect("regression data is standardized");
                let error = |r: &Vec<f32>, y: f64| (r[0] as f64 - scale.standardize(y)).powi(2);
                (rows.iter().zip(scores).map(|(r, &y)| error(r, y)).sum::<f64>(), rows.len())
            }
            (SplitOutputs::Sequence(rows), Targets::LabelSets(sets)) => {
                let per_example = |r: &Vec<f32>, set: &Vec<bool>| {
                    let each = r.iter().zip(set).map(|(&x, &y)| binary_cross_entropy(x, y));
                    each.sum::<f64>() / set.len().max(1) as f64
                };
                (rows.iter().zip(sets).map(|(r, s)| per_example(r, s)).sum::<f64>(), rows.len())
            }
            (SplitOutputs::Words(sentences), Targets::Tags(tags)) => {
                let tagged =
                    sentences.iter().zip(tags).flat_map(|(words, tags)| words.iter().zip(tags));
                let (mut sum, mut count) = (0.0, 0);
                for (logits, &tag) in tagged.filter_map(|(w, t)| Some((w.as_deref()?, t))) {
                    sum += cross_entropy(logits, tag);
                    count += 1;
                }
                (sum, count)
            }
            _ => panic!("outputs of another task than the truth's"),
        };
        sum / count.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Standardization;

    fn data(labels: &[&str], standardization: Option<Standardization>) -> EncodedData {
        data_of(labels, standardization, Targets::Classes(Vec::new()))
    }

    fn data_of(labels: &[&str], scale: Option<Standardization>, kind: Targets) -> EncodedData {
        let split = EncodedSplit {
            ids: Vec::new(),
            second_text_at: Vec::new(),
            word_starts: Vec::new(),
            targets: kind,
        };
        EncodedData {
            train: split.clone(),
            validation: split.clone(),
            test: split,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            standardization: scale,
            pad: 0,
            identity: String::new(),
        }
    }

    #[test]
    fn classes_take_the_top_logit_and_their_cross_entropy() {
        let outputs = SplitOutputs::Sequence(vec![vec![0.0, 2.0], vec![1.0, 1.0]]);
        let d = data(&["a", "b"], None);
        assert_eq!(outputs.predictions(&d, None), Targets::Classes(vec![1, 0]));
        // ln(1 + e^-2) for the first, ln 2 for the second.
        let expected = ((1.0 + (-2.0f64).exp()).ln() + 2.0f64.ln()) / 2.0;
        assert!((outputs.loss(&d, &Targets::Classes(vec![1, 1])) - expected).abs() < 1e-6);
    }

    #[test]
    fn scores_come_back_in_the_targets_units_and_the_loss_stays_standardized() {
        let scale = Some(Standardization { mean: 2.0, sd: 0.5 });
        let d = data_of(&[], scale, Targets::Scores(Vec::new()));
        let outputs = SplitOutputs::Sequence(vec![vec![1.0], vec![-2.0]]);
        assert_eq!(outputs.predictions(&d, None), Targets::Scores(vec![2.5, 1.0]));
        // Standardized truths 0 and -2: errors 1 and 0.
        assert!((outputs.loss(&d, &Targets::Scores(vec![2.0, 1.0])) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_truncated_word_is_predicted_outside_and_left_out_of_the_loss() {
        let d = data(&["B-PER", "O"], None);
        let outputs = SplitOutputs::Words(vec![vec![Some(vec![3.0, 0.0]), None]]);
        assert_eq!(outputs.predictions(&d, None), Targets::Tags(vec![vec![0, 1]]));
        let loss = outputs.loss(&d, &Targets::Tags(vec![vec![0, 0]]));
        assert!((loss - (1.0 + (-3.0f64).exp()).ln()).abs() < 1e-6);
    }

    #[test]
    fn labels_are_yes_from_the_threshold_and_their_loss_is_the_mean_binary_cross_entropy() {
        let d = data_of(&["a", "b"], None, Targets::LabelSets(Vec::new()));
        // Probabilities: sigmoid(0) = 0.5, sigmoid(2) = 0.88, sigmoid(-1) = 0.27.
        let outputs = SplitOutputs::Sequence(vec![vec![0.0, 2.0], vec![-1.0, 0.0]]);
        let yes =
            |rows: Vec<[bool; 2]>| Targets::LabelSets(rows.into_iter().map(Vec::from).collect());
        assert_eq!(outputs.predictions(&d, Some(0.5)), yes(vec![[true, true], [false, true]]));
        assert_eq!(outputs.predictions(&d, Some(0.6)), yes(vec![[false, true], [false, false]]));
        let truth = yes(vec![[true, false], [false, false]]);
        let bce = |p: f64, y: f64| -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let expected =
            (bce(s(0.0), 1.0) + bce(s(2.0), 0.0) + bce(s(-1.0), 0.0) + bce(s(0.0), 0.0)) / 4.0;
        assert!((outputs.loss(&d, &truth) - expected).abs() < 1e-9);
    }
}
