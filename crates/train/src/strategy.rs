//! Fine-tuning strategies practitioners weigh against a fixed freeze depth: layer-wise
//! learning-rate decay (LLRD), gradual unfreezing (ULMFiT, Howard & Ruder 2018), LP-FT (a
//! linear probe first; Kumar et al. 2022) and re-initialising the top layers (Zhang et al.
//! 2021). Each is one field of [`Strategy`]; with every field off it is plain bottom-k
//! freezing, and a job's key and numbers are those it had before strategies existed.

use burn::module::ParamGroup;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::model::Classifier;
use crate::models::{Encoder, ModelConfig};
use crate::optim::lr_at;
use crate::weights::{RandomInit, Weights};

/// How a job fine-tunes above its freeze depth `k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Strategy {
    /// LLRD: the head trains at lr, encoder layer i (0-based, of L) at lr·decay^(L−i), the
    /// embeddings at lr·decay^(L+1) (ELECTRA's rule, the head counting as the top). 1: off.
    #[serde(default = "no_decay", skip_serializing_if = "is_no_decay")]
    pub llrd_decay: f64,
    #[serde(default, skip_serializing_if = "Unfreezing::is_fixed")]
    pub unfreezing: Unfreezing,
    /// The top n encoder layers are drawn afresh (BERT's initialisation) before training.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reinit_top: usize,
}

fn no_decay() -> f64 {
    1.0
}
fn is_no_decay(decay: &f64) -> bool {
    *decay == 1.0
}
fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy { llrd_decay: 1.0, unfreezing: Unfreezing::Fixed, reinit_top: 0 }
    }
}

/// Which layers train when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Unfreezing {
    /// Layers `[k, L)` and the head train throughout.
    #[default]
    Fixed,
    /// Head only first, then one more layer from the top every `every_steps` steps (None:
    /// every epoch), down to depth k (the embeddings last, with layer 0, when k = 0). One
    /// learning-rate schedule spans the whole run.
    Gradual { every_steps: Option<usize> },
    /// The head alone for the first `head_epochs` epochs at `head_lr` (warmup and decay of
    /// its own), then layers `[k, L)` and the head with a fresh AdamW at lr, on a schedule over
    /// the remaining epochs. Both phases count in the job's epochs.
    LpFt { head_epochs: usize, head_lr: f64 },
}

impl Unfreezing {
    pub fn is_fixed(&self) -> bool {
        *self == Unfreezing::Fixed
    }
}

impl Strategy {
    pub fn is_plain(&self) -> bool {
        *self == Strategy::default()
    }

    /// Why this strategy cannot run at freeze depth `freeze` of `layers` for `epochs`, if it
    /// cannot; the planner reports the same text against the sweep file.
    pub fn problem(&self, layers: usize, freeze: usize, epochs: usize) -> Option<String> {
        if !(self.llrd_decay.is_finite() && self.llrd_decay > 0.0 && self.llrd_decay <= 1.0) {
            return Some(format!(
                "llrd_decay = {} must be in (0, 1] (1 = no decay; ELECTRA used 0.8)",
                self.llrd_decay
            ));
        }
        if self.reinit_top > layers.saturating_sub(freeze) {
            return Some(format!(
                "reinit_top = {} re-initialises frozen layers at freeze depth {freeze} of {layers}; it can be at most {}",
                self.reinit_top,
                layers.saturating_sub(freeze)
            ));
        }
        match &self.unfreezing {
            Unfreezing::Fixed => None,
            Unfreezing::Gradual { every_steps: Some(0) } => {
                Some("unfreeze_every must be at least 1 step".into())
            }
            Unfreezing::Gradual { .. } => None,
            Unfreezing::LpFt { head_epochs, head_lr } => {
                if *head_epochs == 0 || *head_epochs >= epochs {
                    Some(format!(
                        "head_epochs = {head_epochs} must be at least 1 and below epochs = {epochs} (LP-FT's probe and fine-tuning share the job's epochs)"
                    ))
                } else if !(head_lr.is_finite() && *head_lr > 0.0 && *head_lr < 1.0) {
                    Some(format!("head_lr = {head_lr} must be a number in (0, 1), e.g. 1e-3"))
                } else {
                    None
                }
            }
        }
    }

