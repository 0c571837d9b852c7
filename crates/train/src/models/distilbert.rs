//! DistilBERT (`modeling_distilbert.py`): its own tensor names under `distilbert.`
//! (`transformer.layer.N.attention.q_lin`, `sa_layer_norm`, `ffn.lin1`, ...), word and
//! position embeddings without token types, post-LayerNorm layers with every LayerNorm's
//! epsilon fixed at 1e-12, and a masked-LM head of `vocab_transform`, `vocab_layer_norm` and
//! `vocab_projector` (tied to the word embeddings).
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, Linear};
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::activation::{self, Activation};
use super::attention::attend;
use super::blocks::{bias, embedding, layer_norm, linear};
use super::config_file::{ConfigFile, Unsupported};
use crate::error::Result;
use crate::kernels::{dropout, layer_norm as normalize};
use crate::weights::{WeightSource, Weights};

/// DistilBERT's LayerNorms are built with this epsilon in the modeling code (no config key).
const EPS: f64 = 1e-12;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DistilBertConfig {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub hidden_dim: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_activation")]
    pub activation: String,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    #[serde(default = "default_dropout")]
    pub attention_dropout: f64,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub pad_token_id: usize,
}

fn default_activation() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_init_range() -> f64 {
    0.02
}

impl DistilBertConfig {
    pub fn from_config(file: &ConfigFile) -> Result<Self> {
        let config: DistilBertConfig = file.parse()?;
        let unsupported = Unsupported::new(file);
        if Activation::parse(&config.activation).is_none() {
            return Err(unsupported.value("activation", &config.activation, activation::SUPPORTED));
        }
        unsupported.refuse_unless(
            "sinusoidal_pos_embds",
            &[Value::Bool(false)],
            "false (learnt position embeddings)",
        )?;
        unsupported.check_heads(config.dim, config.n_heads)?;
        Ok(config)
    }

    pub fn activation(&self) -> Activation {
        Activation::parse(&self.activation).expect("checked when read")
    }
}

/// `embeddings`: word + position, LayerNorm, dropout.
#[derive(Module, Debug)]
pub struct DistilBertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
}

impl DistilBertEmbeddings {
    fn load<S: WeightSource>(
        cfg: &DistilBertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        Ok(DistilBertEmbeddings {
            word_embeddings: embedding(
                &mut w.pp("word_embeddings"),
                cfg.vocab_size,
                cfg.dim,
                device,
            )?,
            position_embeddings: embedding(
                &mut w.pp("position_embeddings"),
                cfg.max_position_embeddings,
                cfg.dim,
                device,
            )?,
            LayerNorm: layer_norm(&mut w.pp("LayerNorm"), cfg.dim, EPS, device)?,
            dropout: DropoutConfig::new(cfg.dropout).init(),
        })
    }

    pub fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = input_ids.dims();
        let dim = self.word_embeddings.weight.dims()[1];
        let position = self.position_embeddings.weight.val().slice(0..seq).reshape([1, seq, dim]);
        let x = self.word_embeddings.forward(input_ids) + position;
        dropout(&self.dropout, normalize(&self.LayerNorm, EPS, x))
    }
}

/// `attention`: the four projections of `DistilBertSelfAttention`.
#[derive(Module, Debug)]
pub struct DistilBertSelfAttention {
    pub q_lin: Linear,
    pub k_lin: Linear,
    pub v_lin: Linear,
    pub out_lin: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub heads: usize,
}

/// `ffn`: lin1, activation, lin2, dropout.
#[derive(Module, Debug)]
pub struct Ffn {
    pub lin1: Linear,
    pub lin2: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub activation: Activation,
}

/// `transformer.layer.N`: attention, `sa_layer_norm` of its residual sum, the feed-forward
/// block and `output_layer_norm` of its residual sum.
#[derive(Module, Debug)]
pub struct TransformerBlock {
    pub attention: DistilBertSelfAttention,
    pub sa_layer_norm: LayerNorm,
    pub ffn: Ffn,
    pub output_layer_norm: LayerNorm,
}

