//! The paired bootstrap over a split's examples: the interval a single seed of a metric that
//! is not a mean over examples (entity F1, macro-F1, Spearman) gets from the split's own
//! sampling error, and the interval of two cells' difference on the same examples. Each
//! resample draws the split's examples with replacement; both cells are scored on the same
//! draws. The resamples come from a fixed seed, so the same results give the same intervals.

use statrs::distribution::{ContinuousCDF, Normal};
use thaw_metrics::PerExample;

/// How many resamples: the standard error they estimate is within a few percent of its limit.
const RESAMPLES: usize = 1000;

/// The resamples' seed: fixed, so intervals are a function of the stored results alone.
const SEED: u64 = 0x7468_6177;

/// splitmix64: a small, well-mixed generator, enough to draw indices.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `f` on each of the resamples of `n` examples.
fn resampled(n: usize, mut f: impl FnMut(&[usize]) -> f64) -> Vec<f64> {
    let mut rng = SplitMix(SEED);
    let mut picked = vec![0; n];
    (0..RESAMPLES)
        .map(|_| {
            for slot in picked.iter_mut() {
                *slot = (rng.next() % n as u64) as usize;
            }
            f(&picked)
        })
        .collect()
}

/// 1.96 standard deviations of `values`: the normal interval's half-width.
fn half_width(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Normal::new(0.0, 1.0).expect("the standard normal").inverse_cdf(0.975) * variance.sqrt()
}

/// The 95% half-width of one result's metric over its examples; None with fewer than two.
pub fn interval(examples: &PerExample) -> Option<f64> {
    let n = examples.len();
    (n >= 2).then(|| half_width(&resampled(n, |picked| examples.metric_on(picked))))
}

/// a - b on the same examples and the 95% half-width of its paired bootstrap; None when the
/// two records are not of the same examples and metric.
pub fn paired_difference(a: &PerExample, b: &PerExample) -> Option<(f64, f64)> {
    let n = a.len();
    if n < 2 || b.len() != n || a.metric != b.metric {
        return None;
    }
    let mean = a.metric_value() - b.metric_value();
    let differences = resampled(n, |picked| a.metric_on(picked) - b.metric_on(picked));
    Some((mean, half_width(&differences)))
}

#[cfg(test)]
mod tests {
    use thaw_metrics::{Metric, Targets};

    use super::*;

    fn tags(sentences: &[&[usize]]) -> Targets {
        Targets::Tags(sentences.iter().map(|s| s.to_vec()).collect())
    }

    #[test]
    fn a_single_results_interval_shrinks_with_more_examples_and_repeats_exactly() {
        let labels: Vec<String> = ["B-PER", "O"].iter().map(|s| s.to_string()).collect();
        let truth: Vec<&[usize]> = vec![&[0, 1], &[1, 0], &[0, 0], &[1, 1]];
        let predicted: Vec<&[usize]> = vec![&[0, 1], &[1, 1], &[0, 0], &[0, 1]];
        let small = PerExample::of(Metric::EntityF1, &labels, &tags(&truth), &tags(&predicted));
        let times = |s: &[&'static [usize]], k: usize| -> Vec<&'static [usize]> {
            s.iter().cycle().take(s.len() * k).copied().collect()
        };
        let large = PerExample::of(
            Metric::EntityF1,
            &labels,
            &tags(&times(&truth, 25)),
            &tags(&times(&predicted, 25)),
        );
        let (h_small, h_large) = (interval(&small).unwrap(), interval(&large).unwrap());
        // 25 times the examples: about a fifth of the width (the standard error's 1/sqrt(n)).
        assert!(h_large < h_small / 3.5 && h_large > h_small / 7.0, "{h_small} vs {h_large}");
        assert_eq!(interval(&large), interval(&large));
    }

    #[test]
    fn a_paired_difference_sees_a_consistent_edge_more_narrowly_than_unpaired_intervals() {
        // Two regressors on the same 200 examples: b is a with a little extra noise, so their
        // Spearman correlations are close, and their errors are tied example by example.
        let truth: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64).collect();
        let a: Vec<f64> =
            truth.iter().enumerate().map(|(i, t)| t + ((i * 13) % 7) as f64).collect();
        let b: Vec<f64> = a.iter().enumerate().map(|(i, v)| v + ((i * 29) % 11) as f64).collect();
        let record = |p: &[f64]| {
            PerExample::of(
                Metric::Spearman,
                &[],
                &Targets::Scores(truth.clone()),
                &Targets::Scores(p.to_vec()),
            )
        };
        let (ra, rb) = (record(&a), record(&b));
        let (d, half) = paired_difference(&ra, &rb).unwrap();
        assert!(d > 0.0 && d - half > 0.0, "{d} ± {half}");
        let unpaired = interval(&ra).unwrap() + interval(&rb).unwrap();
        assert!(half < unpaired, "{half} vs {unpaired}");
        assert!(paired_difference(&ra, &record(&a[..100].to_vec().repeat(2))).is_some());
        let other = PerExample { metric: Metric::Pearson, ..rb };
        assert!(paired_difference(&ra, &other).is_none(), "another metric is not paired");
    }
}
