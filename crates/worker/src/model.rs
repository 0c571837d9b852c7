//! A Hugging Face compatible BERT encoder on burn's own modules, plus the two heads
//! thaw trains: sequence classification and masked-LM.
//!
//! Field layout follows the checkpoint (embeddings, then `layers[i]`), and every
//! parameter is pulled by its Hugging Face name from a [`WeightSource`], so pretrained
//! and scratch models are built by the same code.

use burn::module::{Module, Param};
use burn::nn::transformer::{TransformerEncoderConfig, TransformerEncoderLayer};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::gelu;
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::BertConfig;
use crate::error::Result;
use crate::weights::{Init, WeightSource};

/// How a sequence becomes one vector for the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The hidden state of `[CLS]` (BERT's convention).
    Cls,
    /// The mean over non-padding tokens (what sentence-transformers such as MiniLM were trained for).
    #[default]
    Mean,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
        }
    }
}

#[derive(Module, Debug)]
pub struct Embeddings {
    pub word: Embedding,
    pub position: Embedding,
    pub token_type: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl Embeddings {
    pub fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = input_ids.dims();
        let hidden = self.word.weight.dims()[1];
        // thaw feeds single sentences: every token has type 0; positions start at 0.
        let position = self.position.weight.val().slice(0..seq).reshape([1, seq, hidden]);
        let token_type = self.token_type.weight.val().slice(0..1).reshape([1, 1, hidden]);
        let x = self.word.forward(input_ids) + position + token_type;
        self.dropout.forward(self.layer_norm.forward(x))
    }
}

/// Embeddings and the stack of encoder layers: the part freezing acts on.
#[derive(Module, Debug)]
pub struct Encoder {
    pub embeddings: Embeddings,
    pub layers: Vec<TransformerEncoderLayer>,
}

impl Encoder {
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Embeddings, then layers `[0, upto)`.
    pub fn prefix(&self, input_ids: Tensor<2, Int>, mask_pad: &Tensor<2, Bool>, upto: usize) -> Tensor<3> {
        let x = self.embeddings.forward(input_ids);
        self.layers_range(x, mask_pad, 0, upto)
    }

    /// Layers `[from, upto)` applied to hidden states that entered layer `from`.
    pub fn layers_range(&self, mut x: Tensor<3>, mask_pad: &Tensor<2, Bool>, from: usize, upto: usize) -> Tensor<3> {
        for layer in &self.layers[from..upto] {
            x = layer.forward(x, Some(mask_pad.clone()), None);
        }
        x
    }

    /// The last hidden state.
    pub fn forward(&self, input_ids: Tensor<2, Int>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        self.prefix(input_ids, mask_pad, self.layers.len())
    }
}

/// Sequence classification: encoder, pooling, dropout, one linear layer.
#[derive(Module, Debug)]
pub struct Classifier {
    pub encoder: Encoder,
    pub dropout: Dropout,
    pub head: Linear,
    #[module(skip)]
    pub pooling: Pooling,
}

impl Classifier {
    /// Logits from hidden states that entered layer `from` (0 = from the embeddings' output).
    pub fn logits_from(&self, hidden: Tensor<3>, mask_pad: &Tensor<2, Bool>, from: usize) -> Tensor<2> {
        let last = self.encoder.layers_range(hidden, mask_pad, from, self.encoder.num_layers());
        let pooled = pool(last, mask_pad, self.pooling);
        self.head.forward(self.dropout.forward(pooled))
    }

    pub fn forward(&self, input_ids: Tensor<2, Int>, mask_pad: &Tensor<2, Bool>) -> Tensor<2> {
        let x = self.encoder.embeddings.forward(input_ids);
        self.logits_from(x, mask_pad, 0)
    }
}

pub fn pool(hidden: Tensor<3>, mask_pad: &Tensor<2, Bool>, pooling: Pooling) -> Tensor<2> {
    let [batch, seq, width] = hidden.dims();
    match pooling {
        Pooling::Cls => hidden.slice([0..batch, 0..1]).reshape([batch, width]),
        Pooling::Mean => {
            let keep = mask_pad.clone().bool_not().float().reshape([batch, seq, 1]);
            let count = keep.clone().sum_dim(1).reshape([batch, 1]).clamp_min(1.0);
            (hidden * keep).sum_dim(1).reshape([batch, width]) / count
        }
    }
}

/// The standard BERT masked-LM head: dense, gelu, LayerNorm, then a decoder whose
/// weight is the word-embedding matrix (tied) plus a bias of its own.
#[derive(Module, Debug)]
pub struct MaskedLm {
    pub encoder: Encoder,
    pub transform: Linear,
    pub transform_norm: LayerNorm,
    pub decoder_bias: Param<Tensor<1>>,
}

impl MaskedLm {
    /// Vocabulary logits at the flat positions `positions` (indices into batch*seq).
    pub fn logits_at(&self, input_ids: Tensor<2, Int>, mask_pad: &Tensor<2, Bool>, positions: Tensor<1, Int>) -> Tensor<2> {
        let hidden = self.encoder.forward(input_ids, mask_pad);
        let [batch, seq, width] = hidden.dims();
        let picked = hidden.reshape([batch * seq, width]).select(0, positions);
        let h = self.transform_norm.forward(gelu(self.transform.forward(picked)));
        let vocab = self.encoder.embeddings.word.weight.val();
        h.matmul(vocab.transpose()) + self.decoder_bias.val().unsqueeze::<2>()
    }
}