impl TransformerBlock {
    pub fn load<S: WeightSource>(
        cfg: &DistilBertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let d = cfg.dim;
        let mut a = w.pp("attention");
        let attention = DistilBertSelfAttention {
            q_lin: linear(&mut a.pp("q_lin"), d, d)?,
            k_lin: linear(&mut a.pp("k_lin"), d, d)?,
            v_lin: linear(&mut a.pp("v_lin"), d, d)?,
            out_lin: linear(&mut a.pp("out_lin"), d, d)?,
            dropout: DropoutConfig::new(cfg.attention_dropout).init(),
            heads: cfg.n_heads,
        };
        let sa_layer_norm = layer_norm(&mut w.pp("sa_layer_norm"), d, EPS, device)?;
        let mut f = w.pp("ffn");
        let ffn = Ffn {
            lin1: linear(&mut f.pp("lin1"), d, cfg.hidden_dim)?,
            lin2: linear(&mut f.pp("lin2"), cfg.hidden_dim, d)?,
            dropout: DropoutConfig::new(cfg.dropout).init(),
            activation: cfg.activation(),
        };
        let output_layer_norm = layer_norm(&mut w.pp("output_layer_norm"), d, EPS, device)?;
        Ok(TransformerBlock { attention, sa_layer_norm, ffn, output_layer_norm })
    }

    fn forward(&self, x: Tensor<3>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        let a = &self.attention;
        let (query, key, value) =
            (a.q_lin.forward(x.clone()), a.k_lin.forward(x.clone()), a.v_lin.forward(x.clone()));
        let context = attend(query, key, value, a.heads, mask_pad, &a.dropout);
        let attended = normalize(&self.sa_layer_norm, EPS, a.out_lin.forward(context) + x);
        let f = &self.ffn;
        let expanded = f.lin2.forward(f.activation.forward(f.lin1.forward(attended.clone())));
        normalize(&self.output_layer_norm, EPS, dropout(&f.dropout, expanded) + attended)
    }
}

/// `transformer`: the stack of blocks.
#[derive(Module, Debug)]
pub struct Transformer {
    pub layer: Vec<TransformerBlock>,
}

/// `DistilBertModel`: `embeddings` and `transformer`.
#[derive(Module, Debug)]
pub struct DistilBertModel {
    pub embeddings: DistilBertEmbeddings,
    pub transformer: Transformer,
}

impl DistilBertModel {
    pub fn load<S: WeightSource>(
        cfg: &DistilBertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let embeddings = DistilBertEmbeddings::load(cfg, &mut w.pp("embeddings"), device)?;
        let mut t = w.pp("transformer.layer");
        let layer = (0..cfg.n_layers)
            .map(|i| TransformerBlock::load(cfg, &mut t.pp(i), device))
            .collect::<Result<_>>()?;
        Ok(DistilBertModel { embeddings, transformer: Transformer { layer } })
    }

    pub fn layers_range(
        &self,
        mut x: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        from: usize,
        upto: usize,
    ) -> Tensor<3> {
        for layer in &self.transformer.layer[from..upto] {
            x = layer.forward(x, mask_pad);
        }
        x
    }
}

/// `vocab_projector`: its weight is the word embeddings (tied); its bias is its own.
#[derive(Module, Debug)]
pub struct VocabProjector {
    pub bias: Param<Tensor<1>>,
}

/// What `DistilBertForMaskedLM` holds besides `distilbert`.
#[derive(Module, Debug)]
pub struct DistilBertMaskedLmHead {
    pub vocab_transform: Linear,
    pub vocab_layer_norm: LayerNorm,
    pub vocab_projector: VocabProjector,
    #[module(skip)]
    pub activation: Activation,
}

impl DistilBertMaskedLmHead {
    pub fn load<S: WeightSource>(
        cfg: &DistilBertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        Ok(DistilBertMaskedLmHead {
            vocab_transform: linear(&mut w.pp("vocab_transform"), cfg.dim, cfg.dim)?,
            vocab_layer_norm: layer_norm(&mut w.pp("vocab_layer_norm"), cfg.dim, EPS, device)?,
            vocab_projector: VocabProjector {
                bias: bias(&mut w.pp("vocab_projector"), "bias", cfg.vocab_size)?,
            },
            activation: cfg.activation(),
        })
    }

    pub fn logits(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        let x = self.activation.forward(self.vocab_transform.forward(hidden));
        let x = normalize(&self.vocab_layer_norm, EPS, x);
        x.matmul(word_embeddings.transpose()) + self.vocab_projector.bias.val().unsqueeze::<2>()
    }
}
