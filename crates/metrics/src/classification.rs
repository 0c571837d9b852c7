//! One label per example: accuracy and macro-F1.

/// Accuracy and macro-F1 from predicted and true class ids; a class never predicted and
/// never present counts F1 = 0, as scikit-learn's `f1_score(average="macro",
/// labels=range(num_labels), zero_division=0)` does.
pub fn accuracy_and_macro_f1(
    predicted: &[usize],
    truth: &[usize],
    num_labels: usize,
) -> (f64, f64) {
    assert_eq!(predicted.len(), truth.len());
    if truth.is_empty() {
        return (0.0, 0.0);
    }
    let correct = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    let mut counts = vec![(0.0, 0.0, 0.0); num_labels]; // (tp, fp, fn) per class
    for (&p, &t) in predicted.iter().zip(truth) {
        if p == t {
            counts[t].0 += 1.0;
        } else {
            counts[p].1 += 1.0;
            counts[t].2 += 1.0;
        }
    }
    let f1_sum: f64 = counts.iter().map(|&(tp, fp, fn_)| f1(tp, fp, fn_)).sum();
    (correct as f64 / truth.len() as f64, f1_sum / num_labels as f64)
}

/// F1 from counts; 0 when there is nothing to count.
pub(crate) fn f1(tp: f64, fp: f64, fn_: f64) -> f64 {
    let denominator = 2.0 * tp + fp + fn_;
    if denominator == 0.0 { 0.0 } else { 2.0 * tp / denominator }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_matches_hand_computation() {
        // class 0: tp=2 fp=1 fn=0 -> f1 = 4/5; class 1: tp=1 fp=0 fn=1 -> 2/3
        let (acc, f1) = accuracy_and_macro_f1(&[0, 0, 0, 1], &[0, 0, 1, 1], 2);
        assert!((acc - 0.75).abs() < 1e-12);
        assert!((f1 - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn constant_predictor_has_low_macro_f1() {
        let (acc, f1) = accuracy_and_macro_f1(&[0; 10], &[0, 0, 0, 0, 0, 0, 1, 1, 1, 1], 2);
        assert!((acc - 0.6).abs() < 1e-12);
        assert!((f1 - 0.375).abs() < 1e-12);
    }
}
