//! Where a model's parameters come from: a Hugging Face `model.safetensors` file
//! (pretrained) or BERT's own random initialisation (scratch). Both hand out tensors by
//! their Hugging Face name, so one builder serves both and scratch gets exactly the
//! pretrained architecture.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Result, WorkerError};

/// How a parameter is initialised when it does not come from a checkpoint.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// BERT's `initializer_range` normal (std 0.02 for MiniLM).
    Normal,
    Zeros,
    Ones,
}

pub trait WeightSource {
    /// The tensor called `name` (Hugging Face naming, no `bert.` prefix) with `shape`.
    fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D], init: Init) -> Result<Tensor<D>>;
}

/// BERT-style random initialisation: normal(0, std) weights, zero biases, LayerNorm 1 and 0.
/// Seeded through the device (`Device::seed`), so a seed fixes every value.
pub struct RandomInit {
    pub std: f64,
    pub device: Device,
}

impl WeightSource for RandomInit {
    fn tensor<const D: usize>(&mut self, _name: &str, shape: [usize; D], init: Init) -> Result<Tensor<D>> {
        Ok(match init {
            Init::Normal => Tensor::random(shape, Distribution::Normal(0.0, self.std), &self.device),
            Init::Zeros => Tensor::zeros(shape, &self.device),
            Init::Ones => Tensor::ones(shape, &self.device),
        })
    }
}

/// A `model.safetensors` file read into memory. Names may carry a `bert.` prefix; old
/// checkpoints call LayerNorm parameters `gamma`/`beta`. Both are accepted.
pub struct Checkpoint {
    path: PathBuf,
    bytes: Vec<u8>,
    prefix: String,
    device: Device,
    used: BTreeSet<String>,
}

impl Checkpoint {
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| WorkerError::io(path, e))?;
        let names: Vec<String> = {
            let st = SafeTensors::deserialize(&bytes).map_err(|e| WorkerError::Checkpoint {
                file: path.display().to_string(),
                message: format!(
                    "not a readable safetensors file ({e}); the download may be truncated or corrupt: delete it and fetch again"
                ),
            })?;
            st.names().into_iter().map(|s| s.to_string()).collect()
        };
        let prefix = if names.iter().any(|n| n.starts_with("bert.embeddings.")) { "bert." } else { "" };
        Ok(Checkpoint {
            path: path.to_path_buf(),
            bytes,
            prefix: prefix.to_string(),
            device: device.clone(),
            used: BTreeSet::new(),
        })
    }

    fn err(&self, message: String) -> WorkerError {
        WorkerError::Checkpoint { file: self.path.display().to_string(), message }
    }

    /// Names in the file that the model did not take, other than known buffers and heads
    /// thaw does not use. A non-empty list means the checkpoint is not the architecture
    /// its config describes.
    pub fn unused_tensors(&self) -> Vec<String> {
        let st = SafeTensors::deserialize(&self.bytes).expect("validated in open");
        let mut unused: Vec<String> = st
            .names()
            .into_iter()
            .filter(|n| !self.used.contains(*n))
            .filter(|n| {
                let n = n.strip_prefix(&self.prefix).unwrap_or(n);
                !(n.ends_with("position_ids") || n.starts_with("pooler.") || n.starts_with("cls."))
                    && !n.starts_with("classifier.")
            })
            .map(|s| s.to_string())
            .collect();
        unused.sort();
        unused
    }

    fn candidates(&self, name: &str) -> Vec<String> {
        let mut out = vec![format!("{}{name}", self.prefix)];
        if name.contains("LayerNorm") {
            if let Some(base) = name.strip_suffix(".weight") {
                out.push(format!("{}{base}.gamma", self.prefix));
            } else if let Some(base) = name.strip_suffix(".bias") {
                out.push(format!("{}{base}.beta", self.prefix));
            }
        }
        out
    }
}

impl WeightSource for Checkpoint {
    fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D], _init: Init) -> Result<Tensor<D>> {
        let st = SafeTensors::deserialize(&self.bytes).expect("validated in open");
        let candidates = self.candidates(name);
        let Some((found_name, view)) = candidates.iter().find_map(|c| st.tensor(c).ok().map(|v| (c.clone(), v))) else {
            return Err(self.err(format!(
                "tensor '{}' is missing (expected shape {shape:?}); is this a BERT checkpoint matching its config.json?",
                candidates[0]
            )));
        };
        if view.shape() != shape {
            return Err(self.err(format!(
                "tensor '{found_name}' has shape {:?}, expected {shape:?} from config.json",
                view.shape()
            )));
        }
        let values = to_f32(view.dtype(), view.data()).ok_or_else(|| {
            self.err(format!("tensor '{found_name}' has dtype {:?}; thaw reads F32, F16 and BF16", view.dtype()))
        })?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(self.err(format!(
                "tensor '{found_name}' holds a non-finite value at flat index {i}: the weights are corrupt"
            )));
        }
        drop(st);
        self.used.insert(found_name);
        Ok(Tensor::from_data(TensorData::new(values, shape), &self.device))
    }
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let pairs = || data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    match dtype {
        Dtype::F32 => Some(data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        Dtype::F16 => Some(pairs().map(|b| half::f16::from_bits(b).to_f32()).collect()),
        Dtype::BF16 => Some(pairs().map(|b| half::bf16::from_bits(b).to_f32()).collect()),
        _ => None,
    }
}
