//! Tokenized splits: what training consumes. Tokenizing once per (tokenizer, data,
//! max length) and sharing the result between jobs is the caller's choice (see
//! [`crate::cache::TokenCache`]).

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

pub fn encode_splits(tokenizer: &TextTokenizer, splits: &Splits, identity: String) -> Result<Arc<EncodedData>> {
    let encode = |examples: &[crate::data::Example]| -> Result<EncodedSplit> {
        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        Ok(EncodedSplit { ids: tokenizer.encode_all(&texts)?, labels: splits.label_ids(examples) })
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
