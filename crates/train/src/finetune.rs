//! Classification fine-tuning of one job: AdamW with weight decay, linear warmup then
//! linear decay, gradient clipping, per-epoch validation, best epoch chosen on
//! validation, test evaluated once on that epoch's weights.

use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Bool, Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::backend::{BackendKind, on_compute_threads};
use crate::batch::{eval_batches, token_batch, train_batches, type_batch};
use crate::data::Targets;
use crate::encode::{EncodedData, EncodedSplit};
use crate::error::{Result, TrainError};
use crate::events::{EpochMetrics, Event, Observer, Phase};
use crate::freeze::{ParamCounts, count_params};
use crate::gradient_ratio::LayerGroups;
use crate::load::{ModelFiles, Start, load_encoder};
use crate::loss::{UnreadLosses, read_floats};
use crate::model::{Classifier, Pooling};
use crate::models::ModelConfig;
use crate::objective::{Batch, Threshold, batch_loss, forward_batch, predictions, score};
use crate::optim::adamw;
use crate::prefix::{PrefixActivations, PrefixCache, PrefixRows, compute_prefix};
use crate::strategy::{LayerRates, Schedule, Strategy, reinit_top, set_frozen_depth};
use crate::weights::RandomInit;
use thaw_metrics::PerExample;
use thaw_metrics::{Metric, TaskScores};

/// Trainer settings that change a job's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Fraction of all steps spent warming the learning rate up from 0.
    pub warmup_ratio: f64,
    /// Per-parameter gradient norm cap (burn's `GradientClipping::Norm`); 0 disables.
    pub max_grad_norm: f64,
    pub pooling: Pooling,
    /// LLRD, gradual unfreezing, LP-FT, re-init; plain bottom-k freezing by default (and
    /// then absent from the serialised settings, so keys from before strategies stay valid).
    #[serde(default, skip_serializing_if = "Strategy::is_plain")]
    pub strategy: Strategy,
    /// What the best epoch is chosen on (validation); accuracy by default (and then absent
    /// from the serialised settings, so keys from before tasks stay valid).
    #[serde(default, skip_serializing_if = "is_accuracy")]
    pub metric: Metric,
}

fn is_accuracy(metric: &Metric) -> bool {
    *metric == Metric::Accuracy
}

