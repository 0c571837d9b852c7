//! Where a model's parameters come from and go to. A Hugging Face `model.safetensors`
//! file (pretrained, or an intermediate-MLM stage thaw wrote) and the family's random
//! initialisation (scratch) both hand out tensors by their Hugging Face name, so one
//! builder serves all three and scratch gets exactly the pretrained architecture.
//! [`save_tensors`] writes [`hf_tensors`] back under the same names.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Result, TrainError};

/// How a parameter is initialised when it does not come from a checkpoint.
#[derive(Debug, Clone, Copy)]
pub enum Fill {
    /// BERT's `initializer_range` normal (std 0.02 for MiniLM).
    Normal,
    Zeros,
    Ones,
}

pub trait WeightSource {
    /// The tensor called `name` (Hugging Face naming) with `shape`.
    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        fill: Fill,
    ) -> Result<Tensor<D>>;

    /// Whether the source holds a tensor called `name` (a random source holds none).
    fn contains(&self, _name: &str) -> bool {
        false
    }
}

/// A [`WeightSource`] seen from one module's subtree (candle's `VarBuilder::pp`): each
/// struct of [`crate::model`] asks for its own tensors by their short names.
pub struct Weights<'a, S: WeightSource> {
    source: &'a mut S,
    prefix: String,
}

impl<'a, S: WeightSource> Weights<'a, S> {
    pub fn new(source: &'a mut S) -> Self {
        Weights { source, prefix: String::new() }
    }

    /// The source seen from `prefix` (`roberta`: the encoder under a task class's names);
    /// an empty prefix is the top level.
    pub fn under(source: &'a mut S, prefix: &str) -> Self {
        Weights { source, prefix: prefix.to_string() }
    }

    /// Whether the source holds `name` below this view.
    pub fn contains(&self, name: &str) -> bool {
        self.source.contains(&self.path(name))
    }

    /// The subtree `name` (a module name, a dotted path, or a layer index).
    pub fn pp(&mut self, name: impl Display) -> Weights<'_, S> {
        let prefix = self.path(name);
        Weights { source: &mut *self.source, prefix }
    }

    fn path(&self, name: impl Display) -> String {
        if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) }
    }

    pub fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        fill: Fill,
    ) -> Result<Tensor<D>> {
        let path = self.path(name);
        self.source.tensor(&path, shape, fill)
    }
}

/// BERT-style random initialisation: normal(0, std) weights, zero biases, LayerNorm 1 and 0.
/// Seeded through the device (`Device::seed`), so a seed fixes every value.
pub struct RandomInit {
    pub std: f64,
    pub device: Device,
}

impl WeightSource for RandomInit {
    fn tensor<const D: usize>(
        &mut self,
        _name: &str,
        shape: [usize; D],
        fill: Fill,
    ) -> Result<Tensor<D>> {
        Ok(match fill {
            Fill::Normal => {
                Tensor::random(shape, Distribution::Normal(0.0, self.std), &self.device)
            }
            Fill::Zeros => Tensor::zeros(shape, &self.device),
            Fill::Ones => Tensor::ones(shape, &self.device),
        })
    }
}

/// A `model.safetensors` file read into memory, handing out tensors by their full names
/// (old checkpoints' LayerNorm `gamma`/`beta` are found for `weight`/`bias`).
pub struct Checkpoint {
    path: PathBuf,
    bytes: Vec<u8>,
    device: Device,
    used: BTreeSet<String>,
}

impl Checkpoint {
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        SafeTensors::deserialize(&bytes).map_err(|e| TrainError::Checkpoint {
            file: path.display().to_string(),
            message: format!(
                "not a readable safetensors file ({e}); the download may be truncated or corrupt: delete it and fetch again"
            ),
        })?;
        Ok(Checkpoint {
            path: path.to_path_buf(),
            bytes,
            device: device.clone(),
            used: BTreeSet::new(),
        })
    }

    fn err(&self, message: String) -> TrainError {
        TrainError::Checkpoint { file: self.path.display().to_string(), message }
    }

    /// `prefix` when the file's names carry it (`roberta.embeddings...`, as a task class
    /// saves them), else "" (a bare encoder's names).
    pub fn encoder_prefix(&self, prefix: &str) -> String {
        let start = format!("{prefix}.");
        if self.file().names().iter().any(|n| n.starts_with(&start)) {
            prefix.into()
        } else {
            String::new()
        }
    }

    /// Names in the file that the model did not take, other than buffers and the names that
    /// begin with one of `ignored` (task heads thaw does not use), after `prefix.`. A
    /// non-empty list means the checkpoint is not the architecture its config describes.
    pub fn unused_tensors(&self, prefix: &str, ignored: &[&str]) -> Vec<String> {
        let start = format!("{prefix}.");
        let mut unused: Vec<String> = self
            .file()
            .names()
            .into_iter()
            .filter(|n| !self.used.contains(*n))
            .filter(|n| {
                let n = if prefix.is_empty() { n } else { n.strip_prefix(&start).unwrap_or(n) };
                !(n.ends_with("position_ids") || ignored.iter().any(|h| n.starts_with(h)))
            })
            .map(|s| s.to_string())
            .collect();
        unused.sort();
        unused
    }

    fn candidates(&self, name: &str) -> Vec<String> {
        let mut out = vec![name.to_string()];
        if let Some(base) = name.strip_suffix(".weight") {
            out.push(format!("{base}.gamma"));
        } else if let Some(base) = name.strip_suffix(".bias") {
            out.push(format!("{base}.beta"));
        }
        out
    }

    fn file(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("validated in open")
    }

    /// The tensor called `name` (Hugging Face naming, as asked for) under the name the file
    /// uses, if the file holds it.
    fn find<'a>(&self, file: &SafeTensors<'a>, name: &str) -> Option<(String, TensorView<'a>)> {
        self.candidates(name).into_iter().find_map(|c| file.tensor(&c).ok().map(|v| (c, v)))
    }

    /// A found tensor's values as f32, or an error naming its unsupported dtype.
    fn decode(&self, found: &str, view: &TensorView) -> Result<Vec<f32>> {
        to_f32(view.dtype(), view.data()).ok_or_else(|| {
            self.err(format!(
                "tensor '{found}' has dtype {:?}; thaw reads F32, F16 and BF16",
                view.dtype()
            ))
        })
    }

    /// The values of tensor `name`, converted to f32, if the file holds it.
    fn values(&self, name: &str) -> Result<Option<Vec<f32>>> {
        let file = self.file();
        self.find(&file, name).map(|(found, view)| self.decode(&found, &view)).transpose()
    }

    /// A masked-LM decoder stored in the file must be the one thaw computes: `decoder` tied
    /// to `tied_to` (the word embeddings). An untied head would be read as a different model.
    pub fn check_tied_decoder(&self, decoder: &str, tied_to: &str) -> Result<()> {
        if let (Some(a), Some(b)) = (self.values(decoder)?, self.values(tied_to)?)
            && a != b
        {
            return Err(self.err(format!(
                "'{decoder}' differs from '{tied_to}': thaw's masked-LM decoder is tied to it, so this untied head cannot be loaded"
            )));
        }
        Ok(())
    }
}

