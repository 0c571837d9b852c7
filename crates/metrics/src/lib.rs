//! thaw-metrics: the metrics each task is scored with, plain functions over predictions and
//! truths, no dependencies, so training (per epoch), the planner (baselines) and the analysis
//! (intervals resampled from stored predictions) compute them alike.
//!
//! Each matches its field's reference implementation on fixtures that implementation wrote
//! (`scripts/make_metric_fixtures.py`: scikit-learn, seqeval 1.2.2's default mode, scipy):
//! `tests/reference.rs`.

pub mod classification;
pub mod correlation;
pub mod entities;
pub mod multi_label;
pub mod per_example;
pub mod task;

pub use per_example::PerExample;
pub use task::{Metric, Targets, Task, TaskScores};