impl Default for FineTuneSettings {
    fn default() -> Self {
        FineTuneSettings {
            epochs: 2,
            batch_size: 32,
            lr: 5e-5,
            weight_decay: 0.01,
            warmup_ratio: 0.1,
            max_grad_norm: 1.0,
            pooling: Pooling::Mean,
            strategy: Strategy::default(),
            metric: Metric::Accuracy,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FineTuneJob {
    pub start: Start,
    /// Embeddings and layers `[0, freeze)` are frozen.
    pub freeze: usize,
    pub seed: u64,
    pub settings: FineTuneSettings,
    pub backend: BackendKind,
    /// Names the start weights for the prefix cache (same name, same weights).
    pub start_identity: String,
    /// Stop after this many epochs, keeping the learning-rate schedule of `settings.epochs`,
    /// and leave the test split unread: a successive-halving rung, whose first epochs are
    /// exactly those of the full job with the same seed.
    pub stop_after_epochs: Option<usize>,
    /// Send each step's layer gradient-to-weight ratios ([`Event::GradientRatios`]); one read
    /// back per step, so only for the probes that report them.
    pub measure_gradient_ratios: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SplitMetrics {
    pub loss: f64,
    /// The settings' metric: what choices compare.
    pub metric: f64,
    /// Every metric the task reports.
    pub scores: TaskScores,
    /// Classification: whether each example of the split (in the split's order) was
    /// predicted right, what intervals over examples are computed from. Empty otherwise.
    pub correct: Vec<bool>,
    /// Every example's prediction, in the split's order (scores in the target's units).
    pub predictions: Targets,
    /// What each example contributes to the metric: what a one-seed interval of a metric
    /// other than accuracy is resampled from.
    pub per_example: PerExample,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FineTuneOutcome {
    pub epochs: Vec<EpochMetrics>,
    /// 1-based epoch with the best validation metric (ties: lower validation loss).
    pub best_epoch: usize,
    pub validation: SplitMetrics,
    /// Test metrics of the best epoch's weights, computed once; None for a rung
    /// (`stop_after_epochs`), which never reads the test split.
    pub test: Option<SplitMetrics>,
    pub trainable_params: usize,
    pub total_params: usize,
    pub load_seconds: f64,
    /// Time spent computing the frozen prefix (0 when another job's cache was reused).
    pub prefix_seconds: f64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub train_examples_per_second: f64,
    pub prefix_cache: PrefixUse,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PrefixUse {
    /// Nothing frozen: there is no prefix to cache.
    None,
    /// Computed by this job (and kept for others).
    Computed,
    /// Reused from an earlier job.
    Reused,
    /// Disabled or over the memory budget: the frozen layers ran on every step.
    Recomputed,
}

/// Which inputs a batch is built from: token ids (embeddings onward) or cached prefix activations.
enum Inputs {
    Tokens,
    Cached(Arc<PrefixActivations>),
}

impl Inputs {
    fn first_layer(&self) -> usize {
        match self {
            Inputs::Tokens => 0,
            Inputs::Cached(p) => p.depth,
        }
    }

    fn first_hidden(
        &self,
        model: &Classifier,
        split: SplitName,
        data: &EncodedData,
        picked: &[usize],
        device: &Device,
    ) -> (Tensor<3>, Tensor<2, Bool>) {
        let encoded = split.of(data);
        let (ids, mask) = token_batch(&encoded.ids, picked, data.pad, device);
        let hidden = match self {
            Inputs::Tokens => model.encoder.embed(ids, type_batch(encoded, picked, device), &mask),
            Inputs::Cached(p) => split.rows(p).batch(encoded, picked, p.width, device),
        };
        (hidden, mask)
    }
}

#[derive(Clone, Copy)]
enum SplitName {
    Train,
    Validation,
    Test,
}

impl SplitName {
    fn of(self, data: &EncodedData) -> &EncodedSplit {
        match self {
            SplitName::Train => &data.train,
            SplitName::Validation => &data.validation,
            SplitName::Test => &data.test,
        }
    }

    fn rows(self, p: &PrefixActivations) -> &PrefixRows {
        match self {
            SplitName::Train => &p.train,
            SplitName::Validation => &p.validation,
            SplitName::Test => &p.test,
        }
    }
}

pub fn fine_tune(
    files: &ModelFiles,
    config: &ModelConfig,
    data: &EncodedData,
    job: &FineTuneJob,
    prefix_cache: Option<&mut PrefixCache>,
    observer: &mut Observer,
) -> Result<FineTuneOutcome> {
    fine_tune_returning_model(files, config, data, job, prefix_cache, observer)
        .map(|(outcome, _)| outcome)
}

/// [`fine_tune`], also handing back the best epoch's model.
pub fn fine_tune_returning_model(
    files: &ModelFiles,
    config: &ModelConfig,
    data: &EncodedData,
    job: &FineTuneJob,
    prefix_cache: Option<&mut PrefixCache>,
    observer: &mut Observer,
) -> Result<(FineTuneOutcome, Classifier)> {
    on_compute_threads(|| fine_tune_here(files, config, data, job, prefix_cache, observer))
}

fn fine_tune_here(
    files: &ModelFiles,
    config: &ModelConfig,
    data: &EncodedData,
    job: &FineTuneJob,
    prefix_cache: Option<&mut PrefixCache>,
    observer: &mut Observer,
) -> Result<(FineTuneOutcome, Classifier)> {
    let s = &job.settings;
    if s.epochs == 0 || s.batch_size == 0 {
        return Err(TrainError::Invalid("epochs and batch_size must be at least 1".into()));
    }
    let plain = job.backend.device()?;
    plain.seed(job.seed);
    let device = plain.clone().autodiff();

    let loading = Instant::now();
    observer.phase(Phase::Load, format!("{:?} weights, freeze {}", job.start, job.freeze));
    let model = build_classifier(files, config, data, job, &device)?;
    // What trains once every layer the strategy opens is open (gradual unfreezing and LP-FT
    // start from fewer).
    let ParamCounts { trainable, total } = count_params(&model);
    let load_seconds = loading.elapsed().as_secs_f64();

    let prefix_started = Instant::now();
    let (inputs, prefix_use) = prepare_inputs(&model, data, job, prefix_cache, &plain, observer)?;
    let prefix_seconds = if prefix_use == PrefixUse::Computed {
        prefix_started.elapsed().as_secs_f64()
    } else {
        0.0
    };

    let evaluation = Evaluation {
        inputs: &inputs,
        data,
        batch_size: job.backend.eval_batch_size(s.batch_size),
        metric: s.metric,
        device: &plain,
    };
    let mut training = Training::new(&model, data, job, config.num_layers());
    let mut model = model;
    let mut epochs = Vec::new();
    let mut best: Option<(Classifier, EpochMetrics, SplitMetrics)> = None;
    let mut eval_seconds = 0.0;
    let last_epoch = job.stop_after_epochs.map_or(s.epochs, |n| n.clamp(1, s.epochs));
    for epoch in 1..=last_epoch {
        let epoch_started = Instant::now();
        let train_loss;
        (model, train_loss) =
            training.epoch(model, epoch, epoch_started, &inputs, &device, observer)?;
        let eval_started = Instant::now();
        observer.phase(Phase::Evaluate, format!("epoch {epoch} validation"));
        let valid = model.valid();
        let val = evaluation.split(&valid, SplitName::Validation, Threshold::ChooseOnThisSplit)?;
        eval_seconds += eval_started.elapsed().as_secs_f64();
        let metrics = EpochMetrics {
            epoch,
            train_loss,
            val_loss: val.loss,
            val_metric: val.metric,
            val_accuracy: val.scores.get(Metric::Accuracy),
            val_macro_f1: val.scores.get(Metric::MacroF1),
            seconds: epoch_started.elapsed().as_secs_f64(),
        };
        observer.emit(Event::Epoch(metrics.clone()));
        let better = best.as_ref().is_none_or(|(_, b, _)| {
            metrics.val_metric > b.val_metric
                || (metrics.val_metric == b.val_metric && metrics.val_loss < b.val_loss)
        });
        if better {
            best = Some((model.clone(), metrics.clone(), val));
        }
        epochs.push(metrics);
    }

    let (best_model, best_metrics, validation) = best.expect("at least one epoch");
    let test = if job.stop_after_epochs.is_some() {
        None
    } else {
        let eval_started = Instant::now();
        observer.phase(Phase::Evaluate, format!("test, weights of epoch {}", best_metrics.epoch));
        let valid = best_model.valid();
        // Multi-label decides test at the threshold validation chose for these weights.
        let threshold =
            validation.scores.threshold().map_or(Threshold::ChooseOnThisSplit, Threshold::Fixed);
        let test = evaluation.split(&valid, SplitName::Test, threshold)?;
        eval_seconds += eval_started.elapsed().as_secs_f64();
        Some(test)
    };

    let outcome = FineTuneOutcome {
        best_epoch: best_metrics.epoch,
        validation,
        test,
        epochs,
        trainable_params: trainable,
        total_params: total,
        load_seconds,
        prefix_seconds,
        train_seconds: training.seconds,
        eval_seconds,
        train_examples_per_second: training.examples_seen as f64 / training.seconds.max(1e-9),
        prefix_cache: prefix_use,
    };
    Ok((outcome, best_model))
}

/// The job's classifier before training: the encoder from its start (top layers
/// re-initialised when the strategy says so), frozen to the job's depth, and a fresh head.
fn build_classifier(
    files: &ModelFiles,
    config: &ModelConfig,
    data: &EncodedData,
    job: &FineTuneJob,
    device: &Device,
) -> Result<Classifier> {
    let s = &job.settings;
    if let Some(problem) = s.strategy.problem(config.num_layers(), job.freeze, s.epochs) {
        return Err(TrainError::Invalid(problem));
    }
    let mut encoder = load_encoder(files, config, &job.start, device)?;
    if s.strategy.reinit_top > 0 {
        encoder = reinit_top(encoder, s.strategy.reinit_top, config, device)?;
    }
    let encoder = encoder.freeze_bottom(job.freeze)?;
    if s.metric.task() != data.task() {
        return Err(TrainError::Invalid(format!(
            "metric '{}' scores {} tasks, but the data is a {} task",
            s.metric,
            s.metric.task(),
            data.task()
        )));
    }
    let mut head_init = RandomInit { std: config.initializer_range(), device: device.clone() };
    Classifier::new(config, encoder, data.outputs(), s.pooling, &mut head_init)
}

/// What carries from one training step to the next besides the model: the optimizer, the
/// schedule (learning rate and which layers are open), the batch order, the counts.
struct Training<'a> {
    data: &'a EncodedData,
    job: &'a FineTuneJob,
    optimizer: ModuleOptimizer,
    schedule: Schedule,
    layer_rates: Option<LayerRates>,
    /// Set when the job measures its layers' gradient-to-weight ratios.
    layer_groups: Option<LayerGroups>,
    frozen_depth: usize,
    rng: StdRng,
    lengths: Vec<usize>,
    step: usize,
    examples_seen: usize,
    /// Training time so far (evaluation excluded).
    seconds: f64,
}

impl<'a> Training<'a> {
    fn new(model: &Classifier, data: &'a EncodedData, job: &'a FineTuneJob, layers: usize) -> Self {
        let s = &job.settings;
        let steps_per_epoch = data.train.len().div_ceil(s.batch_size);
        let schedule = Schedule {
            unfreezing: s.strategy.unfreezing.clone(),
            layers,
            freeze: job.freeze,
            steps_per_epoch,
            total_steps: steps_per_epoch * s.epochs,
            warmup_ratio: s.warmup_ratio,
            lr: s.lr,
        };
        let layer_rates =
            (s.strategy.llrd_decay != 1.0).then(|| LayerRates::of(model, s.strategy.llrd_decay));
        Training {
            data,
            job,
            optimizer: adamw(s.weight_decay, s.max_grad_norm),
            schedule,
            layer_rates,
            layer_groups: job.measure_gradient_ratios.then(|| LayerGroups::of(&model.encoder)),
            frozen_depth: job.freeze,
            rng: StdRng::seed_from_u64(job.seed),
            lengths: data.train.lengths(),
            step: 0,
            examples_seen: 0,
            seconds: 0.0,
        }
    }

    /// One pass of `model` over the training split in a fresh batch order; returns the model
    /// after it and the pass's mean loss.
    fn epoch(
        &mut self,
        mut model: Classifier,
        epoch: usize,
        started: Instant,
        inputs: &Inputs,
        device: &Device,
        observer: &mut Observer,
    ) -> Result<(Classifier, f64)> {
        let batches = train_batches(&self.lengths, self.job.settings.batch_size, &mut self.rng);
        let mut unread = UnreadLosses::new(self.job.backend.loss_read_interval());
        let mut loss_sum = 0.0;
        for (i, picked) in batches.iter().enumerate() {
            if observer.should_stop() {
                return Err(TrainError::Interrupted);
            }
            let loss;
            (model, loss) = self.step(model, picked, inputs, device, observer)?;
            unread.push(&loss);
            let Some((first_step, read)) = unread.read_if_due(i + 1, i + 1 == batches.len())?
            else {
                continue;
            };
            loss_sum += self.checked_sum(&read, epoch, first_step)?;
            let elapsed = self.seconds + started.elapsed().as_secs_f64();
            observer.emit(Event::Step {
                phase: Phase::Train,
                epoch,
                step: i + 1,
                steps: batches.len(),
                loss: read.last().copied().unwrap_or_default() as f64,
                examples_per_second: self.examples_seen as f64 / elapsed.max(1e-9),
            });
        }
        self.seconds += started.elapsed().as_secs_f64();
        Ok((model, loss_sum / batches.len() as f64))
    }

    /// One optimizer step of `model` on the examples `picked`, with the layers the schedule
    /// opens at this step; returns the stepped model and the step's loss, still on the device.
    fn step(
        &mut self,
        mut model: Classifier,
        picked: &[usize],
        inputs: &Inputs,
        device: &Device,
        observer: &mut Observer,
    ) -> Result<(Classifier, Tensor<1>)> {
        let (s, step) = (&self.job.settings, self.step);
        let depth = self.schedule.frozen_depth(step);
        if depth != self.frozen_depth {
            model = set_frozen_depth(model, depth, self.job.freeze);
        }
        if depth != self.frozen_depth || step == 0 {
            self.frozen_depth = depth;
            let trainable_params = count_params(&model).trainable;
            observer.emit(Event::Trainable { step, frozen_depth: depth, trainable_params });
        }
        if self.schedule.restarts_optimizer(step) {
            self.optimizer = adamw(s.weight_decay, s.max_grad_norm);
        }
        let data = self.data;
        let (hidden, mask) = inputs.first_hidden(&model, SplitName::Train, data, picked, device);
        let batch = Batch { data, split: &data.train, picked };
        let loss = batch_loss(&model, hidden, &mask, inputs.first_layer(), &batch, device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        if let Some(groups) = &self.layer_groups {
            let by_layer = groups.ratios(&model.encoder, &grads)?;
            observer.emit(Event::GradientRatios { step, by_layer });
        }
        let lr = self.schedule.lr(step);
        let model = match &self.layer_rates {
            None => self.optimizer.step(lr, model, grads),
            Some(rates) => self.optimizer.step(rates.at(lr), model, grads),
        };
        self.step += 1;
        self.examples_seen += picked.len();
        Ok((model, loss))
    }

    /// The sum of losses read back, refusing a non-finite one with the step it came from.
    fn checked_sum(&self, read: &[f32], epoch: usize, first_step: usize) -> Result<f64> {
        let mut sum = 0.0;
        for (offset, &value) in read.iter().enumerate() {
            let value = value as f64;
            if !value.is_finite() {
                return Err(TrainError::Numerical(format!(
                    "training loss became {value} at epoch {epoch}, step {}; lower the learning rate (now {})",
                    first_step + offset,
                    self.job.settings.lr
                )));
            }
            sum += value;
        }
        Ok(sum)
    }
}

fn prepare_inputs(
    model: &Classifier,
    data: &EncodedData,
    job: &FineTuneJob,
    cache: Option<&mut PrefixCache>,
    plain: &Device,
    observer: &mut Observer,
) -> Result<(Inputs, PrefixUse)> {
    if job.freeze == 0 {
        return Ok((Inputs::Tokens, PrefixUse::None));
    }
    let Some(cache) = cache else { return Ok((Inputs::Tokens, PrefixUse::Recomputed)) };
    // The backend is part of the key: a GPU's entries live on its device.
    let key = |depth: usize| {
        format!("{}|{}|{}|depth={depth}", job.start_identity, data.identity, job.backend)
    };
    if let Some(hit) = cache.get(&key(job.freeze)) {
        return Ok((Inputs::Cached(hit), PrefixUse::Reused));
    }
    let width = model.encoder.hidden_size();
    let on_device = job.backend.is_gpu();
    if !cache.fits(PrefixActivations::estimate_bytes(data, width, on_device)) {
        observer.phase(
            Phase::Prefix,
            "frozen prefix exceeds the cache budget; recomputing it every step",
        );
        return Ok((Inputs::Tokens, PrefixUse::Recomputed));
    }
    let shallower = (1..job.freeze).rev().find_map(|depth| cache.get(&key(depth)));
    let encoder = model.encoder.valid();
    let activations = Arc::new(compute_prefix(
        &encoder,
        data,
        job.freeze,
        shallower.as_deref(),
        job.backend.eval_batch_size(job.settings.batch_size),
        on_device,
        plain,
        observer,
    )?);
    cache.insert(key(job.freeze), activations.clone());
    Ok((Inputs::Cached(activations), PrefixUse::Computed))
}

/// How a split is evaluated: from which inputs, in batches of what size, scored on what.
struct Evaluation<'a> {
    inputs: &'a Inputs,
    data: &'a EncodedData,
    batch_size: usize,
    metric: Metric,
    device: &'a Device,
}

impl Evaluation<'_> {
    fn split(
        &self,
        model: &Classifier,
        split: SplitName,
        threshold: Threshold,
    ) -> Result<SplitMetrics> {
        let (data, inputs, device) = (self.data, self.inputs, self.device);
        let encoded = split.of(data);
        let batches = eval_batches(&encoded.lengths(), self.batch_size);
        // Everything stays on the device until the split is done: one read back, not two per batch.
        let (mut losses, mut weights, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
        for picked in &batches {
            let (hidden, mask) = inputs.first_hidden(model, split, data, picked, device);
            let batch = Batch { data, split: encoded, picked };
            let (loss, weight, output) =
                forward_batch(model, hidden, &mask, inputs.first_layer(), &batch, device);
            losses.push(loss);
            weights.push(weight as f64);
            outputs.push(output);
        }
        let losses = read_floats(losses)?;
        let (predicted, threshold) = predictions(data, encoded, &batches, outputs, threshold)?;
        let loss_sum: f64 = losses.iter().zip(&weights).map(|(&l, w)| l as f64 * w).sum();
        let (mut scores, correct) = score(&data.labels, &encoded.targets, &predicted);
        if let Some(threshold) = threshold {
            scores = scores.at_threshold(threshold);
        }
        let metric = scores.get(self.metric).expect("the metric was checked against the task");
        let per_example = PerExample::of(self.metric, &data.labels, &encoded.targets, &predicted);
        Ok(SplitMetrics {
            loss: loss_sum / weights.iter().sum::<f64>().max(1.0),
            metric,
            scores,
            correct,
            predictions: predicted,
            per_example,
        })
    }
}
