//! A model on disk (config.json, tokenizer.json, model.safetensors) and the three ways
//! a job's encoder starts: pretrained weights, random (scratch), or an intermediate-MLM
//! checkpoint written by [`crate::mlm`].

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::config::BertConfig;
use crate::error::{Result, WorkerError};
use crate::model::{Encoder, build_encoder};
use crate::weights::{Checkpoint, RandomInit};

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
                return Err(WorkerError::BadInput {
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
    /// An encoder saved by an intermediate-MLM stage (burnpack file).
    Checkpoint(PathBuf),
}

/// Builds the encoder on `device`; the caller seeds the device first (scratch draws from it).
pub fn load_encoder(files: &ModelFiles, config: &BertConfig, start: &Start, device: &Device) -> Result<Encoder> {
    match start {
        Start::Pretrained => {
            let mut checkpoint = Checkpoint::open(&files.weights, device)?;
            let encoder = build_encoder(config, &mut checkpoint, device)?;
            let unused = checkpoint.unused_tensors();
            if !unused.is_empty() {
                return Err(WorkerError::Checkpoint {
                    file: files.weights.display().to_string(),
                    message: format!(
                        "{} tensors do not belong to the architecture config.json describes (first: {}); check num_hidden_layers and the file",
                        unused.len(),
                        unused[0]
                    ),
                });
            }
            Ok(encoder)
        }
        Start::Scratch => build_encoder(config, &mut RandomInit { std: config.initializer_range, device: device.clone() }, device),
        Start::Checkpoint(path) => {
            if !path.is_file() {
                return Err(WorkerError::BadInput {
                    file: path.display().to_string(),
                    line: None,
                    message: "intermediate-MLM checkpoint is missing; its stage must finish first".into(),
                });
            }
            let shell = build_encoder(config, &mut RandomInit { std: config.initializer_range, device: device.clone() }, device)?;
            shell.try_load_file(path).map_err(|e| WorkerError::Checkpoint {
                file: path.display().to_string(),
                message: format!("cannot load the intermediate-MLM checkpoint: {e}"),
            })
        }
    }
}
