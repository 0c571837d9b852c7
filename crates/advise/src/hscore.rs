//! The regularized H-score (Ibrahim, Ponomareva and Mazumder, "Newer is not always better",
//! 2022): `tr(cov_α(f)⁻¹ (1 − α) cov(E[f | y]))`, how far apart the class means lie measured
//! against the features' own spread, with the covariance shrunk toward a multiple of the
//! identity by Ledoit and Wolf's α (as scikit-learn's `LedoitWolf` computes it), so that 384
//! features on a few hundred examples still give a stable inverse.

use nalgebra::DMatrix;

/// The features centred on their column means.
fn centred(features: &DMatrix<f64>) -> DMatrix<f64> {
    let n = features.nrows() as f64;
    let mut out = features.clone();
    for mut column in out.column_iter_mut() {
        let mean = column.sum() / n;
        column.add_scalar_mut(-mean);
    }
    out
}

/// Ledoit–Wolf's shrinkage α and the shrunk covariance `(1 − α) S + α μ I` of centred `x`
/// (S its covariance with denominator n, μ the mean of S's diagonal): scikit-learn's
/// `ledoit_wolf_shrinkage` and `LedoitWolf().covariance_`.
pub fn ledoit_wolf(x: &DMatrix<f64>) -> (f64, DMatrix<f64>) {
    let (n, d) = (x.nrows() as f64, x.ncols());
    let empirical = x.transpose() * x / n;
    let mu = empirical.trace() / d as f64;
    let squares = x.map(|v| v * v);
    let beta_sum = (squares.transpose() * &squares).sum();
    let delta_sum = (x.transpose() * x).map(|v| v * v).sum() / (n * n);
    let beta = (beta_sum / n - delta_sum) / (d as f64 * n);
    let trace_sum: f64 = (0..d).map(|j| squares.column(j).sum() / n).sum();
    let delta = (delta_sum - 2.0 * mu * trace_sum + d as f64 * mu * mu) / d as f64;
    let shrinkage = if beta == 0.0 { 0.0 } else { beta.min(delta) / delta };
    let mut shrunk = empirical * (1.0 - shrinkage);
    for i in 0..d {
        shrunk[(i, i)] += shrinkage * mu;
    }
    (shrinkage, shrunk)
}

/// The regularized H-score of `features` (one row per example) for class ids `labels`.
pub fn regularized_h_score(features: &DMatrix<f64>, labels: &[usize], classes: usize) -> f64 {
    let f = centred(features);
    let (alpha, shrunk) = ledoit_wolf(&f);
    // Each example replaced by its class's mean feature vector: E[f | y].
    let mut sums = DMatrix::zeros(classes, f.ncols());
    let mut counts = vec![0usize; classes];
    for (row, &label) in f.row_iter().zip(labels) {
        let mut sum = sums.row_mut(label);
        sum += row;
        counts[label] += 1;
    }
    let g = DMatrix::from_fn(f.nrows(), f.ncols(), |i, j| {
        sums[(labels[i], j)] / counts[labels[i]].max(1) as f64
    });
    // numpy's cov: rows are examples, centred, denominator n - 1.
    let g = centred(&g);
    let cov_g = g.transpose() * &g / (f.nrows() as f64 - 1.0);
    let inverse = shrunk.pseudo_inverse(1e-15).expect("a finite covariance");
    (inverse * cov_g * (1.0 - alpha)).trace()
}
