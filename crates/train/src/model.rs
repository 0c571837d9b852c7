//! A Hugging Face compatible BERT on burn's own modules, plus the two heads thaw trains:
//! sequence classification and masked-LM.
//!
//! Structs and fields are named after the modules of Hugging Face's `modeling_bert.py`, so
//! a parameter's module path is its tensor name in `model.safetensors`
//! (`encoder.layer.3.attention.output.LayerNorm.weight` is
//! `encoder.layer[3].attention.output.layer_norm.gamma`). Three spellings differ, fixed by
//! Rust and burn, and [`crate::weights::hf_name`] maps them: `self_` for the keyword `self`,
//! `layer_norm` for `LayerNorm`, and burn's LayerNorm `gamma`/`beta` for `weight`/`bias`.
//! Each struct loads its own subtree from a [`Weights`] view (candle's `vb.pp`), so
//! pretrained, scratch and intermediate-MLM models are built by the same code.

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
};
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::BertConfig;
use crate::error::Result;
use crate::kernels::{dropout, gelu, layer_norm as normalize, masked_softmax};
use crate::weights::{Fill, WeightSource, Weights};

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

// ---- building blocks ---------------------------------------------------------------

fn linear<S: WeightSource>(w: &mut Weights<S>, d_in: usize, d_out: usize) -> Result<Linear> {
    // Checkpoints store [out, in] (PyTorch); burn's Linear multiplies by [in, out].
    let weight = w.tensor("weight", [d_out, d_in], Fill::Normal)?.transpose();
    let bias = w.tensor("bias", [d_out], Fill::Zeros)?;
    Ok(Linear { weight: Param::from_tensor(weight), bias: Some(Param::from_tensor(bias)) })
}

fn layer_norm<S: WeightSource>(
    w: &mut Weights<S>,
    width: usize,
    eps: f64,
    device: &Device,
) -> Result<LayerNorm> {
    let mut norm = LayerNormConfig::new(width).with_epsilon(eps).init(device);
    norm.gamma = Param::from_tensor(w.tensor("weight", [width], Fill::Ones)?);
    norm.beta = Some(Param::from_tensor(w.tensor("bias", [width], Fill::Zeros)?));
    Ok(norm)
}

fn embedding<S: WeightSource>(
    w: &mut Weights<S>,
    rows: usize,
    width: usize,
    device: &Device,
) -> Result<Embedding> {
    let mut emb = EmbeddingConfig::new(rows, width).init(device);
    emb.weight = Param::from_tensor(w.tensor("weight", [rows, width], Fill::Normal)?);
    Ok(emb)
}

// ---- BertModel: embeddings and encoder -------------------------------------------------

/// `embeddings`: word + position + token type, LayerNorm, dropout.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    /// `LayerNorm`
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    /// `layer_norm_eps` (burn's LayerNorm keeps its own private).
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl BertEmbeddings {
    pub fn load<S: WeightSource>(
        cfg: &BertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(BertEmbeddings {
            word_embeddings: embedding(&mut w.pp("word_embeddings"), cfg.vocab_size, h, device)?,
            position_embeddings: embedding(
                &mut w.pp("position_embeddings"),
                cfg.max_position_embeddings,
                h,
                device,
            )?,
            token_type_embeddings: embedding(
                &mut w.pp("token_type_embeddings"),
                cfg.type_vocab_size,
                h,
                device,
            )?,
            layer_norm: layer_norm(&mut w.pp("LayerNorm"), h, cfg.layer_norm_eps, device)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            layer_norm_eps: cfg.layer_norm_eps,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.word_embeddings.weight.dims()[1]
    }

    pub fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = input_ids.dims();
        let hidden = self.hidden_size();
        // thaw feeds single sentences: every token has type 0; positions start at 0.
        let position =
            self.position_embeddings.weight.val().slice(0..seq).reshape([1, seq, hidden]);
        let token_type =
            self.token_type_embeddings.weight.val().slice(0..1).reshape([1, 1, hidden]);
        let x = self.word_embeddings.forward(input_ids) + position + token_type;
        dropout(&self.dropout, normalize(&self.layer_norm, self.layer_norm_eps, x))
    }
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
        let [batch, seq, width] = x.dims();
        let head_width = width / self.heads;
        let split = |t: Tensor<3>| t.reshape([batch, seq, self.heads, head_width]).swap_dims(1, 2);
        // Scaling the queries costs a [seq, head] pass instead of a [seq, seq] one.
        let query = split(self.query.forward(x.clone())).div_scalar((head_width as f32).sqrt());
        let key = split(self.key.forward(x.clone()));
        let value = split(self.value.forward(x));
        // Padding keys get -10000 before the softmax, as BERT's extended attention mask does.
        let scores = query.matmul(key.swap_dims(2, 3));
        let probs = dropout(&self.dropout, masked_softmax(scores, mask_pad));
        probs.matmul(value).swap_dims(1, 2).reshape([batch, seq, width])
    }
}

