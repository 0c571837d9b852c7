//! What each task asks of the head: a batch's loss against its targets (cross-entropy over
//! classes, squared error on the standardized score, cross-entropy over the tags of each
//! word's first token, binary cross-entropy per label), and a split's predictions scored
//! with the task's metrics.

use burn::tensor::{Bool, Device, Int, Tensor};
use thaw_metrics::TaskScores;
use thaw_metrics::classification::accuracy_and_macro_f1;
use thaw_metrics::correlation::{pearson, rmse, spearman};
use thaw_metrics::entities::entity_scores;
use thaw_metrics::multi_label::{choose_threshold, decide, micro_and_macro_f1};

use crate::batch::{index_tensor, label_batch, label_set_batch, score_batch, tag_positions};
use crate::data::Targets;
use crate::encode::{EncodedData, EncodedSplit};
use crate::error::{Result, TrainError};
use crate::loss::{binary_cross_entropy_with_logits, cross_entropy};
use crate::model::Classifier;

/// A batch's examples: which split, which of its examples.
pub(crate) struct Batch<'a> {
    pub data: &'a EncodedData,
    pub split: &'a EncodedSplit,
    pub picked: &'a [usize],
}

/// What the head predicts for a batch, left on the device.
pub(crate) enum BatchOutput {
    Classes(Tensor<1, Int>),
    Scores(Tensor<1>),
    /// The predicted tag of each tagged word, in [`tag_positions`] order.
    Tags(Tensor<1, Int>),
    /// Per example, each label's probability (decided against a threshold afterwards).
    Probabilities(Tensor<2>),
}

/// The head's raw outputs for a batch: logits per example or per tagged word, or scores.
enum HeadOutput {
    Classes(Tensor<2>),
    Scores(Tensor<1>),
    Tags(Tensor<2>),
    LabelLogits(Tensor<2>),
}

/// Where multi-label predictions draw the line between yes and no: chosen on the split
/// being evaluated (validation only), or the one validation chose (test).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Threshold {
    ChooseOnThisSplit,
    Fixed(f64),
}

/// The batch's mean loss, how many targets it averaged over, and the head's outputs.
fn loss_and_outputs(
    model: &Classifier,
    hidden: Tensor<3>,
    mask: &Tensor<2, Bool>,
    from: usize,
    batch: &Batch,
    device: &Device,
) -> (Tensor<1>, usize, HeadOutput) {
    let picked = batch.picked;
    match &batch.split.targets {
        Targets::Classes(classes) => {
            let logits = model.logits_from(hidden, mask, from);
            let loss = cross_entropy(logits.clone(), label_batch(classes, picked, device));
            (loss, picked.len(), HeadOutput::Classes(logits))
        }
        Targets::Scores(scores) => {
            let scale = batch.data.standardization.expect("regression data is standardized");
            let out = model.logits_from(hidden, mask, from).reshape([picked.len()]);
            let diff = out.clone() - score_batch(scores, picked, scale, device);
            (diff.clone().mul(diff).mean(), picked.len(), HeadOutput::Scores(out))
        }
        Targets::Tags(_) => {
            let logits = model.token_logits_from(hidden, mask, from);
            let [b, s, c] = logits.dims();
            let (positions, tags) = tag_positions(batch.split, picked);
            let n = positions.len();
            let at_words = logits.reshape([b * s, c]).select(0, index_tensor(positions, device));
            let loss = cross_entropy(at_words.clone(), index_tensor(tags, device));
            (loss, n, HeadOutput::Tags(at_words))
        }
        Targets::LabelSets(sets) => {
            let logits = model.logits_from(hidden, mask, from);
            let truth = label_set_batch(sets, picked, device);
            let loss = binary_cross_entropy_with_logits(logits.clone(), truth);
            (loss, picked.len(), HeadOutput::LabelLogits(logits))
        }
    }
}

/// The batch's mean loss, how many targets it averaged over, and the predictions.
pub(crate) fn forward_batch(
    model: &Classifier,
    hidden: Tensor<3>,
    mask: &Tensor<2, Bool>,
    from: usize,
    batch: &Batch,
    device: &Device,
) -> (Tensor<1>, usize, BatchOutput) {
    let (loss, n, output) = loss_and_outputs(model, hidden, mask, from, batch, device);
    let predicted = match output {
        HeadOutput::Classes(logits) => BatchOutput::Classes(logits.argmax(1).reshape([n])),
        HeadOutput::Scores(scores) => BatchOutput::Scores(scores),
        HeadOutput::Tags(logits) => BatchOutput::Tags(logits.argmax(1).reshape([n])),
        HeadOutput::LabelLogits(logits) => {
            BatchOutput::Probabilities(burn::tensor::activation::sigmoid(logits))
        }
    };
    (loss, n, predicted)
}

/// The training loss of a batch (no predictions: training never reads them).
pub(crate) fn batch_loss(
    model: &Classifier,
    hidden: Tensor<3>,
    mask: &Tensor<2, Bool>,
    from: usize,
    batch: &Batch,
    device: &Device,
) -> Tensor<1> {
    loss_and_outputs(model, hidden, mask, from, batch, device).0
}

