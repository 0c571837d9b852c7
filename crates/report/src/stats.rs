//! Small-sample statistics: mean with a Student-t 95% interval, and Welch's interval for a
//! difference of means. Written out here (a few dozen lines) rather than pulling a stats crate.

use serde::{Deserialize, Serialize};

/// Mean of a handful of seeds, with its 95% confidence half-width when there are at least two.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1 denominator); None for a single value.
    pub sd: Option<f64>,
    /// Half-width of the Student-t 95% interval (df = n - 1); None for a single value.
    pub ci95: Option<f64>,
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
            return Some(Estimate { n, mean, sd: None, ci95: None });
        }
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = variance.sqrt();
        let ci95 = t_quantile_975((n - 1) as f64) * sd / (n as f64).sqrt();
        Some(Estimate { n, mean, sd: Some(sd), ci95: Some(ci95) })
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

/// Difference of two means (a - b) with Welch's 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub mean: f64,
    /// None when either side has a single value (no variance estimate).
    pub ci95: Option<f64>,
    /// Welch–Satterthwaite degrees of freedom.
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

/// The 97.5% quantile of Student's t with `df` degrees of freedom (two-sided 95%).
/// Found by bisection on the CDF; df may be fractional (Welch).
pub fn t_quantile_975(df: f64) -> f64 {
    let df = df.max(1.0);
    // Upper tail 0.025 means I_x(df/2, 1/2) = 0.05 with x = df / (df + t^2).
    let tail = |t: f64| incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    let (mut lo, mut hi) = (0.0_f64, 100.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > 0.05 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation, g = 7, n = 9 (accurate to ~1e-15 for x > 0).
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum =
        COEF[1..].iter().enumerate().fold(COEF[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Regularised incomplete beta I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast only on this side of the mode; use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// Lentz's method for the incomplete beta continued fraction.
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + even * d;
        d = if d.abs() < TINY { 1.0 / TINY } else { 1.0 / d };
        c = 1.0 + even / c;
        if c.abs() < TINY {
            c = TINY;
        }
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + odd * d;
        d = if d.abs() < TINY { 1.0 / TINY } else { 1.0 / d };
        c = 1.0 + odd / c;
        if c.abs() < TINY {
            c = TINY;
        }
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
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
