//! thaw-orchestrator: from a sweep file to finished jobs.
//!
//! [`spec`] parses and checks the TOML, [`resolve`] finds the model and data, [`keys`]
//! holds every hash and key rule, [`plan`] expands the grid into jobs with stable keys and shared MLM stages,
//! [`strategies`] resolves the fine-tuning strategies a grid crosses,
//! [`register`] records the plan in the store, [`search`] decides which jobs an adaptive
//! sweep runs next, [`export`] writes a job or stage as a
//! Hugging Face folder, [`runner`] is one worker claiming work from
//! the store, [`files`] says where a worker's files live (and carries them through a
//! PostgreSQL store), [`launch`] runs several worker processes with progress bars,
//! [`cluster`] hands workers to Slurm or Kubernetes.

pub mod cluster;
pub mod export;
pub mod files;
pub mod jobspec;
pub mod keys;
pub mod launch;
pub mod plan;
pub mod register;
pub mod resolve;
pub mod runner;
pub mod search;
pub mod spec;
pub mod strategies;

pub use plan::{Plan, build_plan};
pub use register::register;
pub use spec::{SpecError, read};
