//! DeBERTa-v2 and -v3 (`modeling_deberta_v2.py`): disentangled attention, where each score
//! adds content-to-position (c2p) and position-to-content (p2c) terms read from a table of
//! relative-position embeddings (`encoder.rel_embeddings`, normalised by `encoder.LayerNorm`),
//! with positions put in log buckets (`position_buckets`); absolute positions only when
//! `position_biased_input`. Names under `deberta.`; the masked-LM head as transformers 5
//! saves it (`cls.predictions`), read from Microsoft's `lm_predictions.lm_head` too.
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, Linear};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Deserializer, Serialize};

use super::activation::{self, Activation};
use super::attention::{merge_heads, split_heads};
use super::blocks::{bias, embedding, layer_norm, linear, linear_with};
use super::config_file::{ConfigFile, Unsupported};
use crate::error::Result;
use crate::kernels::{dropout, layer_norm as normalize, masked_softmax};
use crate::weights::{WeightSource, Weights};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DebertaV2Config {
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
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default)]
    pub relative_attention: bool,
    #[serde(default = "minus_one")]
    pub max_relative_positions: i64,
    #[serde(default = "minus_one")]
    pub position_buckets: i64,
    /// "c2p", "p2c" (a list, or one string joined by `|`).
    #[serde(default, deserialize_with = "position_attention")]
    pub pos_att_type: Vec<String>,
    #[serde(default)]
    pub share_att_key: bool,
    #[serde(default = "yes")]
    pub position_biased_input: bool,
    #[serde(default = "default_norm_rel_ebd")]
    pub norm_rel_ebd: String,
    pub embedding_size: Option<usize>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_max_positions() -> usize {
    512
}
fn default_eps() -> f64 {
    1e-7
}
fn default_init_range() -> f64 {
    0.02
}
fn minus_one() -> i64 {
    -1
}
fn yes() -> bool {
    true
}
fn default_norm_rel_ebd() -> String {
    "none".into()
}

fn position_attention<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Kinds {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Kinds>::deserialize(d)? {
        None => Vec::new(),
        Some(Kinds::One(text)) => text.to_lowercase().split('|').map(str::to_string).collect(),
        Some(Kinds::Many(list)) => list,
    })
}

impl DebertaV2Config {
    pub fn from_config(file: &ConfigFile) -> Result<Self> {
        let config: DebertaV2Config = file.parse()?;
        let unsupported = Unsupported::new(file);
        if Activation::parse(&config.hidden_act).is_none() {
            return Err(unsupported.value("hidden_act", &config.hidden_act, activation::SUPPORTED));
        }
        if let Some(kind) =
            config.pos_att_type.iter().find(|k| !["c2p", "p2c"].contains(&k.as_str()))
        {
            return Err(unsupported.value("pos_att_type", kind, "c2p, p2c"));
        }
        if !["none", "layer_norm"].contains(&config.norm_rel_ebd.as_str()) {
            return Err(unsupported.value(
                "norm_rel_ebd",
                &config.norm_rel_ebd,
                "none, layer_norm",
            ));
        }
        unsupported.refuse_unless(
            "conv_kernel_size",
            &[0.into()],
            "0 (no convolution layer, as DeBERTa-v3)",
        )?;
        let head_size = config.hidden_size / config.num_attention_heads.max(1);
        unsupported.refuse_unless(
            "attention_head_size",
            &[head_size.into()],
            &format!("hidden_size / num_attention_heads = {head_size}"),
        )?;
        unsupported.refuse_unless(
            "pooler_hidden_size",
            &[config.hidden_size.into()],
            &format!("hidden_size = {}", config.hidden_size),
        )?;
        unsupported.check_heads(config.hidden_size, config.num_attention_heads)?;
        Ok(config)
    }

    pub fn activation(&self) -> Activation {
        Activation::parse(&self.hidden_act).expect("checked when read")
    }

