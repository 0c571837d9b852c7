//! The GPU backend (burn-wgpu) on a real Vulkan device: in CI that is lavapipe, Mesa's
//! conformant Vulkan implementation on the CPU (`apt-get install mesa-vulkan-drivers`). Slow,
//! so every case here is small; its numbers say whether wgpu computes what flex computes,
//! never how fast. Built only with `--features wgpu`; without a Vulkan device these tests
//! fail and say so, because a build that asks for the GPU backend should prove it works.

#![cfg(feature = "wgpu")]

mod common;

use std::collections::BTreeMap;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use common::*;
use thaw_train::batch::{label_batch, token_batch};
use thaw_train::events::silently;
use thaw_train::load::load_encoder;
use thaw_train::loss::cross_entropy;
use thaw_train::model::Classifier;
use thaw_train::optim::adamw;
use thaw_train::weights::{Fill, WeightSource};
use thaw_train::*;

/// The wgpu backend, with its kernel tuning kept where the `thaw` binary keeps it, so the
/// tuning these tests pay for serves the end-to-end test and later runs.
fn on_wgpu() -> BackendKind {
    thaw_train::backend::keep_gpu_tuning_in(&thaw_assets::cache_dir().join("gpu-tuning"));
    BackendKind::Wgpu
}

#[test]
fn minilm_forward_on_wgpu_matches_the_numpy_reference() {
    let worst = parity_max_difference(on_wgpu());
    // The same bound as flex's: a GPU's different summation order moves the last digits only.
    assert!(worst < 1e-4, "max abs difference {worst:e} against the numpy reference");
}

#[test]
fn freezing_on_wgpu_keeps_frozen_tensors_bit_identical_and_moves_the_rest() {
    check_freezing(on_wgpu());
}

/// Head weights from a fixed formula, so both devices start from the same classifier
/// (the device RNGs of two backends draw different numbers from the same seed).
struct FixedHead(Device);

impl WeightSource for FixedHead {
    fn tensor<const D: usize>(
        &mut self,
        _name: &str,
        shape: [usize; D],
        _fill: Fill,
    ) -> thaw_train::Result<Tensor<D>> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> =
            (0..n).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.04).collect();
        Ok(Tensor::from_data(TensorData::new(values, shape), &self.0))
    }
}

/// What one AdamW step of the whole model (no dropout, so nothing random) on eight real
/// reviews gives on a backend.
struct Step {
    loss: f32,
    gradients: BTreeMap<String, Vec<f32>>,
    before: BTreeMap<String, Vec<f32>>,
    after: BTreeMap<String, Vec<f32>>,
}

fn one_step(backend: BackendKind) -> Step {
    let _rng = exclusive_rng();
    let device = backend.device().unwrap().autodiff();
    let cfg = bert_config(|c| {
        c.hidden_dropout_prob = 0.0;
        c.attention_probs_dropout_prob = 0.0;
    });
    let encoder = load_encoder(minilm(), &cfg, &Start::Pretrained, &device).unwrap();
    let model =
        Classifier::new(&cfg, encoder, 2, Pooling::Mean, &mut FixedHead(device.clone())).unwrap();
    let before = snapshot(&model);
    let data = small_data(16, 24);
    let picked: Vec<usize> = (0..8).collect();
    let (ids, mask) = token_batch(&data.train.ids, &picked, data.pad, &device);
    let loss = cross_entropy(
        model.forward(ids, None, &mask),
        label_batch(data.train.classes(), &picked, &device),
    );
    let loss_value: f32 = loss.clone().into_scalar();
    let backward = loss.backward();
    let gradients = gradient_snapshot(&model, &backward);
    let grads = GradientsParams::from_grads(backward, &model);
    let model = adamw(0.01, 1.0).step(1e-4, model, grads);
    Step { loss: loss_value, gradients, before, after: snapshot(&model) }
}

/// `||a - b|| / ||a||` over all the tensors of two snapshots with the same names.
fn relative_difference(a: &BTreeMap<String, Vec<f32>>, b: &BTreeMap<String, Vec<f32>>) -> f64 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let (mut diff2, mut norm2) = (0.0f64, 0.0f64);
    for (x, y) in a.values().zip(b.values()) {
        for (&x, &y) in x.iter().zip(y) {
            diff2 += (x as f64 - y as f64).powi(2);
            norm2 += (x as f64).powi(2);
        }
    }
    (diff2 / norm2).sqrt()
}

