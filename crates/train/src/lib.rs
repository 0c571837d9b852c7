//! thaw-train: trains and evaluates one thaw job with burn.
//!
//! Loads a real Hugging Face checkpoint of any family thaw supports ([`models`], one file
//! per family whose structs are named as the checkpoint names its tensors; [`load`],
//! [`weights`]), puts a task head on it ([`model`]), applies the freeze policy ([`freeze`])
//! and the strategies ([`strategy`]), runs the optional intermediate masked-LM stage
//! ([`mlm`]) and classification fine-tuning ([`finetune`]) on datasets read by [`data`], on
//! the backend chosen at run time ([`backend`]), reporting progress as [`events`]. It knows
//! nothing of sweeps or databases.

pub mod backend;
pub mod batch;
pub mod data;
pub mod encode;
pub mod error;
pub mod events;
pub mod features;
pub mod finetune;
pub mod freeze;
pub mod gradient_ratio;
pub mod hf_folder;
pub mod kernels;
pub mod load;
pub mod loss;
pub mod memory;
pub mod mlm;
pub mod model;
pub mod models;
pub mod objective;
pub mod optim;
pub mod outputs;
pub mod prefix;
pub mod strategy;
pub mod tokenize;
pub mod vocab;
pub mod weights;

pub use backend::BackendKind;
pub use error::{Result, TrainError};
pub use events::{EpochMetrics, Event, Observer, Phase};
pub use finetune::{FineTuneJob, FineTuneOutcome, FineTuneSettings, fine_tune};
pub use load::{ModelFiles, Start};
pub use mlm::{MlmJob, MlmOutcome, MlmSettings, train_mlm};
pub use model::Pooling;
pub use models::ModelConfig;
pub use strategy::{Strategy, Unfreezing};
pub use vocab::ScratchModel;

/// The CPU device's random stream is one per process: unit tests that seed it and then
/// draw from it hold this lock, so a test running beside them cannot draw in between.
#[cfg(test)]
pub(crate) fn seeded_device_lock() -> std::sync::MutexGuard<'static, ()> {
    static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SEEDED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
