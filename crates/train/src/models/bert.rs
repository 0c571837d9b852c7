//! BERT (`modeling_bert.py`): the encoder MiniLM, BERT-base and thaw's own scratch models are,
//! and whose layers RoBERTa, XLM-R and ELECTRA reuse unchanged.
//!
//! Structs and fields are named after the modules of `modeling_bert.py`, so a parameter's
//! module path is its tensor name in `model.safetensors`
//! (`encoder.layer.3.attention.output.LayerNorm.weight` is
//! `encoder.layer[3].attention.output.LayerNorm.gamma`). Two spellings differ, fixed by Rust
//! and burn, and [`crate::weights::hf_name`] maps them: `self_` for the keyword `self`, and
//! burn's LayerNorm `gamma`/`beta` for `weight`/`bias`.
#![allow(non_snake_case)]

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, Linear};
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::attention::attend;
use super::blocks::{bias, embedding, layer_norm, linear};
use super::config_file::{ConfigFile, Unsupported};
use crate::error::Result;
use crate::kernels::{dropout, layer_norm as normalize};
use crate::weights::{WeightSource, Weights};

/// The keys of a BERT `config.json` that change the architecture (RoBERTa's, XLM-R's and
/// ELECTRA's are the same keys).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// ELECTRA only: the width of the embeddings, projected to `hidden_size` when smaller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_size: Option<usize>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}

impl BertConfig {
    /// Read from `file`, every value thaw does not implement refused by name.
    pub fn from_config(file: &ConfigFile) -> Result<Self> {
        let config: BertConfig = file.parse()?;
        let unsupported = Unsupported::new(file);
        if Activation::parse(&config.hidden_act).is_none() {
            return Err(unsupported.value(
                "hidden_act",
                &config.hidden_act,
                super::activation::SUPPORTED,
            ));
        }
        if let Some(kind) = config.position_embedding_type.as_deref().filter(|k| *k != "absolute") {
            return Err(unsupported.value("position_embedding_type", kind, "absolute"));
        }
        unsupported.check_heads(config.hidden_size, config.num_attention_heads)?;
        Ok(config)
    }

    /// Read from the `config.json` at `path` (a BERT checkpoint's).
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_config(&ConfigFile::read(path)?)
    }

    pub fn activation(&self) -> Activation {
        Activation::parse(&self.hidden_act).expect("checked when read")
    }

    /// The width of the embedding tables (ELECTRA's may be narrower than the layers).
    pub fn embedding_width(&self) -> usize {
        self.embedding_size.unwrap_or(self.hidden_size)
    }
}

/// Where position ids start: BERT counts from 0; RoBERTa and XLM-R from `pad_token_id + 1`,
/// padding at `pad_token_id` (`create_position_ids_from_input_ids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    FromZero,
    AfterPadding { pad: u32 },
}

// ---- embeddings and encoder ---------------------------------------------------------------

/// `embeddings`: word + position + token type, LayerNorm, dropout.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
    /// `layer_norm_eps` (burn's LayerNorm keeps its own private).
    #[module(skip)]
    pub layer_norm_eps: f64,
    #[module(skip)]
    pub positions: Positions,
}

impl BertEmbeddings {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        positions: Positions,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let width = cfg.embedding_width();
        Ok(BertEmbeddings {
            word_embeddings: embedding(
                &mut w.pp("word_embeddings"),
                cfg.vocab_size,
                width,
                device,
            )?,
            position_embeddings: embedding(
                &mut w.pp("position_embeddings"),
                cfg.max_position_embeddings,
                width,
                device,
            )?,
            token_type_embeddings: embedding(
                &mut w.pp("token_type_embeddings"),
                cfg.type_vocab_size,
                width,
                device,
            )?,
            LayerNorm: layer_norm(&mut w.pp("LayerNorm"), width, cfg.layer_norm_eps, device)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            layer_norm_eps: cfg.layer_norm_eps,
            positions,
        })
    }

    pub fn width(&self) -> usize {
        self.word_embeddings.weight.dims()[1]
    }

    /// Embeddings of `input_ids`, with `token_types` when given (every token type 0 when not).
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let width = self.width();
        let position = match self.positions {
            Positions::FromZero => {
                self.position_embeddings.weight.val().slice(0..seq).reshape([1, seq, width])
            }
            Positions::AfterPadding { pad } => {
                let ids = padding_aware_positions(&input_ids, pad);
                self.position_embeddings.forward(ids)
            }
        };
        let token_type = match token_types {
            None => self.token_type_embeddings.weight.val().slice(0..1).reshape([1, 1, width]),
            Some(types) => self.token_type_embeddings.forward(types),
        };
        let x = self.word_embeddings.forward(input_ids) + position + token_type;
        let x = dropout(&self.dropout, normalize(&self.LayerNorm, self.layer_norm_eps, x));
        debug_assert_eq!(x.dims()[0], batch);
        x
    }
}