    /// "plain", or the parts that differ from it: "llrd 0.8 + gradual/epoch + reinit 2".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !is_no_decay(&self.llrd_decay) {
            parts.push(format!("llrd {}", self.llrd_decay));
        }
        match &self.unfreezing {
            Unfreezing::Fixed => {}
            Unfreezing::Gradual { every_steps: None } => parts.push("gradual/epoch".into()),
            Unfreezing::Gradual { every_steps: Some(n) } => {
                parts.push(format!("gradual/{n} steps"))
            }
            Unfreezing::LpFt { head_epochs, head_lr } => {
                parts.push(format!("lp-ft {head_epochs} ep @ {head_lr:e}"))
            }
        }
        if self.reinit_top > 0 {
            parts.push(format!("reinit {}", self.reinit_top));
        }
        if parts.is_empty() { "plain".into() } else { parts.join(" + ") }
    }
}

/// The frozen depth and learning rate of every step of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub unfreezing: Unfreezing,
    pub layers: usize,
    pub freeze: usize,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    pub warmup_ratio: f64,
    pub lr: f64,
}

impl Schedule {
    /// Layers `[0, depth)` (and the embeddings when depth > 0) are frozen at `step` (0-based).
    pub fn frozen_depth(&self, step: usize) -> usize {
        match &self.unfreezing {
            Unfreezing::Fixed => self.freeze,
            Unfreezing::Gradual { every_steps } => {
                let every = every_steps.unwrap_or(self.steps_per_epoch).max(1);
                self.layers.saturating_sub(step / every).max(self.freeze)
            }
            Unfreezing::LpFt { .. } if step < self.probe_steps() => self.layers,
            Unfreezing::LpFt { .. } => self.freeze,
        }
    }

    /// The steps of LP-FT's probe (0 for the other strategies).
    fn probe_steps(&self) -> usize {
        match &self.unfreezing {
            Unfreezing::LpFt { head_epochs, .. } => head_epochs * self.steps_per_epoch,
            _ => 0,
        }
    }

    /// True at the step where LP-FT's fine-tuning starts with a fresh optimizer.
    pub fn restarts_optimizer(&self, step: usize) -> bool {
        let probe = self.probe_steps();
        probe > 0 && step == probe
    }

    /// The base learning rate at `step`: linear warmup then decay, over the whole run, or
    /// over each phase of LP-FT.
    pub fn lr(&self, step: usize) -> f64 {
        let warmup = |steps: usize| ((steps as f64) * self.warmup_ratio).round() as usize;
        match &self.unfreezing {
            Unfreezing::LpFt { head_lr, .. } => {
                let probe = self.probe_steps();
                if step < probe {
                    lr_at(step, probe, warmup(probe), *head_lr)
                } else {
                    let rest = self.total_steps - probe;
                    lr_at(step - probe, rest, warmup(rest), self.lr)
                }
            }
            _ => lr_at(step, self.total_steps, warmup(self.total_steps), self.lr),
        }
    }
}

/// Layers `[freeze, depth)` frozen and `[depth, L)` trainable; layers below `freeze` stay as
/// they are (frozen). The embedding side trains only when both are 0.
pub fn set_frozen_depth(mut model: Classifier, depth: usize, freeze: usize) -> Classifier {
    let embeddings = (freeze == 0).then_some(depth > 0);
    model.encoder = model.encoder.set_frozen(embeddings, |i| (i >= freeze).then_some(i < depth));
    model
}

/// LLRD's parameter groups, found once (parameter ids outlive optimizer steps).
pub struct LayerRates {
    decay: f64,
    embeddings: ParamGroup,
    layers: Vec<ParamGroup>,
}

impl LayerRates {
    pub fn of(model: &Classifier, decay: f64) -> LayerRates {
        let encoder = &model.encoder;
        LayerRates {
            decay,
            embeddings: encoder.embedding_params(),
            layers: (0..encoder.num_layers()).map(|i| encoder.layer_params(i)).collect(),
        }
    }

