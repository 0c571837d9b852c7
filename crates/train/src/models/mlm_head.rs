//! [`MaskedLmHead`]: each family's own masked-LM head, named as its `*ForMaskedLM` class
//! names it, with the decoder tied to the word embeddings and a bias of its own.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::bert::BertMaskedLmHead;
use super::config::ModelConfig;
use super::deberta_v2::DebertaV2MaskedLmHead;
use super::distilbert::DistilBertMaskedLmHead;
use super::electra::ElectraMaskedLmHead;
use super::modernbert::ModernBertMaskedLmHead;
use super::roberta::RobertaMaskedLmHead;
use crate::error::Result;
use crate::weights::{WeightSource, Weights};

#[derive(Module, Debug)]
pub enum MaskedLmHead {
    Bert(BertMaskedLmHead),
    Roberta(RobertaMaskedLmHead),
    DistilBert(DistilBertMaskedLmHead),
    Electra(ElectraMaskedLmHead),
    DebertaV2(DebertaV2MaskedLmHead),
    ModernBert(ModernBertMaskedLmHead),
}

impl MaskedLmHead {
    /// The head of `config`'s family from `w` (its names at the top level, as the
    /// `*ForMaskedLM` class saves them).
    pub fn load<S: WeightSource>(
        config: &ModelConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        Ok(match config {
            ModelConfig::Bert(c) => MaskedLmHead::Bert(BertMaskedLmHead::load(c, w, device)?),
            ModelConfig::Roberta(c) => {
                MaskedLmHead::Roberta(RobertaMaskedLmHead::load(c, w, device)?)
            }
            ModelConfig::DistilBert(c) => {
                MaskedLmHead::DistilBert(DistilBertMaskedLmHead::load(c, w, device)?)
            }
            ModelConfig::Electra(c) => {
                MaskedLmHead::Electra(ElectraMaskedLmHead::load(c, w, device)?)
            }
            ModelConfig::DebertaV2(c) => {
                MaskedLmHead::DebertaV2(DebertaV2MaskedLmHead::load(c, w, device)?)
            }
            ModelConfig::ModernBert(c) => {
                MaskedLmHead::ModernBert(ModernBertMaskedLmHead::load(c, w, device)?)
            }
        })
    }

    /// Tensors whose presence in a checkpoint means it carries the family's own trained head.
    pub fn markers(config: &ModelConfig) -> &'static [&'static str] {
        match config {
            ModelConfig::Bert(_) => &["cls.predictions.bias"],
            ModelConfig::Roberta(_) => &["lm_head.bias"],
            ModelConfig::DistilBert(_) => &["vocab_projector.bias"],
            ModelConfig::Electra(_) => &["generator_lm_head.bias"],
            ModelConfig::DebertaV2(_) => &["cls.predictions.bias", "lm_predictions.lm_head.bias"],
            ModelConfig::ModernBert(_) => &["head.dense.weight"],
        }
    }

    /// A decoder weight a checkpoint may store untied, with the tensor it must equal to be
    /// the head thaw computes (the word embeddings, under the family's prefix).
    pub fn tied_decoder(config: &ModelConfig) -> (&'static str, &'static str) {
        match config {
            ModelConfig::Bert(_) => {
                ("cls.predictions.decoder.weight", "embeddings.word_embeddings.weight")
            }
            ModelConfig::Roberta(_) => {
                ("lm_head.decoder.weight", "embeddings.word_embeddings.weight")
            }
            ModelConfig::DistilBert(_) => {
                ("vocab_projector.weight", "embeddings.word_embeddings.weight")
            }
            ModelConfig::Electra(_) => {
                ("generator_lm_head.weight", "embeddings.word_embeddings.weight")
            }
            ModelConfig::DebertaV2(_) => {
                ("cls.predictions.decoder.weight", "embeddings.word_embeddings.weight")
            }
            ModelConfig::ModernBert(_) => ("decoder.weight", "embeddings.tok_embeddings.weight"),
        }
    }

    /// Vocabulary logits of hidden states `[n, hidden]`.
    pub fn logits(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        match self {
            MaskedLmHead::Bert(h) => h.logits(hidden, word_embeddings),
            MaskedLmHead::Roberta(h) => h.logits(hidden, word_embeddings),
            MaskedLmHead::DistilBert(h) => h.logits(hidden, word_embeddings),
            MaskedLmHead::Electra(h) => h.logits(hidden, word_embeddings),
            MaskedLmHead::DebertaV2(h) => h.logits(hidden, word_embeddings),
            MaskedLmHead::ModernBert(h) => h.logits(hidden, word_embeddings),
        }
    }
}