impl WeightSource for Checkpoint {
    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        _fill: Fill,
    ) -> Result<Tensor<D>> {
        let file = self.file();
        let Some((found_name, view)) = self.find(&file, name) else {
            return Err(self.err(format!(
                "tensor '{name}' is missing (expected shape {shape:?}); is this checkpoint the model its config.json describes?"
            )));
        };
        if view.shape() != shape {
            return Err(self.err(format!(
                "tensor '{found_name}' has shape {:?}, expected {shape:?} from config.json",
                view.shape()
            )));
        }
        let values = self.decode(&found_name, &view)?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(self.err(format!(
                "tensor '{found_name}' holds a non-finite value at flat index {i}: the weights are corrupt"
            )));
        }
        drop(file);
        self.used.insert(found_name);
        Ok(Tensor::from_data(TensorData::new(values, shape), &self.device))
    }

    fn contains(&self, name: &str) -> bool {
        self.find(&self.file(), name).is_some()
    }
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let pairs = || data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    match dtype {
        Dtype::F32 => Some(
            data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        ),
        Dtype::F16 => Some(pairs().map(|b| half::f16::from_bits(b).to_f32()).collect()),
        Dtype::BF16 => Some(pairs().map(|b| half::bf16::from_bits(b).to_f32()).collect()),
        _ => None,
    }
}

/// The Hugging Face name of the parameter at burn module path `path`, and whether its
/// values are stored transposed (burn's Linear keeps [in, out], checkpoints [out, in]).
/// `container` is the burn struct holding the parameter ("Struct:Linear", ...).
pub fn hf_name(path: &[String], container: &str) -> (String, bool) {
    let last = path.len().saturating_sub(1);
    let segments: Vec<&str> = path
        .iter()
        .enumerate()
        .map(|(i, segment)| match (segment.as_str(), container) {
            ("gamma", "Struct:LayerNorm") if i == last => "weight",
            ("beta", "Struct:LayerNorm") if i == last => "bias",
            ("self_", _) => "self",
            (other, _) => other,
        })
        .collect();
    let transposed = container == "Struct:Linear" && path.get(last).is_some_and(|s| s == "weight");
    (segments.join("."), transposed)
}

/// A tensor as a checkpoint file holds it: Hugging Face name, shape, values.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Every float parameter of `module` with its Hugging Face name, in module order.
pub fn hf_tensors<M: Module>(module: &M) -> Vec<NamedTensor> {
    struct Collect {
        /// Module names from the root, None for an enum's variant (not part of the name).
        path: Vec<Option<String>>,
        containers: Vec<String>,
        out: Vec<NamedTensor>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            let named = !container_type.starts_with("Enum:");
            self.path.push(named.then(|| name.to_string()));
            self.containers.push(container_type.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
            self.containers.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let path: Vec<String> = self.path.iter().flatten().cloned().collect();
            let (name, transposed) =
                hf_name(&path, self.containers.last().map_or("", String::as_str));
            let tensor = if transposed { param.val().transpose() } else { param.val() };
            let shape = tensor.dims().to_vec();
            let values = tensor
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("float parameters convert to f32");
            self.out.push(NamedTensor { name, shape, values });
        }
    }
    let mut collect = Collect { path: Vec::new(), containers: Vec::new(), out: Vec::new() };
    module.visit(&mut collect);
    collect.out
}

/// Writes (name, shape, values) triples as a safetensors file, F32. Written to a temporary
/// name and renamed, so a half-written file is never taken for a checkpoint.
pub fn save_tensors(tensors: &[NamedTensor], out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, data)| {
            TensorView::new(Dtype::F32, t.shape.clone(), data)
                .map(|view| (t.name.clone(), view))
                .map_err(|e| TrainError::Backend(format!("tensor {}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let partial = out.with_extension("partial.safetensors");
    safetensors::serialize_to_file(views, None, &partial)
        .map_err(|e| TrainError::Backend(format!("cannot write {}: {e}", partial.display())))?;
    std::fs::rename(&partial, out).map_err(|e| TrainError::io(out, e))
}