    /// The rate of layer `i` (0-based) when the head's is `lr`; `None` is the embeddings.
    pub fn rate(&self, lr: f64, layer: Option<usize>) -> f64 {
        let top = self.layers.len() as i32;
        let below_head = match layer {
            Some(i) => top - i as i32,
            None => top + 1,
        };
        lr * self.decay.powi(below_head)
    }

    /// Every parameter's rate for one step whose head rate is `lr`.
    pub fn at(&self, lr: f64) -> ModuleLearningRate {
        let mut rates =
            ModuleLrScheduler::new(lr).with_group(self.embeddings.clone(), self.rate(lr, None));
        for (i, group) in self.layers.iter().enumerate() {
            rates = rates.with_group(group.clone(), self.rate(lr, Some(i)));
        }
        rates.step()
    }
}

/// Draws the top `n` encoder layers afresh (the family's normal(0, initializer_range)
/// weights, zero biases, norms 1 and 0) from the device's seeded RNG.
pub fn reinit_top(
    mut encoder: Encoder,
    n: usize,
    config: &ModelConfig,
    device: &Device,
) -> Result<Encoder> {
    let layers = encoder.num_layers();
    if n > layers {
        return Err(TrainError::Invalid(format!(
            "reinit_top = {n} is more than the model's {layers} layers"
        )));
    }
    let mut random = RandomInit { std: config.initializer_range(), device: device.clone() };
    for i in layers - n..layers {
        encoder = encoder.reinit_layer(config, i, &mut Weights::new(&mut random), device)?;
    }
    Ok(encoder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendKind;
    use crate::load::{ModelFiles, Start, load_encoder};
    use crate::loss::cross_entropy;
    use crate::model::Pooling;
    use crate::optim::adamw;
    use burn::module::Module;
    use burn::optim::GradientsParams;
    use burn::tensor::{Int, Tensor, TensorData};

    fn tiny() -> ModelConfig {
        ModelConfig::Bert(
            serde_json::from_value(serde_json::json!({
                "vocab_size": 40, "hidden_size": 8, "num_hidden_layers": 3,
                "num_attention_heads": 2, "intermediate_size": 16,
                "max_position_embeddings": 16, "hidden_dropout_prob": 0.0,
                "attention_probs_dropout_prob": 0.0
            }))
            .unwrap(),
        )
    }

    fn bert(model: &Classifier) -> &crate::models::bert::BertModel {
        match &model.encoder {
            Encoder::Bert(bert) => bert,
            other => panic!("a BERT classifier, not {other:?}"),
        }
    }

    fn tiny_classifier(device: &Device) -> Classifier {
        let config = tiny();
        let files = ModelFiles {
            config: "unused".into(),
            tokenizer: "unused".into(),
            weights: "unused".into(),
        };
        let encoder = load_encoder(&files, &config, &Start::Scratch, device).unwrap();
        let mut head = RandomInit { std: 0.02, device: device.clone() };
        Classifier::new(&config, encoder, 2, Pooling::Mean, &mut head).unwrap()
    }

    /// The largest absolute change of any parameter of `part` between two models.
    fn largest_change(
        before: &Classifier,
        after: &Classifier,
        part: impl Fn(&Classifier) -> Vec<Vec<f32>>,
    ) -> f32 {
        let (a, b) = (part(before), part(after));
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    }

    fn params<M: Module>(module: &M) -> Vec<Vec<f32>> {
        struct Collect(Vec<Vec<f32>>);
        impl burn::module::ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                self.0.push(p.val().into_data().try_to_vec().unwrap());
            }
        }
        let mut c = Collect(Vec::new());
        module.visit(&mut c);
        c.0
    }

    /// Adam's first step moves every weight with a non-negligible gradient by the learning
    /// rate itself (lr·g/|g|), so the largest change of each layer reads back its rate.
    #[test]
    fn llrd_gives_each_layer_its_rate() {
        let _seeded = crate::seeded_device_lock();
        let device = BackendKind::Flex.device().unwrap().autodiff();
        device.seed(7);
        let model = tiny_classifier(&device);
        let rates = LayerRates::of(&model, 0.5);
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 5, 9, 2, 1, 7, 3, 2], [2, 4]),
            &device,
        );
        let mask = ids.clone().equal_elem(0);
        let logits = model.forward(ids, None, &mask);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
        let grads = GradientsParams::from_grads(cross_entropy(logits, targets).backward(), &model);
        let mut optimizer = adamw(0.0, 0.0);
        let lr = 1e-2;
        let after = optimizer.step(rates.at(lr), model.clone(), grads);
        let embeddings = largest_change(&model, &after, |m| params(&bert(m).embeddings));
        let head = largest_change(&model, &after, |m| params(&m.classifier));
        let layers: Vec<f32> = (0..3)
            .map(|i| largest_change(&model, &after, |m| params(&bert(m).encoder.layer[i])))
            .collect();
        let close = |got: f32, want: f64| ((got as f64) - want).abs() < want * 1e-3;
        assert!(close(head, lr), "head moved {head}, want {lr}");
        for (i, &moved) in layers.iter().enumerate() {
            let want = lr * 0.5f64.powi(3 - i as i32);
            assert!(close(moved, want), "layer {i} moved {moved}, want {want}");
        }
        let want = lr * 0.5f64.powi(4);
        assert!(close(embeddings, want), "embeddings moved {embeddings}, want {want}");
    }

    #[test]
    fn gradual_unfreezing_schedule() {
        let schedule = |unfreezing, freeze| Schedule {
            unfreezing,
            layers: 6,
            freeze,
            steps_per_epoch: 10,
            total_steps: 100,
            warmup_ratio: 0.0,
            lr: 1e-4,
        };
        let per_epoch = schedule(Unfreezing::Gradual { every_steps: None }, 0);
        let depths: Vec<usize> = (0..8).map(|e| per_epoch.frozen_depth(e * 10)).collect();
        assert_eq!(depths, [6, 5, 4, 3, 2, 1, 0, 0]);
        assert_eq!(per_epoch.frozen_depth(9), 6, "the first epoch trains the head only");
        let to_depth_2 = schedule(Unfreezing::Gradual { every_steps: Some(3) }, 2);
        let depths: Vec<usize> = (0..7).map(|s| to_depth_2.frozen_depth(s * 3)).collect();
        assert_eq!(depths, [6, 5, 4, 3, 2, 2, 2], "never unfreezes below the freeze depth");
        let lp_ft = schedule(Unfreezing::LpFt { head_epochs: 2, head_lr: 1e-3 }, 1);
        assert_eq!((lp_ft.frozen_depth(19), lp_ft.frozen_depth(20)), (6, 1));
        assert!(lp_ft.restarts_optimizer(20) && !lp_ft.restarts_optimizer(19));
        assert_eq!((lp_ft.lr(0), lp_ft.lr(20)), (1e-3, 1e-4), "each phase has its own peak");
    }

    #[test]
    fn frozen_depth_sets_what_trains() {
        let _seeded = crate::seeded_device_lock();
        let device = BackendKind::Flex.device().unwrap().autodiff();
        device.seed(3);
        let trains = |m: &Classifier| -> Vec<bool> {
            let mut out = vec![crate::freeze::count_params(&bert(m).embeddings).trainable > 0];
            out.extend(
                bert(m).encoder.layer.iter().map(|l| crate::freeze::count_params(l).trainable > 0),
            );
            out
        };
        let model = tiny_classifier(&device);
        let model = set_frozen_depth(model, 3, 0);
        assert_eq!(trains(&model), [false, false, false, false]);
        let model = set_frozen_depth(model, 1, 0);
        assert_eq!(trains(&model), [false, false, true, true]);
        let model = set_frozen_depth(model, 0, 0);
        assert_eq!(trains(&model), [true, true, true, true]);
        let frozen_at_1 = set_frozen_depth(tiny_classifier(&device), 3, 1);
        let frozen_at_1 = frozen_at_1.encoder.freeze_bottom(1).unwrap();
        let Encoder::Bert(frozen_at_1) = frozen_at_1 else { unreachable!("BERT") };
        assert_eq!(
            crate::freeze::count_params(&frozen_at_1.embeddings).trainable,
            0,
            "below the freeze depth nothing unfreezes"
        );
    }
}
