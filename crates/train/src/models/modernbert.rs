//! ModernBERT (`modeling_modernbert.py`): pre-LayerNorm layers with bias-free norms by
//! default, a fused `Wqkv` projection, rotary positions (a global and a local theta), sliding-
//! window attention on all but the global layers (`layer_types`, or every
//! `global_attn_every_n_layers`-th from layer 0), a GeGLU feed-forward block, and a final
//! norm after the last layer. Names under `model.`; the masked-LM head is `head` and a
//! `decoder` tied to the token embeddings.
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, Linear};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::activation::{self, Activation};
use super::attention::{merge_heads, split_heads};
use super::blocks::{bias, embedding, layer_norm_with, linear_with};
use super::config_file::{ConfigFile, Unsupported};
use crate::error::Result;
use crate::kernels::{dropout, layer_norm as normalize, masked_softmax};
use crate::weights::{WeightSource, Weights};

/// The score a key outside a sliding window gets before the softmax (as a padding key does).
const OUTSIDE_WINDOW: f32 = -1.0e4;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModernBertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "default_act")]
    pub hidden_activation: String,
    #[serde(default = "default_act")]
    pub classifier_activation: String,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    #[serde(default)]
    pub norm_bias: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default = "yes")]
    pub decoder_bias: bool,
    #[serde(default)]
    pub classifier_bias: bool,
    #[serde(default)]
    pub embedding_dropout: f64,
    #[serde(default)]
    pub attention_dropout: f64,
    #[serde(default)]
    pub mlp_dropout: f64,
    #[serde(default = "default_local_attention")]
    pub local_attention: usize,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default = "default_pad")]
    pub pad_token_id: usize,
    /// Whether each layer attends globally (from `layer_types` or the legacy
    /// `global_attn_every_n_layers`), filled when read.
    #[serde(default)]
    pub global_layers: Vec<bool>,
    /// The rotary base of global and of sliding-window layers, filled when read (from
    /// `rope_parameters` or the legacy `global_rope_theta` / `local_rope_theta`).
    #[serde(default)]
    pub global_theta: f64,
    #[serde(default)]
    pub local_theta: f64,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_max_positions() -> usize {
    8192
}
fn default_eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}
fn default_local_attention() -> usize {
    128
}
fn default_init_range() -> f64 {
    0.02
}
fn default_pad() -> usize {
    50283
}

impl ModernBertConfig {
    pub fn from_config(file: &ConfigFile) -> Result<Self> {
        let mut config: ModernBertConfig = file.parse()?;
        let unsupported = Unsupported::new(file);
        for (key, name) in [
            ("hidden_activation", &config.hidden_activation),
            ("classifier_activation", &config.classifier_activation),
        ] {
            if Activation::parse(name).is_none() {
                return Err(unsupported.value(key, name, activation::SUPPORTED));
            }
        }
        unsupported.check_heads(config.hidden_size, config.num_attention_heads)?;
        let head_size = config.hidden_size / config.num_attention_heads;
        unsupported.refuse_unless(
            "head_dim",
            &[head_size.into()],
            &format!("hidden_size / num_attention_heads = {head_size}"),
        )?;
        unsupported.refuse_unless("rope_scaling", &[], "none (plain rotary positions)")?;
        unsupported.refuse_unless(
            "partial_rotary_factor",
            &[1.into(), 1.0.into()],
            "1 (every dimension rotated)",
        )?;
        config.global_layers = global_layers(file, config.num_hidden_layers, &unsupported)?;
        (config.global_theta, config.local_theta) = thetas(file, &unsupported)?;
        Ok(config)
    }

    fn activation(&self) -> Activation {
        Activation::parse(&self.hidden_activation).expect("checked when read")
    }

    fn classifier_activation(&self) -> Activation {
        Activation::parse(&self.classifier_activation).expect("checked when read")
    }
}

/// `layer_types` (transformers 5), else every `global_attn_every_n_layers`-th layer from 0.
fn global_layers(file: &ConfigFile, layers: usize, unsupported: &Unsupported) -> Result<Vec<bool>> {
    if let Some(types) = file.get("layer_types").and_then(Value::as_array) {
        let global: Vec<Option<bool>> = types
            .iter()
            .map(|t| match t.as_str() {
                Some("full_attention") => Some(true),
                Some("sliding_attention") => Some(false),
                _ => None,
            })
            .collect();
        if global.len() != layers || global.iter().any(Option::is_none) {
            return Err(unsupported.value(
                "layer_types",
                &Value::Array(types.clone()).to_string(),
                &format!("{layers} entries, each \"full_attention\" or \"sliding_attention\""),
            ));
        }
        return Ok(global.into_iter().flatten().collect());
    }
    let every =
        file.get("global_attn_every_n_layers").and_then(Value::as_u64).unwrap_or(3).max(1) as usize;
    Ok((0..layers).map(|i| i % every == 0).collect())
}

