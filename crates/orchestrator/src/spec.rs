//! The sweep file: a TOML document parsed into [`SweepFile`], every unknown key
//! rejected, every error reported as `file:line:col: message` with the valid choices.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use thaw_train::data::{Metric, Task};
use thaw_train::{MlmSettings, Pooling};

/// An error in a sweep file, located where the TOML allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.col) {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SpecError {}

/// Locates errors in one sweep file's text.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> SpecError {
        let (line, col) = match span {
            Some(span) => {
                let before = &self.text[..span.start.min(self.text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
                (Some(line), Some(col))
            }
            None => (None, None),
        };
        SpecError { file: self.path.clone(), line, col, message: message.into() }
    }

    pub fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> SpecError {
        self.error(Some(value.span()), message)
    }

    /// A path written in the file, resolved against the file's folder and made absolute: it is
    /// stored with the jobs, and a worker started from another folder must find it too.
    pub fn resolve(&self, written: &str) -> PathBuf {
        let p = Path::new(written);
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        };
        std::path::absolute(&joined).unwrap_or(joined)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub sweep: SweepSection,
    pub model: ModelSection,
    pub data: DataSection,
    #[serde(default)]
    pub train: TrainSection,
    #[serde(default)]
    pub intermediate: BTreeMap<String, Spanned<IntermediateSection>>,
    /// `[strategy.NAME]`: fine-tuning strategies beyond a fixed freeze depth.
    #[serde(default)]
    pub strategy: BTreeMap<String, Spanned<StrategySection>>,
    /// `[scratch]`: the model `init = "scratch-own-vocab"` trains.
    #[serde(default)]
    pub scratch: ScratchSection,
    pub grid: GridSection,
    /// Adaptive search; absent: every job of the grid runs.
    pub search: Option<SearchSection>,
    #[serde(default)]
    pub cache: CacheSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A Hugging Face hub id, e.g. "sentence-transformers/all-MiniLM-L6-v2".
    pub hub: Option<Spanned<String>>,
    pub revision: Option<String>,
    /// A local folder with config.json, tokenizer.json and model.safetensors.
    pub path: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// A dataset of the asset route ("rotten_tomatoes", "bbc_news") instead of files.
    pub builtin: Option<Spanned<String>>,
    pub train: Option<Spanned<String>>,
    pub validation: Option<Spanned<String>>,
    pub test: Option<Spanned<String>>,
    /// "classification" (the default), "regression", "tokens" or "multi_label".
    #[serde(default)]
    pub task: Task,
    /// What every choice on validation compares; defaults to the task's own.
    pub metric: Option<Spanned<Metric>>,
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// The second text of sentence pairs.
    pub text_pair_field: Option<String>,
    #[serde(default = "default_label_field")]
    pub label_field: String,
    /// Word tagging: the fields listing the words and their tags.
    #[serde(default = "default_tokens_field")]
    pub tokens_field: String,
    #[serde(default = "default_tags_field")]
    pub tags_field: String,
    /// Multi-label: the field listing the labels that apply.
    #[serde(default = "default_labels_field")]
    pub labels_field: String,
    #[serde(default = "default_max_length")]
    pub max_length: Spanned<usize>,
    #[serde(default = "default_holdout")]
    pub holdout_fraction: Spanned<f64>,
    /// Keep at most this many validation examples (stratified, fixed): faster epochs.
    pub max_validation: Option<Spanned<usize>>,
    pub max_test: Option<Spanned<usize>>,
    #[serde(default)]
    pub subsample_seed: u64,
}

