//! [`Encoder`]: one encoder of any family, and the one interface through which freezing,
//! the frozen-prefix cache, the strategies, MLM and export reach it.
//!
//! Every family is split the same way. The *embedding side* runs before layer 0: the
//! embeddings, with ELECTRA's projection and DeBERTa's relative-position table and its norm.
//! Then come the layers. The *head side* runs after the last layer: ModernBERT's final norm
//! (identity elsewhere), which trains with the task head. Freezing depth k freezes the
//! embedding side and layers `[0, k)`.

use burn::module::{Module, ParamGroup};
use burn::tensor::{Bool, Device, Int, Tensor};

use super::bert::{BertLayer, BertModel, Positions};
use super::config::ModelConfig;
use super::deberta_v2::{DebertaV2Layer, DebertaV2Model};
use super::distilbert::{DistilBertModel, TransformerBlock};
use super::electra::ElectraModel;
use super::modernbert::{ModernBertEncoderLayer, ModernBertModel};
use crate::error::{Result, TrainError};
use crate::weights::{WeightSource, Weights};

// One encoder lives per job and moves a handful of times (freezing, optimizer steps hand it
// back): the variants' sizes do not matter, and burn's derive takes no boxed modules.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder {
    /// BERT, and RoBERTa and XLM-R (BERT's modules with padding-aware positions).
    Bert(BertModel),
    DistilBert(DistilBertModel),
    Electra(ElectraModel),
    DebertaV2(DebertaV2Model),
    ModernBert(ModernBertModel),
}

impl Encoder {
    /// Builds the encoder of `config` from `w` (its names without the family's prefix).
    pub fn load<S: WeightSource>(
        config: &ModelConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        Ok(match config {
            ModelConfig::Bert(c) => {
                Encoder::Bert(BertModel::load(c, Positions::FromZero, w, device)?)
            }
            ModelConfig::Roberta(c) => Encoder::Bert(super::roberta::load(c, w, device)?),
            ModelConfig::DistilBert(c) => Encoder::DistilBert(DistilBertModel::load(c, w, device)?),
            ModelConfig::Electra(c) => Encoder::Electra(ElectraModel::load(c, w, device)?),
            ModelConfig::DebertaV2(c) => Encoder::DebertaV2(DebertaV2Model::load(c, w, device)?),
            ModelConfig::ModernBert(c) => Encoder::ModernBert(ModernBertModel::load(c, w, device)?),
        })
    }

    pub fn num_layers(&self) -> usize {
        match self {
            Encoder::Bert(m) => m.encoder.layer.len(),
            Encoder::DistilBert(m) => m.transformer.layer.len(),
            Encoder::Electra(m) => m.encoder.layer.len(),
            Encoder::DebertaV2(m) => m.encoder.layer.len(),
            Encoder::ModernBert(m) => m.layers.len(),
        }
    }

    /// The width of the hidden states the layers pass on.
    pub fn hidden_size(&self) -> usize {
        let [_, width] = match self {
            Encoder::Bert(m) => m.encoder.layer[0].output.dense.weight.dims(),
            Encoder::DistilBert(m) => m.transformer.layer[0].ffn.lin2.weight.dims(),
            Encoder::Electra(m) => m.encoder.layer[0].output.dense.weight.dims(),
            Encoder::DebertaV2(m) => m.encoder.layer[0].output.dense.weight.dims(),
            Encoder::ModernBert(m) => m.layers[0].mlp.Wo.weight.dims(),
        };
        width
    }

    /// The word-embedding matrix `[vocab, width]`: the weight of tied masked-LM decoders.
    pub fn word_embeddings(&self) -> Tensor<2> {
        match self {
            Encoder::Bert(m) => m.embeddings.word_embeddings.weight.val(),
            Encoder::DistilBert(m) => m.embeddings.word_embeddings.weight.val(),
            Encoder::Electra(m) => m.embeddings.word_embeddings.weight.val(),
            Encoder::DebertaV2(m) => m.embeddings.word_embeddings.weight.val(),
            Encoder::ModernBert(m) => m.embeddings.tok_embeddings.weight.val(),
        }
    }

