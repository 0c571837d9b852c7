//! k-nearest-neighbour accuracy: each validation example takes the majority class of its k
//! most similar training examples (cosine similarity of their features; ties to the nearer
//! neighbours' class). High when the frozen features already place classes apart locally,
//! with no model fitted at all.

use nalgebra::DMatrix;

/// Rows scaled to unit length (a zero row stays zero).
fn unit_rows(features: &DMatrix<f64>) -> DMatrix<f64> {
    let mut out = features.clone();
    for mut row in out.row_iter_mut() {
        let norm = row.norm();
        if norm > 0.0 {
            row /= norm;
        }
    }
    out
}

/// The class `k` nearest training rows vote for `query`'s row of `similarity`.
fn vote(similarity: &[f64], train_labels: &[usize], classes: usize, k: usize) -> usize {
    let mut order: Vec<usize> = (0..similarity.len()).collect();
    order.sort_by(|&a, &b| similarity[b].total_cmp(&similarity[a]).then(a.cmp(&b)));
    let mut votes = vec![(0usize, 0.0f64); classes];
    for &i in order.iter().take(k) {
        votes[train_labels[i]].0 += 1;
        votes[train_labels[i]].1 += similarity[i];
    }
    // Most votes; among equal counts, the larger summed similarity (the nearer neighbours).
    (0..classes)
        .max_by(|&a, &b| votes[a].0.cmp(&votes[b].0).then(votes[a].1.total_cmp(&votes[b].1)))
        .unwrap_or(0)
}

/// Accuracy on (`test`, `test_labels`) of the k-nearest-neighbour vote over `train`.
pub fn knn_accuracy(
    train: &DMatrix<f64>,
    train_labels: &[usize],
    test: &DMatrix<f64>,
    test_labels: &[usize],
    classes: usize,
    k: usize,
) -> f64 {
    let similarity = unit_rows(test) * unit_rows(train).transpose();
    let right = (0..test.nrows())
        .filter(|&i| {
            let row: Vec<f64> = similarity.row(i).iter().copied().collect();
            vote(&row, train_labels, classes, k.max(1)) == test_labels[i]
        })
        .count();
    right as f64 / test.nrows().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{blobs, shuffled_labels};

    #[test]
    fn separated_classes_are_found_and_shuffled_labels_are_not() {
        let (train, train_labels) = blobs(60, 8, 3, 4.0, 1);
        let (test, test_labels) = blobs(30, 8, 3, 4.0, 2);
        assert_eq!(knn_accuracy(&train, &train_labels, &test, &test_labels, 3, 5), 1.0);
        let noise = shuffled_labels(&train_labels, 3);
        let chance = knn_accuracy(&train, &noise, &test, &test_labels, 3, 5);
        assert!(chance < 0.7, "{chance}");
    }

    #[test]
    fn the_vote_counts_first_and_breaks_ties_by_nearness() {
        // Two neighbours each: class 1's is nearer.
        assert_eq!(vote(&[0.9, 0.5, 0.95, 0.1], &[0, 0, 1, 1], 2, 3), 0);
        assert_eq!(vote(&[0.9, 0.1, 0.95, 0.2], &[0, 0, 1, 1], 2, 2), 1);
    }
}
