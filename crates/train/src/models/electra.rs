//! ELECTRA (`modeling_electra.py`): BERT's layers under `electra.`, with embeddings of
//! `embedding_size` projected to `hidden_size` by `embeddings_project` when narrower. The
//! discriminator is the encoder thaw fine-tunes; the generator's masked-LM head
//! (`generator_predictions`, `generator_lm_head`) is the MLM head, fresh when a checkpoint
//! (a discriminator's) has none.
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Bool, Device, Int, Tensor};

use super::bert::{BertConfig, BertEmbeddings, BertEncoder, Positions};
use super::blocks::{bias, layer_norm, linear};
use crate::error::Result;
use crate::kernels::{gelu, layer_norm as normalize};
use crate::weights::{WeightSource, Weights};

/// `ElectraModel`: embeddings, the optional projection, BERT's encoder.
#[derive(Module, Debug)]
pub struct ElectraModel {
    pub embeddings: BertEmbeddings,
    /// Present when `embedding_size` differs from `hidden_size`.
    pub embeddings_project: Option<Linear>,
    pub encoder: BertEncoder,
}

impl ElectraModel {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let embeddings =
            BertEmbeddings::load(cfg, Positions::FromZero, &mut w.pp("embeddings"), device)?;
        let width = cfg.embedding_width();
        let embeddings_project = (width != cfg.hidden_size)
            .then(|| linear(&mut w.pp("embeddings_project"), width, cfg.hidden_size))
            .transpose()?;
        let encoder = BertEncoder::load(cfg, &mut w.pp("encoder"), device)?;
        Ok(ElectraModel { embeddings, embeddings_project, encoder })
    }

    /// The input of layer 0: embeddings, projected to the layers' width.
    pub fn embed(&self, ids: Tensor<2, Int>, token_types: Option<Tensor<2, Int>>) -> Tensor<3> {
        let x = self.embeddings.forward(ids, token_types);
        match &self.embeddings_project {
            Some(project) => project.forward(x),
            None => x,
        }
    }

    pub fn layers_range(
        &self,
        x: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        from: usize,
        upto: usize,
    ) -> Tensor<3> {
        self.encoder.layers_range(x, mask_pad, from, upto)
    }
}

/// `generator_predictions`: dense (hidden to embedding width), gelu, LayerNorm.
#[derive(Module, Debug)]
pub struct ElectraGeneratorPredictions {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    #[module(skip)]
    pub layer_norm_eps: f64,
}

/// `generator_lm_head`: its weight is the word embeddings (tied); its bias is its own.
#[derive(Module, Debug)]
pub struct TiedDecoder {
    pub bias: Param<Tensor<1>>,
}

/// What `ElectraForMaskedLM` holds besides `electra`.
#[derive(Module, Debug)]
pub struct ElectraMaskedLmHead {
    pub generator_predictions: ElectraGeneratorPredictions,
    pub generator_lm_head: TiedDecoder,
}

impl ElectraMaskedLmHead {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let width = cfg.embedding_width();
        let mut p = w.pp("generator_predictions");
        let generator_predictions = ElectraGeneratorPredictions {
            dense: linear(&mut p.pp("dense"), cfg.hidden_size, width)?,
            LayerNorm: layer_norm(&mut p.pp("LayerNorm"), width, cfg.layer_norm_eps, device)?,
            layer_norm_eps: cfg.layer_norm_eps,
        };
        let generator_lm_head =
            TiedDecoder { bias: bias(&mut w.pp("generator_lm_head"), "bias", cfg.vocab_size)? };
        Ok(ElectraMaskedLmHead { generator_predictions, generator_lm_head })
    }

    pub fn logits(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        let p = &self.generator_predictions;
        let x = normalize(&p.LayerNorm, p.layer_norm_eps, gelu(p.dense.forward(hidden)));
        x.matmul(word_embeddings.transpose()) + self.generator_lm_head.bias.val().unsqueeze::<2>()
    }
}
