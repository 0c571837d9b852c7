//! Small-sample statistics: mean with a Student-t 95% interval, and the interval of a
//! difference between two cells: paired over seeds when both have the same seeds, else
//! Welch's. The t distribution comes from statrs.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use thaw_metrics::PerExample;

use crate::bootstrap;

/// Mean of a handful of seeds, with its 95% confidence half-width when there are at least two.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1 denominator); None for a single value.
    pub sd: Option<f64>,
    /// Half-width of the Student-t 95% interval (df = n - 1); None for a single value.
    pub ci95: Option<f64>,
    /// A single seed of a metric that is not a mean over examples: the half-width of its 95%
    /// interval over the split's examples (paired bootstrap), when its examples are stored.
    #[serde(default)]
    pub examples_ci95: Option<f64>,
}

impl Estimate {
    /// None when there are no values.
    pub fn of(values: &[f64]) -> Option<Estimate> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(Estimate { n, mean, sd: None, ci95: None, examples_ci95: None });
        }
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = variance.sqrt();
        let ci95 = t_quantile_975((n - 1) as f64) * sd / (n as f64).sqrt();
        Some(Estimate { n, mean, sd: Some(sd), ci95: Some(ci95), examples_ci95: None })
    }

    /// Lower end of the interval; the mean itself when there is no interval.
    pub fn low(&self) -> f64 {
        self.mean - self.ci95.unwrap_or(0.0)
    }

    pub fn high(&self) -> f64 {
        self.mean + self.ci95.unwrap_or(0.0)
    }

    /// True when both have intervals and those intervals do not overlap. Without an
    /// interval (one seed) nothing can be told apart, so this is false.
    pub fn separated_from(&self, other: &Estimate) -> bool {
        self.ci95.is_some()
            && other.ci95.is_some()
            && (self.low() > other.high() || other.low() > self.high())
    }
}

/// Difference of two means (a - b) with its 95% interval (Welch's, or paired over seeds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub mean: f64,
    /// None when either side has a single value (no variance estimate).
    pub ci95: Option<f64>,
    /// Degrees of freedom: Welch–Satterthwaite, or n - 1 for a paired difference.
    pub df: Option<f64>,
}

impl Difference {
    pub fn low(&self) -> Option<f64> {
        self.ci95.map(|h| self.mean - h)
    }

    pub fn high(&self) -> Option<f64> {
        self.ci95.map(|h| self.mean + h)
    }

    /// +1 when the whole interval is above zero, -1 when below, 0 when it includes zero or is missing.
    pub fn sign(&self) -> i32 {
        match (self.low(), self.high()) {
            (Some(lo), _) if lo > 0.0 => 1,
            (_, Some(hi)) if hi < 0.0 => -1,
            _ => 0,
        }
    }
}

pub fn welch(a: &Estimate, b: &Estimate) -> Difference {
    let mean = a.mean - b.mean;
    let (Some(sa), Some(sb)) = (a.sd, b.sd) else {
        return Difference { mean, ci95: None, df: None };
    };
    let va = sa * sa / a.n as f64;
    let vb = sb * sb / b.n as f64;
    let se = (va + vb).sqrt();
    if se == 0.0 {
        // Every seed gave the same number on both sides: the difference is exact.
        return Difference { mean, ci95: Some(0.0), df: None };
    }
    let df = (va + vb).powi(2) / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    Difference { mean, ci95: Some(t_quantile_975(df) * se), df: Some(df) }
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (two-sided 95%); df may be
/// fractional (Welch).
pub fn t_quantile_975(df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df.max(1.0))
        .expect("df >= 1 is a valid t distribution")
        .inverse_cdf(0.975)
}

/// Difference of two cells (a - b) measured on the seeds both finished: the Student-t
/// interval of the per-seed differences (df = n - 1). Seeds share the subsample and the data
/// order, so much of the seed-to-seed noise cancels and the interval is tighter than Welch's.
/// None unless the two share at least two seeds.
pub fn paired(a: &[(i64, f64)], b: &[(i64, f64)]) -> Option<Difference> {
    let differences: Vec<f64> = a
        .iter()
        .filter_map(|&(seed, x)| b.iter().find(|(s, _)| *s == seed).map(|(_, y)| x - y))
        .collect();
    if differences.len() < 2 {
        return None;
    }
    let e = Estimate::of(&differences)?;
    Some(Difference { mean: e.mean, ci95: e.ci95, df: Some((e.n - 1) as f64) })
}