// ---- construction -------------------------------------------------------------------

fn linear(src: &mut impl WeightSource, name: &str, d_in: usize, d_out: usize) -> Result<Linear> {
    // Checkpoints store [out, in] (PyTorch); burn's Linear multiplies by [in, out].
    let weight = src.tensor(&format!("{name}.weight"), [d_out, d_in], Init::Normal)?.transpose();
    let bias = src.tensor(&format!("{name}.bias"), [d_out], Init::Zeros)?;
    Ok(Linear { weight: Param::from_tensor(weight), bias: Some(Param::from_tensor(bias)) })
}

fn layer_norm(src: &mut impl WeightSource, name: &str, width: usize, eps: f64, device: &Device) -> Result<LayerNorm> {
    let mut norm = LayerNormConfig::new(width).with_epsilon(eps).init(device);
    norm.gamma = Param::from_tensor(src.tensor(&format!("{name}.weight"), [width], Init::Ones)?);
    norm.beta = Some(Param::from_tensor(src.tensor(&format!("{name}.bias"), [width], Init::Zeros)?));
    Ok(norm)
}

fn embedding(src: &mut impl WeightSource, name: &str, rows: usize, width: usize, device: &Device) -> Result<Embedding> {
    let mut emb = EmbeddingConfig::new(rows, width).init(device);
    emb.weight = Param::from_tensor(src.tensor(&format!("{name}.weight"), [rows, width], Init::Normal)?);
    Ok(emb)
}

pub fn build_encoder(cfg: &BertConfig, src: &mut impl WeightSource, device: &Device) -> Result<Encoder> {
    let h = cfg.hidden_size;
    let eps = cfg.layer_norm_eps;
    let embeddings = Embeddings {
        word: embedding(src, "embeddings.word_embeddings", cfg.vocab_size, h, device)?,
        position: embedding(src, "embeddings.position_embeddings", cfg.max_position_embeddings, h, device)?,
        token_type: embedding(src, "embeddings.token_type_embeddings", cfg.type_vocab_size, h, device)?,
        layer_norm: layer_norm(src, "embeddings.LayerNorm", h, eps, device)?,
        dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
    };
    // burn's post-LN TransformerEncoderLayer is BERT's layer; only the weights are replaced.
    let layer_config = TransformerEncoderConfig::new(h, cfg.intermediate_size, cfg.num_attention_heads, 1)
        .with_norm_first(false)
        .with_dropout(cfg.hidden_dropout_prob)
        .with_layer_norm_eps(eps);
    let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
    for i in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        let mut layer = TransformerEncoderLayer::new(&layer_config, device);
        layer.mha.query = linear(src, &format!("{p}.attention.self.query"), h, h)?;
        layer.mha.key = linear(src, &format!("{p}.attention.self.key"), h, h)?;
        layer.mha.value = linear(src, &format!("{p}.attention.self.value"), h, h)?;
        layer.mha.output = linear(src, &format!("{p}.attention.output.dense"), h, h)?;
        layer.mha.dropout = DropoutConfig::new(cfg.attention_probs_dropout_prob).init();
        layer.norm_1 = layer_norm(src, &format!("{p}.attention.output.LayerNorm"), h, eps, device)?;
        layer.pwff.linear_inner = linear(src, &format!("{p}.intermediate.dense"), h, cfg.intermediate_size)?;
        layer.pwff.linear_outer = linear(src, &format!("{p}.output.dense"), cfg.intermediate_size, h)?;
        layer.norm_2 = layer_norm(src, &format!("{p}.output.LayerNorm"), h, eps, device)?;
        layers.push(layer);
    }
    Ok(Encoder { embeddings, layers })
}

/// A classifier head, always freshly initialised (BERT style) from `head_init`.
pub fn build_classifier(
    cfg: &BertConfig,
    encoder: Encoder,
    num_labels: usize,
    pooling: Pooling,
    head_init: &mut impl WeightSource,
) -> Result<Classifier> {
    Ok(Classifier {
        encoder,
        dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
        head: linear(head_init, "classifier", cfg.hidden_size, num_labels)?,
        pooling,
    })
}

/// An MLM head on `encoder`, its weights asked of `head_init` by their Hugging Face names
/// (`cls.predictions.*`). The MLM stage passes a fresh initialiser, so the head starts as
/// BERT initialises it; loading a checkpoint's own head (BERT-base has one) is not wired up.
pub fn build_masked_lm(cfg: &BertConfig, encoder: Encoder, head_init: &mut impl WeightSource, device: &Device) -> Result<MaskedLm> {
    let h = cfg.hidden_size;
    Ok(MaskedLm {
        encoder,
        transform: linear(head_init, "cls.predictions.transform.dense", h, h)?,
        transform_norm: layer_norm(head_init, "cls.predictions.transform.LayerNorm", h, cfg.layer_norm_eps, device)?,
        decoder_bias: Param::from_tensor(head_init.tensor("cls.predictions.bias", [cfg.vocab_size], Init::Zeros)?),
    })
}
