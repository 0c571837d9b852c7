//! LayerNorm over the last dimension on Flex under autodiff: one pass forward, one backward.
//!
//! Under autodiff burn builds LayerNorm from about ten tensor ops (mean, subtract, square,
//! mean, add, square root, divide, scale, shift) and differentiates each, every one a full
//! pass over the activations on one thread; BERT runs two LayerNorms per layer. Here the
//! forward pass keeps the normalised rows and their inverse deviations, and the backward
//! pass computes all three gradients from them in one sweep, rows split over threads.
//! Outside autodiff burn-flex already has a fused LayerNorm, which is used as it is.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata};
use burn::nn::LayerNorm;
use burn::tensor::{DType, Shape, Tensor, TensorData};
use rayon::prelude::*;

use super::{OwnOp, contiguous_f32, fused_ops_apply, lane_sum, own};

/// Rows per task: a few hundred KiB of activations, enough to amortise scheduling.
const ROWS_PER_TASK: usize = 64;

/// `norm` applied to `x` (`epsilon` as the checkpoint's config gives it: burn's module keeps
/// its own private), with one fused op each way on Flex under autodiff.
pub fn layer_norm<const D: usize>(norm: &LayerNorm, epsilon: f64, x: Tensor<D>) -> Tensor<D> {
    let Some(beta) = &norm.beta else { return norm.forward(x) };
    if !own(OwnOp::LayerNorm) || !fused_ops_apply(&x.device()) || x.dtype() != DType::F32 {
        return norm.forward(x);
    }
    let parts = (
        x.clone().try_into_primitive::<Autodiff<Flex>>(),
        norm.gamma.val().try_into_primitive::<Autodiff<Flex>>(),
        beta.val().try_into_primitive::<Autodiff<Flex>>(),
    );
    match parts {
        (Ok(x), Ok(gamma), Ok(beta)) => {
            Tensor::from_primitive::<Autodiff<Flex>>(layer_norm_autodiff(x, gamma, beta, epsilon))
        }
        _ => norm.forward(x),
    }
}

/// What the backward pass needs: the normalised input, each row's 1/σ, and γ.
#[derive(Debug, Clone)]
struct Saved {
    normalized: Vec<f32>,
    inverse_std: Vec<f32>,
    gamma: Vec<f32>,
    shape: Shape,
}

#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    type State = Saved;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let saved = ops.state;
        let grad = contiguous_f32(&grad);
        let width = saved.gamma.len();
        let (dx, dgamma, dbeta) = backward_rows(&saved, &grad);
        let tensor =
            |values: Vec<f32>, shape: Shape| FlexTensor::from_data(TensorData::new(values, shape));
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, tensor(dx, saved.shape.clone()));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, tensor(dgamma, Shape::new([width])));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, tensor(dbeta, Shape::new([width])));
        }
    }
}