/// Every example's prediction, in the split's order, from the batches' outputs; scores in the
/// target's own units, and a word truncation cut predicted `O`. Multi-label predictions are
/// decided at `threshold`, which is returned (chosen or fixed).
pub(crate) fn predictions(
    data: &EncodedData,
    split: &EncodedSplit,
    batches: &[Vec<usize>],
    outputs: Vec<BatchOutput>,
    threshold: Threshold,
) -> Result<(Targets, Option<f64>)> {
    if let Targets::LabelSets(truth) = &split.targets {
        let probabilities = label_probabilities(split.len(), batches, outputs)?;
        let threshold = match threshold {
            Threshold::ChooseOnThisSplit => choose_threshold(&probabilities, truth),
            Threshold::Fixed(t) => t,
        };
        return Ok((Targets::LabelSets(decide(&probabilities, threshold)), Some(threshold)));
    }
    Ok((single_predictions(data, split, batches, outputs)?, None))
}

fn label_probabilities(
    n: usize,
    batches: &[Vec<usize>],
    outputs: Vec<BatchOutput>,
) -> Result<Vec<Vec<f64>>> {
    let mut out = vec![Vec::new(); n];
    for (picked, output) in batches.iter().zip(outputs) {
        let BatchOutput::Probabilities(t) = output else { unreachable!("one task per split") };
        let [_, labels] = t.dims();
        let values = t
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
        for (&i, row) in picked.iter().zip(values.chunks_exact(labels.max(1))) {
            out[i] = row.iter().map(|&p| p as f64).collect();
        }
    }
    Ok(out)
}

fn single_predictions(
    data: &EncodedData,
    split: &EncodedSplit,
    batches: &[Vec<usize>],
    outputs: Vec<BatchOutput>,
) -> Result<Targets> {
    let ints = |t: Tensor<1, Int>| -> Result<Vec<i64>> {
        t.into_data()
            .convert::<i64>()
            .try_to_vec()
            .map_err(|e| TrainError::Backend(format!("{e:?}")))
    };
    let n = split.len();
    match &split.targets {
        Targets::Classes(_) => {
            let mut out = vec![0usize; n];
            for (picked, output) in batches.iter().zip(outputs) {
                let BatchOutput::Classes(t) = output else { unreachable!("one task per split") };
                for (&i, p) in picked.iter().zip(ints(t)?) {
                    out[i] = p as usize;
                }
            }
            Ok(Targets::Classes(out))
        }
        Targets::Scores(_) => {
            let scale = data.standardization.expect("regression data is standardized");
            let mut out = vec![0.0; n];
            for (picked, output) in batches.iter().zip(outputs) {
                let BatchOutput::Scores(t) = output else { unreachable!("one task per split") };
                let values = t
                    .into_data()
                    .try_into_vec_as::<f32>()
                    .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
                for (&i, v) in picked.iter().zip(values) {
                    out[i] = scale.to_units(v as f64);
                }
            }
            Ok(Targets::Scores(out))
        }
        Targets::Tags(truth) => {
            let outside = outside_tag(&data.labels);
            let mut out: Vec<Vec<usize>> = truth.iter().map(|t| vec![outside; t.len()]).collect();
            for (picked, output) in batches.iter().zip(outputs) {
                let BatchOutput::Tags(t) = output else { unreachable!("one task per split") };
                let mut predicted = ints(t)?.into_iter();
                for &i in picked {
                    for (word, start) in split.word_starts[i].iter().enumerate() {
                        if start.is_some() {
                            out[i][word] = predicted.next().expect("one per tagged word") as usize;
                        }
                    }
                }
            }
            Ok(Targets::Tags(out))
        }
        Targets::LabelSets(_) => unreachable!("decided in predictions"),
    }
}

/// The tag a word gets when truncation cut it: `O`, or the first tag of a set without one.
pub(crate) fn outside_tag(labels: &[String]) -> usize {
    labels.iter().position(|l| l == "O").unwrap_or(0)
}

/// The task's scores of `predicted` against `truth`, and (classes only) which examples were
/// right. Multi-label scores carry no threshold: the caller marks the one it decided at.
pub fn score(labels: &[String], truth: &Targets, predicted: &Targets) -> (TaskScores, Vec<bool>) {
    match (truth, predicted) {
        (Targets::Classes(t), Targets::Classes(p)) => {
            let (accuracy, macro_f1) = accuracy_and_macro_f1(p, t, labels.len());
            let correct = p.iter().zip(t).map(|(a, b)| a == b).collect();
            (TaskScores::Classification { accuracy, macro_f1 }, correct)
        }
        (Targets::Scores(t), Targets::Scores(p)) => {
            let scores = TaskScores::Regression {
                spearman: spearman(p, t),
                pearson: pearson(p, t),
                rmse: rmse(p, t),
            };
            (scores, Vec::new())
        }
        (Targets::Tags(t), Targets::Tags(p)) => {
            let names = |s: &Vec<Vec<usize>>| -> Vec<Vec<&str>> {
                s.iter().map(|tags| tags.iter().map(|&i| labels[i].as_str()).collect()).collect()
            };
            let e = entity_scores(&names(t), &names(p));
            let scores = TaskScores::Tokens {
                entity_f1: e.micro.f1,
                entity_precision: e.micro.precision,
                entity_recall: e.micro.recall,
                token_accuracy: e.token_accuracy,
                f1_by_type: e.by_type.into_iter().map(|(k, s)| (k, s.f1)).collect(),
            };
            (scores, Vec::new())
        }
        (Targets::LabelSets(t), Targets::LabelSets(p)) => {
            let (micro_f1, macro_f1) = micro_and_macro_f1(p, t);
            (TaskScores::MultiLabel { micro_f1, macro_f1, threshold: None }, Vec::new())
        }
        _ => panic!("predictions of another task than the truth's"),
    }
}
