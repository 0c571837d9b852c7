//! Plain data types in and out of the store. Statuses and inits are enums here, stored as
//! the same lowercase text the schema's CHECK constraints and a `sqlite3` user see.

use serde::{Deserialize, Serialize};

/// Where a job or a stage is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkStatus {
    Pending,
    Running,
    Done,
    Failed,
}

impl WorkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkStatus::Pending => "pending",
            WorkStatus::Running => "running",
            WorkStatus::Done => "done",
            WorkStatus::Failed => "failed",
        }
    }

    /// Pending or running: neither a result nor a failure yet.
    pub fn is_unfinished(self) -> bool {
        matches!(self, WorkStatus::Pending | WorkStatus::Running)
    }
}

impl std::fmt::Display for WorkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where an encoder's weights start: the checkpoint's, or BERT's random initialisation (with
/// the checkpoint's architecture and vocabulary, or with its own vocabulary, learnt from the
/// training text, and the size `[scratch]` sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    Pretrained,
    Scratch,
    #[serde(rename = "scratch-own-vocab")]
    ScratchOwnVocab,
}

impl Init {
    pub fn as_str(self) -> &'static str {
        match self {
            Init::Pretrained => "pretrained",
            Init::Scratch => "scratch",
            Init::ScratchOwnVocab => "scratch-own-vocab",
        }
    }

    pub fn is_scratch(self) -> bool {
        matches!(self, Init::Scratch | Init::ScratchOwnVocab)
    }
}

impl std::fmt::Display for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct NewSweep {
    pub name: String,
    pub spec_path: String,
    pub spec_toml: String,
    pub model: String,
    pub dataset: String,
    pub setup_json: String,
}