fn default_text_field() -> String {
    "text".into()
}
fn default_label_field() -> String {
    "label".into()
}
fn default_tokens_field() -> String {
    "tokens".into()
}
fn default_tags_field() -> String {
    "tags".into()
}
fn default_labels_field() -> String {
    "labels".into()
}
fn default_max_length() -> Spanned<usize> {
    Spanned::new(0..0, 64)
}
fn default_holdout() -> Spanned<f64> {
    Spanned::new(0..0, 0.1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    #[serde(default = "d_epochs")]
    pub epochs: Spanned<usize>,
    #[serde(default = "d_batch")]
    pub batch_size: Spanned<usize>,
    /// The learning rate when the grid has no `lr` axis.
    pub lr: Option<Spanned<f64>>,
    #[serde(default = "d_weight_decay")]
    pub weight_decay: f64,
    #[serde(default = "d_warmup")]
    pub warmup_ratio: f64,
    #[serde(default = "d_clip")]
    pub max_grad_norm: f64,
    #[serde(default)]
    pub pooling: Pooling,
    /// Which fine-tuned models to keep on disk for `thaw export` (others are trained again).
    #[serde(default)]
    pub keep: Keep,
}

/// `[train] keep`: which jobs' fine-tuned weights are written beside the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keep {
    /// None: `thaw export` trains a job again from its key (the default; hundreds of MiniLM
    /// jobs would take tens of GB).
    #[default]
    None,
    /// Every job's, until the report is written; then only the seed `thaw export --best`
    /// would take from each cell.
    BestPerCell,
    /// Every job's.
    All,
}

impl Keep {
    /// As the sweep file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Keep::None => "none",
            Keep::BestPerCell => "best-per-cell",
            Keep::All => "all",
        }
    }
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            epochs: d_epochs(),
            batch_size: d_batch(),
            lr: None,
            weight_decay: d_weight_decay(),
            warmup_ratio: d_warmup(),
            max_grad_norm: d_clip(),
            pooling: Pooling::default(),
            keep: Keep::default(),
        }
    }
}

fn d_epochs() -> Spanned<usize> {
    Spanned::new(0..0, 2)
}
fn d_batch() -> Spanned<usize> {
    Spanned::new(0..0, 32)
}
fn d_weight_decay() -> f64 {
    0.01
}
fn d_warmup() -> f64 {
    0.1
}
fn d_clip() -> f64 {
    1.0
}

/// `[intermediate.NAME]`: a masked-LM stage. `task` trains on the training split's own
/// text; any other name needs a `corpus` file (one document per line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntermediateSection {
    pub corpus: Option<Spanned<String>>,
    #[serde(default = "d_mlm_steps")]
    pub steps: usize,
    #[serde(default = "d_batch_plain")]
    pub batch_size: usize,
    #[serde(default = "d_mlm_lr")]
    pub lr: f64,
    pub max_length: Option<usize>,
    #[serde(default = "d_mask")]
    pub mask_prob: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "d_weight_decay")]
    pub weight_decay: f64,
    #[serde(default = "d_mlm_warmup")]
    pub warmup_ratio: f64,
    /// Steps fitting a fresh MLM head on the frozen encoder first (MiniLM has no MLM head).
    #[serde(default = "d_head_warmup_steps")]
    pub head_warmup_steps: usize,
    #[serde(default = "d_head_warmup_lr")]
    pub head_warmup_lr: f64,
}

impl Default for IntermediateSection {
    fn default() -> Self {
        IntermediateSection {
            corpus: None,
            steps: d_mlm_steps(),
            batch_size: d_batch_plain(),
            lr: d_mlm_lr(),
            max_length: None,
            mask_prob: d_mask(),
            seed: 0,
            weight_decay: d_weight_decay(),
            warmup_ratio: d_mlm_warmup(),
            head_warmup_steps: d_head_warmup_steps(),
            head_warmup_lr: d_head_warmup_lr(),
        }
    }
}

// The intermediate stage's defaults are the worker's own (one place to change them).
fn d_head_warmup_steps() -> usize {
    MlmSettings::default().head_warmup_steps
}
fn d_head_warmup_lr() -> f64 {
    MlmSettings::default().head_warmup_lr
}

