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
    best_threshold(probabilities, truth, &candidate_thresholds())
}

fn best_threshold(probabilities: &[Vec<f64>], truth: &[Vec<bool>], candidates: &[f64]) -> f64 {
    let mut best: (f64, f64) = (f64::NEG_INFINITY, 0.5);
    for &t in candidates {
        let (micro, _) = micro_and_macro_f1(&decide(probabilities, t), truth);
        let better = micro > best.0 + 1e-12
            || ((micro - best.0).abs() <= 1e-12 && (t - 0.5).abs() < (best.1 - 0.5).abs());
        if better {
            best = (micro, t);
        }
    }
    best.1
}

/// Each label's share of yes in `train`.
pub fn label_frequencies(train: &[Vec<bool>]) -> Vec<f64> {
    let labels = train.first().map_or(0, Vec::len);
    let n = train.len().max(1) as f64;
    (0..labels).map(|l| train.iter().filter(|row| row[l]).count() as f64 / n).collect()
}

/// The baseline: the best prediction that ignores the text. Every example gets each label's
/// training frequency as its probability, decided at the threshold chosen on `validation` as
/// a model's is, or 0 (every label): the labels frequent enough, the same for every example.
/// At threshold 0.5 this is each label's majority (usually no label); a lower threshold
/// predicts the frequent labels everywhere, which micro-F1 scores above zero. Returns the row
/// predicted for every example and the threshold.
pub fn text_blind_prediction(train: &[Vec<bool>], validation: &[Vec<bool>]) -> (Vec<bool>, f64) {
    let frequencies = label_frequencies(train);
    let mut candidates = vec![0.0];
    candidates.extend(candidate_thresholds());
    let threshold =
        best_threshold(&vec![frequencies.clone(); validation.len()], validation, &candidates);
    (frequencies.iter().map(|&f| f >= threshold).collect(), threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rows: &[[u8; 3]]) -> Vec<Vec<bool>> {
        rows.iter().map(|r| r.iter().map(|&v| v == 1).collect()).collect()
    }

    #[test]
    fn micro_and_macro_f1_match_scikit_learns_documented_multilabel_example() {
        // sklearn.metrics.f1_score's docstring: per label [2/3, 1, 2/3]; scikit-learn 1.x
        // gives micro 0.8 and macro 0.7778 on the same rows.
        let truth = rows(&[[0, 0, 0], [1, 1, 1], [0, 1, 1]]);
        let predicted = rows(&[[0, 0, 0], [1, 1, 1], [1, 1, 0]]);
        let (micro, macro_f1) = micro_and_macro_f1(&predicted, &truth);
        assert!((micro - 0.8).abs() < 1e-12, "{micro}");
        assert!((macro_f1 - 7.0 / 9.0).abs() < 1e-12, "{macro_f1}");
        let nothing = rows(&[[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
        assert_eq!(micro_and_macro_f1(&nothing, &truth), (0.0, 0.0), "zero_division=0");
    }

    #[test]
    fn the_text_blind_baseline_predicts_the_labels_frequent_enough_on_validation() {
        // Frequencies a 0.75, b 0.5, c 0.
        let train = rows(&[[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 1, 0]]);
        assert_eq!(label_frequencies(&train), vec![0.75, 0.5, 0.0]);
        // Validation where b is always yes: predicting a and b beats a alone.
        let validation = rows(&[[1, 1, 0], [0, 1, 0]]);
        let (row, threshold) = text_blind_prediction(&train, &validation);
        assert_eq!(row, vec![true, true, false]);
        assert_eq!(threshold, 0.5, "of the tied thresholds up to 0.5, the one nearest 0.5");
        // Validation where b never is: a alone, at a threshold above b's 0.5.
        let (row, threshold) = text_blind_prediction(&train, &rows(&[[1, 0, 0], [1, 0, 0]]));
        assert_eq!(row, vec![true, false, false]);
        assert!(threshold > 0.5 && threshold <= 0.75, "{threshold}");
    }

    #[test]
    fn the_threshold_is_the_one_that_separates_on_validation() {
        let probabilities = vec![vec![0.9, 0.3], vec![0.25, 0.8], vec![0.2, 0.1]];
        let truth = vec![vec![true, true], vec![false, true], vec![false, false]];
        let t = choose_threshold(&probabilities, &truth);
        assert!(t > 0.25 && t <= 0.3, "{t}");
        assert_eq!(micro_and_macro_f1(&decide(&probabilities, t), &truth), (1.0, 1.0));
    }
}