/// How many seeds two (seed, value) lists share.
pub fn shared_seeds(a: &[(i64, f64)], b: &[(i64, f64)]) -> usize {
    a.iter().filter(|(s, _)| b.iter().any(|(t, _)| t == s)).count()
}

/// A cell's scores at its selected lr on one split: per seed, the accuracy and, when the
/// store has them, which examples were predicted right.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedScores {
    pub metric: Vec<(i64, f64)>,
    pub correct: Vec<(i64, Vec<bool>)>,
    /// Per seed, what each example contributed to the metric (for resampled intervals).
    #[serde(default)]
    pub examples: Vec<(i64, PerExample)>,
}

/// How a [`Difference`] between two cells was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Student-t over the per-seed differences of this many shared seeds.
    Seeds(usize),
    /// One shared seed: over the split's examples, each predicted by both cells.
    Examples { seed: i64, n: usize },
    /// Welch's interval on the two cells' means (no shared seed).
    Welch,
}

impl Pairing {
    /// "paired over 3 shared seeds", "paired over the 500 examples of seed 1", "Welch".
    pub fn describe(&self) -> String {
        match self {
            Pairing::Seeds(n) => format!("paired over {n} shared seeds"),
            Pairing::Examples { seed, n } => format!("paired over the {n} examples of seed {seed}"),
            Pairing::Welch => "Welch".to_string(),
        }
    }
}

/// The difference a - b of two cells' metrics with its 95% interval: paired over shared
/// seeds when there are two or more; with one shared seed, paired over the split's examples
/// (the split's own sampling error, so a one-seed sweep still gets an honest interval:
/// right-or-wrong for accuracy, a paired bootstrap for the other metrics); else Welch's.
/// None when neither side has a value.
pub fn difference(a: &SeedScores, b: &SeedScores) -> Option<(Difference, Pairing)> {
    if let Some(d) = paired(&a.metric, &b.metric) {
        return Some((d, Pairing::Seeds(shared_seeds(&a.metric, &b.metric))));
    }
    let resampled = a.examples.iter().find_map(|(seed, x)| {
        if x.metric.is_mean_over_examples() {
            return None;
        }
        let (_, y) = b.examples.iter().find(|(s, _)| s == seed)?;
        let (mean, half) = bootstrap::paired_difference(x, y)?;
        let d = Difference { mean, ci95: Some(half), df: None };
        Some((d, Pairing::Examples { seed: *seed, n: x.len() }))
    });
    if resampled.is_some() {
        return resampled;
    }
    let one_seed = a.correct.iter().find_map(|(seed, x)| {
        let (_, y) = b.correct.iter().find(|(s, y)| s == seed && y.len() == x.len())?;
        paired_examples(x, y).map(|d| (d, Pairing::Examples { seed: *seed, n: x.len() }))
    });
    if one_seed.is_some() {
        return one_seed;
    }
    let (ea, eb) = (estimate(&a.metric)?, estimate(&b.metric)?);
    Some((welch(&ea, &eb), Pairing::Welch))
}

/// The mean and interval of (seed, value) pairs' values.
fn estimate(by_seed: &[(i64, f64)]) -> Option<Estimate> {
    Estimate::of(&by_seed.iter().map(|p| p.1).collect::<Vec<_>>())
}

/// Accuracy of a minus accuracy of b on the same examples, with the normal 95% interval of the
/// mean per-example difference (each difference is -1, 0 or +1: the interval McNemar's test
/// inverts). None for no examples or lists of different lengths.
pub fn paired_examples(a: &[bool], b: &[bool]) -> Option<Difference> {
    let n = a.len();
    if n < 2 || b.len() != n {
        return None;
    }
    let differences: Vec<f64> =
        a.iter().zip(b).map(|(&x, &y)| x as i32 as f64 - y as i32 as f64).collect();
    let mean = differences.iter().sum::<f64>() / n as f64;
    let variance = differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let z = Normal::new(0.0, 1.0).expect("the standard normal").inverse_cdf(0.975);
    Some(Difference { mean, ci95: Some(z * (variance / n as f64).sqrt()), df: None })
}

