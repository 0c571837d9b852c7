//! What a worker reports while it works: to its console, or as JSON lines to the `thaw run`
//! that started it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thaw_train::Event;

/// What a worker reports while it works (also the JSON lines a child worker prints).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
    Started { worker: String, key: String, label: String },
    Progress { worker: String, key: String, event: Event },
    Finished { worker: String, key: String, label: String, outcome: Outcome, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    Failed,
    Released,
}

pub type Sink = Arc<dyn Fn(WorkerMessage) + Send + Sync>;