/// The rotary bases: `rope_parameters` (transformers 5) per layer type, else the legacy
/// `global_rope_theta` / `local_rope_theta`; a rope type other than "default" is refused.
fn thetas(file: &ConfigFile, unsupported: &Unsupported) -> Result<(f64, f64)> {
    let legacy = |key: &str, default: f64| file.get(key).and_then(Value::as_f64).unwrap_or(default);
    let (mut global, mut local) =
        (legacy("global_rope_theta", 160_000.0), legacy("local_rope_theta", 10_000.0));
    if let Some(params) = file.get("rope_parameters").and_then(Value::as_object) {
        for (kind, theta) in [("full_attention", &mut global), ("sliding_attention", &mut local)] {
            let Some(p) = params.get(kind) else { continue };
            if let Some(rope_type) =
                p.get("rope_type").and_then(Value::as_str).filter(|t| *t != "default")
            {
                return Err(unsupported.value(
                    &format!("rope_parameters.{kind}.rope_type"),
                    rope_type,
                    "default",
                ));
            }
            if let Some(t) = p.get("rope_theta").and_then(Value::as_f64) {
                *theta = t;
            }
        }
    }
    Ok((global, local))
}

// ---- rotary positions -------------------------------------------------------------------------

/// cos and sin of the rotary angles for `len` positions, `[len, head_width]` each, in f32 as
/// transformers computes them (the half-split layout: dimension j pairs with j + d/2).
fn rotary(len: usize, head_width: usize, theta: f64) -> Arc<(Vec<f32>, Vec<f32>)> {
    type Tables = Mutex<HashMap<(usize, usize, u64), Arc<(Vec<f32>, Vec<f32>)>>>;
    static TABLES: OnceLock<Tables> = OnceLock::new();
    let mut tables = TABLES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    tables
        .entry((len, head_width, theta.to_bits()))
        .or_insert_with(|| {
            let half = head_width / 2;
            let inv_freq: Vec<f32> = (0..half)
                .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_width as f32))
                .collect();
            let (mut cos, mut sin) =
                (Vec::with_capacity(len * head_width), Vec::with_capacity(len * head_width));
            for position in 0..len {
                for j in 0..head_width {
                    let angle = position as f32 * inv_freq[j % half];
                    cos.push(angle.cos());
                    sin.push(angle.sin());
                }
            }
            Arc::new((cos, sin))
        })
        .clone()
}

/// `x` `[batch, heads, len, d]` rotated: `x·cos + rotate_half(x)·sin`.
fn rotate(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [batch, heads, len, d] = x.dims();
    let half = d / 2;
    let first = x.clone().slice([0..batch, 0..heads, 0..len, 0..half]);
    let second = x.clone().slice([0..batch, 0..heads, 0..len, half..d]);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    x * cos.clone() + rotated * sin.clone()
}

/// The additive bias that keeps a sliding-window layer's queries to keys within
/// `local_attention / 2` positions (inclusive), `[1, 1, len, len]`.
fn window_bias(len: usize, local_attention: usize, device: &Device) -> Tensor<4> {
    let half = (local_attention / 2) as i64;
    let values: Vec<f32> = (0..len as i64)
        .flat_map(|q| {
            (0..len as i64).map(move |k| if (q - k).abs() <= half { 0.0 } else { OUTSIDE_WINDOW })
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [1, 1, len, len]), device)
}

// ---- modules ----------------------------------------------------------------------------------

/// `embeddings`: token embeddings, `norm`, dropout (no positions: they are rotary).
#[derive(Module, Debug)]
pub struct ModernBertEmbeddings {
    pub tok_embeddings: Embedding,
    pub norm: LayerNorm,
    pub drop: Dropout,
    #[module(skip)]
    pub norm_eps: f64,
}

/// `attn`: the fused query/key/value projection and the output projection.
#[derive(Module, Debug)]
pub struct ModernBertAttention {
    pub Wqkv: Linear,
    pub Wo: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub heads: usize,
    #[module(skip)]
    pub global: bool,
    #[module(skip)]
    pub theta: f64,
    #[module(skip)]
    pub local_attention: usize,
}

