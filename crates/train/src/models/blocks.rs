//! The layers every family builds from, each loaded from its own subtree of a [`Weights`]
//! view under the checkpoint's names (`weight`, `bias`), or drawn as the family initialises
//! them when the source is random.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor};

use crate::error::Result;
use crate::weights::{Fill, WeightSource, Weights};

/// A dense layer `d_in -> d_out` with a bias. Checkpoints store the weight [out, in]
/// (PyTorch); burn's Linear multiplies by [in, out].
pub fn linear<S: WeightSource>(w: &mut Weights<S>, d_in: usize, d_out: usize) -> Result<Linear> {
    linear_with(w, d_in, d_out, true)
}

/// A dense layer with a bias only when `bias` (ModernBERT's are bias-free by default).
pub fn linear_with<S: WeightSource>(
    w: &mut Weights<S>,
    d_in: usize,
    d_out: usize,
    bias: bool,
) -> Result<Linear> {
    let weight = w.tensor("weight", [d_out, d_in], Fill::Normal)?.transpose();
    let bias = match bias {
        true => Some(Param::from_tensor(w.tensor("bias", [d_out], Fill::Zeros)?)),
        false => None,
    };
    Ok(Linear { weight: Param::from_tensor(weight), bias })
}

/// A LayerNorm over `width` with a bias (a `gamma`/`beta` pair in old checkpoints is read too).
pub fn layer_norm<S: WeightSource>(
    w: &mut Weights<S>,
    width: usize,
    eps: f64,
    device: &Device,
) -> Result<LayerNorm> {
    layer_norm_with(w, width, eps, true, device)
}

/// A LayerNorm with a bias only when `bias` (ModernBERT's norms have none by default).
pub fn layer_norm_with<S: WeightSource>(
    w: &mut Weights<S>,
    width: usize,
    eps: f64,
    bias: bool,
    device: &Device,
) -> Result<LayerNorm> {
    let mut norm = LayerNormConfig::new(width).with_epsilon(eps).with_bias(bias).init(device);
    norm.gamma = Param::from_tensor(w.tensor("weight", [width], Fill::Ones)?);
    norm.beta = match bias {
        true => Some(Param::from_tensor(w.tensor("bias", [width], Fill::Zeros)?)),
        false => None,
    };
    Ok(norm)
}

/// An embedding table of `rows` vectors of `width`.
pub fn embedding<S: WeightSource>(
    w: &mut Weights<S>,
    rows: usize,
    width: usize,
    device: &Device,
) -> Result<Embedding> {
    let mut emb = EmbeddingConfig::new(rows, width).init(device);
    emb.weight = Param::from_tensor(w.tensor("weight", [rows, width], Fill::Normal)?);
    Ok(emb)
}

/// A bias on its own, for a decoder whose weight is tied to the word embeddings.
pub fn bias<S: WeightSource>(
    w: &mut Weights<S>,
    name: &str,
    width: usize,
) -> Result<Param<Tensor<1>>> {
    Ok(Param::from_tensor(w.tensor(name, [width], Fill::Zeros)?))
}
