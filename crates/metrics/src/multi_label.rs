//! Multi-label classification: one yes/no per label, scored by micro and macro F1 over the
//! label decisions (scikit-learn's `f1_score` on indicator matrices, `zero_division=0`), at
//! a threshold chosen on validation.

use crate::classification::f1;

/// Micro and macro F1 of `predicted` against `truth`, each a row of yes/no per label.
pub fn micro_and_macro_f1(predicted: &[Vec<bool>], truth: &[Vec<bool>]) -> (f64, f64) {
    assert_eq!(predicted.len(), truth.len());
    let labels = truth.first().map_or(0, Vec::len);
    let mut counts = vec![(0.0, 0.0, 0.0); labels]; // (tp, fp, fn) per label
    for (p, t) in predicted.iter().zip(truth) {
        assert_eq!(p.len(), labels, "one decision per label");
        for (label, (&yes, &true_yes)) in p.iter().zip(t).enumerate() {
            match (yes, true_yes) {
                (true, true) => counts[label].0 += 1.0,
                (true, false) => counts[label].1 += 1.0,
                (false, true) => counts[label].2 += 1.0,
                (false, false) => {}
            }
        }
    }
    let (tp, fp, fn_) =
        counts.iter().fold((0.0, 0.0, 0.0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
    let macro_f1 = if labels == 0 {
        0.0
    } else {
        counts.iter().map(|&(tp, fp, fn_)| f1(tp, fp, fn_)).sum::<f64>() / labels as f64
    };
    (f1(tp, fp, fn_), macro_f1)
}

/// Each probability at or above `threshold` as a yes.
pub fn decide(probabilities: &[Vec<f64>], threshold: f64) -> Vec<Vec<bool>> {
    probabilities.iter().map(|row| row.iter().map(|&p| p >= threshold).collect()).collect()
}

/// The thresholds tried on validation: 0.05, 0.10, ..., 0.95.
pub fn candidate_thresholds() -> Vec<f64> {
    (1..20).map(|i| i as f64 / 20.0).collect()
}

/// The candidate threshold with the best micro F1 on `probabilities` against `truth`
/// (validation only); of tied thresholds, the one nearest 0.5.
pub fn choose_threshold(probabilities: &[Vec<f64>], truth: &[Vec<bool>]) -> f64 {
    let mut best: (f64, f64) = (f64::NEG_INFINITY, 0.5);
    for t in candidate_thresholds() {
        let (micro, _) = micro_and_macro_f1(&decide(probabilities, t), truth);
        let better = micro > best.0 + 1e-12
            || ((micro - best.0).abs() <= 1e-12 && (t - 0.5).abs() < (best.1 - 0.5).abs());
        if better {
            best = (micro, t);
        }
    }
    best.1
}

/// The baseline: each label predicted as its majority answer in `train`, for every example.
pub fn majority_per_label(train: &[Vec<bool>], examples: usize) -> Vec<Vec<bool>> {
    let labels = train.first().map_or(0, Vec::len);
    let majority: Vec<bool> =
        (0..labels).map(|l| 2 * train.iter().filter(|row| row[l]).count() > train.len()).collect();
    vec![majority; examples]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_the_one_that_separates_on_validation() {
        let probabilities = vec![vec![0.9, 0.3], vec![0.25, 0.8], vec![0.2, 0.1]];
        let truth = vec![vec![true, true], vec![false, true], vec![false, false]];
        let t = choose_threshold(&probabilities, &truth);
        assert!(t > 0.25 && t <= 0.3, "{t}");
        assert_eq!(micro_and_macro_f1(&decide(&probabilities, t), &truth), (1.0, 1.0));
    }
}
