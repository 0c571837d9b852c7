//! The sweep as planned: what the planner records once, at registration, in the sweep's row
//! (`setup_json`), and every reader (the report, the search's story) shows. One type for
//! writer and readers, so a field the report reads is a field the planner must fill.
//!
//! Every field is optional, as older thaw versions recorded fewer of them: a sweep
//! registered by one of them still reports, with "not recorded" where a field would be. The
//! planner fills them all.

use serde::{Deserialize, Serialize};
use thaw_metrics::{Metric, Task};

use crate::baseline::Baselines;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// The model's origin: a hub id with its revision, or a folder.
    pub model: Option<String>,
    pub dataset: Option<String>,
    /// Training examples of the largest training-set size (the whole split without a
    /// `train_size` axis).
    pub train_examples: Option<usize>,
    pub validation_examples: Option<usize>,
    pub test_examples: Option<usize>,
    /// The majority-class baselines of validation and test.
    pub baseline: Option<Baselines>,
    /// What the examples ask (classification unless set) and the metric every choice and
    /// table uses (accuracy in setups from before tasks).
    #[serde(default)]
    pub task: Task,
    #[serde(default)]
    pub metric: Metric,
    pub max_length: Option<usize>,
    pub grid: Option<GridSetup>,
    /// `init = "scratch-own-vocab"`'s encoder, when the grid has it.
    pub scratch_model: Option<ScratchSize>,
    pub trainer: Option<TrainerSetup>,
    pub description: Option<String>,
    /// The combination rules applied and what they left out, in words.
    pub rules: Option<String>,
    pub search: Option<SearchSetup>,
    /// The machine that registered the sweep.
    pub hardware: Option<Hardware>,
    /// What every job and stage is planned for ("flex", "wgpu", ...).
    pub backend: Option<String>,
}

/// The grid's axes as the sweep file configured them (what ran may be fewer: the rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSetup {
    pub freeze: Vec<usize>,
    pub init: Vec<String>,
    pub intermediate: Vec<String>,
    pub seeds: Vec<u64>,
    pub train_size: Vec<Option<usize>>,
    pub pooling: Vec<String>,
    /// Each strategy's name, with what it does when it is not plain.
    pub strategy: Vec<String>,
}

/// The encoder `init = "scratch-own-vocab"` trains, with its learnt vocabulary's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScratchSize {
    pub vocab_size: usize,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub lowercase: bool,
}

/// The `[train]` settings every fine-tuning job shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerSetup {
    pub epochs: usize,
    pub batch_size: usize,
    pub weight_decay: f64,
    pub warmup_ratio: f64,
    pub max_grad_norm: f64,
    /// Which fine-tuned weights are kept ("none", "best-per-cell", "all").
    pub keep: String,
}

/// The adaptive search's settings (`[search]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSetup {
    pub halving: Option<HalvingSetup>,
    /// Seeds raced from `min` to `max` per cell.
    pub seeds: Option<SeedRange>,
    pub budget_minutes: Option<f64>,
    /// Jobs of the grid the search replaces.
    pub grid_jobs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HalvingSetup {
    pub rate: usize,
    pub rung_epochs: usize,
    pub rung_seeds: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRange {
    pub min: usize,
    pub max: usize,
}

/// The machine a sweep was registered on, as the report states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    pub cpu: String,
    pub cores: usize,
    pub backend: String,
}

impl Setup {
    /// The setup stored with a sweep; None when it is missing or not a setup (a sweep
    /// registered before setups were recorded).
    pub fn parse(json: &str) -> Option<Setup> {
        serde_json::from_str(json).ok()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a setup is plain data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_round_trips_and_old_ones_missing_fields_still_read() {
        let old = r#"{"dataset":"rotten_tomatoes","train_examples":500}"#;
        let setup = Setup::parse(old).expect("an early setup reads");
        assert_eq!(setup.train_examples, Some(500));
        assert!(setup.baseline.is_none() && setup.grid.is_none());
        assert_eq!(Setup::parse(&setup.to_json()), Some(setup));
        assert_eq!(Setup::parse("not json"), None);
    }
}
