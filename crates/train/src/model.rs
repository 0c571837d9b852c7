//! The two models thaw trains on an encoder of any family: sequence classification (a fresh
//! linear head on pooled hidden states) and masked-LM (the family's own head, or a fresh
//! one). Saved and exported under the family's own names (`roberta.embeddings...`,
//! `lm_head.bias`, `classifier.weight`), so transformers reads what thaw writes.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::kernels::dropout;
use crate::models::blocks::linear;
use crate::models::{Encoder, MaskedLmHead, ModelConfig};
use crate::weights::{NamedTensor, WeightSource, Weights, hf_tensors};

/// How a sequence becomes one vector for the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The hidden state of the first token (`[CLS]`, `<s>`).
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

/// A task head on the encoder: `dropout` and `classifier` (one linear layer), as
/// transformers' `*ForSequenceClassification` and `*ForTokenClassification` name them. On the
/// pooled sequence for classes and scores (one output: regression), on every token for tags.
#[derive(Module, Debug)]
pub struct Classifier {
    pub encoder: Encoder,
    pub dropout: Dropout,
    pub classifier: Linear,
    #[module(skip)]
    pub pooling: Pooling,
}

impl Classifier {
    /// A classifier on `encoder` whose head is always freshly initialised from `head_init`.
    pub fn new<S: WeightSource>(
        config: &ModelConfig,
        encoder: Encoder,
        num_labels: usize,
        pooling: Pooling,
        head_init: &mut S,
    ) -> Result<Self> {
        let width = encoder.hidden_size();
        Ok(Classifier {
            encoder,
            dropout: DropoutConfig::new(config.head_dropout()).init(),
            classifier: linear(&mut Weights::new(head_init).pp("classifier"), width, num_labels)?,
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
        let last = self.encoder.layers_range(hidden, mask_pad, from, self.encoder.num_layers());
        let pooled = pool(self.encoder.finish(last), mask_pad, self.pooling);
        self.classifier.forward(dropout(&self.dropout, pooled))
    }

    /// Per-token logits `[batch, seq, outputs]` (word tagging: the classifier on every token,
    /// as `*ForTokenClassification` does), from hidden states that entered layer `from`.
    pub fn token_logits_from(
        &self,
        hidden: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        from: usize,
    ) -> Tensor<3> {
        let last = self.encoder.layers_range(hidden, mask_pad, from, self.encoder.num_layers());
        self.classifier.forward(dropout(&self.dropout, self.encoder.finish(last)))
    }

    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        mask_pad: &Tensor<2, Bool>,
    ) -> Tensor<2> {
        let x = self.encoder.embed(input_ids, token_types, mask_pad);
        self.logits_from(x, mask_pad, 0)
    }

    /// [`Classifier::token_logits_from`] from the tokens.
    pub fn token_forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        mask_pad: &Tensor<2, Bool>,
    ) -> Tensor<3> {
        let x = self.encoder.embed(input_ids, token_types, mask_pad);
        self.token_logits_from(x, mask_pad, 0)
    }

    /// Every parameter under the names a checkpoint of the family's classifier would use
    /// (`<prefix>.embeddings...`, `classifier.weight`), for kept weights.
    pub fn named_tensors(&self, config: &ModelConfig) -> Vec<NamedTensor> {
        let mut tensors = prefixed(hf_tensors(&self.encoder), config.weight_prefix());
        tensors.extend(prefixed(hf_tensors(&self.classifier), "classifier"));
        tensors
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

/// A masked-LM model: the encoder and the family's head, as `*ForMaskedLM` holds them.
#[derive(Module, Debug)]
pub struct MaskedLm {
    pub encoder: Encoder,
    pub head: MaskedLmHead,
}

impl MaskedLm {
    /// A masked-LM head on `encoder`, its weights asked of `head` by their transformers names:
    /// a checkpoint's own trained head, or a fresh initialiser.
    pub fn new<S: WeightSource>(
        config: &ModelConfig,
        encoder: Encoder,
        head: &mut S,
        device: &Device,
    ) -> Result<Self> {
        let head = MaskedLmHead::load(config, &mut Weights::new(head), device)?;
        Ok(MaskedLm { encoder, head })
    }

    /// Vocabulary logits at the flat positions `positions` (indices into batch*seq).
    pub fn logits_at(
        &self,
        input_ids: Tensor<2, Int>,
        mask_pad: &Tensor<2, Bool>,
        positions: Tensor<1, Int>,
    ) -> Tensor<2> {
        let hidden = self.encoder.forward(input_ids, None, mask_pad);
        let [batch, seq, width] = hidden.dims();
        let picked = hidden.reshape([batch * seq, width]).select(0, positions);
        self.head.logits(picked, self.encoder.word_embeddings())
    }

    /// Every parameter under the names of the family's `*ForMaskedLM` checkpoint.
    pub fn named_tensors(&self, config: &ModelConfig) -> Vec<NamedTensor> {
        let mut tensors = prefixed(hf_tensors(&self.encoder), config.weight_prefix());
        tensors.extend(hf_tensors(&self.head));
        tensors
    }
}

/// `tensors` with `prefix.` before each name.
fn prefixed(tensors: Vec<NamedTensor>, prefix: &str) -> Vec<NamedTensor> {
    tensors.into_iter().map(|t| NamedTensor { name: format!("{prefix}.{}", t.name), ..t }).collect()
}