/// Whether two cells' scores tell them apart at 95%: the interval of their difference
/// excludes zero when it is paired (over shared seeds, or over one seed's examples);
/// otherwise their own intervals do not overlap. The one rule behind the report's "cannot
/// separate" and the racing search's stop, so the two never disagree on the same numbers.
pub fn separates(a: &SeedScores, b: &SeedScores) -> bool {
    match difference(a, b) {
        Some((d, Pairing::Seeds(_) | Pairing::Examples { .. })) => d.sign() != 0,
        _ => match (estimate(&a.metric), estimate(&b.metric)) {
            (Some(ea), Some(eb)) => ea.separated_from(&eb),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_printed_table() {
        for (df, expected) in [
            (1.0, 12.7062),
            (2.0, 4.3027),
            (3.0, 3.1824),
            (4.0, 2.7764),
            (9.0, 2.2622),
            (30.0, 2.0423),
            (1e6, 1.9600),
        ] {
            let got = t_quantile_975(df);
            assert!((got - expected).abs() < 1e-3, "df {df}: got {got}, expected {expected}");
        }
    }

    #[test]
    fn the_paired_interval_matches_a_hand_computation() {
        // By seed a = 0.80, 0.81, 0.82 and b = 0.78, 0.78, 0.79: differences 0.02, 0.03, 0.03,
        // mean 0.026667, sd 0.0057735, half-width 4.302653 * 0.0057735 / sqrt(3) = 0.014342.
        let a = [(3, 0.82), (1, 0.80), (2, 0.81)];
        let b = [(1, 0.78), (2, 0.78), (3, 0.79)];
        let d = paired(&a, &b).unwrap();
        assert!((d.mean - 0.026667).abs() < 1e-6);
        assert!((d.ci95.unwrap() - 0.014342).abs() < 1e-5, "{d:?}");
        assert_eq!(d.df, Some(2.0));
        assert_eq!(d.sign(), 1);
        // Welch on the same numbers ignores that the seeds move together: a wider interval.
        let welch_d = welch(
            &Estimate::of(&[0.82, 0.80, 0.81]).unwrap(),
            &Estimate::of(&[0.78, 0.78, 0.79]).unwrap(),
        );
        assert!(welch_d.ci95.unwrap() > d.ci95.unwrap() + 0.004, "{welch_d:?} vs {d:?}");
        // Only the shared seeds pair: seed 3 of `a` has no partner among 1, 2, 4.
        let shared = paired(&a, &[(1, 0.70), (2, 0.72), (4, 0.9)]).unwrap();
        assert!((shared.mean - 0.095).abs() < 1e-9, "{shared:?}");
        assert_eq!(shared.df, Some(1.0));
        // One shared seed gives no paired interval.
        assert!(paired(&a, &[(1, 0.7), (5, 0.7)]).is_none());
        assert!(paired(&[(1, 0.8)], &[(1, 0.7)]).is_none());
    }

    fn scores(accuracy: &[(i64, f64)]) -> SeedScores {
        SeedScores { metric: accuracy.to_vec(), correct: Vec::new(), examples: Vec::new() }
    }

    #[test]
    fn separation_pairs_shared_seeds_and_falls_back_to_the_intervals() {
        // Consistent +2 pts over three shared seeds: paired half-width 4.30 * 0.0058 / 1.73.
        let leader = scores(&[(1, 0.80), (2, 0.81), (3, 0.82)]);
        let behind = scores(&[(1, 0.78), (2, 0.78), (3, 0.79)]);
        assert!(separates(&leader, &behind));
        // The same means with seeds that do not move together: the difference is not sure.
        assert!(!separates(&leader, &scores(&[(1, 0.83), (2, 0.74), (3, 0.78)])));
        // No shared seeds: the cells' own intervals decide.
        assert!(separates(&leader, &scores(&[(7, 0.50), (8, 0.51), (9, 0.52)])));
        assert!(!separates(&leader, &scores(&[(7, 0.60), (8, 0.95)])));
        // One seed each and no per-example record: nothing to tell apart with.
        assert!(!separates(&scores(&[(1, 0.9)]), &scores(&[(1, 0.1)])));
    }

    #[test]
    fn one_seed_is_paired_over_the_examples_as_computed_by_hand() {
        // 10 examples: a right on 8, b on 5; a alone right on 4, b alone on 1, 5 agree.
        // Differences: four +1, one -1, five 0 -> mean 0.3; sample variance
        // (4 * 0.49 + 1 * 1.69 + 5 * 0.09) / 9 = 0.455556; half-width
        // 1.959964 * sqrt(0.455556 / 10) = 0.418326.
        let a = [true, true, true, true, true, true, true, true, false, false];
        let b = [false, false, false, false, true, true, true, true, true, false];
        let d = paired_examples(&a, &b).unwrap();
        assert!((d.mean - 0.3).abs() < 1e-12);
        assert!((d.ci95.unwrap() - 0.418326).abs() < 1e-5, "{d:?}");
        assert_eq!(d.sign(), 0, "0.3 ± 0.42 includes zero");
        // The same pattern ten times over (100 examples): variance (40 * 0.49 + 10 * 1.69 +
        // 50 * 0.09) / 99 = 0.414141, half-width 1.959964 * sqrt(0.414141 / 100) = 0.126131.
        let (a10, b10) = (a.repeat(10), b.repeat(10));
        let d10 = paired_examples(&a10, &b10).unwrap();
        assert!((d10.ci95.unwrap() - 0.126131).abs() < 1e-5, "{d10:?}");
        assert_eq!(d10.sign(), 1);
        // A one-seed sweep: cells compared over seed 1's examples.
        let one = |seed, correct: &[bool]| SeedScores {
            metric: vec![(
                seed,
                correct.iter().filter(|&&c| c).count() as f64 / correct.len() as f64,
            )],
            correct: vec![(seed, correct.to_vec())],
            examples: Vec::new(),
        };
        let (diff, how) = difference(&one(1, &a10), &one(1, &b10)).unwrap();
        assert_eq!(how, Pairing::Examples { seed: 1, n: 100 });
        assert_eq!(how.describe(), "paired over the 100 examples of seed 1");
        assert_eq!(diff, d10);
        assert!(separates(&one(1, &a10), &one(1, &b10)));
        // Different seeds share no examples' predictions: no pairing, no verdict.
        assert!(!separates(&one(1, &a10), &one(2, &b10)));
    }

    #[test]
    fn estimate_of_three_values() {
        let e = Estimate::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(e.n, 3);
        assert!((e.mean - 2.0).abs() < 1e-12);
        assert!((e.sd.unwrap() - 1.0).abs() < 1e-12);
        // 4.3027 * 1 / sqrt(3)
        assert!((e.ci95.unwrap() - 2.4841).abs() < 1e-3);
    }

    #[test]
    fn one_value_has_no_interval_and_is_never_separated() {
        let one = Estimate::of(&[0.9]).unwrap();
        assert_eq!(one.ci95, None);
        let many = Estimate::of(&[0.1, 0.11, 0.12]).unwrap();
        assert!(!one.separated_from(&many));
        assert!(Estimate::of(&[]).is_none());
    }

    #[test]
    fn welch_interval_matches_a_hand_computation() {
        // a: mean 2, var 1, n 3; b: mean 0, var 1, n 3 -> se = sqrt(2/3), df = 4.
        let a = Estimate::of(&[1.0, 2.0, 3.0]).unwrap();
        let b = Estimate::of(&[-1.0, 0.0, 1.0]).unwrap();
        let d = welch(&a, &b);
        assert!((d.mean - 2.0).abs() < 1e-12);
        assert!((d.df.unwrap() - 4.0).abs() < 1e-9);
        assert!((d.ci95.unwrap() - 2.7764 * (2.0_f64 / 3.0).sqrt()).abs() < 1e-3);
        assert_eq!(d.sign(), 0, "interval 2 ± 2.27 includes zero");
        let far = Estimate::of(&[10.0, 11.0, 12.0]).unwrap();
        assert_eq!(welch(&far, &b).sign(), 1);
        assert_eq!(welch(&b, &far).sign(), -1);
    }
}
