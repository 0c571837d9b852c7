//! thaw-orchestrator: from a sweep file to finished jobs.
//!
//! The data flow, file by file: [`spec`] parses the TOML and [`validate`] checks it against
//! the model; [`resolve`] finds the model and data, [`keys`] holds every hash and key rule,
//! [`strategies`] resolves the fine-tuning strategies; [`plan`] expands the grid into jobs
//! with stable keys and shared MLM stages ([`jobspec`]: what a worker gets); [`register`]
//! records the plan in the store; [`search`] decides which jobs an adaptive sweep runs next;
//! [`sweep`] is `thaw run`'s loop; [`launch`] runs worker processes with progress bars,
//! [`cluster`] hands them to Slurm or Kubernetes; [`worker`] is one worker claiming work
//! from the store, [`inputs`] what a job or stage runs on, [`files`] where a worker's files
//! live (and how they travel through a PostgreSQL store); [`export`] writes a job or stage
//! as a Hugging Face folder.

pub mod advise;
pub mod cluster;
pub mod export;
pub mod files;
pub mod inputs;
pub mod jobspec;
pub mod keys;
pub mod launch;
pub mod plan;
pub mod register;
pub mod resolve;
pub mod search;
pub mod spec;
pub mod strategies;
pub mod sweep;
pub mod validate;
pub mod worker;

pub use plan::{Plan, build_plan};
pub use register::register;
pub use spec::{SpecError, read};
