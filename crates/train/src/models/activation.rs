//! The activation functions the families' configs name (`hidden_act`, `hidden_activation`),
//! each as transformers' `ACT2FN` computes it; a name thaw does not implement is refused.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::kernels::gelu;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `gelu`: x·Φ(x) with the exact erf (thaw's kernel on Flex).
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    Relu,
    /// `silu`, `swish`.
    Silu,
    Tanh,
}

/// The names transformers gives the activations thaw implements, for error messages.
pub const SUPPORTED: &str = "gelu, gelu_new, gelu_pytorch_tanh, relu, silu, swish, tanh";

impl Activation {
    /// The activation `ACT2FN[name]` is, if thaw implements it.
    pub fn parse(name: &str) -> Option<Activation> {
        Some(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            "tanh" => Activation::Tanh,
            _ => return None,
        })
    }

    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Gelu => gelu(x),
            Activation::GeluTanh => {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                let inner = (x.clone() + x.clone().powi_scalar(3).mul_scalar(0.044715))
                    .mul_scalar((2.0 / std::f64::consts::PI).sqrt());
                x.mul_scalar(0.5) * (inner.tanh() + 1.0)
            }
            Activation::Relu => burn::tensor::activation::relu(x),
            Activation::Silu => burn::tensor::activation::silu(x),
            Activation::Tanh => x.tanh(),
        }
    }
}
