//! What a worker needs to run one job or stage, as stored (JSON) in the database.
//! Plain data: paths already resolved, identities already hashed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thaw_train::data::{
    DataFiles, Fields, Metric, SplitOptions, Splits, Task, load_splits, subsample,
};
use thaw_train::{BackendKind, FineTuneSettings, MlmSettings, ScratchModel};

use crate::spec::Init;

/// A labelled dataset, resolved to files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    pub name: String,
    pub train: PathBuf,
    pub validation: Option<PathBuf>,
    pub test: Option<PathBuf>,
    /// Classification unless the sweep says otherwise (and then absent from stored specs).
    #[serde(default, skip_serializing_if = "is_classification")]
    pub task: Task,
    #[serde(default)]
    pub metric: Metric,
    pub text_field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_pair_field: Option<String>,
    pub label_field: String,
    #[serde(default = "default_tokens_field")]
    pub tokens_field: String,
    #[serde(default = "default_tags_field")]
    pub tags_field: String,
    #[serde(default = "default_labels_field")]
    pub labels_field: String,
    pub holdout_fraction: f64,
    pub max_validation: Option<usize>,
    pub max_test: Option<usize>,
    pub subsample_seed: u64,
    pub max_length: usize,
    /// Hash of the files' contents and of every setting above.
    pub identity: String,
    /// The files' content hashes when they travel through the database (a PostgreSQL
    /// store); not part of any key (`identity` already covers the contents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<DataSnapshot>,
}

impl DataSpec {
    pub fn files(&self) -> DataFiles {
        DataFiles {
            train: self.train.clone(),
            validation: self.validation.clone(),
            test: self.test.clone(),
            fields: Fields {
                task: self.task,
                text: self.text_field.clone(),
                text_pair: self.text_pair_field.clone(),
                label: self.label_field.clone(),
                tokens: self.tokens_field.clone(),
                tags: self.tags_field.clone(),
                labels: self.labels_field.clone(),
            },
        }
    }

    /// The splits as every job and stage sees them: validation and test carved from train
    /// when absent, capped at max_validation / max_test, train subsampled to `train_size`.
    pub fn load(&self, train_size: Option<usize>) -> thaw_train::Result<Splits> {
        let options = SplitOptions {
            holdout_fraction: self.holdout_fraction,
            train_size,
            subsample_seed: self.subsample_seed,
        };
        let mut splits = load_splits(&self.files(), &options)?;
        if let Some(n) = self.max_validation {
            splits.validation = subsample(&splits.validation, n, self.subsample_seed);
        }
        if let Some(n) = self.max_test {
            splits.test = subsample(&splits.test, n, self.subsample_seed);
        }
        Ok(splits)
    }
}

fn is_classification(task: &Task) -> bool {
    *task == Task::Classification
}

fn default_tokens_field() -> String {
    "tokens".into()
}

fn default_tags_field() -> String {
    "tags".into()
}
fn default_labels_field() -> String {
    "labels".into()
}

/// The content hashes of a dataset's files, stored in the database with them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSnapshot {
    pub train: String,
    pub validation: Option<String>,
    pub test: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub dir: PathBuf,
    pub origin: String,
    /// Hash of config.json, tokenizer.json and model.safetensors.
    pub identity: String,
    pub num_layers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Corpus {
    /// The training split's own text (task-adaptive).
    Task,
    /// A plain-text file, one document per line (domain-adaptive).
    File {
        path: PathBuf,
        identity: String,
        /// The file's content hash when it travels through the database.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSpec {
    pub name: String,
    pub model: ModelSpec,
    pub data: DataSpec,
    pub corpus: Corpus,
    pub init: Init,
    pub seed: u64,
    pub settings: MlmSettings,
    /// The backend it runs on: part of its key (results differ between backends).
    #[serde(default)]
    pub backend: BackendKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub model: ModelSpec,
    pub data: DataSpec,
    pub train_size: Option<usize>,
    pub init: Init,
    pub intermediate: String,
    pub stage_key: Option<String>,
    pub freeze: usize,
    pub seed: u64,
    pub settings: FineTuneSettings,
    /// Memory for frozen-prefix activations in the worker, MiB.
    pub prefix_cache_mb: usize,
    /// Write the fine-tuned weights beside the database (`[train] keep`); not part of the key.
    #[serde(default)]
    pub keep_weights: bool,
    /// Stop after this many epochs, on the schedule of `settings.epochs`: a successive-halving
    /// rung (validation only, no test). None: the full job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<usize>,
    /// The backend it runs on: part of its key (results differ between backends).
    #[serde(default)]
    pub backend: BackendKind,
    /// `init = "scratch-own-vocab"`: the encoder's size and vocabulary settings (`[scratch]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_model: Option<ScratchModel>,
}

impl JobSpec {
    /// Encoder layers of the model this job trains: `[scratch] layers` for its own vocabulary.
    pub fn num_layers(&self) -> usize {
        self.scratch_model.as_ref().map_or(self.model.num_layers, |m| m.layers)
    }
}