impl ModernBertAttention {
    fn forward(&self, x: Tensor<3>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        let [batch, len, width] = x.dims();
        let heads = self.heads;
        let d = width / heads;
        let qkv = self.Wqkv.forward(x).reshape([batch, len, 3, width]);
        let part = |i: usize| {
            split_heads(
                qkv.clone()
                    .slice([0..batch, 0..len, i..i + 1, 0..width])
                    .reshape([batch, len, width]),
                heads,
            )
        };
        let (query, key, value) = (part(0), part(1), part(2));
        let device = query.device();
        let tables = rotary(len, d, self.theta);
        let table = |values: &Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(values.clone(), [1, 1, len, d]), &device)
        };
        let (cos, sin) = (table(&tables.0), table(&tables.1));
        let query = rotate(query, &cos, &sin);
        let key = rotate(key, &cos, &sin);
        let mut scores = query.div_scalar((d as f32).sqrt()).matmul(key.swap_dims(2, 3));
        if !self.global {
            scores = scores + window_bias(len, self.local_attention, &device);
        }
        let probs = dropout(&self.dropout, masked_softmax(scores, mask_pad));
        self.Wo.forward(merge_heads(probs.matmul(value)))
    }
}

/// `mlp`: GeGLU, the first half of `Wi`'s output activated and gated by the second.
#[derive(Module, Debug)]
pub struct ModernBertMlp {
    pub Wi: Linear,
    pub Wo: Linear,
    pub drop: Dropout,
    #[module(skip)]
    pub activation: Activation,
}

impl ModernBertMlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let u = self.Wi.forward(x);
        let [batch, len, double] = u.dims();
        let half = double / 2;
        let input = u.clone().slice([0..batch, 0..len, 0..half]);
        let gate = u.slice([0..batch, 0..len, half..double]);
        self.Wo.forward(dropout(&self.drop, self.activation.forward(input) * gate))
    }
}

/// `layers.N`: pre-LayerNorm attention and GeGLU blocks (layer 0 has no `attn_norm`: the
/// embeddings' norm stands in).
#[derive(Module, Debug)]
pub struct ModernBertEncoderLayer {
    pub attn_norm: Option<LayerNorm>,
    pub attn: ModernBertAttention,
    pub mlp_norm: LayerNorm,
    pub mlp: ModernBertMlp,
    #[module(skip)]
    pub norm_eps: f64,
}

impl ModernBertEncoderLayer {
    pub fn load<S: WeightSource>(
        cfg: &ModernBertConfig,
        index: usize,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.norm_eps);
        let attn_norm = (index > 0)
            .then(|| layer_norm_with(&mut w.pp("attn_norm"), h, eps, cfg.norm_bias, device))
            .transpose()?;
        let global = cfg.global_layers[index];
        let attn = ModernBertAttention {
            Wqkv: linear_with(&mut w.pp("attn.Wqkv"), h, 3 * h, cfg.attention_bias)?,
            Wo: linear_with(&mut w.pp("attn.Wo"), h, h, cfg.attention_bias)?,
            dropout: DropoutConfig::new(cfg.attention_dropout).init(),
            heads: cfg.num_attention_heads,
            global,
            theta: if global { cfg.global_theta } else { cfg.local_theta },
            local_attention: cfg.local_attention,
        };
        let mlp_norm = layer_norm_with(&mut w.pp("mlp_norm"), h, eps, cfg.norm_bias, device)?;
        let mlp = ModernBertMlp {
            Wi: linear_with(&mut w.pp("mlp.Wi"), h, 2 * cfg.intermediate_size, cfg.mlp_bias)?,
            Wo: linear_with(&mut w.pp("mlp.Wo"), cfg.intermediate_size, h, cfg.mlp_bias)?,
            drop: DropoutConfig::new(cfg.mlp_dropout).init(),
            activation: cfg.activation(),
        };
        Ok(ModernBertEncoderLayer { attn_norm, attn, mlp_norm, mlp, norm_eps: eps })
    }

    fn forward(&self, x: Tensor<3>, mask_pad: &Tensor<2, Bool>) -> Tensor<3> {
        let normed = match &self.attn_norm {
            Some(norm) => normalize(norm, self.norm_eps, x.clone()),
            None => x.clone(),
        };
        let x = x + self.attn.forward(normed, mask_pad);
        let normed = normalize(&self.mlp_norm, self.norm_eps, x.clone());
        x + self.mlp.forward(normed)
    }
}

