//! A model on disk (config.json, tokenizer.json, model.safetensors) and the three ways
//! a job's encoder starts: pretrained weights, random (scratch), or an intermediate-MLM
//! checkpoint written by [`crate::mlm`] (safetensors under the family's own names, read by
//! the same code as the pretrained file). A file's names may carry the family's prefix
//! (`roberta.`, `model.`, as its task classes save them) or not (a bare encoder's).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::model::{Classifier, MaskedLm, Pooling};
use crate::models::{Encoder, MaskedLmHead, ModelConfig};
use crate::weights::{Checkpoint, RandomInit, Weights};

/// The three files of a Hugging Face checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
}

impl ModelFiles {
    /// The files in one folder (a local model directory or an hf-hub snapshot).
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let files = ModelFiles {
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
            weights: dir.join("model.safetensors"),
        };
        for path in [&files.config, &files.tokenizer, &files.weights] {
            if !path.is_file() {
                return Err(TrainError::BadInput {
                    file: path.display().to_string(),
                    line: None,
                    message: format!(
                        "missing; a model folder needs config.json, tokenizer.json and model.safetensors (looked in {})",
                        dir.display()
                    ),
                });
            }
        }
        Ok(files)
    }

    /// `tokenizer_config.json` beside `tokenizer.json`, when the folder has one (it names the
    /// special tokens).
    pub fn tokenizer_config(&self) -> Option<PathBuf> {
        Some(self.tokenizer.with_file_name("tokenizer_config.json")).filter(|p| p.is_file())
    }
}

/// Where a job's encoder weights come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum Start {
    Pretrained,
    Scratch,
    /// An encoder saved by an intermediate-MLM stage (safetensors, Hugging Face names).
    Checkpoint(PathBuf),
}

/// The file extension of intermediate-MLM checkpoints. Older thaw versions wrote burn
/// records (`.bpk`) named after the struct fields, which no longer match; such a stage is
/// run again rather than read wrongly (see [`is_current_checkpoint`]).
pub const CHECKPOINT_EXTENSION: &str = "safetensors";

/// True when `path` is an intermediate-MLM checkpoint this version reads.
pub fn is_current_checkpoint(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == CHECKPOINT_EXTENSION)
}

/// Tensor-name beginnings of the task heads of transformers' encoder classes, which an
/// encoder-only load leaves unused.
const TASK_HEADS: [&str; 16] = [
    "pooler.",
    "cls.",
    "lm_head.",
    "lm_predictions.",
    "mask_predictions.",
    "vocab_transform.",
    "vocab_layer_norm.",
    "vocab_projector.",
    "generator_predictions.",
    "generator_lm_head.",
    "discriminator_predictions.",
    "head.",
    "decoder.",
    "classifier.",
    "pre_classifier.",
    "qa_outputs.",
];

/// The encoder of `config` from `checkpoint`, under the family's prefix where its names
/// carry one.
fn encoder_from(
    checkpoint: &mut Checkpoint,
    config: &ModelConfig,
    device: &Device,
) -> Result<(Encoder, String)> {
    let prefix = checkpoint.encoder_prefix(config.weight_prefix());
    let encoder = Encoder::load(config, &mut Weights::under(checkpoint, &prefix), device)?;
    Ok((encoder, prefix))
}

/// A fine-tuned classifier (encoder and `classifier.*` head) from one safetensors file, as
/// a worker keeps it (`[train] keep`).
pub fn load_classifier(
    path: &Path,
    config: &ModelConfig,
    num_labels: usize,
    pooling: Pooling,
    device: &Device,
) -> Result<Classifier> {
    let mut checkpoint = Checkpoint::open(path, device)?;
    let (encoder, _) = encoder_from(&mut checkpoint, config, device)?;
    Classifier::new(config, encoder, num_labels, pooling, &mut checkpoint)
}