/// `attention.output` and `output`: a projection, dropout, then LayerNorm of the residual sum.
#[derive(Module, Debug)]
pub struct BertSublayerOutput {
    pub dense: Linear,
    /// `LayerNorm`
    pub layer_norm: LayerNorm,
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
            layer_norm: layer_norm(
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
        normalize(&self.layer_norm, self.layer_norm_eps, summed)
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
}

impl BertIntermediate {
    pub fn load<S: WeightSource>(cfg: &BertConfig, w: &mut Weights<S>) -> Result<Self> {
        Ok(BertIntermediate {
            dense: linear(&mut w.pp("dense"), cfg.hidden_size, cfg.intermediate_size)?,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        gelu(self.dense.forward(x))
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
}

/// Embeddings and the encoder (Hugging Face's `BertModel` without its pooler, which thaw's
/// heads do not use): the part freezing acts on.
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
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        Ok(BertModel {
            embeddings: BertEmbeddings::load(cfg, &mut w.pp("embeddings"), device)?,
            encoder: BertEncoder::load(cfg, &mut w.pp("encoder"), device)?,
        })
    }

    pub fn num_layers(&self) -> usize {
        self.encoder.layer.len()
    }

    /// Embeddings, then layers `[0, upto)`.
    pub fn prefix(
        &self,
        input_ids: Tensor<2, Int>,
        mask_pad: &Tensor<2, Bool>,
        upto: usize,
    ) -> Tensor<3> {
        let x = self.embeddings.forward(input_ids);
        self.layers_range(x, mask_pad, 0, upto)
    }

    /// Layers `[from, upto)` applied to hidden states that entered layer `from`.
    pub fn layers_range(
        &self,
        mut x: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        from: usize,
        upto: usize,
    ) -> Tensor<3> {
        for layer in &self.encoder.layer[from..upto] {
            x = layer.forward(x, mask_pad);
        }
        x
    }

    /// The last hidden state.
    pub fn forward(&self, input_ids: Tensor<2, Int>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        self.prefix(input_ids, mask_pad, self.num_layers())
    }
}

// ---- heads ------------------------------------------------------------------------------

/// Sequence classification: `bert`, pooling, `dropout`, `classifier` (one linear layer),
/// as Hugging Face's `BertForSequenceClassification` names them.
#[derive(Module, Debug)]
pub struct Classifier {
    pub bert: BertModel,
    pub dropout: Dropout,
    pub classifier: Linear,
    #[module(skip)]
    pub pooling: Pooling,
}

impl Classifier {
    /// A classifier on `bert` whose head is always freshly initialised (BERT style) from `head_init`.
    pub fn new<S: WeightSource>(
        cfg: &BertConfig,
        bert: BertModel,
        num_labels: usize,
        pooling: Pooling,
        head_init: &mut S,
    ) -> Result<Self> {
        Ok(Classifier {
            bert,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            classifier: linear(
                &mut Weights::new(head_init).pp("classifier"),
                cfg.hidden_size,
                num_labels,
            )?,
            pooling,
        })
    }

    /// Logits from hidden states that entered layer `from` (0 = from the embeddings' output).
    pub fn logits_from(
        &self,
        hidden: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        from: usize,
    ) -> Tensor<2> {
        let last = self.bert.layers_range(hidden, mask_pad, from, self.bert.num_layers());
        let pooled = pool(last, mask_pad, self.pooling);
        self.classifier.forward(dropout(&self.dropout, pooled))
    }

    pub fn forward(&self, input_ids: Tensor<2, Int>, mask_pad: &Tensor<2, Bool>) -> Tensor<2> {
        let x = self.bert.embeddings.forward(input_ids);
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

/// `cls.predictions.transform`: dense, gelu, LayerNorm.
#[derive(Module, Debug)]
pub struct BertPredictionHeadTransform {
    pub dense: Linear,
    /// `LayerNorm`
    pub layer_norm: LayerNorm,
    #[module(skip)]
    pub layer_norm_eps: f64,
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

/// The standard BERT masked-LM model (Hugging Face's `BertForMaskedLM`: `bert`, `cls`).
#[derive(Module, Debug)]
pub struct MaskedLm {
    pub bert: BertModel,
    pub cls: BertOnlyMlmHead,
}

impl MaskedLm {
    /// An MLM head on `bert`, its weights asked of `head` by their Hugging Face names
    /// (`cls.predictions.*`): a checkpoint's own trained head, or a fresh initialiser, so the
    /// head starts as BERT initialises it.
    pub fn new<S: WeightSource>(
        cfg: &BertConfig,
        bert: BertModel,
        head: &mut S,
        device: &Device,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let mut root = Weights::new(head);
        let mut w = root.pp("cls.predictions");
        let transform = {
            let mut t = w.pp("transform");
            BertPredictionHeadTransform {
                dense: linear(&mut t.pp("dense"), h, h)?,
                layer_norm: layer_norm(&mut t.pp("LayerNorm"), h, cfg.layer_norm_eps, device)?,
                layer_norm_eps: cfg.layer_norm_eps,
            }
        };
        let bias = Param::from_tensor(w.tensor("bias", [cfg.vocab_size], Fill::Zeros)?);
        Ok(MaskedLm {
            bert,
            cls: BertOnlyMlmHead { predictions: BertLmPredictionHead { transform, bias } },
        })
    }

    /// Vocabulary logits at the flat positions `positions` (indices into batch*seq).
    pub fn logits_at(
        &self,
        input_ids: Tensor<2, Int>,
        mask_pad: &Tensor<2, Bool>,
        positions: Tensor<1, Int>,
    ) -> Tensor<2> {
        let hidden = self.bert.forward(input_ids, mask_pad);
        let [batch, seq, width] = hidden.dims();
        let picked = hidden.reshape([batch * seq, width]).select(0, positions);
        let transform = &self.cls.predictions.transform;
        let h = normalize(
            &transform.layer_norm,
            transform.layer_norm_eps,
            gelu(transform.dense.forward(picked)),
        );
        let vocab = self.bert.embeddings.word_embeddings.weight.val();
        h.matmul(vocab.transpose()) + self.cls.predictions.bias.val().unsqueeze::<2>()
    }
}
