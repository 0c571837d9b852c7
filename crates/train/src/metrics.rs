//! Classification metrics.

/// Accuracy and macro-F1 from predicted and true class ids.
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
    let mut f1_sum = 0.0;
    for class in 0..num_labels {
        let tp =
            predicted.iter().zip(truth).filter(|&(&p, &t)| p == class && t == class).count() as f64;
        let fp =
            predicted.iter().zip(truth).filter(|&(&p, &t)| p == class && t != class).count() as f64;
        let fn_ =
            predicted.iter().zip(truth).filter(|&(&p, &t)| p != class && t == class).count() as f64;
        // A class never predicted and never present contributes F1 = 0, as scikit-learn's default does.
        let denom = 2.0 * tp + fp + fn_;
        f1_sum += if denom == 0.0 { 0.0 } else { 2.0 * tp / denom };
    }
    (correct as f64 / truth.len() as f64, f1_sum / num_labels as f64)
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
