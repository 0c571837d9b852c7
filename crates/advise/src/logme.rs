//! LogME, the log of the maximum evidence of a Bayesian linear model `y = f w + noise` with
//! prior `w ~ N(0, 1/alpha)` and noise precision `beta`, both set by maximizing the evidence:
//! higher means the features fit the labels linearly with less to learn. Per label (one-hot
//! column) for classification, per target for regression; the mean over them, per example.
//!
//! The fixed-point iteration of You et al. ("Ranking and Tuning Pre-trained Models", 2021),
//! on the singular values of the features: alpha and beta updated together, at most 11
//! rounds, stopped when alpha / beta moves by at most 0.1 %.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Singular values below this are the features' null space (the reference's cut).
const RANK_CUTOFF: f64 = 1e-10;
/// Added to the squared norms the updates divide by (the reference's guard).
const EPSILON: f64 = 1e-5;

/// The features' thin SVD as LogME uses it: for each singular value above the cutoff, its
/// square `sigma` and the matching left singular vector (a column of `u`).
struct Spectrum {
    sigma: Vec<f64>,
    u: DMatrix<f64>,
}

impl Spectrum {
    /// Through the eigendecomposition of the smaller Gram matrix: `fᵀf` (d x d, then
    /// `u = f v / s`, as the reference does when N > D) or `f fᵀ` (N x N, whose eigenvectors
    /// are `u` itself), so no more than min(N, D) values are kept.
    fn of(features: &DMatrix<f64>) -> Spectrum {
        let wide = features.nrows() <= features.ncols();
        let gram =
            if wide { features * features.transpose() } else { features.transpose() * features };
        let eigen = SymmetricEigen::new(gram);
        let kept: Vec<usize> = (0..eigen.eigenvalues.len())
            .filter(|&i| eigen.eigenvalues[i].max(0.0).sqrt() > RANK_CUTOFF)
            .collect();
        let mut u = DMatrix::zeros(features.nrows(), kept.len());
        let mut sigma = Vec::with_capacity(kept.len());
        for (column, &i) in kept.iter().enumerate() {
            let value = eigen.eigenvalues[i];
            let vector = eigen.eigenvectors.column(i);
            if wide {
                u.set_column(column, &vector);
            } else {
                u.set_column(column, &(features * vector / value.sqrt()));
            }
            sigma.push(value);
        }
        Spectrum { sigma, u }
    }
}

/// The maximum evidence per example for one target column `y`.
fn evidence(spectrum: &Spectrum, y: &DVector<f64>, dims: usize) -> f64 {
    let n = y.len() as f64;
    let sigma = &spectrum.sigma;
    let x2: Vec<f64> = (spectrum.u.transpose() * y).iter().map(|x| x * x).collect();
    // What of y lies outside the features' span (the zero singular values) counts in full.
    let outside = y.norm_squared() - x2.iter().sum::<f64>();
    let (mut alpha, mut beta) = (1.0f64, 1.0f64);
    let (mut m2, mut res2) = (0.0, 0.0);
    for _ in 0..11 {
        let t = alpha / beta;
        let gamma: f64 = sigma.iter().map(|s| s / (s + t)).sum();
        m2 = sigma.iter().zip(&x2).map(|(s, x)| s * x / (t + s).powi(2)).sum();
        res2 = x2.iter().zip(sigma).map(|(x, s)| x / (1.0 + s / t).powi(2)).sum::<f64>() + outside;
        alpha = gamma / (m2 + EPSILON);
        beta = (n - gamma) / (res2 + EPSILON);
        if ((alpha / beta) - t).abs() / t <= 1e-3 {
            break;
        }
    }
    let log_det: f64 = sigma.iter().map(|s| (alpha + beta * s).ln()).sum();
    let evidence = dims as f64 / 2.0 * alpha.ln() + n / 2.0 * beta.ln()
        - 0.5 * log_det
        - beta / 2.0 * res2
        - alpha / 2.0 * m2
        - n / 2.0 * (2.0 * std::f64::consts::PI).ln();
    evidence / n
}

/// LogME of `features` (one row per example) for class ids `labels` (`classes` of them):
/// the mean over classes of the evidence of the class's one-hot column.
pub fn logme_classes(features: &DMatrix<f64>, labels: &[usize], classes: usize) -> f64 {
    let spectrum = Spectrum::of(features);
    let per_class: Vec<f64> = (0..classes)
        .map(|c| {
            let y = DVector::from_iterator(labels.len(), labels.iter().map(|&l| f64::from(l == c)));
            evidence(&spectrum, &y, features.ncols())
        })
        .collect();
    per_class.iter().sum::<f64>() / classes.max(1) as f64
}

/// LogME of `features` for real-valued targets (one column per target).
pub fn logme_targets(features: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
    let spectrum = Spectrum::of(features);
    let per_target: Vec<f64> = (0..targets.ncols())
        .map(|j| evidence(&spectrum, &targets.column(j).into_owned(), features.ncols()))
        .collect();
    per_target.iter().sum::<f64>() / targets.ncols().max(1) as f64
}