fn d_mlm_steps() -> usize {
    MlmSettings::default().steps
}
fn d_batch_plain() -> usize {
    32
}
fn d_mlm_lr() -> f64 {
    MlmSettings::default().lr
}
fn d_mask() -> f64 {
    MlmSettings::default().mask_prob
}
fn d_mlm_warmup() -> f64 {
    MlmSettings::default().warmup_ratio
}

/// `[strategy.NAME]`: how jobs fine-tune above their freeze depth; `grid.strategy` lists the
/// names to run ("plain", a fixed depth with one learning rate, is built in). Every key is
/// optional; together they combine (LLRD with gradual unfreezing, say).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySection {
    /// Layer-wise learning-rate decay in (0, 1]: layer i of L trains at lr·decay^(L−i).
    pub llrd_decay: Option<Spanned<f64>>,
    /// "fixed" (default), "gradual" (ULMFiT) or "lp-ft" (a linear probe first).
    pub unfreeze: Option<Spanned<UnfreezeKind>>,
    /// Gradual unfreezing: steps between unfreezing one more layer; absent: every epoch.
    pub unfreeze_every: Option<Spanned<usize>>,
    /// LP-FT: epochs training the head alone (default 1), at `head_lr` (default 1e-3).
    pub head_epochs: Option<Spanned<usize>>,
    pub head_lr: Option<Spanned<f64>>,
    /// Re-initialise the top n encoder layers before fine-tuning.
    pub reinit_top: Option<Spanned<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnfreezeKind {
    Fixed,
    Gradual,
    LpFt,
}

/// `[scratch]`: the encoder `init = "scratch-own-vocab"` trains from random weights, with a
/// WordPiece vocabulary learnt from the training split's text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScratchSection {
    #[serde(default = "d_vocab_size")]
    pub vocab_size: Spanned<usize>,
    #[serde(default = "d_scratch_layers")]
    pub layers: Spanned<usize>,
    #[serde(default = "d_scratch_hidden")]
    pub hidden: Spanned<usize>,
    #[serde(default = "d_scratch_heads")]
    pub heads: Spanned<usize>,
    /// Lowercase the text before learning and applying the vocabulary (SMILES, code and
    /// many languages need case: off by default).
    #[serde(default)]
    pub lowercase: bool,
}

impl Default for ScratchSection {
    fn default() -> Self {
        ScratchSection {
            vocab_size: d_vocab_size(),
            layers: d_scratch_layers(),
            hidden: d_scratch_hidden(),
            heads: d_scratch_heads(),
            lowercase: false,
        }
    }
}

fn d_vocab_size() -> Spanned<usize> {
    Spanned::new(0..0, 4000)
}
fn d_scratch_layers() -> Spanned<usize> {
    Spanned::new(0..0, 4)
}
fn d_scratch_hidden() -> Spanned<usize> {
    Spanned::new(0..0, 256)
}
fn d_scratch_heads() -> Spanned<usize> {
    Spanned::new(0..0, 4)
}

/// `grid.init` values; the store owns the type (it is a column of `jobs` and `stages`).
pub use thaw_store::Init;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSection {
    pub freeze: Spanned<FreezeAxis>,
    #[serde(default = "d_init")]
    pub init: Vec<Init>,
    #[serde(default = "d_intermediate")]
    pub intermediate: Vec<Spanned<String>>,
    /// Fixed seeds; absent when `[search] seeds` races them.
    pub seeds: Option<Spanned<Vec<u64>>>,
    pub lr: Option<Spanned<LrAxis>>,
    pub train_size: Option<Vec<Spanned<usize>>>,
    #[serde(default = "d_mlm_freeze")]
    pub mlm_freeze: Vec<Spanned<usize>>,
    pub pooling: Option<Vec<Pooling>>,
    /// Names of `[strategy.NAME]` sections, and "plain"; absent: plain only.
    pub strategy: Option<Vec<Spanned<String>>>,
    /// Layer-wise learning-rate decay as an axis crossing every strategy, e.g. [1.0, 0.9, 0.8].
    pub llrd_decay: Option<Spanned<Vec<f64>>>,
    /// Also freeze randomly initialised layers (a random-features baseline). Off by default.
    #[serde(default)]
    pub scratch_freeze: bool,
    /// Also run intermediate MLM from random initialisation. Off by default.
    #[serde(default)]
    pub scratch_intermediate: bool,
}

