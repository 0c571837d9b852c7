//! A Hugging Face compatible BERT encoder on burn's own modules, plus the two heads
//! thaw trains: sequence classification and masked-LM.
//!
//! Field layout follows the checkpoint (embeddings, then `layers[i]`), and every
//! parameter is pulled by its Hugging Face name from a [`WeightSource`], so pretrained
//! and scratch models are built by the same code.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::BertConfig;
use crate::error::Result;
use crate::kernels::{dropout, gelu};
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
        dropout(&self.dropout, self.layer_norm.forward(x))
    }
}

/// BERT's self-attention (`attention.self` and `attention.output.dense` in the checkpoint).
#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    /// On the attention probabilities (`attention_probs_dropout_prob`).
    pub dropout: Dropout,
    #[module(skip)]
    pub heads: usize,
}

impl SelfAttention {
    pub fn forward(&self, x: Tensor<3>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        let [batch, seq, width] = x.dims();
        let head_width = width / self.heads;
        let split = |t: Tensor<3>| t.reshape([batch, seq, self.heads, head_width]).swap_dims(1, 2);
        // Scaling the queries costs a [seq, head] pass instead of a [seq, seq] one.
        let query = split(self.query.forward(x.clone())).div_scalar((head_width as f32).sqrt());
        let key = split(self.key.forward(x.clone()));
        let value = split(self.value.forward(x));
        // Padding keys get -10000 before the softmax, as BERT's extended attention mask does.
        let scores = query.matmul(key.swap_dims(2, 3)).mask_fill(mask_pad.clone().reshape([batch, 1, 1, seq]), -1.0e4);
        let probs = dropout(&self.dropout, softmax(scores, 3));
        let context = probs.matmul(value).swap_dims(1, 2).reshape([batch, seq, width]);
        self.output.forward(context)
    }
}

/// BERT's feed-forward block (`intermediate.dense`, gelu, `output.dense`).
#[derive(Module, Debug)]
pub struct FeedForward {
    pub linear_inner: Linear,
    pub linear_outer: Linear,
}

impl FeedForward {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.linear_outer.forward(gelu(self.linear_inner.forward(x)))
    }
}

/// One post-LayerNorm BERT encoder layer, as Hugging Face's `BertLayer` computes it:
/// dropout on the attention probabilities and on each sublayer's output before its
/// residual sum, none after the activation.
#[derive(Module, Debug)]
pub struct BertLayer {
    pub mha: SelfAttention,
    pub pwff: FeedForward,
    pub norm_1: LayerNorm,
    pub norm_2: LayerNorm,
    /// On each sublayer's output (`hidden_dropout_prob`).
    pub dropout: Dropout,
}

impl BertLayer {
    pub fn forward(&self, x: Tensor<3>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        let attended = self.mha.forward(x.clone(), mask_pad);
        let x = self.norm_1.forward(x + dropout(&self.dropout, attended));
        let fed = self.pwff.forward(x.clone());
        self.norm_2.forward(x + dropout(&self.dropout, fed))
    }
}

/// Embeddings and the stack of encoder layers: the part freezing acts on.
#[derive(Module, Debug)]
pub struct Encoder {
    pub embeddings: Embeddings,
    pub layers: Vec<BertLayer>,
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
            x = layer.forward(x, mask_pad);
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
        self.head.forward(dropout(&self.dropout, pooled))
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
    let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
    for i in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        layers.push(BertLayer {
            mha: SelfAttention {
                query: linear(src, &format!("{p}.attention.self.query"), h, h)?,
                key: linear(src, &format!("{p}.attention.self.key"), h, h)?,
                value: linear(src, &format!("{p}.attention.self.value"), h, h)?,
                output: linear(src, &format!("{p}.attention.output.dense"), h, h)?,
                dropout: DropoutConfig::new(cfg.attention_probs_dropout_prob).init(),
                heads: cfg.num_attention_heads,
            },
            norm_1: layer_norm(src, &format!("{p}.attention.output.LayerNorm"), h, eps, device)?,
            pwff: FeedForward {
                linear_inner: linear(src, &format!("{p}.intermediate.dense"), h, cfg.intermediate_size)?,
                linear_outer: linear(src, &format!("{p}.output.dense"), cfg.intermediate_size, h)?,
            },
            norm_2: layer_norm(src, &format!("{p}.output.LayerNorm"), h, eps, device)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
        });
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
