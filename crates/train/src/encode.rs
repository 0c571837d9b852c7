//! Tokenized splits: what training consumes. A [`TokenMemo`] per (tokenizer, max length)
//! tokenizes each distinct text once, however many jobs, subsamples and splits use it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::data::Splits;
use crate::error::Result;
use crate::tokenize::TextTokenizer;

#[derive(Debug, Clone)]
pub struct EncodedSplit {
    pub ids: Vec<Vec<u32>>,
    pub labels: Vec<usize>,
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
}

#[derive(Debug, Clone)]
pub struct EncodedData {
    pub train: EncodedSplit,
    pub validation: EncodedSplit,
    pub test: EncodedSplit,
    pub labels: Vec<String>,
    pub pad: u32,
    /// Identifies the data + tokenizer + max length; caches key on it.
    pub identity: String,
}

/// Token ids by text, for one tokenizer at one max length.
#[derive(Debug, Default)]
pub struct TokenMemo {
    ids: HashMap<String, Vec<u32>>,
    /// Texts tokenized so far (each once).
    pub tokenized: usize,
}

impl TokenMemo {
    pub fn encode(&mut self, tokenizer: &TextTokenizer, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let mut missing: Vec<&str> =
            texts.iter().copied().filter(|t| !self.ids.contains_key(*t)).collect();
        missing.sort_unstable();
        missing.dedup();
        for (text, ids) in missing.iter().zip(tokenizer.encode_all(&missing)?) {
            self.ids.insert((*text).to_string(), ids);
        }
        self.tokenized += missing.len();
        Ok(texts.iter().map(|t| self.ids[*t].clone()).collect())
    }
}

pub fn encode_splits(
    tokenizer: &TextTokenizer,
    splits: &Splits,
    identity: String,
) -> Result<Arc<EncodedData>> {
    encode_splits_with(tokenizer, splits, identity, &mut TokenMemo::default())
}

/// [`encode_splits`], taking token ids from (and adding them to) `memo`.
pub fn encode_splits_with(
    tokenizer: &TextTokenizer,
    splits: &Splits,
    identity: String,
    memo: &mut TokenMemo,
) -> Result<Arc<EncodedData>> {
    let mut encode = |examples: &[crate::data::Example]| -> Result<EncodedSplit> {
        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        Ok(EncodedSplit {
            ids: memo.encode(tokenizer, &texts)?,
            labels: splits.label_ids(examples),
        })
    };
    Ok(Arc::new(EncodedData {
        train: encode(&splits.train)?,
        validation: encode(&splits.validation)?,
        test: encode(&splits.test)?,
        labels: splits.labels.clone(),
        pad: tokenizer.special.pad,
        identity,
    }))
}