/// RoBERTa's position ids: `pad + 1 + i` for the i-th real token, `pad` for padding.
fn padding_aware_positions(input_ids: &Tensor<2, Int>, pad: u32) -> Tensor<2, Int> {
    let real = input_ids.clone().not_equal_elem(pad as i64).int();
    real.clone().cumsum(1) * real + pad as i64
}

/// `attention.self`: the query, key and value projections and the attention itself.
#[derive(Module, Debug)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    /// On the attention probabilities (`attention_probs_dropout_prob`).
    pub dropout: Dropout,
    #[module(skip)]
    pub heads: usize,
}

impl BertSelfAttention {
    pub fn load<S: WeightSource>(cfg: &BertConfig, w: &mut Weights<S>) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(BertSelfAttention {
            query: linear(&mut w.pp("query"), h, h)?,
            key: linear(&mut w.pp("key"), h, h)?,
            value: linear(&mut w.pp("value"), h, h)?,
            dropout: DropoutConfig::new(cfg.attention_probs_dropout_prob).init(),
            heads: cfg.num_attention_heads,
        })
    }

    /// The attention context, before the output projection.
    pub fn forward(&self, x: Tensor<3>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        let query = self.query.forward(x.clone());
        let key = self.key.forward(x.clone());
        let value = self.value.forward(x);
        attend(query, key, value, self.heads, mask_pad, &self.dropout)
    }
}

/// `attention.output` and `output`: a projection, dropout, then LayerNorm of the residual sum.
#[derive(Module, Debug)]
pub struct BertSublayerOutput {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    /// On the projection's output (`hidden_dropout_prob`).
    pub dropout: Dropout,
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl BertSublayerOutput {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        d_in: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(BertSublayerOutput {
            dense: linear(&mut w.pp("dense"), d_in, cfg.hidden_size)?,
            LayerNorm: layer_norm(
                &mut w.pp("LayerNorm"),
                cfg.hidden_size,
                cfg.layer_norm_eps,
                device,
            )?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            layer_norm_eps: cfg.layer_norm_eps,
        })
    }

    pub fn forward(&self, sublayer: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let summed = residual + dropout(&self.dropout, self.dense.forward(sublayer));
        normalize(&self.LayerNorm, self.layer_norm_eps, summed)
    }
}

/// `attention`: self-attention and its output block.
#[derive(Module, Debug)]
pub struct BertAttention {
    /// `self`
    pub self_: BertSelfAttention,
    pub output: BertSublayerOutput,
}

impl BertAttention {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        Ok(BertAttention {
            self_: BertSelfAttention::load(cfg, &mut w.pp("self"))?,
            output: BertSublayerOutput::load(cfg, &mut w.pp("output"), cfg.hidden_size, device)?,
        })
    }

    pub fn forward(&self, x: Tensor<3>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        let context = self.self_.forward(x.clone(), mask_pad);
        self.output.forward(context, x)
    }
}

