//! Toy feature sets for the estimators' tests: well-separated Gaussian blobs, drawn from a
//! small fixed generator so every run sees the same numbers.

use nalgebra::DMatrix;

/// splitmix64, and from it uniform and (Box–Muller) normal draws.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// `n` rows of `d` features in `classes` classes (row i in class i mod classes): standard
/// normal noise around class centres `spread` apart along the first axes.
pub fn blobs(
    n: usize,
    d: usize,
    classes: usize,
    spread: f64,
    seed: u64,
) -> (DMatrix<f64>, Vec<usize>) {
    let mut draws = Draws(seed);
    let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
    let features = DMatrix::from_fn(n, d, |i, j| {
        let centre = if j == labels[i] % d { spread } else { 0.0 };
        centre + draws.normal() * 0.5
    });
    (features, labels)
}

/// `labels` permuted by a fixed rule that breaks any link to the features.
pub fn shuffled_labels(labels: &[usize], classes: usize) -> Vec<usize> {
    let mut draws = Draws(99);
    labels.iter().map(|_| (draws.next() % classes as u64) as usize).collect()
}
