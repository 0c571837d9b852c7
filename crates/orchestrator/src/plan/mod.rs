//! The plan of a sweep: a checked sweep file becomes a deterministic list of jobs with
//! stable keys, and the shared intermediate-MLM stages they depend on.
//!
//! [`expand`] builds it (cells, then jobs per cell), [`rules`] says which combinations are
//! left out and why, [`setup`] records what the report shows, [`describe`] is what `thaw
//! plan` prints. `grid.mlm_freeze` applies to jobs with an intermediate stage only.

mod describe;
mod expand;
mod rules;
mod setup;

use thaw_analysis::Setup;
use thaw_analysis::cells::CellKey;
use thaw_train::{BackendKind, Pooling};

use crate::jobspec::{DataSpec, JobSpec, ModelSpec, StageSpec};
use crate::keys::job_key;
use crate::spec::Keep;
use crate::validate::SearchPlan;

pub use expand::{build_plan, expand};

#[derive(Debug, Clone)]
pub struct StagePlan {
    pub key: String,
    pub spec: StageSpec,
    pub mlm_freeze: usize,
}

#[derive(Debug, Clone)]
pub struct JobPlan {
    pub key: String,
    pub spec: JobSpec,
    pub mlm_freeze: Option<usize>,
    pub lr: f64,
    pub pooling: Pooling,
    /// The strategy's name in the sweep file ("plain", "llrd-0.8", a `[strategy.NAME]`).
    pub strategy: String,
}

impl JobPlan {
    /// This job cut short after `epochs` epochs (on its own schedule): a halving rung.
    pub fn rung(&self, epochs: usize) -> JobPlan {
        let spec = JobSpec { rung: Some(epochs), keep_weights: false, ..self.spec.clone() };
        JobPlan { key: job_key(&spec), spec, ..self.clone() }
    }

    /// The cell the job belongs to, as the search and the report group results.
    pub fn cell_key(&self) -> CellKey {
        CellKey {
            init: self.spec.init,
            intermediate: self.spec.intermediate.clone(),
            mlm_freeze: self.mlm_freeze.map(|k| k as i64),
            pooling: self.pooling.as_str().to_string(),
            freeze: self.spec.freeze as i64,
            train_size: self.spec.train_size.map(|n| n as i64),
            strategy: self.strategy.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub sweep: String,
    pub model: ModelSpec,
    pub data: DataSpec,
    pub stages: Vec<StagePlan>,
    pub jobs: Vec<JobPlan>,
    /// Rules applied and combinations left out, with counts.
    pub notes: Vec<String>,
    /// What the report shows as the setup.
    pub setup: Setup,
    /// Which fine-tuned weights the sweep keeps (`[train] keep`).
    pub keep: Keep,
    /// `[search]`: halving and racing. None: every job of `jobs` runs.
    pub search: Option<SearchPlan>,
    /// What every job and stage runs on (part of their keys).
    pub backend: BackendKind,
}
