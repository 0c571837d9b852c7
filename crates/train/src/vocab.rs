//! A model trained from scratch with its own WordPiece vocabulary, learnt from the training
//! split's text: what a far domain (another language, SMILES, code) is read with instead of
//! a pretrained English vocabulary that shreds it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
pub use tokenizers::Tokenizer;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{
    NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
};

use crate::error::{Result, TrainError};
use crate::models::bert::BertConfig;

/// The special tokens, in id order: [PAD] = 0 as thaw's batches assume.
const SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Size and vocabulary of a from-scratch encoder (`init = "scratch-own-vocab"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScratchModel {
    /// The most WordPiece tokens to learn (special tokens and the alphabet included).
    pub vocab_size: usize,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    /// Lowercase before learning and applying the vocabulary.
    pub lowercase: bool,
}

impl ScratchModel {
    /// Why this size cannot be built, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.vocab_size < 100 {
            return Some(format!("vocab_size = {} must be at least 100", self.vocab_size));
        }
        if self.layers == 0 || self.heads == 0 || self.hidden == 0 {
            return Some("layers, hidden and heads must be at least 1".into());
        }
        if !self.hidden.is_multiple_of(self.heads) {
            return Some(format!(
                "hidden = {} must be a multiple of heads = {}",
                self.hidden, self.heads
            ));
        }
        None
    }

    /// Learns the vocabulary from `texts` (the training split's: validation and test stay
    /// unseen) and returns a BERT-style tokenizer with it: BERT's normalizer (case kept
    /// unless `lowercase`) and pre-tokenizer (CJK characters and punctuation split apart),
    /// WordPiece with `##` continuations, `[CLS] text [SEP]`. Deterministic: the same texts
    /// give the same vocabulary, ids included.
    pub fn learn_tokenizer(&self, texts: &[&str]) -> Result<Tokenizer> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            TrainError::Invalid(format!("learning the vocabulary: {what}: {e}"))
        };
        let normalizer = BertNormalizer::new(true, true, None, self.lowercase);
        let mut words: BTreeMap<String, u64> = BTreeMap::new();
        for text in texts {
            let mut normalized = NormalizedString::from(*text);
            normalizer.normalize(&mut normalized).map_err(|e| failed("normalizing", &e))?;
            let mut pieces = PreTokenizedString::from(normalized);
            BertPreTokenizer.pre_tokenize(&mut pieces).map_err(|e| failed("splitting", &e))?;
            for (word, _, _) in pieces.get_splits(OffsetReferential::Original, OffsetType::Char) {
                *words.entry(word.to_string()).or_default() += 1;
            }
        }
        let tokens = learn_wordpiece(&words, self.vocab_size.saturating_sub(SPECIAL.len()));
        let vocab: ahash::AHashMap<String, u32> = SPECIAL
            .iter()
            .map(|t| t.to_string())
            .chain(tokens)
            .enumerate()
            .map(|(id, token)| (token, id as u32))
            .collect();
        let model = WordPiece::builder()
            .vocab(vocab)
            .unk_token("[UNK]".into())
            .continuing_subword_prefix("##".into())
            .build()
            .map_err(|e| failed("building WordPiece", &e))?;
        let mut tokenizer = Tokenizer::new(model);
        tokenizer.with_normalizer(Some(normalizer)).map_err(|e| failed("normalizer", &e))?;
        tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
        // Ids 2 and 3, as SPECIAL orders them.
        tokenizer.with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), 3),
            ("[CLS]".into(), 2),
        )));
        Ok(tokenizer)
    }

    /// The encoder's config.json: BERT's defaults (GELU, dropout 0.1, init std 0.02), this
    /// size, intermediate 4 × hidden, and room for `vocab_size` tokens (the learnt
    /// vocabulary has at most that many).
    pub fn config(&self, max_positions: usize) -> BertConfig {
        BertConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden,
            num_hidden_layers: self.layers,
            num_attention_heads: self.heads,
            intermediate_size: 4 * self.hidden,
            hidden_act: "gelu".into(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: max_positions,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            initializer_range: 0.02,
            pad_token_id: 0,
            model_type: Some("bert".into()),
            position_embedding_type: Some("absolute".into()),
            embedding_size: None,
        }
    }
}