    fn embedding_width(&self) -> usize {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    fn c2p(&self) -> bool {
        self.pos_att_type.iter().any(|k| k == "c2p")
    }

    fn p2c(&self) -> bool {
        self.pos_att_type.iter().any(|k| k == "p2c")
    }

    /// `max_relative_positions`, falling back to `max_position_embeddings`.
    fn max_relative(&self) -> i64 {
        match self.max_relative_positions {
            n if n < 1 => self.max_position_embeddings as i64,
            n => n,
        }
    }

    /// Half the rows of the relative-position table.
    fn span(&self) -> i64 {
        if self.position_buckets > 0 { self.position_buckets } else { self.max_relative() }
    }
}

// ---- relative positions ---------------------------------------------------------------------

/// `make_log_bucket_position`, in f32 as transformers computes it: offsets within
/// `bucket_size / 2` keep their value, longer ones share log-spaced buckets.
fn log_bucket(relative: i64, bucket_size: i64, max_position: i64) -> i64 {
    let mid = bucket_size / 2;
    let abs = if relative < mid && relative > -mid { mid - 1 } else { relative.abs() };
    if abs <= mid {
        return relative;
    }
    let num = (abs as f32 / mid as f32).ln();
    let den = (((max_position - 1) as f64 / mid as f64) as f32).ln();
    let log_pos = (num / den * (mid - 1) as f32).ceil() + mid as f32;
    (log_pos * relative.signum() as f32) as i64
}

/// Row of the relative-position table each (query, key) pair reads: `bucket(q − k) + span`,
/// clamped to the table. Computed once per sequence length.
fn relative_rows(cfg: &DebertaV2Config, len: usize) -> Arc<Vec<i64>> {
    type Tables = Mutex<HashMap<(usize, i64, i64), Arc<Vec<i64>>>>;
    static TABLES: OnceLock<Tables> = OnceLock::new();
    let (span, buckets, max_rel) = (cfg.span(), cfg.position_buckets, cfg.max_relative());
    let key = (len, buckets, max_rel);
    let mut tables = TABLES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    tables
        .entry(key)
        .or_insert_with(|| {
            let mut rows = Vec::with_capacity(len * len);
            for q in 0..len as i64 {
                for k in 0..len as i64 {
                    let relative = if buckets > 0 && max_rel > 0 {
                        log_bucket(q - k, buckets, max_rel)
                    } else {
                        q - k
                    };
                    rows.push((relative + span).clamp(0, 2 * span - 1));
                }
            }
            Arc::new(rows)
        })
        .clone()
}

// ---- modules ------------------------------------------------------------------------------

/// `embeddings`: words (plus absolute positions and token types when configured), projected
/// to the hidden width when narrower, LayerNorm, zeroed at padding.
#[derive(Module, Debug)]
pub struct DebertaV2Embeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Option<Embedding>,
    pub token_type_embeddings: Option<Embedding>,
    pub embed_proj: Option<Linear>,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl DebertaV2Embeddings {
    fn load<S: WeightSource>(
        cfg: &DebertaV2Config,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let (width, hidden) = (cfg.embedding_width(), cfg.hidden_size);
        let word_embeddings =
            embedding(&mut w.pp("word_embeddings"), cfg.vocab_size, width, device)?;
        let position_embeddings = cfg
            .position_biased_input
            .then(|| {
                embedding(
                    &mut w.pp("position_embeddings"),
                    cfg.max_position_embeddings,
                    width,
                    device,
                )
            })
            .transpose()?;
        let token_type_embeddings = (cfg.type_vocab_size > 0)
            .then(|| {
                embedding(&mut w.pp("token_type_embeddings"), cfg.type_vocab_size, width, device)
            })
            .transpose()?;
        let embed_proj = (width != hidden)
            .then(|| linear_with(&mut w.pp("embed_proj"), width, hidden, false))
            .transpose()?;
        Ok(DebertaV2Embeddings {
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embed_proj,
            LayerNorm: layer_norm(&mut w.pp("LayerNorm"), hidden, cfg.layer_norm_eps, device)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            layer_norm_eps: cfg.layer_norm_eps,
        })
    }

    fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        mask_pad: &Tensor<2, Bool>,
    ) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let mut x = self.word_embeddings.forward(input_ids);
        let width = x.dims()[2];
        if let Some(positions) = &self.position_embeddings {
            x = x + positions.weight.val().slice(0..seq).reshape([1, seq, width]);
        }
        if let Some(types) = &self.token_type_embeddings {
            x = match token_types {
                Some(t) => x + types.forward(t),
                None => x + types.weight.val().slice(0..1).reshape([1, 1, width]),
            };
        }
        if let Some(project) = &self.embed_proj {
            x = project.forward(x);
        }
        let x = normalize(&self.LayerNorm, self.layer_norm_eps, x);
        let keep = mask_pad.clone().bool_not().float().reshape([batch, seq, 1]);
        dropout(&self.dropout, x * keep)
    }
}