    /// The input of layer 0. `token_types` are used by the families that have them (every
    /// token type 0 when not given); `mask_pad` is true at padding.
    pub fn embed(
        &self,
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        mask_pad: &Tensor<2, Bool>,
    ) -> Tensor<3> {
        match self {
            Encoder::Bert(m) => m.embeddings.forward(ids, token_types),
            Encoder::DistilBert(m) => m.embeddings.forward(ids),
            Encoder::Electra(m) => m.embed(ids, token_types),
            Encoder::DebertaV2(m) => m.embed(ids, token_types, mask_pad),
            Encoder::ModernBert(m) => m.embed(ids),
        }
    }

    /// Layers `[from, upto)` applied to hidden states that entered layer `from`.
    pub fn layers_range(
        &self,
        x: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        from: usize,
        upto: usize,
    ) -> Tensor<3> {
        match self {
            Encoder::Bert(m) => m.encoder.layers_range(x, mask_pad, from, upto),
            Encoder::DistilBert(m) => m.layers_range(x, mask_pad, from, upto),
            Encoder::Electra(m) => m.layers_range(x, mask_pad, from, upto),
            Encoder::DebertaV2(m) => m.layers_range(x, mask_pad, from, upto),
            Encoder::ModernBert(m) => m.layers_range(x, mask_pad, from, upto),
        }
    }

