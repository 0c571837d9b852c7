//! RoBERTa and XLM-R (`modeling_roberta.py`, `modeling_xlm_roberta.py`): BERT's layers
//! under `roberta.`, with position ids counted from `pad_token_id + 1` and padding at
//! `pad_token_id` (`create_position_ids_from_input_ids`), one token type, and their own
//! masked-LM head, `lm_head`.
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor};

use super::bert::{BertConfig, BertModel, Positions};
use super::blocks::{bias, layer_norm, linear};
use crate::error::Result;
use crate::kernels::{gelu, layer_norm as normalize};
use crate::weights::{WeightSource, Weights};

/// `RobertaModel` is `BertModel` with padding-aware positions.
pub fn load<S: WeightSource>(
    cfg: &BertConfig,
    w: &mut Weights<S>,
    device: &Device,
) -> Result<BertModel> {
    let positions = Positions::AfterPadding { pad: cfg.pad_token_id as u32 };
    BertModel::load(cfg, positions, w, device)
}

/// The positions a RoBERTa sequence can use: the table's rows after the padding index.
pub fn usable_positions(cfg: &BertConfig) -> usize {
    cfg.max_position_embeddings.saturating_sub(cfg.pad_token_id + 1)
}

/// `lm_head`: dense, gelu, `layer_norm`, then a decoder tied to the word embeddings with
/// `lm_head.bias`.
#[derive(Module, Debug)]
pub struct RobertaLmHead {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub layer_norm_eps: f64,
}

/// What `RobertaForMaskedLM` holds besides `roberta`: `lm_head`.
#[derive(Module, Debug)]
pub struct RobertaMaskedLmHead {
    pub lm_head: RobertaLmHead,
}

impl RobertaMaskedLmHead {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let mut h = w.pp("lm_head");
        let width = cfg.hidden_size;
        Ok(RobertaMaskedLmHead {
            lm_head: RobertaLmHead {
                dense: linear(&mut h.pp("dense"), width, width)?,
                layer_norm: layer_norm(&mut h.pp("layer_norm"), width, cfg.layer_norm_eps, device)?,
                bias: bias(&mut h, "bias", cfg.vocab_size)?,
                layer_norm_eps: cfg.layer_norm_eps,
            },
        })
    }

    pub fn logits(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        let h = &self.lm_head;
        let x = normalize(&h.layer_norm, h.layer_norm_eps, gelu(h.dense.forward(hidden)));
        x.matmul(word_embeddings.transpose()) + h.bias.val().unsqueeze::<2>()
    }
}