/// `attention.self`: content projections, optional position projections, and the
/// disentangled scores.
#[derive(Module, Debug)]
pub struct DisentangledSelfAttention {
    pub query_proj: Linear,
    pub key_proj: Linear,
    pub value_proj: Linear,
    /// Only without `share_att_key`, for c2p and p2c respectively.
    pub pos_key_proj: Option<Linear>,
    pub pos_query_proj: Option<Linear>,
    pub dropout: Dropout,
    pub pos_dropout: Dropout,
    #[module(skip)]
    pub heads: usize,
    #[module(skip)]
    pub c2p: bool,
    #[module(skip)]
    pub p2c: bool,
    #[module(skip)]
    pub relative: bool,
}

/// What every layer's attention reads besides its input: the normalised relative-position
/// table and which of its rows each (query, key) pair takes.
struct Relative {
    table: Tensor<2>,
    rows: Tensor<4, Int>,
}

impl DisentangledSelfAttention {
    fn load<S: WeightSource>(cfg: &DebertaV2Config, w: &mut Weights<S>) -> Result<Self> {
        let h = cfg.hidden_size;
        let separate = cfg.relative_attention && !cfg.share_att_key;
        Ok(DisentangledSelfAttention {
            query_proj: linear(&mut w.pp("query_proj"), h, h)?,
            key_proj: linear(&mut w.pp("key_proj"), h, h)?,
            value_proj: linear(&mut w.pp("value_proj"), h, h)?,
            pos_key_proj: (separate && cfg.c2p())
                .then(|| linear(&mut w.pp("pos_key_proj"), h, h))
                .transpose()?,
            pos_query_proj: (separate && cfg.p2c())
                .then(|| linear(&mut w.pp("pos_query_proj"), h, h))
                .transpose()?,
            dropout: DropoutConfig::new(cfg.attention_probs_dropout_prob).init(),
            pos_dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            heads: cfg.num_attention_heads,
            c2p: cfg.c2p(),
            p2c: cfg.p2c(),
            relative: cfg.relative_attention,
        })
    }

    fn forward(
        &self,
        x: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        relative: Option<&Relative>,
    ) -> Tensor<3> {
        let heads = self.heads;
        let head_width = x.dims()[2] / heads;
        let factor = 1 + usize::from(self.c2p) + usize::from(self.p2c);
        // In f32, as transformers computes `scaled_size_sqrt`.
        let scale = (head_width as f32 * factor as f32).sqrt();
        let query = split_heads(self.query_proj.forward(x.clone()), heads);
        let key = split_heads(self.key_proj.forward(x.clone()), heads);
        let value = split_heads(self.value_proj.forward(x), heads);
        let mut scores = query.clone().matmul(key.clone().div_scalar(scale).swap_dims(2, 3));
        if let Some(relative) = relative.filter(|_| self.relative) {
            scores = scores + self.position_scores(query, key, relative).div_scalar(scale);
        }
        let probs = dropout(&self.dropout, masked_softmax(scores, mask_pad));
        merge_heads(probs.matmul(value))
    }

    /// The c2p and p2c terms `[batch, heads, queries, keys]`, before scaling.
    fn position_scores(&self, query: Tensor<4>, key: Tensor<4>, relative: &Relative) -> Tensor<4> {
        let [batch, heads, len, _] = query.dims();
        let table = dropout(&self.pos_dropout, relative.table.clone());
        let mut out = Tensor::zeros([batch, heads, len, len], &query.device());
        if self.c2p {
            let projection = self.pos_key_proj.as_ref().unwrap_or(&self.key_proj);
            let positions = table_heads(projection.forward(table.clone()), heads, batch);
            let c2p = query.matmul(positions.swap_dims(2, 3));
            out = out + c2p.gather(3, relative.rows.clone());
        }
        if self.p2c {
            let projection = self.pos_query_proj.as_ref().unwrap_or(&self.query_proj);
            let positions = table_heads(projection.forward(table), heads, batch);
            let p2c = key.matmul(positions.swap_dims(2, 3));
            // Row k, column rows[q, k]: gathered with the rows transposed, then transposed back.
            out = out + p2c.gather(3, relative.rows.clone().swap_dims(2, 3)).swap_dims(2, 3);
        }
        out
    }
}

