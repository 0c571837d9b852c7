//! `tokenizer.json` through the `tokenizers` crate, with the file's own truncation and
//! padding replaced by thaw's: truncate to the sweep's max_length, never pad (batches are
//! padded dynamically to their own longest sequence).

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Result, TrainError};

/// The ids of the special tokens the MLM objective and batching need.
#[derive(Debug, Clone, Copy)]
pub struct SpecialTokens {
    pub pad: u32,
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
    pub unk: u32,
}

pub struct TextTokenizer {
    inner: Tokenizer,
    pub special: SpecialTokens,
    pub vocab_size: usize,
}

impl TextTokenizer {
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        let bad = |message: String| TrainError::BadInput {
            file: path.display().to_string(),
            line: None,
            message,
        };
        let inner =
            Tokenizer::from_file(path).map_err(|e| bad(format!("cannot load tokenizer: {e}")))?;
        Self::from_tokenizer(inner, max_length, &path.display().to_string())
    }

    /// A tokenizer already in memory (a learnt vocabulary, say); `origin` names it in errors.
    pub fn from_tokenizer(mut inner: Tokenizer, max_length: usize, origin: &str) -> Result<Self> {
        let bad = |message: String| TrainError::BadInput {
            file: origin.to_string(),
            line: None,
            message,
        };
        inner
            .with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
            .map_err(|e| bad(format!("cannot set truncation to {max_length}: {e}")))?;
        inner.with_padding(None);
        let id = |token: &str| {
            inner.token_to_id(token).ok_or_else(|| {
                bad(format!("the vocabulary has no '{token}' token; thaw needs a BERT-style WordPiece tokenizer"))
            })
        };
        let special = SpecialTokens {
            pad: id("[PAD]")?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            mask: id("[MASK]")?,
            unk: id("[UNK]")?,
        };
        let vocab_size = inner.get_vocab_size(true);
        Ok(TextTokenizer { inner, special, vocab_size })
    }

    /// Characters of text a token stands for (a `##` continuation without its prefix; at
    /// least 1, so `[UNK]` counts as one).
    pub fn token_characters(&self, id: u32) -> usize {
        self.inner.id_to_token(id).map_or(1, |t| t.trim_start_matches("##").chars().count()).max(1)
    }

    /// Token ids with `[CLS]` and `[SEP]`, truncated to max_length.
    pub fn encode_all(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| TrainError::Invalid(format!("tokenization failed: {e}")))?;
        Ok(encodings.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }
}