fn d_init() -> Vec<Init> {
    vec![Init::Pretrained]
}
fn d_intermediate() -> Vec<Spanned<String>> {
    vec![Spanned::new(0..0, "none".to_string())]
}
fn d_mlm_freeze() -> Vec<Spanned<usize>> {
    vec![Spanned::new(0..0, 0)]
}

/// `[search]`: spend jobs where the answer is still open.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSection {
    /// "grid" (every lr runs every seed) or "halving" (successive halving within each cell).
    #[serde(default = "d_lr_search")]
    pub lr: Spanned<LrSearch>,
    /// Halving keeps the best 1/rate of a cell's learning rates at the rung (rounded up).
    #[serde(default = "d_halving_rate")]
    pub halving_rate: Spanned<usize>,
    /// Epochs a rung trains before learning rates are ranked.
    #[serde(default = "d_rung_epochs")]
    pub rung_epochs: Spanned<usize>,
    /// Seeds each learning rate's rung runs on (the cell's first ones).
    #[serde(default = "d_rung_seeds")]
    pub rung_seeds: Spanned<usize>,
    /// Racing: every cell starts with `min` seeds, and the cells still tied with the leader
    /// get more, up to `max`.
    pub seeds: Option<Spanned<SeedRace>>,
    /// Stop adding seeds once the sweep's jobs have used this much worker time in all.
    pub budget_minutes: Option<Spanned<f64>>,
    /// "advise": racing starts the cells `thaw advise` predicted far below the best with one
    /// seed instead of `min` (they get more only when their results tie with the leader).
    pub prior: Option<Spanned<Prior>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prior {
    Advise,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSearch {
    #[default]
    Grid,
    Halving,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRace {
    pub min: usize,
    pub max: usize,
}

fn d_lr_search() -> Spanned<LrSearch> {
    Spanned::new(0..0, LrSearch::Grid)
}
fn d_halving_rate() -> Spanned<usize> {
    Spanned::new(0..0, 3)
}
fn d_rung_epochs() -> Spanned<usize> {
    Spanned::new(0..0, 1)
}
fn d_rung_seeds() -> Spanned<usize> {
    Spanned::new(0..0, 1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Memory for frozen-prefix activations per worker, in MiB; 0 disables the cache.
    #[serde(default = "d_prefix_mb")]
    pub prefix_mb: usize,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection { prefix_mb: d_prefix_mb() }
    }
}

fn d_prefix_mb() -> usize {
    2048
}

/// `freeze = "all"` (0..=L) or a list of depths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreezeAxis {
    All,
    Depths(Vec<usize>),
}

impl<'de> Deserialize<'de> for FreezeAxis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FreezeAxis;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#""all" or a list of freeze depths such as [0, 3, 6]"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FreezeAxis, E> {
                if v == "all" {
                    Ok(FreezeAxis::All)
                } else {
                    Err(E::custom(format!(
                        r#"freeze must be "all" or a list of depths such as [0, 3, 6], found "{v}""#
                    )))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FreezeAxis, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<i64>()? {
                    if v < 0 {
                        return Err(de::Error::custom(format!(
                            "freeze depth {v} is negative; depths count frozen layers from 0"
                        )));
                    }
                    out.push(v as usize);
                }
                Ok(FreezeAxis::Depths(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Learning rates: one list for every cell, or one list per [`LrGroup`].
#[derive(Debug, Clone, PartialEq)]
pub enum LrAxis {
    Same(Vec<f64>),
    ByGroup(LrGroups),
}

/// The cells that want learning rates of the same size: frozen models want larger steps than
/// full fine-tuning, and random weights larger still.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrGroup {
    /// Pretrained, k = 0: every layer trains.
    Full,
    /// Pretrained, 0 < k < L.
    Partial,
    /// Pretrained, k = L: only the head trains.
    HeadOnly,
    /// Scratch init, any depth.
    Scratch,
}

impl LrGroup {
    pub fn of(init: Init, freeze: usize, num_layers: usize) -> LrGroup {
        match (init, freeze) {
            (Init::Scratch | Init::ScratchOwnVocab, _) => LrGroup::Scratch,
            (Init::Pretrained, 0) => LrGroup::Full,
            (Init::Pretrained, k) if k == num_layers => LrGroup::HeadOnly,
            (Init::Pretrained, _) => LrGroup::Partial,
        }
    }

    /// The default learning rates of the group, when the grid names none.
    ///
    /// Why different: with fewer trainable parameters and fixed features, small steps barely
    /// move the head (measured here: head-only MiniLM at 5e-5 stayed at chance), while full
    /// fine-tuning at large steps forgets pretraining. Three values each, a factor ~2-3 apart,
    /// so the selected lr can be checked against the edges of its range.
    pub fn default_lrs(self) -> Vec<f64> {
        match self {
            LrGroup::Scratch => vec![1e-4, 3e-4, 1e-3],
            LrGroup::Full => vec![2e-5, 5e-5, 1e-4],
            LrGroup::HeadOnly => vec![1e-3, 3e-3, 1e-2],
            LrGroup::Partial => vec![5e-5, 1e-4, 3e-4],
        }
    }
}

/// `lr = { full = [...], partial = [...], head_only = [...], scratch = [...] }`: each
/// [`LrGroup`]'s own list; a group without one gets its defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LrGroups {
    pub full: Option<Vec<f64>>,
    /// Falls back to `full`.
    pub partial: Option<Vec<f64>>,
    pub head_only: Option<Vec<f64>>,
    pub scratch: Option<Vec<f64>>,
}

impl LrGroups {
    /// The group's list as the sweep file gives it (partial falling back to full), if it does.
    pub fn of(&self, group: LrGroup) -> Option<Vec<f64>> {
        match group {
            LrGroup::Full => self.full.clone(),
            LrGroup::Partial => self.partial.clone().or_else(|| self.full.clone()),
            LrGroup::HeadOnly => self.head_only.clone(),
            LrGroup::Scratch => self.scratch.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for LrAxis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LrAxis;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of learning rates such as [2e-5, 5e-5], or a table { full = [...], partial = [...], head_only = [...], scratch = [...] }")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LrAxis, E> {
                Ok(LrAxis::Same(vec![v]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LrAxis, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<f64>()? {
                    out.push(v);
                }
                Ok(LrAxis::Same(out))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<LrAxis, A::Error> {
                LrGroups::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(LrAxis::ByGroup)
            }
        }
        d.deserialize_any(V)
    }
}

/// The first value listed twice in a list of the sweep file, if any.
pub fn listed_twice<T: PartialEq>(values: &[T]) -> Option<&T> {
    values.iter().enumerate().find_map(|(i, v)| values[..i].contains(v).then_some(v))
}

/// Parses a sweep file's text; syntax, type and unknown-key errors carry file:line:col.
pub fn parse(source: &Source) -> Result<SweepFile, SpecError> {
    toml::from_str::<SweepFile>(&source.text).map_err(|e| {
        let message = e.message().trim().to_string();
        let message = if message.starts_with("unknown field") {
            format!(
                "{message}; remove it or check its spelling (every key is documented in the README)"
            )
        } else {
            message
        };
        source.error(e.span(), message)
    })
}

pub fn read(path: &Path) -> Result<(Source, SweepFile), SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError {
        file: path.to_path_buf(),
        line: None,
        col: None,
        message: format!("cannot read the sweep file: {e}"),
    })?;
    let source = Source { path: path.to_path_buf(), text };
    let file = parse(&source)?;
    Ok((source, file))
}