/// `intermediate`: the feed-forward block's expansion and its activation.
#[derive(Module, Debug)]
pub struct BertIntermediate {
    pub dense: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl BertIntermediate {
    pub fn load<S: WeightSource>(cfg: &BertConfig, w: &mut Weights<S>) -> Result<Self> {
        Ok(BertIntermediate {
            dense: linear(&mut w.pp("dense"), cfg.hidden_size, cfg.intermediate_size)?,
            activation: cfg.activation(),
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.activation.forward(self.dense.forward(x))
    }
}

/// `encoder.layer.N`: one post-LayerNorm layer as Hugging Face's `BertLayer` computes it:
/// dropout on the attention probabilities and on each sublayer's output before its
/// residual sum, none after the activation.
#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: BertIntermediate,
    pub output: BertSublayerOutput,
}

impl BertLayer {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        Ok(BertLayer {
            attention: BertAttention::load(cfg, &mut w.pp("attention"), device)?,
            intermediate: BertIntermediate::load(cfg, &mut w.pp("intermediate"))?,
            output: BertSublayerOutput::load(
                cfg,
                &mut w.pp("output"),
                cfg.intermediate_size,
                device,
            )?,
        })
    }

    pub fn forward(&self, x: Tensor<3>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        let attended = self.attention.forward(x, mask_pad);
        let expanded = self.intermediate.forward(attended.clone());
        self.output.forward(expanded, attended)
    }
}

/// `encoder`: the stack of layers.
#[derive(Module, Debug)]
pub struct BertEncoder {
    pub layer: Vec<BertLayer>,
}

impl BertEncoder {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let mut w = w.pp("layer");
        let layer = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(cfg, &mut w.pp(i), device))
            .collect::<Result<_>>()?;
        Ok(BertEncoder { layer })
    }

    /// Layers `[from, upto)` applied to hidden states that entered layer `from`.
    pub fn layers_range(
        &self,
        mut x: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        from: usize,
        upto: usize,
    ) -> Tensor<3> {
        for layer in &self.layer[from..upto] {
            x = layer.forward(x, mask_pad);
        }
        x
    }
}

/// Embeddings and the encoder (Hugging Face's `BertModel` without its pooler, which thaw's
/// heads do not use).
#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub encoder: BertEncoder,
}

impl BertModel {
    /// Builds the model from `w`; tensors are asked for in the checkpoint's order, so a
    /// seeded random source draws the same scratch weights every time.
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        positions: Positions,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        Ok(BertModel {
            embeddings: BertEmbeddings::load(cfg, positions, &mut w.pp("embeddings"), device)?,
            encoder: BertEncoder::load(cfg, &mut w.pp("encoder"), device)?,
        })
    }
}

// ---- the masked-LM head -----------------------------------------------------------------

/// `cls.predictions.transform`: dense, activation, LayerNorm.
#[derive(Module, Debug)]
pub struct BertPredictionHeadTransform {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    #[module(skip)]
    pub layer_norm_eps: f64,
    #[module(skip)]
    pub activation: Activation,
}

impl BertPredictionHeadTransform {
    /// `width` is the hidden size; `to` the width the decoder reads (the embeddings').
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        to: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(BertPredictionHeadTransform {
            dense: linear(&mut w.pp("dense"), cfg.hidden_size, to)?,
            LayerNorm: layer_norm(&mut w.pp("LayerNorm"), to, cfg.layer_norm_eps, device)?,
            layer_norm_eps: cfg.layer_norm_eps,
            activation: cfg.activation(),
        })
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.activation.forward(self.dense.forward(x));
        normalize(&self.LayerNorm, self.layer_norm_eps, x)
    }
}

/// `cls.predictions`: the transform, then a decoder whose weight is the word-embedding
/// matrix (tied) plus a bias of its own.
#[derive(Module, Debug)]
pub struct BertLmPredictionHead {
    pub transform: BertPredictionHeadTransform,
    pub bias: Param<Tensor<1>>,
}

/// `cls`: BERT's masked-LM head on its own (Hugging Face's `BertOnlyMLMHead`).
#[derive(Module, Debug)]
pub struct BertOnlyMlmHead {
    pub predictions: BertLmPredictionHead,
}

/// What `BertForMaskedLM` holds besides `bert`: `cls`.
#[derive(Module, Debug)]
pub struct BertMaskedLmHead {
    pub cls: BertOnlyMlmHead,
}

impl BertMaskedLmHead {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let mut p = w.pp("cls.predictions");
        let transform = BertPredictionHeadTransform::load(
            cfg,
            &mut p.pp("transform"),
            cfg.hidden_size,
            device,
        )?;
        let bias = bias(&mut p, "bias", cfg.vocab_size)?;
        Ok(BertMaskedLmHead {
            cls: BertOnlyMlmHead { predictions: BertLmPredictionHead { transform, bias } },
        })
    }

    /// Vocabulary logits of hidden states `[n, hidden]`, the decoder tied to `word_embeddings`.
    pub fn logits(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        let p = &self.cls.predictions;
        p.transform.forward(hidden).matmul(word_embeddings.transpose())
            + p.bias.val().unsqueeze::<2>()
    }
}
