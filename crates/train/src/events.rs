//! What a running job tells its caller: phases, steps and epochs, as plain data a
//! caller can turn into progress bars or log lines (and serialise across processes).

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Load,
    Tokenize,
    /// Computing the frozen layers' output once (the frozen-prefix cache).
    Prefix,
    Train,
    Evaluate,
    Mlm,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    /// The job's metric on validation: what the best epoch is chosen on.
    pub val_metric: f64,
    /// Single-label classification's accuracy and macro-F1 on validation.
    pub val_accuracy: Option<f64>,
    pub val_macro_f1: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Phase {
        phase: Phase,
        detail: String,
    },
    Step {
        phase: Phase,
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f64,
        examples_per_second: f64,
    },
    Epoch(EpochMetrics),
    /// What trains from `step` (0-based) on: layers `[frozen_depth, L)` and the head. Sent at
    /// the first step and whenever gradual unfreezing or LP-FT opens more layers.
    Trainable {
        step: usize,
        frozen_depth: usize,
        trainable_params: usize,
    },
    /// Each encoder layer's gradient-to-weight norm ratio at `step` (index 0 = the lowest
    /// layer; None: frozen). Sent at every step of a job that asks for it
    /// ([`crate::FineTuneJob::measure_gradient_ratios`]).
    GradientRatios {
        step: usize,
        by_layer: Vec<Option<f64>>,
    },
}

/// The caller's side of a running job: where events go, and a flag that asks it to stop.
pub struct Observer<'a> {
    /// `Send`: a job runs on a thread of the compute pool ([`crate::backend::on_compute_threads`]).
    pub on_event: &'a mut (dyn FnMut(&Event) + Send),
    pub stop: &'a AtomicBool,
}

impl Observer<'_> {
    pub fn emit(&mut self, event: Event) {
        (self.on_event)(&event);
    }

    pub fn phase(&mut self, phase: Phase, detail: impl Into<String>) {
        self.emit(Event::Phase { phase, detail: detail.into() });
    }

    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Runs `f` with an observer that drops events and never stops (tests, benchmarks).
pub fn silently<T>(f: impl FnOnce(&mut Observer) -> T) -> T {
    let stop = AtomicBool::new(false);
    let mut sink = |_: &Event| {};
    let mut observer = Observer { on_event: &mut sink, stop: &stop };
    f(&mut observer)
}
