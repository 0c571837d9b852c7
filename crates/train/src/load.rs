//! A model on disk (config.json, tokenizer.json, model.safetensors) and the three ways
//! a job's encoder starts: pretrained weights, random (scratch), or an intermediate-MLM
//! checkpoint written by [`crate::mlm`] (safetensors with Hugging Face names, read by
//! the same code as the pretrained file).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::config::BertConfig;
use crate::error::{Result, TrainError};
use crate::model::{BertModel, Classifier, MaskedLm, Pooling};
use crate::weights::{Checkpoint, RandomInit, Weights};

/// The three files of a Hugging Face BERT checkpoint.
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

/// A fine-tuned classifier (encoder and `classifier.*` head) from one safetensors file, as
/// a worker keeps it (`[train] keep`).
pub fn load_classifier(
    path: &Path,
    config: &BertConfig,
    num_labels: usize,
    pooling: Pooling,
    device: &Device,
) -> Result<Classifier> {
    let mut checkpoint = Checkpoint::open(path, device)?;
    let bert = BertModel::load(config, &mut Weights::new(&mut checkpoint), device)?;
    Classifier::new(config, bert, num_labels, pooling, &mut checkpoint)
}

/// A whole masked-LM model (encoder and `cls.predictions` head) from one safetensors file,
/// such as an intermediate-MLM stage's checkpoint.
pub fn load_masked_lm(path: &Path, config: &BertConfig, device: &Device) -> Result<MaskedLm> {
    let mut checkpoint = Checkpoint::open(path, device)?;
    checkpoint.check_tied_decoder()?;
    let bert = BertModel::load(config, &mut Weights::new(&mut checkpoint), device)?;
    MaskedLm::new(config, bert, &mut checkpoint, device)
}

/// The start's own trained masked-LM head (`cls.predictions.*`), as a weight source for
/// [`crate::model::MaskedLm::new`], when its file has one: BERT-base does, MiniLM does not.
pub fn own_mlm_head(
    files: &ModelFiles,
    start: &Start,
    device: &Device,
) -> Result<Option<Checkpoint>> {
    if *start != Start::Pretrained {
        return Ok(None);
    }
    let checkpoint = Checkpoint::open(&files.weights, device)?;
    if !checkpoint.contains("cls.predictions.bias") {
        return Ok(None);
    }
    checkpoint.check_tied_decoder()?;
    Ok(Some(checkpoint))
}

/// Builds the encoder on `device`; the caller seeds the device first (scratch draws from it).
pub fn load_encoder(
    files: &ModelFiles,
    config: &BertConfig,
    start: &Start,
    device: &Device,
) -> Result<BertModel> {
    match start {
        Start::Pretrained => load_safetensors(&files.weights, config, device),
        Start::Scratch => BertModel::load(
            config,
            &mut Weights::new(&mut RandomInit {
                std: config.initializer_range,
                device: device.clone(),
            }),
            device,
        ),
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

/// Every tensor of the encoder from `path`, and nothing left over: leftovers mean the file
/// is not the architecture config.json describes.
fn load_safetensors(path: &Path, config: &BertConfig, device: &Device) -> Result<BertModel> {
    let mut checkpoint = Checkpoint::open(path, device)?;
    let encoder = BertModel::load(config, &mut Weights::new(&mut checkpoint), device)?;
    let unused = checkpoint.unused_tensors();
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