/// A projected position table `[rows, width]` as `[batch, heads, rows, width / heads]`.
fn table_heads(table: Tensor<2>, heads: usize, batch: usize) -> Tensor<4> {
    let [rows, width] = table.dims();
    let head_width = width / heads;
    table
        .reshape([1, rows, heads, head_width])
        .swap_dims(1, 2)
        .expand([batch, heads, rows, head_width])
}

/// `attention.output` and `output`: a projection, dropout, then LayerNorm of the residual sum.
#[derive(Module, Debug)]
pub struct DebertaV2SelfOutput {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl DebertaV2SelfOutput {
    fn load<S: WeightSource>(
        cfg: &DebertaV2Config,
        w: &mut Weights<S>,
        d_in: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(DebertaV2SelfOutput {
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

    fn forward(&self, sublayer: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let summed = residual + dropout(&self.dropout, self.dense.forward(sublayer));
        normalize(&self.LayerNorm, self.layer_norm_eps, summed)
    }
}

#[derive(Module, Debug)]
pub struct DebertaV2Attention {
    /// `self`
    pub self_: DisentangledSelfAttention,
    pub output: DebertaV2SelfOutput,
}

#[derive(Module, Debug)]
pub struct DebertaV2Intermediate {
    pub dense: Linear,
    #[module(skip)]
    pub activation: Activation,
}

/// `encoder.layer.N`: post-LayerNorm, as BERT's.
#[derive(Module, Debug)]
pub struct DebertaV2Layer {
    pub attention: DebertaV2Attention,
    pub intermediate: DebertaV2Intermediate,
    pub output: DebertaV2SelfOutput,
}

impl DebertaV2Layer {
    pub fn load<S: WeightSource>(
        cfg: &DebertaV2Config,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let mut a = w.pp("attention");
        let attention = DebertaV2Attention {
            self_: DisentangledSelfAttention::load(cfg, &mut a.pp("self"))?,
            output: DebertaV2SelfOutput::load(cfg, &mut a.pp("output"), cfg.hidden_size, device)?,
        };
        let intermediate = DebertaV2Intermediate {
            dense: linear(&mut w.pp("intermediate.dense"), cfg.hidden_size, cfg.intermediate_size)?,
            activation: cfg.activation(),
        };
        let output =
            DebertaV2SelfOutput::load(cfg, &mut w.pp("output"), cfg.intermediate_size, device)?;
        Ok(DebertaV2Layer { attention, intermediate, output })
    }

    fn forward(
        &self,
        x: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        relative: Option<&Relative>,
    ) -> Tensor<3> {
        let context = self.attention.self_.forward(x.clone(), mask_pad, relative);
        let attended = self.attention.output.forward(context, x);
        let i = &self.intermediate;
        let expanded = i.activation.forward(i.dense.forward(attended.clone()));
        self.output.forward(expanded, attended)
    }
}

/// `encoder`: the layers, the relative-position table and its LayerNorm.
#[derive(Module, Debug)]
pub struct DebertaV2Encoder {
    pub layer: Vec<DebertaV2Layer>,
    pub rel_embeddings: Option<Embedding>,
    /// Normalises `rel_embeddings` (`norm_rel_ebd = "layer_norm"`).
    pub LayerNorm: Option<LayerNorm>,
    #[module(skip)]
    pub layer_norm_eps: f64,
    #[module(skip)]
    pub config: DebertaV2Config,
}

/// `DebertaV2Model`: embeddings and encoder.
#[derive(Module, Debug)]
pub struct DebertaV2Model {
    pub embeddings: DebertaV2Embeddings,
    pub encoder: DebertaV2Encoder,
}

impl DebertaV2Model {
    pub fn load<S: WeightSource>(
        cfg: &DebertaV2Config,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let embeddings = DebertaV2Embeddings::load(cfg, &mut w.pp("embeddings"), device)?;
        let mut e = w.pp("encoder");
        let layer = {
            let mut l = e.pp("layer");
            (0..cfg.num_hidden_layers)
                .map(|i| DebertaV2Layer::load(cfg, &mut l.pp(i), device))
                .collect::<Result<_>>()?
        };
        let h = cfg.hidden_size;
        let rows = 2 * cfg.span().max(0) as usize;
        let rel_embeddings = cfg
            .relative_attention
            .then(|| embedding(&mut e.pp("rel_embeddings"), rows, h, device))
            .transpose()?;
        let LayerNorm = (cfg.relative_attention && cfg.norm_rel_ebd == "layer_norm")
            .then(|| layer_norm(&mut e.pp("LayerNorm"), h, cfg.layer_norm_eps, device))
            .transpose()?;
        let encoder = DebertaV2Encoder {
            layer,
            rel_embeddings,
            LayerNorm,
            layer_norm_eps: cfg.layer_norm_eps,
            config: cfg.clone(),
        };
        Ok(DebertaV2Model { embeddings, encoder })
    }

    pub fn embed(
        &self,
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        mask_pad: &Tensor<2, Bool>,
    ) -> Tensor<3> {
        self.embeddings.forward(ids, token_types, mask_pad)
    }

    pub fn layers_range(
        &self,
        mut x: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        from: usize,
        upto: usize,
    ) -> Tensor<3> {
        let relative = self.relative(x.dims()[0], x.dims()[1], &x.device());
        for layer in &self.encoder.layer[from..upto] {
            x = layer.forward(x, mask_pad, relative.as_ref());
        }
        x
    }

    fn relative(&self, batch: usize, len: usize, device: &Device) -> Option<Relative> {
        let e = &self.encoder;
        let table = e.rel_embeddings.as_ref()?.weight.val();
        let table = match &e.LayerNorm {
            Some(norm) => normalize(norm, e.layer_norm_eps, table),
            None => table,
        };
        let rows = relative_rows(&e.config, len);
        let heads = e.config.num_attention_heads;
        let rows = Tensor::<2, Int>::from_data(TensorData::new(rows.to_vec(), [len, len]), device)
            .reshape([1, 1, len, len])
            .expand([batch, heads, len, len]);
        Some(Relative { table, rows })
    }
}

// ---- the masked-LM head -----------------------------------------------------------------

/// `cls.predictions.transform`: dense (hidden to embedding width), activation, LayerNorm.
#[derive(Module, Debug)]
pub struct LegacyDebertaV2PredictionHeadTransform {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    #[module(skip)]
    pub layer_norm_eps: f64,
    #[module(skip)]
    pub activation: Activation,
}

#[derive(Module, Debug)]
pub struct LegacyDebertaV2LmPredictionHead {
    pub transform: LegacyDebertaV2PredictionHeadTransform,
    pub bias: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct LegacyDebertaV2OnlyMlmHead {
    pub predictions: LegacyDebertaV2LmPredictionHead,
}

/// What `DebertaV2ForMaskedLM` holds besides `deberta`, as transformers 5 names it (`cls`).
#[derive(Module, Debug)]
pub struct DebertaV2MaskedLmHead {
    pub cls: LegacyDebertaV2OnlyMlmHead,
}

impl DebertaV2MaskedLmHead {
    /// From `cls.predictions.*`, or from Microsoft's `lm_predictions.lm_head.*` (the same
    /// computation under other names) when the source holds those.
    pub fn load<S: WeightSource>(
        cfg: &DebertaV2Config,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let width = cfg.embedding_width();
        let (transform_at, bias_at) = match w.contains("lm_predictions.lm_head.bias") {
            true => ("lm_predictions.lm_head", "lm_predictions.lm_head"),
            false => ("cls.predictions.transform", "cls.predictions"),
        };
        let mut t = w.pp(transform_at);
        let transform = LegacyDebertaV2PredictionHeadTransform {
            dense: linear(&mut t.pp("dense"), cfg.hidden_size, width)?,
            LayerNorm: layer_norm(&mut t.pp("LayerNorm"), width, cfg.layer_norm_eps, device)?,
            layer_norm_eps: cfg.layer_norm_eps,
            activation: cfg.activation(),
        };
        let bias = bias(&mut w.pp(bias_at), "bias", cfg.vocab_size)?;
        Ok(DebertaV2MaskedLmHead {
            cls: LegacyDebertaV2OnlyMlmHead {
                predictions: LegacyDebertaV2LmPredictionHead { transform, bias },
            },
        })
    }

    pub fn logits(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        let p = &self.cls.predictions;
        let t = &p.transform;
        let x = normalize(
            &t.LayerNorm,
            t.layer_norm_eps,
            t.activation.forward(t.dense.forward(hidden)),
        );
        x.matmul(word_embeddings.transpose()) + p.bias.val().unsqueeze::<2>()
    }
}
