//! `tokenizer.json` through the `tokenizers` crate (WordPiece, byte-level BPE or
//! SentencePiece Unigram, with the checkpoint's own pre-tokenizer and template), with the
//! file's own truncation and padding replaced by thaw's: truncate to the sweep's max_length,
//! never pad (batches are padded dynamically to their own longest sequence).

use std::path::Path;

use serde_json::Value;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{EncodeInput, Encoding, Tokenizer, TruncationParams};

use crate::error::{Result, TrainError};

/// The tokens the MLM objective and batching need, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    pub pad: u32,
    pub mask: u32,
    /// What the template adds around a text (`[CLS]`/`[SEP]`, `<s>`/`</s>`): never masked.
    pub template: Vec<u32>,
}

impl SpecialTokens {
    /// Padding or a template token: what masking never chooses.
    pub fn is_special(&self, id: u32) -> bool {
        id == self.pad || self.template.contains(&id)
    }
}

/// The names special tokens go by when `tokenizer_config.json` does not say (BERT's, then
/// RoBERTa's).
const PAD_NAMES: [&str; 2] = ["[PAD]", "<pad>"];
const MASK_NAMES: [&str; 2] = ["[MASK]", "<mask>"];

pub struct TextTokenizer {
    inner: Tokenizer,
    /// For words already split, where the family needs another pre-tokenizer than for text:
    /// byte-level BPE with a space before each word (see [`space_before_words`]).
    words: Option<Tokenizer>,
    pub special: SpecialTokens,
    pub vocab_size: usize,
}

impl TextTokenizer {
    /// `tokenizer.json` at `path`, its special tokens named by the `tokenizer_config.json`
    /// beside it when there is one.
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        let bad = |message: String| TrainError::BadInput {
            file: path.display().to_string(),
            line: None,
            message,
        };
        let inner =
            Tokenizer::from_file(path).map_err(|e| bad(format!("cannot load tokenizer: {e}")))?;
        let config = path.with_file_name("tokenizer_config.json");
        let named =
            if config.is_file() { read_token_names(&config) } else { TokenNames::default() };
        Self::with_names(inner, max_length, &path.display().to_string(), &named)
    }

    /// A tokenizer already in memory (a learnt vocabulary, say); `origin` names it in errors.
    pub fn from_tokenizer(inner: Tokenizer, max_length: usize, origin: &str) -> Result<Self> {
        Self::with_names(inner, max_length, origin, &TokenNames::default())
    }

    fn with_names(
        mut inner: Tokenizer,
        max_length: usize,
        origin: &str,
        named: &TokenNames,
    ) -> Result<Self> {
        let bad = |message: String| TrainError::BadInput {
            file: origin.to_string(),
            line: None,
            message,
        };
        inner
            .with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
            .map_err(|e| bad(format!("cannot set truncation to {max_length}: {e}")))?;
        inner.with_padding(None);
        let find = |named: &Option<String>, fallbacks: &[&str], what: &str| {
            let candidates: Vec<&str> =
                named.iter().map(String::as_str).chain(fallbacks.iter().copied()).collect();
            candidates.iter().find_map(|t| inner.token_to_id(t)).ok_or_else(|| {
                bad(format!(
                    "the vocabulary has no {what} token (looked for {}); name it as {what}_token in tokenizer_config.json",
                    candidates.join(", ")
                ))
            })
        };
        let pad = find(&named.pad, &PAD_NAMES, "pad")?;
        let mask = find(&named.mask, &MASK_NAMES, "mask")?;
        let template = inner
            .encode("", true)
            .map_err(|e| bad(format!("the tokenizer cannot encode an empty text: {e}")))?
            .get_ids()
            .to_vec();
        let vocab_size = inner.get_vocab_size(true);
        let words = words_tokenizer(&inner).map_err(bad)?;
        Ok(TextTokenizer {
            inner,
            words,
            special: SpecialTokens { pad, mask, template },
            vocab_size,
        })
    }

    /// Characters of text a token stands for (without a `##` continuation mark or a
    /// SentencePiece/byte-level word-start mark; at least 1, so an unknown token counts as one).
    pub fn token_characters(&self, id: u32) -> usize {
        self.inner
            .id_to_token(id)
            .map_or(1, |t| {
                t.trim_start_matches("##").trim_start_matches(['▁', 'Ġ']).chars().count()
            })
            .max(1)
    }

    /// Token ids with the template's special tokens, truncated to max_length.
    pub fn encode_all(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| TrainError::Invalid(format!("tokenization failed: {e}")))?;
        Ok(encodings.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }
}

