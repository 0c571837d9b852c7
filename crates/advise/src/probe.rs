//! A linear probe in closed form: ridge regression from the features (with a bias column) to
//! one-hot class targets, `W = (XᵀX + λI)⁻¹ XᵀY`, each example then given its highest-scoring
//! class. What a head trained on the frozen layer could reach, without an optimizer's epochs.

use nalgebra::DMatrix;

/// λ relative to the mean diagonal of XᵀX: enough to keep the solve stable when features
/// outnumber examples, little enough to leave separable classes separated.
const RIDGE: f64 = 1e-3;

/// The features with a column of ones appended (the bias).
fn with_bias(features: &DMatrix<f64>) -> DMatrix<f64> {
    features.clone().insert_column(features.ncols(), 1.0)
}

/// The probe's weights ([features + 1, classes]) fitted on `train`.
pub fn fit(train: &DMatrix<f64>, labels: &[usize], classes: usize) -> DMatrix<f64> {
    let x = with_bias(train);
    let y = DMatrix::from_fn(x.nrows(), classes, |i, c| f64::from(labels[i] == c));
    let mut gram = x.transpose() * &x;
    let lambda = RIDGE * gram.trace() / gram.nrows() as f64;
    for i in 0..gram.nrows() {
        gram[(i, i)] += lambda;
    }
    let right = x.transpose() * y;
    gram.cholesky().expect("XᵀX + λI is positive definite").solve(&right)
}

/// Accuracy on (`test`, `test_labels`) of the probe fitted on (`train`, `train_labels`).
pub fn probe_accuracy(
    train: &DMatrix<f64>,
    train_labels: &[usize],
    test: &DMatrix<f64>,
    test_labels: &[usize],
    classes: usize,
) -> f64 {
    let scores = with_bias(test) * fit(train, train_labels, classes);
    let right = scores
        .row_iter()
        .zip(test_labels)
        .filter(|(row, label)| row.transpose().argmax().0 == **label)
        .count();
    right as f64 / test.nrows().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{blobs, shuffled_labels};

    #[test]
    fn a_separable_set_is_probed_perfectly_and_shuffled_labels_are_not() {
        let (train, train_labels) = blobs(60, 8, 3, 4.0, 1);
        let (test, test_labels) = blobs(30, 8, 3, 4.0, 2);
        assert_eq!(probe_accuracy(&train, &train_labels, &test, &test_labels, 3), 1.0);
        let noise = shuffled_labels(&train_labels, 3);
        assert!(probe_accuracy(&train, &noise, &test, &test_labels, 3) < 0.7);
    }

    #[test]
    fn more_features_than_examples_still_solve() {
        let (train, labels) = blobs(10, 40, 2, 3.0, 3);
        assert_eq!(probe_accuracy(&train, &labels, &train, &labels, 2), 1.0);
    }
}