/// `ModernBertModel`: embeddings, layers, and `final_norm` (which thaw counts with the head:
/// it trains whatever the freeze depth).
#[derive(Module, Debug)]
pub struct ModernBertModel {
    pub embeddings: ModernBertEmbeddings,
    pub layers: Vec<ModernBertEncoderLayer>,
    pub final_norm: LayerNorm,
    #[module(skip)]
    pub norm_eps: f64,
}

impl ModernBertModel {
    pub fn load<S: WeightSource>(
        cfg: &ModernBertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.norm_eps);
        let mut e = w.pp("embeddings");
        let embeddings = ModernBertEmbeddings {
            tok_embeddings: embedding(&mut e.pp("tok_embeddings"), cfg.vocab_size, h, device)?,
            norm: layer_norm_with(&mut e.pp("norm"), h, eps, cfg.norm_bias, device)?,
            drop: DropoutConfig::new(cfg.embedding_dropout).init(),
            norm_eps: eps,
        };
        let layers = {
            let mut l = w.pp("layers");
            (0..cfg.num_hidden_layers)
                .map(|i| ModernBertEncoderLayer::load(cfg, i, &mut l.pp(i), device))
                .collect::<Result<_>>()?
        };
        let final_norm = layer_norm_with(&mut w.pp("final_norm"), h, eps, cfg.norm_bias, device)?;
        Ok(ModernBertModel { embeddings, layers, final_norm, norm_eps: eps })
    }

    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let e = &self.embeddings;
        dropout(&e.drop, normalize(&e.norm, e.norm_eps, e.tok_embeddings.forward(ids)))
    }

    pub fn layers_range(
        &self,
        mut x: Tensor<3>,
        mask_pad: &Tensor<2, Bool>,
        from: usize,
        upto: usize,
    ) -> Tensor<3> {
        for layer in &self.layers[from..upto] {
            x = layer.forward(x, mask_pad);
        }
        x
    }

    /// The last layer's output as the model hands it on: `final_norm` applied.
    pub fn finish(&self, x: Tensor<3>) -> Tensor<3> {
        normalize(&self.final_norm, self.norm_eps, x)
    }
}

// ---- the masked-LM head -------------------------------------------------------------------------

/// `head`: dense, activation, norm (also the start of ModernBERT's classification heads).
#[derive(Module, Debug)]
pub struct ModernBertPredictionHead {
    pub dense: Linear,
    pub norm: LayerNorm,
    #[module(skip)]
    pub norm_eps: f64,
    #[module(skip)]
    pub activation: Activation,
}

/// `decoder`: its weight is the token embeddings (tied); its bias, when configured, its own.
#[derive(Module, Debug)]
pub struct ModernBertDecoder {
    pub bias: Option<Param<Tensor<1>>>,
}

/// What `ModernBertForMaskedLM` holds besides `model`.
#[derive(Module, Debug)]
pub struct ModernBertMaskedLmHead {
    pub head: ModernBertPredictionHead,
    pub decoder: ModernBertDecoder,
}

impl ModernBertMaskedLmHead {
    pub fn load<S: WeightSource>(
        cfg: &ModernBertConfig,
        w: &mut Weights<S>,
        device: &Device,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let mut p = w.pp("head");
        let head = ModernBertPredictionHead {
            dense: linear_with(&mut p.pp("dense"), h, h, cfg.classifier_bias)?,
            norm: layer_norm_with(&mut p.pp("norm"), h, cfg.norm_eps, cfg.norm_bias, device)?,
            norm_eps: cfg.norm_eps,
            activation: cfg.classifier_activation(),
        };
        let decoder = ModernBertDecoder {
            bias: cfg
                .decoder_bias
                .then(|| bias(&mut w.pp("decoder"), "bias", cfg.vocab_size))
                .transpose()?,
        };
        Ok(ModernBertMaskedLmHead { head, decoder })
    }

    pub fn logits(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        let h = &self.head;
        let x = normalize(&h.norm, h.norm_eps, h.activation.forward(h.dense.forward(hidden)));
        let logits = x.matmul(word_embeddings.transpose());
        match &self.decoder.bias {
            Some(bias) => logits + bias.val().unsqueeze::<2>(),
            None => logits,
        }
    }
}
