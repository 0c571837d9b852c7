//! thaw-advise: what frozen features say before any fine-tuning, for `thaw advise`.
//!
//! [`logme`] is LogME (You et al., ICML 2021; the fixed-point form of their 2021 follow-up):
//! the evidence of a Bayesian linear model on the features, per target dimension, averaged.
//! [`hscore`] is the regularized H-score: class means' spread against the features' own,
//! with a Ledoit–Wolf shrunk covariance. [`knn`] and [`probe`] measure accuracy directly:
//! the nearest training neighbours' vote, and a closed-form linear probe.
//!
//! [`signals`] computes all four for one depth's pooled features; `thaw advise` (in the
//! orchestrator) reads them for every depth of the sweep's model.

pub mod hscore;
pub mod knn;
pub mod logme;
pub mod probe;
pub mod signals;
#[cfg(test)]
mod testing;