    /// The last layer's output as the family hands it on (ModernBERT's final norm).
    pub fn finish(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Encoder::ModernBert(m) => m.finish(x),
            _ => x,
        }
    }

    /// The last hidden state, as transformers' base model returns it.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        mask_pad: &Tensor<2, Bool>,
    ) -> Tensor<3> {
        let x = self.embed(ids, token_types, mask_pad);
        self.finish(self.layers_range(x, mask_pad, 0, self.num_layers()))
    }

    /// Freezes the embedding side and layers `[0, depth)` (nothing when `depth` is 0);
    /// `depth == num_layers` leaves only the head side and the task head trainable.
    pub fn freeze_bottom(self, depth: usize) -> Result<Self> {
        let layers = self.num_layers();
        if depth > layers {
            return Err(TrainError::Invalid(format!(
                "freeze depth {depth} is larger than the model's {layers} encoder layers (valid: 0..={layers})"
            )));
        }
        if depth == 0 {
            return Ok(self);
        }
        Ok(self.set_frozen(Some(true), |i| (i < depth).then_some(true)))
    }

    /// The embedding side frozen (`Some(true)`), trainable (`Some(false)`) or left as it is
    /// (`None`); each layer likewise by `layer(i)`.
    pub fn set_frozen(
        self,
        embeddings: Option<bool>,
        layer: impl Fn(usize) -> Option<bool>,
    ) -> Self {
        match self {
            Encoder::Bert(mut m) => {
                m.embeddings = frozen_if(m.embeddings, embeddings);
                m.encoder.layer = layers_frozen(std::mem::take(&mut m.encoder.layer), &layer);
                Encoder::Bert(m)
            }
            Encoder::DistilBert(mut m) => {
                m.embeddings = frozen_if(m.embeddings, embeddings);
                m.transformer.layer =
                    layers_frozen(std::mem::take(&mut m.transformer.layer), &layer);
                Encoder::DistilBert(m)
            }
            Encoder::Electra(mut m) => {
                m.embeddings = frozen_if(m.embeddings, embeddings);
                m.embeddings_project = frozen_if(m.embeddings_project, embeddings);
                m.encoder.layer = layers_frozen(std::mem::take(&mut m.encoder.layer), &layer);
                Encoder::Electra(m)
            }
            Encoder::DebertaV2(mut m) => {
                m.embeddings = frozen_if(m.embeddings, embeddings);
                m.encoder.rel_embeddings = frozen_if(m.encoder.rel_embeddings, embeddings);
                m.encoder.LayerNorm = frozen_if(m.encoder.LayerNorm, embeddings);
                m.encoder.layer = layers_frozen(std::mem::take(&mut m.encoder.layer), &layer);
                Encoder::DebertaV2(m)
            }
            Encoder::ModernBert(mut m) => {
                m.embeddings = frozen_if(m.embeddings, embeddings);
                m.layers = layers_frozen(std::mem::take(&mut m.layers), &layer);
                Encoder::ModernBert(m)
            }
        }
    }

    /// The parameters of the embedding side (LLRD's lowest rate).
    pub fn embedding_params(&self) -> ParamGroup {
        let ids = |m: &dyn ModuleIds| m.ids();
        match self {
            Encoder::Bert(m) => ids(&m.embeddings),
            Encoder::DistilBert(m) => ids(&m.embeddings),
            Encoder::Electra(m) => ids(&m.embeddings).fuse(&ids(&m.embeddings_project)),
            Encoder::DebertaV2(m) => ids(&m.embeddings)
                .fuse(&ids(&m.encoder.rel_embeddings))
                .fuse(&ids(&m.encoder.LayerNorm)),
            Encoder::ModernBert(m) => ids(&m.embeddings),
        }
    }

    /// How many parameters the layers hold, all together (what a training step multiplies
    /// by: the embedding side is a table lookup).
    pub fn layer_weights(&self) -> usize {
        let count = |m: &dyn ModuleIds| m.count();
        match self {
            Encoder::Bert(m) => m.encoder.layer.iter().map(|l| count(l)).sum(),
            Encoder::DistilBert(m) => m.transformer.layer.iter().map(|l| count(l)).sum(),
            Encoder::Electra(m) => m.encoder.layer.iter().map(|l| count(l)).sum(),
            Encoder::DebertaV2(m) => m.encoder.layer.iter().map(|l| count(l)).sum(),
            Encoder::ModernBert(m) => m.layers.iter().map(|l| count(l)).sum(),
        }
    }

    /// The parameters of layer `i`.
    pub fn layer_params(&self, i: usize) -> ParamGroup {
        match self {
            Encoder::Bert(m) => m.encoder.layer[i].ids(),
            Encoder::DistilBert(m) => m.transformer.layer[i].ids(),
            Encoder::Electra(m) => m.encoder.layer[i].ids(),
            Encoder::DebertaV2(m) => m.encoder.layer[i].ids(),
            Encoder::ModernBert(m) => m.layers[i].ids(),
        }
    }

    /// Layer `i` drawn afresh from `w` (a random source) as the family builds it.
    pub fn reinit_layer<S: WeightSource>(
        mut self,
        config: &ModelConfig,
        i: usize,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        match (&mut self, config) {
            (Encoder::Bert(m), ModelConfig::Bert(c) | ModelConfig::Roberta(c)) => {
                m.encoder.layer[i] = BertLayer::load(c, w, device)?
            }
            (Encoder::Electra(m), ModelConfig::Electra(c)) => {
                m.encoder.layer[i] = BertLayer::load(c, w, device)?
            }
            (Encoder::DistilBert(m), ModelConfig::DistilBert(c)) => {
                m.transformer.layer[i] = TransformerBlock::load(c, w, device)?
            }
            (Encoder::DebertaV2(m), ModelConfig::DebertaV2(c)) => {
                m.encoder.layer[i] = DebertaV2Layer::load(c, w, device)?
            }
            (Encoder::ModernBert(m), ModelConfig::ModernBert(c)) => {
                m.layers[i] = ModernBertEncoderLayer::load(c, i, w, device)?
            }
            _ => return Err(TrainError::Invalid("the config is not this encoder's family".into())),
        }
        Ok(self)
    }
}

/// A module's parameter ids as a group, and their number (object-safe, so the match arms
/// above can mix types).
trait ModuleIds {
    fn ids(&self) -> ParamGroup;
    fn count(&self) -> usize;
}

impl<M: Module> ModuleIds for M {
    fn ids(&self) -> ParamGroup {
        ParamGroup::ids_from_module(self.clone())
    }

    fn count(&self) -> usize {
        self.num_params()
    }
}

fn frozen_if<M: Module>(module: M, frozen: Option<bool>) -> M {
    match frozen {
        Some(true) => module.freeze(),
        Some(false) => module.unfreeze(),
        None => module,
    }
}

fn layers_frozen<M: Module>(layers: Vec<M>, frozen: &impl Fn(usize) -> Option<bool>) -> Vec<M> {
    layers.into_iter().enumerate().map(|(i, layer)| frozen_if(layer, frozen(i))).collect()
}