fn layer_norm_autodiff(
    x: FloatTensor<Autodiff<Flex>>,
    gamma: FloatTensor<Autodiff<Flex>>,
    beta: FloatTensor<Autodiff<Flex>>,
    epsilon: f64,
) -> FloatTensor<Autodiff<Flex>> {
    let nodes = [x.node(), gamma.node(), beta.node()];
    let (x, gamma, beta) = (x.into_primitive(), gamma.into_primitive(), beta.into_primitive());
    let shape = x.shape();
    let (gamma, beta) = (contiguous_f32(&gamma).into_owned(), contiguous_f32(&beta));
    let (output, normalized, inverse_std) =
        forward_rows(&contiguous_f32(&x), &gamma, &beta, epsilon as f32);
    let output = FlexTensor::from_data(TensorData::new(output, shape.clone()));
    match LayerNormBackward.prepare::<NoCheckpointing>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            prep.finish(Saved { normalized, inverse_std, gamma, shape }, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// (y, x̂, 1/σ per row) for rows of `gamma.len()` values.
fn forward_rows(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let width = gamma.len();
    let rows = x.len() / width;
    let (mut y, mut normalized, mut inverse_std) =
        (vec![0.0f32; x.len()], vec![0.0f32; x.len()], vec![0.0f32; rows]);
    y.par_chunks_mut(ROWS_PER_TASK * width)
        .zip(normalized.par_chunks_mut(ROWS_PER_TASK * width))
        .zip(inverse_std.par_chunks_mut(ROWS_PER_TASK))
        .zip(x.par_chunks(ROWS_PER_TASK * width))
        .for_each(|(((y, normalized), inverse_std), x)| {
            forward_task(x, gamma, beta, epsilon, normalized, y, inverse_std)
        });
    (y, normalized, inverse_std)
}

vectorised! {
    fn forward_task(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        epsilon: f32,
        normalized: &mut [f32],
        y: &mut [f32],
        inverse_std: &mut [f32],
    ) {
        let width = gamma.len();
        for (((y, n), s), x) in y
            .chunks_exact_mut(width)
            .zip(normalized.chunks_exact_mut(width))
            .zip(inverse_std.iter_mut())
            .zip(x.chunks_exact(width))
        {
            *s = normalize_row(x, gamma, beta, epsilon, n, y);
        }
    }
}

/// One row: writes x̂ and y, returns 1/σ. Two-pass mean and variance, as burn's own.
#[inline(always)]
fn normalize_row(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f32,
    normalized: &mut [f32],
    y: &mut [f32],
) -> f32 {
    let width = x.len() as f32;
    let mean = lane_sum(x, x, |v, _| v) / width;
    let variance = lane_sum(x, x, |v, _| (v - mean) * (v - mean)) / width;
    let inverse_std = 1.0 / (variance + epsilon).sqrt();
    for ((((n, y), &x), &g), &b) in
        normalized.iter_mut().zip(y.iter_mut()).zip(x).zip(gamma).zip(beta)
    {
        *n = (x - mean) * inverse_std;
        *y = *n * g + b;
    }
    inverse_std
}

/// (dx, dγ, dβ) from the output gradient: with ĝ = g·γ,
/// dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / σ, dγ = Σ g·x̂, dβ = Σ g over rows.
/// dγ and dβ are summed per task, then the tasks in order, so a run repeats exactly.
fn backward_rows(saved: &Saved, grad: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let width = saved.gamma.len();
    let task = ROWS_PER_TASK * width;
    let mut dx = vec![0.0f32; grad.len()];
    let partial: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(task)
        .zip(grad.par_chunks(task))
        .zip(saved.normalized.par_chunks(task))
        .zip(saved.inverse_std.par_chunks(ROWS_PER_TASK))
        .map(|(((dx, grad), normalized), inverse_std)| {
            backward_task(grad, normalized, inverse_std, &saved.gamma, dx)
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0.0f32; width], vec![0.0f32; width]);
    for (g, b) in &partial {
        dgamma.iter_mut().zip(g).for_each(|(acc, v)| *acc += v);
        dbeta.iter_mut().zip(b).for_each(|(acc, v)| *acc += v);
    }
    (dx, dgamma, dbeta)
}

vectorised! {
    fn backward_task(
        grad: &[f32],
        normalized: &[f32],
        inverse_std: &[f32],
        gamma: &[f32],
        dx: &mut [f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let width = gamma.len();
        let (mut dgamma, mut dbeta) = (vec![0.0f32; width], vec![0.0f32; width]);
        let mut scaled = vec![0.0f32; width];
        let rows = grad.chunks_exact(width).zip(normalized.chunks_exact(width));
        for (((g, n), dx), &s) in rows.zip(dx.chunks_exact_mut(width)).zip(inverse_std) {
            for ((((sc, &g), &n), &gm), (dgm, db)) in
                scaled.iter_mut().zip(g).zip(n).zip(gamma).zip(dgamma.iter_mut().zip(dbeta.iter_mut()))
            {
                *dgm += g * n;
                *db += g;
                *sc = g * gm;
            }
            let mean_g = lane_sum(&scaled, &scaled, |v, _| v) / width as f32;
            let mean_gn = lane_sum(&scaled, n, |v, n| v * n) / width as f32;
            for ((d, &sc), &n) in dx.iter_mut().zip(&scaled).zip(n) {
                *d = (sc - mean_g - n * mean_gn) * s;
            }
        }
        (dgamma, dbeta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Device, Distribution};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(ours: &[f32], burns: &[f32], what: &str) {
        assert_eq!(ours.len(), burns.len());
        for (a, b) in ours.iter().zip(burns) {
            assert!((a - b).abs() <= 2e-5 * b.abs().max(1.0), "{what}: {a} vs {b}");
        }
    }

    #[test]
    fn values_and_all_three_gradients_match_burns() {
        let _seeded = crate::seeded_device_lock();
        let device = Device::flex().autodiff();
        device.seed(5);
        let mut norm = LayerNormConfig::new(48).with_epsilon(1e-12).init(&device);
        norm.gamma =
            Param::from_tensor(Tensor::random([48], Distribution::Normal(1.0, 0.2), &device));
        norm.beta =
            Some(Param::from_tensor(Tensor::random([48], Distribution::Normal(0.0, 0.2), &device)));
        // Rows of very different scales, more rows than one task holds.
        let input = Tensor::<3>::random([3, 50, 48], Distribution::Normal(0.5, 3.0), &device);
        let weights = Tensor::<3>::random([3, 50, 48], Distribution::Default, &device);
        let run = |fused: bool| {
            let x = input.clone().require_grad();
            let y =
                if fused { layer_norm(&norm, 1e-12, x.clone()) } else { norm.forward(x.clone()) };
            let grads = (y.clone() * weights.clone()).sum().backward();
            let beta = norm.beta.as_ref().unwrap().val();
            [
                values(y),
                values(x.grad(&grads).unwrap()),
                values(norm.gamma.val().grad(&grads).unwrap()),
                values(beta.grad(&grads).unwrap()),
            ]
        };
        let (ours, burns) = (run(true), run(false));
        for ((a, b), what) in ours.iter().zip(&burns).zip(["y", "dx", "dgamma", "dbeta"]) {
            assert_close(a, b, what);
        }
        // Deterministic: the per-task sums of dγ and dβ are added in a fixed order.
        assert_eq!(run(true), ours);
        // Outside autodiff burn-flex's own fused LayerNorm is used.
        let plain = input.clone().inner();
        assert_close(
            &values(layer_norm(&norm.valid(), 1e-12, plain)),
            &ours[0],
            "y without autodiff",
        );
    }
}
