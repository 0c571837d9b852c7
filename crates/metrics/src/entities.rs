//! Token classification: entities read from BIO/IOB2 tags as seqeval's default mode reads
//! them (the conlleval rules: an `I-` after `O` or after another type starts an entity, E-
//! and S- tags are understood), entity-level micro precision, recall and F1, per-type scores,
//! and token accuracy.

use std::collections::{BTreeMap, BTreeSet};

/// An entity: its type and its words `start..=end`, counted over all sentences laid end to
/// end with one `O` between them, as seqeval counts them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entity {
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// True entities scored (for per-type rows: of this type).
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EntityScores {
    /// Micro-averaged over every entity: seqeval's `f1_score` and friends.
    pub micro: Scores,
    /// Per entity type, sorted by type name: every type among the true or predicted entities.
    pub by_type: Vec<(String, Scores)>,
    /// Tags equal to the truth, over all words (seqeval's `accuracy_score`).
    pub token_accuracy: f64,
}

/// The entities of `sentences` (each a list of tags).
pub fn entities<S: AsRef<str>>(sentences: &[Vec<S>]) -> Vec<Entity> {
    let mut found = Vec::new();
    let (mut prev_tag, mut prev_kind) = ('O', String::new());
    let mut begin = 0;
    // Each sentence ends in an "O", and one more closes the whole, as in seqeval.
    let words = sentences.iter().flat_map(|s| s.iter().map(AsRef::as_ref).chain(["O"]));
    for (i, tag) in words.chain(["O"]).enumerate() {
        let (prefix, kind) = split_tag(tag);
        if ends_entity(prev_tag, prefix, &prev_kind, kind) {
            found.push(Entity { kind: prev_kind.clone(), start: begin, end: i - 1 });
        }
        if starts_entity(prev_tag, prefix, &prev_kind, kind) {
            begin = i;
        }
        prev_tag = prefix;
        prev_kind = kind.to_string();
    }
    found
}

/// `B-PER` -> ('B', "PER"); `O` -> ('O', "_"): seqeval's `chunk[0]` and
/// `chunk[1:].split('-', 1)[-1] or '_'`.
fn split_tag(tag: &str) -> (char, &str) {
    let mut chars = tag.chars();
    let prefix = chars.next().unwrap_or('O');
    let rest = chars.as_str();
    let kind = rest.split_once('-').map_or(rest, |(_, after)| after);
    (prefix, if kind.is_empty() { "_" } else { kind })
}

fn ends_entity(prev: char, tag: char, prev_kind: &str, kind: &str) -> bool {
    matches!(prev, 'E' | 'S')
        || (matches!(prev, 'B' | 'I') && matches!(tag, 'B' | 'S' | 'O'))
        || (prev != 'O' && prev != '.' && prev_kind != kind)
}

fn starts_entity(prev: char, tag: char, prev_kind: &str, kind: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (matches!(prev, 'E' | 'S' | 'O') && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_kind != kind)
}

/// Entity-level scores of `predicted` tags against `truth`, sentence by sentence.
pub fn entity_scores<S: AsRef<str>>(truth: &[Vec<S>], predicted: &[Vec<S>]) -> EntityScores {
    assert_eq!(truth.len(), predicted.len(), "one predicted tag list per sentence");
    let true_set: BTreeSet<Entity> = entities(truth).into_iter().collect();
    let predicted_set: BTreeSet<Entity> = entities(predicted).into_iter().collect();
    let micro = scores(&true_set, &predicted_set);
    let kinds: BTreeSet<&str> =
        true_set.iter().chain(&predicted_set).map(|e| e.kind.as_str()).collect();
    let of_kind = |set: &BTreeSet<Entity>, kind: &str| -> BTreeSet<Entity> {
        set.iter().filter(|e| e.kind == kind).cloned().collect()
    };
    let by_type = kinds
        .into_iter()
        .map(|k| (k.to_string(), scores(&of_kind(&true_set, k), &of_kind(&predicted_set, k))))
        .collect();
    EntityScores { micro, by_type, token_accuracy: token_accuracy(truth, predicted) }
}

fn scores(truth: &BTreeSet<Entity>, predicted: &BTreeSet<Entity>) -> Scores {
    let correct = truth.intersection(predicted).count() as f64;
    let ratio = |n: usize| if n > 0 { correct / n as f64 } else { 0.0 };
    let (precision, recall) = (ratio(predicted.len()), ratio(truth.len()));
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Scores { precision, recall, f1, support: truth.len() }
}

/// Words whose predicted tag equals the true one, over all words.
pub fn token_accuracy<S: AsRef<str>>(truth: &[Vec<S>], predicted: &[Vec<S>]) -> f64 {
    let (mut correct, mut total) = (0usize, 0usize);
    for (t, p) in truth.iter().zip(predicted) {
        assert_eq!(t.len(), p.len(), "one predicted tag per word");
        correct += t.iter().zip(p).filter(|(a, b)| a.as_ref() == b.as_ref()).count();
        total += t.len();
    }
    if total == 0 { 0.0 } else { correct as f64 / total as f64 }
}

/// How often each entity type occurs among `sentences`' entities, for baselines and reports.
pub fn type_counts<S: AsRef<str>>(sentences: &[Vec<S>]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in entities(sentences) {
        *counts.entry(e.kind).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn seqevals_docstring_example() {
        let truth = vec![tags("O O O B-MISC I-MISC I-MISC O"), tags("B-PER I-PER O")];
        let predicted = vec![tags("O O B-MISC I-MISC I-MISC I-MISC O"), tags("B-PER I-PER O")];
        let s = entity_scores(&truth, &predicted);
        assert!((s.micro.f1 - 0.5).abs() < 1e-12);
        assert!((s.token_accuracy - 0.8).abs() < 1e-12);
        let e = entities(&[tags("B-PER I-PER O B-LOC")]);
        assert_eq!(
            e,
            vec![
                Entity { kind: "PER".into(), start: 0, end: 1 },
                Entity { kind: "LOC".into(), start: 3, end: 3 },
            ]
        );
    }

    #[test]
    fn an_inside_tag_after_outside_or_another_type_starts_an_entity() {
        let e = entities(&[tags("I-PER I-PER O I-LOC B-ORG I-PER")]);
        let spans: Vec<(&str, usize, usize)> =
            e.iter().map(|e| (e.kind.as_str(), e.start, e.end)).collect();
        assert_eq!(spans, vec![("PER", 0, 1), ("LOC", 3, 3), ("ORG", 4, 4), ("PER", 5, 5)]);
    }
}