#[derive(Debug, Clone)]
pub struct NewStage {
    pub key: String,
    pub name: String,
    pub init: Init,
    pub mlm_freeze: i64,
    pub spec_json: String,
    /// The backend it is planned for ("flex", "ndarray", "wgpu").
    pub backend: String,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub key: String,
    pub stage_key: Option<String>,
    pub init: Init,
    pub intermediate: String,
    pub mlm_freeze: Option<i64>,
    pub freeze: i64,
    pub num_layers: i64,
    pub seed: i64,
    pub lr: f64,
    pub train_size: Option<i64>,
    pub pooling: String,
    pub prefix_group: String,
    pub spec_json: String,
    /// Epochs after which this job stops: a successive-halving rung. None: a full job.
    pub rung: Option<i64>,
    /// The backend it is planned for ("flex", "ndarray", "wgpu"); workers claim by it.
    pub backend: String,
    /// The strategy's name in the sweep file ("plain" unless `grid.strategy` says otherwise).
    pub strategy: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanSummary {
    pub sweep_id: i64,
    pub total_jobs: usize,
    pub new_jobs: usize,
}

/// Work handed to a worker by a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub kind: crate::WorkKind,
    pub key: String,
    pub spec_json: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct EpochRow {
    pub job_key: String,
    pub epoch: i64,
    pub train_loss: f64,
    pub val_loss: f64,
    /// The sweep's metric on validation.
    pub val_metric: f64,
    /// Single-label classification only.
    pub val_accuracy: Option<f64>,
    pub val_macro_f1: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub best_epoch: i64,
    /// The sweep's metric, by name, and its value on each split.
    pub metric: String,
    pub val_metric: f64,
    pub test_metric: f64,
    /// Every score the task reports (a `thaw_metrics::TaskScores` as JSON).
    pub val_scores: String,
    pub test_scores: String,
    /// Every example's prediction (a `thaw_metrics::Targets` as JSON).
    pub val_predictions: String,
    pub test_predictions: String,
    /// What each example contributes to the metric (a `thaw_metrics::PerExample` as JSON).
    pub val_per_example: String,
    pub test_per_example: String,
    pub val_loss: f64,
    /// Single-label classification only.
    pub val_accuracy: Option<f64>,
    pub val_macro_f1: Option<f64>,
    pub test_loss: f64,
    pub test_accuracy: Option<f64>,
    pub test_macro_f1: Option<f64>,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub prefix_seconds: f64,
    pub load_seconds: f64,
    pub examples_per_second: f64,
    pub trainable_params: i64,
    pub total_params: i64,
    pub prefix_cache: String,
    pub backend: String,
    /// The device it ran on: the CPU's model, or the GPU adapter's name.
    pub device: String,
    /// Per example of the validation split (best epoch) and of the test split: predicted
    /// right or not, as [`correct_text`] writes it.
    pub val_correct: String,
    pub test_correct: String,
}

/// Per-example correctness as stored: one '1' (right) or '0' (wrong) per example.
pub fn correct_text(correct: &[bool]) -> String {
    correct.iter().map(|&c| if c { '1' } else { '0' }).collect()
}

/// The inverse of [`correct_text`]; None for text that is not '0'/'1' only.
pub fn parse_correct(text: &str) -> Option<Vec<bool>> {
    text.chars()
        .map(|c| match c {
            '1' => Some(true),
            '0' => Some(false),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageOutcomeRow {
    pub checkpoint_path: String,
    /// Set when the checkpoint was also stored in the database (a PostgreSQL store).
    pub checkpoint_sha256: Option<String>,
    pub loss_before: f64,
    pub perplexity_before: f64,
    pub loss_after: f64,
    pub perplexity_after: f64,
    pub train_docs: i64,
    pub heldout_docs: i64,
    pub trainable_params: i64,
    pub train_seconds: f64,
    pub backend: String,
    pub head_warmup_steps: Option<i64>,
    pub heldout_chars_per_token: f64,
}

/// A finished stage's checkpoint: the path its worker wrote, and its content hash when the
/// bytes are in the database too.
#[derive(Debug, Clone, PartialEq)]
pub struct StageCheckpoint {
    pub path: String,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SweepRow {
    pub id: i64,
    pub name: String,
    pub spec_path: String,
    pub model: String,
    pub dataset: String,
    pub setup_json: String,
    pub created_at: f64,
    pub updated_at: f64,
}

/// One row of the `job_results` view: a job of the plan, with its result if it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct JobResultRow {
    pub sweep: String,
    pub ord: i64,
    pub job_key: String,
    pub init: Init,
    pub intermediate: String,
    pub mlm_freeze: Option<i64>,
    pub freeze: i64,
    pub unfrozen_layers: i64,
    pub num_layers: i64,
    pub seed: i64,
    pub lr: f64,
    pub train_size: Option<i64>,
    pub pooling: String,
    pub status: WorkStatus,
    pub attempts: i64,
    pub error: Option<String>,
    pub best_epoch: Option<i64>,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub val_macro_f1: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub test_macro_f1: Option<f64>,
    pub train_seconds: Option<f64>,
    pub eval_seconds: Option<f64>,
    pub prefix_seconds: Option<f64>,
    pub examples_per_second: Option<f64>,
    pub trainable_params: Option<i64>,
    pub total_params: Option<i64>,
    pub prefix_cache: Option<String>,
    pub backend: Option<String>,
    /// Jobs that share one frozen-prefix computation (from `jobs`, not the view).
    pub prefix_group: String,
    /// Per-example correctness (see [`correct_text`]); None before the job is done and for
    /// results stored before thaw kept it.
    pub val_correct: Option<String>,
    pub test_correct: Option<String>,
    /// The device the result came from; None for results stored before thaw recorded it.
    pub device: Option<String>,
    /// The job's strategy by its sweep-file name ("plain" for a fixed depth).
    pub strategy: String,
    /// The sweep's metric by name, and its values; None before the job is done.
    pub metric: Option<String>,
    pub val_metric: Option<f64>,
    pub test_metric: Option<f64>,
    /// Every score the task reports (a `thaw_metrics::TaskScores` as JSON); None before the
    /// job is done and for results stored before thaw kept them.
    pub val_scores: Option<String>,
    pub test_scores: Option<String>,
    /// What each example contributes to the metric (a `thaw_metrics::PerExample` as JSON),
    /// what one-seed intervals resample; None before the job is done and for results
    /// stored before thaw kept them.
    pub val_per_example: Option<String>,
    pub test_per_example: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StageRow {
    pub key: String,
    pub name: String,
    pub init: Init,
    pub mlm_freeze: i64,
    pub status: WorkStatus,
    pub attempts: i64,
    pub worker: Option<String>,
    pub error: Option<String>,
    pub checkpoint_path: Option<String>,
    pub loss_before: Option<f64>,
    pub perplexity_before: Option<f64>,
    pub loss_after: Option<f64>,
    pub perplexity_after: Option<f64>,
    pub train_docs: Option<i64>,
    pub heldout_docs: Option<i64>,
    pub trainable_params: Option<i64>,
    pub train_seconds: Option<f64>,
    /// Set when the MLM head was fresh and fitted on the frozen encoder for this many steps first.
    pub head_warmup_steps: Option<i64>,
    /// Mean characters per masked held-out token; None for stages from before it was kept.
    pub heldout_chars_per_token: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub pending: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
}

impl StatusCounts {
    pub fn add(&mut self, status: WorkStatus) {
        match status {
            WorkStatus::Pending => self.pending += 1,
            WorkStatus::Running => self.running += 1,
            WorkStatus::Done => self.done += 1,
            WorkStatus::Failed => self.failed += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.pending + self.running + self.done + self.failed
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningRow {
    pub key: String,
    pub worker: String,
    /// Seconds since the last heartbeat and since the claim, by the database's clock.
    pub heartbeat_age: Option<f64>,
    pub running_for: Option<f64>,
}

/// Worker seconds and counts of done work: full jobs and rung jobs apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DonePace {
    pub full: (f64, usize),
    pub rungs: (f64, usize),
}

/// A job's worker and times (unix seconds, the database's clock).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobClaim {
    pub worker: Option<String>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub heartbeat_age: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    pub jobs: StatusCounts,
    pub stages: StatusCounts,
    pub running: Vec<RunningRow>,
}

/// A successive-halving rung job and, once done, its validation numbers at the rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RungRow {
    pub job_key: String,
    pub init: Init,
    pub intermediate: String,
    pub mlm_freeze: Option<i64>,
    pub freeze: i64,
    pub seed: i64,
    pub lr: f64,
    pub train_size: Option<i64>,
    pub pooling: String,
    pub strategy: String,
    pub rung: i64,
    pub status: WorkStatus,
    pub val_metric: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_macro_f1: Option<f64>,
}

/// What the adaptive search decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchAction {
    /// A learning rate goes on from the rung to the full epochs.
    Promote,
    /// A learning rate stops at the rung.
    Prune,
    /// A cell gets one more seed (racing).
    AddSeed,
    /// The search is over (the reason says why).
    Stop,
}

impl SearchAction {
    /// "promoted", "pruned", "seed added", "stopped": how reports and logs name it.
    pub fn done_text(self) -> &'static str {
        match self {
            SearchAction::Promote => "promoted",
            SearchAction::Prune => "pruned",
            SearchAction::AddSeed => "seed added",
            SearchAction::Stop => "stopped",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    /// Identity of the decision: the same decision made again is stored once.
    pub decision: String,
    pub action: SearchAction,
    /// The cell as JSON; empty for the search as a whole.
    pub cell: String,
    pub lr: Option<f64>,
    pub seed: Option<i64>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DecisionRow {
    pub round: i64,
    pub action: SearchAction,
    pub cell: String,
    pub lr: Option<f64>,
    pub seed: Option<i64>,
    pub reason: String,
}

impl SearchAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchAction::Promote => "promote",
            SearchAction::Prune => "prune",
            SearchAction::AddSeed => "add_seed",
            SearchAction::Stop => "stop",
        }
    }
}

/// Enums stored as text (the schema's CHECK constraints list the same words), read and
/// written through sqlx's `Any` driver, which both dialects share.
macro_rules! text_column {
    ($type:ty, [$($variant:expr),+]) => {
        impl sqlx::Type<sqlx::Any> for $type {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }

            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $type {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Any>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $type {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                [$($variant),+]
                    .into_iter()
                    .find(|v: &$type| v.as_str() == text)
                    .ok_or_else(|| format!("'{text}' is not a {}", stringify!($type)).into())
            }
        }
    };
}

text_column!(
    WorkStatus,
    [WorkStatus::Pending, WorkStatus::Running, WorkStatus::Done, WorkStatus::Failed]
);
text_column!(Init, [Init::Pretrained, Init::Scratch, Init::ScratchOwnVocab]);
text_column!(
    SearchAction,
    [SearchAction::Promote, SearchAction::Prune, SearchAction::AddSeed, SearchAction::Stop]
);