/// One example's input, as the tokenizer takes it.
#[derive(Debug, Clone, Copy)]
pub enum TextInput<'a> {
    Single(&'a str),
    /// Encoded with the tokenizer's pair template (its separator and token types).
    Pair(&'a str, &'a str),
    /// Words already split, to be tagged one by one.
    Words(&'a [String]),
}

/// One example's tokens, and where its parts begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    pub ids: Vec<u32>,
    /// Where token type 1 begins (the second text of a pair, in families with token types).
    pub second_text_at: Option<usize>,
    /// For [`TextInput::Words`]: each word's first token, None when truncation cut it.
    pub word_starts: Vec<Option<usize>>,
}

impl TextTokenizer {
    /// Each input with the template's special tokens, truncated to max_length (a pair's
    /// longer text first).
    pub fn tokenize_all(&self, inputs: &[TextInput]) -> Result<Vec<Tokenized>> {
        let encode_inputs: Vec<EncodeInput> = inputs
            .iter()
            .map(|input| match *input {
                TextInput::Single(text) => text.into(),
                TextInput::Pair(a, b) => (a, b).into(),
                TextInput::Words(words) => words.into(),
            })
            .collect();
        // A split holds one kind of input: words for tagging, texts otherwise.
        let tokenizer = match inputs.first() {
            Some(TextInput::Words(_)) => self.words.as_ref().unwrap_or(&self.inner),
            _ => &self.inner,
        };
        let encodings = tokenizer
            .encode_batch(encode_inputs, true)
            .map_err(|e| TrainError::Invalid(format!("tokenization failed: {e}")))?;
        Ok(inputs.iter().zip(encodings).map(|(input, e)| tokenized(input, &e)).collect())
    }
}

fn tokenized(input: &TextInput, encoding: &Encoding) -> Tokenized {
    let second_text_at = encoding.get_type_ids().iter().position(|&t| t != 0);
    let word_starts = match input {
        TextInput::Words(words) => {
            let mut starts = vec![None; words.len()];
            for (position, word) in encoding.get_word_ids().iter().enumerate() {
                if let Some(w) = word.map(|w| w as usize)
                    && w < starts.len()
                    && starts[w].is_none()
                {
                    starts[w] = Some(position);
                }
            }
            starts
        }
        _ => Vec::new(),
    };
    Tokenized { ids: encoding.get_ids().to_vec(), second_text_at, word_starts }
}

/// Sets `add_prefix_space` on a byte-level pre-tokenizer in `tokenizer` (a `tokenizer.json`),
/// inside a sequence too; returns whether it changed anything. Without it a byte-level BPE
/// (RoBERTa's, ModernBERT's) encodes each pre-split word as if it continued the previous one;
/// with it each word is encoded as it reads inside a sentence, as transformers does for
/// `is_split_into_words` with `add_prefix_space=True`.
pub fn space_before_words(tokenizer: &mut Value) -> bool {
    fn set(pre: &mut Value) -> bool {
        match pre.get("type").and_then(Value::as_str) {
            Some("ByteLevel") if pre["add_prefix_space"] != Value::Bool(true) => {
                pre["add_prefix_space"] = Value::Bool(true);
                true
            }
            Some("Sequence") => match pre.get_mut("pretokenizers") {
                Some(Value::Array(items)) => {
                    items.iter_mut().fold(false, |changed, p| set(p) | changed)
                }
                _ => false,
            },
            _ => false,
        }
    }
    tokenizer.get_mut("pre_tokenizer").is_some_and(set)
}

/// `inner` with [`space_before_words`], when that changes it (only its pre-tokenizer goes
/// through JSON: a vocabulary of 250,000 tokens is not copied to find out).
fn words_tokenizer(inner: &Tokenizer) -> std::result::Result<Option<Tokenizer>, String> {
    let Some(pre) = inner.get_pre_tokenizer() else { return Ok(None) };
    let mut json = serde_json::json!({ "pre_tokenizer": pre });
    if !space_before_words(&mut json) {
        return Ok(None);
    }
    let spaced: PreTokenizerWrapper = serde_json::from_value(json["pre_tokenizer"].take())
        .map_err(|e| format!("cannot set add_prefix_space: {e}"))?;
    let mut words = inner.clone();
    words.with_pre_tokenizer(Some(spaced));
    Ok(Some(words))
}

/// Special tokens as `tokenizer_config.json` names them.
#[derive(Default)]
struct TokenNames {
    pad: Option<String>,
    mask: Option<String>,
}

/// The pad and mask tokens' names (a string, or an AddedToken object with `content`); a
/// file that cannot be read names none.
fn read_token_names(path: &Path) -> TokenNames {
    let json: Value = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let name = |key: &str| match json.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(String::from),
        _ => None,
    };
    TokenNames { pad: name("pad_token"), mask: name("mask_token") }
}