#[test]
fn one_training_step_on_wgpu_agrees_with_flex() {
    let flex = one_step(BackendKind::Flex);
    let gpu = one_step(on_wgpu());
    assert_eq!(flex.before, gpu.before, "both devices start from the same weights");
    let loss_gap = ((gpu.loss - flex.loss) / flex.loss).abs();
    assert!(loss_gap < 1e-5, "loss: wgpu {} vs flex {}", gpu.loss, flex.loss);

    // The backward pass: every gradient, as one vector, within 0.1% of flex's.
    let gradient_gap = relative_difference(&flex.gradients, &gpu.gradients);
    assert_eq!(flex.gradients.len(), 103, "every parameter of the classifier has a gradient");

    // The updated weights. Adam's first step is lr * g / (|g| + 1e-8), about lr * sign(g):
    // where |g| is near 1e-8 a last-digit difference in g moves the update by up to 2 lr
    // (measured here: 0.13 % of the elements). What must hold is that such elements stay
    // few (under 1 %: a wrong optimizer or backward pass moves most of them) and that no
    // weight is off by more than the two steps a flip can cost.
    let lr = 1e-4f32;
    let (mut disagree, mut elements, mut worst) = (0usize, 0usize, 0.0f32);
    for (name, before) in &flex.before {
        let (f, g) = (&flex.after[name], &gpu.after[name]);
        for i in 0..before.len() {
            let gap = (f[i] - g[i]).abs();
            worst = worst.max(gap);
            disagree += usize::from(gap > lr / 100.0);
            elements += 1;
        }
    }
    eprintln!(
        "one step, wgpu vs flex: loss {} vs {}; gradients differ by {gradient_gap:e} (relative norm); {disagree} of {elements} updated weights differ by more than lr/100, the largest by {worst:e}",
        gpu.loss, flex.loss
    );
    assert!(gradient_gap < 1e-3, "gradients differ by {gradient_gap:e} (relative norm)");
    assert!(disagree * 100 < elements, "{disagree} of {elements} updated weights disagree");
    assert!(worst <= 2.0 * lr * 1.01, "a weight differs by {worst:e}, more than two steps");
}

#[test]
fn jobs_in_one_process_repeat_exactly_and_device_memory_does_not_grow() {
    let _rng = exclusive_rng();
    let cfg = config();
    let data = small_data(48, 24);
    let job = |seed, freeze| FineTuneJob {
        start: Start::Pretrained,
        freeze,
        seed,
        settings: FineTuneSettings { epochs: 1, batch_size: 16, lr: 1e-4, ..Default::default() },
        backend: on_wgpu(),
        start_identity: "pretrained".into(),
        stop_after_epochs: None,
        measure_gradient_ratios: false,
    };
    let device = on_wgpu().device().unwrap();
    let mut reserved = Vec::new();
    let mut outcomes = Vec::new();
    // A worker's life in miniature: one depth after another, the first job repeated last.
    for (seed, freeze) in [(7, 0), (8, 4), (9, 2), (7, 0), (8, 4)] {
        let outcome =
            silently(|o| fine_tune(minilm(), &cfg, &data, &job(seed, freeze), None, o)).unwrap();
        thaw_train::backend::release_device_memory(&device);
        let usage = device.memory_pool_usage().expect("wgpu reports its pools");
        reserved.push(usage.bytes_reserved);
        outcomes.push(outcome);
    }
    eprintln!("device memory reserved after each job (bytes): {reserved:?}");
    let strip = |o: &FineTuneOutcome| {
        (
            o.epochs.iter().map(|e| (e.train_loss, e.val_loss, e.val_accuracy)).collect::<Vec<_>>(),
            o.test.clone(),
        )
    };
    assert_eq!(strip(&outcomes[0]), strip(&outcomes[3]), "same seed, same backend, same result");
    assert_eq!(strip(&outcomes[1]), strip(&outcomes[4]), "same seed, same backend, same result");
    // Burn's issue #5212: memory that grows job after job. The first pass over the depths
    // sets the high-water mark; repeating jobs must not raise it.
    let first_pass = reserved[..3].iter().copied().max().unwrap();
    assert!(
        reserved[3..].iter().all(|&r| r <= first_pass),
        "device memory grew across jobs: {reserved:?}"
    );
}

#[test]
fn every_family_matches_transformers_on_wgpu() {
    for (family, has_mlm) in common::families::FAMILIES {
        let (worst, detail) = common::families::worst_difference(family, has_mlm, on_wgpu());
        eprintln!("{detail}");
        assert!(worst < common::families::TOLERANCE, "{detail}");
    }
}
