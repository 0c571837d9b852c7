//! Every estimator on one depth's frozen features: what `thaw advise` prints per depth.

use nalgebra::DMatrix;

use crate::hscore::regularized_h_score;
use crate::knn::knn_accuracy;
use crate::logme::logme_classes;
use crate::probe::probe_accuracy;

/// How many neighbours vote in the kNN accuracy.
pub const NEIGHBOURS: usize = 10;

/// One depth's readings: two fitted on train alone (LogME, H-score) and two scored on
/// validation (kNN, the linear probe).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signals {
    pub logme: f64,
    pub h_score: f64,
    pub knn_accuracy: f64,
    pub probe_accuracy: f64,
}

/// A labelled set of feature rows.
pub struct Labelled<'a> {
    pub features: &'a [Vec<f32>],
    pub labels: &'a [usize],
}

fn matrix(rows: &[Vec<f32>]) -> DMatrix<f64> {
    let width = rows.first().map_or(0, Vec::len);
    DMatrix::from_fn(rows.len(), width, |i, j| rows[i][j] as f64)
}

/// The four readings of `train` (and `validation`, for the two scored ones).
pub fn signals(train: &Labelled, validation: &Labelled, classes: usize) -> Signals {
    let (x, v) = (matrix(train.features), matrix(validation.features));
    Signals {
        logme: logme_classes(&x, train.labels, classes),
        h_score: regularized_h_score(&x, train.labels, classes),
        knn_accuracy: knn_accuracy(&x, train.labels, &v, validation.labels, classes, NEIGHBOURS),
        probe_accuracy: probe_accuracy(&x, train.labels, &v, validation.labels, classes),
    }
}