/// At most `budget` WordPiece tokens for `words` (each with its count): the characters seen
/// at least twice (a word's first as "c", later ones as "##c"), most frequent first, then
/// byte-pair merges of the most frequent adjacent pair, until the budget is spent or no pair
/// occurs twice. Ties go to the pair whose tokens sort first, so the result depends on the
/// words alone (the `tokenizers` trainer breaks ties by hash-map order: another vocabulary
/// each run).
fn learn_wordpiece(words: &BTreeMap<String, u64>, budget: usize) -> Vec<String> {
    let symbol = |c: char, first: bool| if first { c.to_string() } else { format!("##{c}") };
    let mut alphabet: BTreeMap<String, u64> = BTreeMap::new();
    for (word, &n) in words {
        for (i, c) in word.chars().enumerate() {
            *alphabet.entry(symbol(c, i == 0)).or_default() += n;
        }
    }
    let mut kept: Vec<(String, u64)> = alphabet.into_iter().filter(|(_, n)| *n >= 2).collect();
    kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    kept.truncate(budget);
    let mut tokens: Vec<String> = kept.into_iter().map(|(t, _)| t).collect();
    let mut id_of: HashMap<String, usize> =
        tokens.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();

    // Words spelt in kept symbols; a word with a dropped character is [UNK] whole.
    let mut spelt: Vec<(Vec<usize>, u64)> = words
        .iter()
        .filter_map(|(word, &n)| {
            let ids: Option<Vec<usize>> = word
                .chars()
                .enumerate()
                .map(|(i, c)| id_of.get(&symbol(c, i == 0)).copied())
                .collect();
            ids.filter(|ids| ids.len() > 1).map(|ids| (ids, n))
        })
        .collect();
    let mut pair_counts: HashMap<(usize, usize), u64> = HashMap::new();
    let mut pair_words: HashMap<(usize, usize), HashSet<usize>> = HashMap::new();
    for (w, (ids, n)) in spelt.iter().enumerate() {
        for pair in ids.windows(2) {
            *pair_counts.entry((pair[0], pair[1])).or_default() += n;
            pair_words.entry((pair[0], pair[1])).or_default().insert(w);
        }
    }
    while tokens.len() < budget {
        let best = pair_counts
            .iter()
            .filter(|(_, n)| **n >= 2)
            .max_by(|(a, na), (b, nb)| {
                na.cmp(nb)
                    .then_with(|| (&tokens[b.0], &tokens[b.1]).cmp(&(&tokens[a.0], &tokens[a.1])))
            })
            .map(|(pair, _)| *pair);
        let Some((left, right)) = best else { break };
        let merged = format!("{}{}", tokens[left], tokens[right].trim_start_matches("##"));
        let new_id = *id_of.entry(merged.clone()).or_insert_with(|| {
            tokens.push(merged);
            tokens.len() - 1
        });
        let mut touched: Vec<usize> =
            pair_words.remove(&(left, right)).unwrap_or_default().into_iter().collect();
        touched.sort_unstable();
        for w in touched {
            let (ids, n) = &mut spelt[w];
            for pair in ids.windows(2) {
                let key = (pair[0], pair[1]);
                if let Some(count) = pair_counts.get_mut(&key) {
                    *count -= *n;
                    if *count == 0 {
                        pair_counts.remove(&key);
                    }
                }
            }
            let mut joined = Vec::with_capacity(ids.len());
            let mut i = 0;
            while i < ids.len() {
                if i + 1 < ids.len() && ids[i] == left && ids[i + 1] == right {
                    joined.push(new_id);
                    i += 2;
                } else {
                    joined.push(ids[i]);
                    i += 1;
                }
            }
            *ids = joined;
            for pair in ids.windows(2) {
                *pair_counts.entry((pair[0], pair[1])).or_default() += *n;
                pair_words.entry((pair[0], pair[1])).or_default().insert(w);
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_vocabulary_of_the_text_and_the_same_one_twice() {
        let texts: Vec<String> = (0..300)
            .map(|i| format!("CC(=O)Oc1ccccc1C(=O)O N{i} c1ccc2[nH]ccc2c1 CCN(CC)CC"))
            .collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let model =
            ScratchModel { vocab_size: 200, layers: 1, hidden: 8, heads: 2, lowercase: false };
        let a = model.learn_tokenizer(&texts).unwrap();
        let b = model.learn_tokenizer(&texts).unwrap();
        assert_eq!(a.to_string(false).unwrap(), b.to_string(false).unwrap());
        assert_eq!(a.token_to_id("[PAD]"), Some(0));
        let encoded = a.encode("CC(=O)Oc1ccccc1C(=O)O", true).unwrap();
        let tokens = encoded.get_tokens();
        assert_eq!(tokens.first().map(String::as_str), Some("[CLS]"));
        assert_eq!(tokens.last().map(String::as_str), Some("[SEP]"));
        assert!(!tokens.iter().any(|t| t == "[UNK]"), "{tokens:?}");
        // Case is kept: aromatic c and aliphatic C are different tokens.
        assert!(tokens.iter().any(|t| t.contains('c')) && tokens.iter().any(|t| t.contains('C')));
    }
}
