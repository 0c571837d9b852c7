//! Tokenized splits: what training consumes. A [`TokenMemo`] per (tokenizer, max length)
//! tokenizes each distinct input once, however many jobs, subsamples and splits use it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::data::{Example, Splits, Targets, Task};
use crate::error::Result;
use crate::tokenize::{TextInput, TextTokenizer, Tokenized};

#[derive(Debug, Clone)]
pub struct EncodedSplit {
    pub ids: Vec<Vec<u32>>,
    /// Per example, where token type 1 begins (pairs in families with token types).
    pub second_text_at: Vec<Option<usize>>,
    /// Per example, each word's first token (word tagging; empty otherwise).
    pub word_starts: Vec<Vec<Option<usize>>>,
    pub targets: Targets,
}

impl EncodedSplit {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn lengths(&self) -> Vec<usize> {
        self.ids.iter().map(Vec::len).collect()
    }

    pub fn tokens(&self) -> usize {
        self.ids.iter().map(Vec::len).sum()
    }

    /// Whether any example has a second segment, so batches carry token types.
    pub fn has_token_types(&self) -> bool {
        self.second_text_at.iter().any(Option::is_some)
    }

    /// The class ids (single-label classification); empty for other tasks.
    pub fn classes(&self) -> &[usize] {
        match &self.targets {
            Targets::Classes(c) => c,
            _ => &[],
        }
    }
}

/// The training split's mean and standard deviation of a regression target: the model
/// learns `(y - mean) / sd` and its outputs are mapped back to the original units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standardization {
    pub mean: f64,
    pub sd: f64,
}

impl Standardization {
    pub fn of(scores: &[f64]) -> Self {
        let n = scores.len().max(1) as f64;
        let mean = scores.iter().sum::<f64>() / n;
        let var = scores.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Standardization { mean, sd: var.sqrt().max(1e-12) }
    }

    /// A score in the target's units as the model learns it.
    pub fn standardize(&self, score: f64) -> f64 {
        (score - self.mean) / self.sd
    }

    /// A model output back in the target's units.
    pub fn to_units(&self, output: f64) -> f64 {
        output * self.sd + self.mean
    }
}

#[derive(Debug, Clone)]
pub struct EncodedData {
    pub train: EncodedSplit,
    pub validation: EncodedSplit,
    pub test: EncodedSplit,
    /// Class or tag names; a name's index is its id. Empty for regression.
    pub labels: Vec<String>,
    /// For regression: the training targets' scale.
    pub standardization: Option<Standardization>,
    pub pad: u32,
    /// Identifies the data + tokenizer + max length; caches key on it.
    pub identity: String,
}

impl EncodedData {
    pub fn task(&self) -> Task {
        match &self.train.targets {
            Targets::Classes(_) => Task::Classification,
            Targets::Scores(_) => Task::Regression,
            Targets::Tags(_) => Task::Tokens,
            Targets::LabelSets(_) => Task::MultiLabel,
        }
    }

    /// Outputs per example (classes, or one per label of multi-label), per word (tags), or 1
    /// (a score).
    pub fn outputs(&self) -> usize {
        if self.standardization.is_some() { 1 } else { self.labels.len() }
    }
}

/// Tokens by input, for one tokenizer at one max length.
#[derive(Debug, Default)]
pub struct TokenMemo {
    by_input: HashMap<String, Tokenized>,
    /// Inputs tokenized so far (each once).
    pub tokenized: usize,
}

impl TokenMemo {
    /// Token ids of plain texts (MLM corpora, task text).
    pub fn encode(&mut self, tokenizer: &TextTokenizer, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let inputs: Vec<TextInput> = texts.iter().map(|t| TextInput::Single(t)).collect();
        Ok(self.tokenize(tokenizer, &inputs)?.into_iter().map(|t| t.ids).collect())
    }

    pub fn tokenize(
        &mut self,
        tokenizer: &TextTokenizer,
        inputs: &[TextInput],
    ) -> Result<Vec<Tokenized>> {
        let keys: Vec<String> = inputs.iter().map(memo_key).collect();
        let mut missing: Vec<(&String, TextInput)> = keys
            .iter()
            .zip(inputs.iter().copied())
            .filter(|(k, _)| !self.by_input.contains_key(*k))
            .collect();
        missing.sort_unstable_by(|a, b| a.0.cmp(b.0));
        missing.dedup_by(|a, b| a.0 == b.0);
        let fresh: Vec<TextInput> = missing.iter().map(|(_, input)| *input).collect();
        for ((key, _), tokens) in missing.iter().zip(tokenizer.tokenize_all(&fresh)?) {
            self.by_input.insert((*key).clone(), tokens);
        }
        self.tokenized += missing.len();
        Ok(keys.iter().map(|k| self.by_input[k].clone()).collect())
    }
}

/// One key per distinct input; the separator never occurs in text thaw reads.
fn memo_key(input: &TextInput) -> String {
    match input {
        TextInput::Single(text) => format!("s\u{1f}{text}"),
        TextInput::Pair(a, b) => format!("p\u{1f}{a}\u{1f}{b}"),
        TextInput::Words(words) => format!("w\u{1f}{}", words.join("\u{1f}")),
    }
}

fn text_input(example: &Example) -> TextInput<'_> {
    match (&example.text_pair, example.words.is_empty()) {
        (Some(pair), _) => TextInput::Pair(&example.text, pair),
        (None, false) => TextInput::Words(&example.words),
        (None, true) => TextInput::Single(&example.text),
    }
}

pub fn encode_splits(
    tokenizer: &TextTokenizer,
    splits: &Splits,
    identity: String,
) -> Result<Arc<EncodedData>> {
    encode_splits_with(tokenizer, splits, identity, &mut TokenMemo::default())
}

/// [`encode_splits`], taking tokens from (and adding them to) `memo`.
pub fn encode_splits_with(
    tokenizer: &TextTokenizer,
    splits: &Splits,
    identity: String,
    memo: &mut TokenMemo,
) -> Result<Arc<EncodedData>> {
    let mut encode = |examples: &[Example]| -> Result<EncodedSplit> {
        let inputs: Vec<TextInput> = examples.iter().map(text_input).collect();
        let tokenized = memo.tokenize(tokenizer, &inputs)?;
        Ok(EncodedSplit {
            second_text_at: tokenized.iter().map(|t| t.second_text_at).collect(),
            word_starts: tokenized.iter().map(|t| t.word_starts.clone()).collect(),
            ids: tokenized.into_iter().map(|t| t.ids).collect(),
            targets: splits.targets(examples),
        })
    };
    let train = encode(&splits.train)?;
    let standardization = match &train.targets {
        Targets::Scores(scores) => Some(Standardization::of(scores)),
        _ => None,
    };
    Ok(Arc::new(EncodedData {
        train,
        validation: encode(&splits.validation)?,
        test: encode(&splits.test)?,
        labels: splits.labels.clone(),
        standardization,
        pad: tokenizer.special.pad,
        identity,
    }))
}