/// A whole masked-LM model (encoder and the family's head) from one safetensors file, such
/// as an intermediate-MLM stage's checkpoint.
pub fn load_masked_lm(path: &Path, config: &ModelConfig, device: &Device) -> Result<MaskedLm> {
    let mut checkpoint = Checkpoint::open(path, device)?;
    let (decoder, tied_to) = MaskedLmHead::tied_decoder(config);
    let prefix = checkpoint.encoder_prefix(config.weight_prefix());
    checkpoint.check_tied_decoder(decoder, &prefixed(&prefix, tied_to))?;
    let (encoder, _) = encoder_from(&mut checkpoint, config, device)?;
    MaskedLm::new(config, encoder, &mut checkpoint, device)
}

/// The start's own trained masked-LM head, as a weight source for [`MaskedLm::new`], when its
/// file has one: BERT-base, RoBERTa and ModernBERT checkpoints do; MiniLM and an ELECTRA
/// discriminator do not.
pub fn own_mlm_head(
    files: &ModelFiles,
    config: &ModelConfig,
    start: &Start,
    device: &Device,
) -> Result<Option<Checkpoint>> {
    if *start != Start::Pretrained {
        return Ok(None);
    }
    let checkpoint = Checkpoint::open(&files.weights, device)?;
    if !MaskedLmHead::markers(config).iter().any(|name| checkpoint.contains(name)) {
        return Ok(None);
    }
    let (decoder, tied_to) = MaskedLmHead::tied_decoder(config);
    let prefix = checkpoint.encoder_prefix(config.weight_prefix());
    checkpoint.check_tied_decoder(decoder, &prefixed(&prefix, tied_to))?;
    Ok(Some(checkpoint))
}

use crate::weights::WeightSource;

fn prefixed(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// Builds the encoder on `device`; the caller seeds the device first (scratch draws from it).
pub fn load_encoder(
    files: &ModelFiles,
    config: &ModelConfig,
    start: &Start,
    device: &Device,
) -> Result<Encoder> {
    match start {
        Start::Pretrained => load_safetensors(&files.weights, config, device),
        Start::Scratch => {
            let mut random = RandomInit { std: config.initializer_range(), device: device.clone() };
            Encoder::load(config, &mut Weights::new(&mut random), device)
        }
        Start::Checkpoint(path) => {
            if !path.is_file() {
                return Err(TrainError::BadInput {
                    file: path.display().to_string(),
                    line: None,
                    message: "intermediate-MLM checkpoint is missing; its stage must finish first"
                        .into(),
                });
            }
            if !is_current_checkpoint(path) {
                return Err(TrainError::Checkpoint {
                    file: path.display().to_string(),
                    message: format!(
                        "written by an older thaw in another format; only .{CHECKPOINT_EXTENSION} stage checkpoints are read"
                    ),
                });
            }
            load_safetensors(path, config, device)
        }
    }
}

/// Every tensor of the encoder from `path`, and nothing left over but task heads: leftovers
/// mean the file is not the architecture config.json describes.
fn load_safetensors(path: &Path, config: &ModelConfig, device: &Device) -> Result<Encoder> {
    let mut checkpoint = Checkpoint::open(path, device)?;
    let (encoder, prefix) = encoder_from(&mut checkpoint, config, device)?;
    // DeBERTa checkpoints may carry absolute positions their config does not use.
    let mut ignored = TASK_HEADS.to_vec();
    if matches!(config, ModelConfig::DebertaV2(c) if !c.position_biased_input) {
        ignored.push("embeddings.position_embeddings.");
    }
    let unused = checkpoint.unused_tensors(&prefix, &ignored);
    if !unused.is_empty() {
        return Err(TrainError::Checkpoint {
            file: path.display().to_string(),
            message: format!(
                "{} tensors do not belong to the architecture config.json describes (first: {}); check num_hidden_layers and the file",
                unused.len(),
                unused[0]
            ),
        });
    }
    Ok(encoder)
}
