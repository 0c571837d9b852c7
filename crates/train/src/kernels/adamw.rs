//! AdamW's update in one pass per parameter tensor on Flex, bit for bit burn's own.
//!
//! burn's AdamW makes about a dozen passes over each parameter (scale, add, square, scale,
//! add, two bias corrections, square root, add, divide, decay, subtract), each allocating a
//! tensor the size of the parameter, on one thread. At k = 0 that is 22.7M parameters per
//! step, the 30,522 × 384 word embeddings included (their gradient is dense, as in PyTorch).
//! Here the two moments and the parameter are updated in place, split over threads, with
//! the same f32 operations in the same order, so the numbers are exactly burn's (a test
//! holds that). burn's per-tensor gradient clipping (another three passes and two
//! allocations) becomes one read-only pass for the norm and a factor inside the update.
//! Tensors off Flex, or not f32, take burn's path.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::optim::grad_clipping::GradientClipping;
use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

/// Elements per task.
const CHUNK: usize = 64 * 1024;

/// AdamW (decoupled weight decay, no AMSGrad) as burn's `AdamWConfig` builds it, with
/// burn's per-tensor gradient-norm clipping (`GradientClipping::Norm`) folded in.
#[derive(Clone)]
pub struct FusedAdamW {
    /// The same AdamW as burn builds it, for the tensors this kernel does not take.
    burns: AdamW,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    max_grad_norm: Option<f32>,
}

impl FusedAdamW {
    /// Gradients are clipped to `max_grad_norm` per tensor first (give the clipping here,
    /// not to the `ModuleOptimizer` as well).
    pub fn new(
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        weight_decay: f32,
        max_grad_norm: Option<f32>,
    ) -> Self {
        let burns = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        FusedAdamW { burns, beta_1, beta_2, epsilon, weight_decay, max_grad_norm }
    }

    fn burns_step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamWState<D>>,
    ) -> (Tensor<D>, Option<AdamWState<D>>) {
        let grad = match self.max_grad_norm {
            Some(norm) => GradientClipping::Norm(norm).clip_gradient(grad),
            None => grad,
        };
        self.burns.step(lr, tensor, grad, state)
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let f32s = tensor.dtype() == DType::F32 && grad.dtype() == DType::F32;
        if !super::own(super::OwnOp::AdamW) {
            return self.burns_step(lr, tensor, grad, state);
        }
        let (Ok(param), Ok(grad_flex), true) = (
            tensor.clone().try_into_primitive::<Flex>(),
            grad.clone().try_into_primitive::<Flex>(),
            f32s,
        ) else {
            return self.burns_step(lr, tensor, grad, state);
        };
        // The clones above share storage; dropped, the parameter is owned once and updated in place.
        let shape = tensor.shape();
        drop((tensor, grad));
        let grad = grad_flex;
        let flex = |t: Tensor<D>| t.try_into_primitive::<Flex>().expect("state on Flex");
        let (time, moment_1, moment_2) = match state {
            Some(s) => {
                let m = s.momentum;
                (m.time + 1, Some(flex(m.moment_1)), Some(flex(m.moment_2)))
            }
            None => (1, None, None),
        };
        let zeros =
            || FlexTensor::from_data(burn::tensor::TensorData::zeros::<f32, _>(shape.clone()));
        let mut param = owned_contiguous(param);
        let mut moment_1 = owned_contiguous(moment_1.unwrap_or_else(zeros));
        let mut moment_2 = owned_contiguous(moment_2.unwrap_or_else(zeros));
        let grad = super::contiguous_f32(&grad);
        let scale = self.max_grad_norm.map_or(1.0, |max| clip_scale(&grad, max));
        let step = Step::new(self, lr, time, scale);
        param
            .storage_mut::<f32>()
            .par_chunks_mut(CHUNK)
            .zip(moment_1.storage_mut::<f32>().par_chunks_mut(CHUNK))
            .zip(moment_2.storage_mut::<f32>().par_chunks_mut(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| step.apply(p, m, v, g));
        let back = |t: FlexTensor| Tensor::<D>::from_primitive::<Flex>(t);
        let momentum = AdaptiveMomentumState::new(time, back(moment_1), back(moment_2));
        (back(param), Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

/// burn's clip factor, `min(max / (‖g‖ + f32::MIN_POSITIVE), 1)`; ‖g‖ summed per chunk in
/// 16 f32 lanes and the chunks in order (burn sums in f32 too; the factor differs by rounding).
fn clip_scale(grad: &[f32], max: f32) -> f32 {
    let partial: Vec<f64> = grad.par_chunks(CHUNK).map(sum_of_squares).collect();
    let norm = partial.iter().sum::<f64>().sqrt() as f32;
    (max / (norm + f32::MIN_POSITIVE)).min(1.0)
}

fn sum_of_squares(values: &[f32]) -> f64 {
    let mut lanes = [0.0f32; 16];
    let mut blocks = values.chunks_exact(16);
    for block in &mut blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane += v * v;
        }
    }
    let tail: f64 = blocks.remainder().iter().map(|&v| f64::from(v * v)).sum();
    lanes.iter().map(|&lane| f64::from(lane)).sum::<f64>() + tail
}

/// A tensor whose storage is exactly its elements in row-major order (a transposed weight
/// is copied once; afterwards the updated parameter stays contiguous).
fn owned_contiguous(t: FlexTensor) -> FlexTensor {
    let whole = t.layout().contiguous_offsets() == Some((0, t.layout().shape().num_elements()))
        && t.storage::<f32>().len() == t.layout().shape().num_elements();
    if whole { t } else { t.to_contiguous() }
}

/// One step's scalars, computed as burn computes them (f32 factors and bias corrections,
/// the decay factor and learning rate in f64, then cast).
struct Step {
    beta_1: f32,
    beta_2: f32,
    factor_1: f32,
    factor_2: f32,
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    decay: Option<f32>,
    lr: f32,
    /// The gradient's clip factor (burn multiplies by it, 1 included).
    scale: f32,
}

impl Step {
    fn new(adamw: &FusedAdamW, lr: LearningRate, time: usize, scale: f32) -> Self {
        let decay_rate = lr * f64::from(adamw.weight_decay);
        Step {
            beta_1: adamw.beta_1,
            beta_2: adamw.beta_2,
            factor_1: 1.0 - adamw.beta_1,
            factor_2: 1.0 - adamw.beta_2,
            correction_1: 1f32 - adamw.beta_1.powi(time as i32),
            correction_2: 1f32 - adamw.beta_2.powi(time as i32),
            epsilon: adamw.epsilon,
            decay: (decay_rate != 0.0).then_some((1.0 - decay_rate) as f32),
            lr: lr as f32,
            scale,
        }
    }

    /// burn's sequence per element. Its first step (no state) computes `g·(1−β)` where this
    /// computes `0·β + g·(1−β)` from zeroed moments: the same f32 value.
    #[inline]
    fn apply(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            let g = g * self.scale;
            *m = *m * self.beta_1 + g * self.factor_1;
            *v = *v * self.beta_2 + (g * g) * self.factor_2;
            let corrected_1 = *m / self.correction_1;
            let corrected_2 = *v / self.correction_2;
            let delta = corrected_1 / (corrected_2.sqrt() + self.epsilon);
            let decayed = match self.decay {
                Some(factor) => *p * factor,
                None => *p,
            };
            *p = decayed - delta * self.lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn values(t: &Tensor<2>) -> Vec<f32> {
        t.clone().into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn fused_steps_equal_burns_bit_for_bit() {
        let _seeded = crate::seeded_device_lock();
        let device = Device::flex();
        device.seed(11);
        for weight_decay in [0.0, 0.01] {
            let config = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(weight_decay);
            let fused = FusedAdamW::new(0.9, 0.999, 1e-8, weight_decay, None);
            let burns = config.build();
            // Transposed, as thaw's linear weights are: the first step copies it contiguous.
            let start = Tensor::<2>::random([70, 130], Distribution::Default, &device).transpose();
            let (mut ours, mut theirs) = (start.clone(), start);
            let (mut our_state, mut their_state) = (None, None);
            for step in 0..4 {
                let grad = Tensor::<2>::random([130, 70], Distribution::Normal(0.0, 1e-2), &device);
                let lr = 1e-3 * (step + 1) as f64;
                (ours, our_state) = fused.step(lr, ours, grad.clone(), our_state);
                (theirs, their_state) = burns.step(lr, theirs, grad, their_state);
                assert_eq!(values(&ours), values(&theirs), "step {step}, decay {weight_decay}");
                let (a, b) = (our_state.as_ref().unwrap(), their_state.as_ref().unwrap());
                assert_eq!(a.momentum.time, b.momentum.time);
                assert_eq!(values(&a.momentum.moment_2), values(&b.momentum.moment_2));
            }
        }
    }

    #[test]
    fn clipping_inside_the_step_matches_burns_clip_then_step() {
        let _seeded = crate::seeded_device_lock();
        let device = Device::flex();
        device.seed(12);
        let config = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.01);
        let fused = FusedAdamW::new(0.9, 0.999, 1e-8, 0.01, Some(1.0));
        for std in [1e-4, 1.0] {
            // Norm ≈ 0.01 (no clipping: the factor is exactly 1) and ≈ 100 (clipped).
            let param = Tensor::<2>::random([100, 100], Distribution::Default, &device);
            let grad = Tensor::<2>::random([100, 100], Distribution::Normal(0.0, std), &device);
            let (ours, _) = fused.step(1e-3, param.clone(), grad.clone(), None);
            let clipped = GradientClipping::Norm(1.0).clip_gradient(grad);
            let (theirs, _) = config.build().step(1e-3, param, clipped, None);
            let (ours, theirs) = (values(&ours), values(&theirs));
            if std < 1e-2 {
                assert_eq!(ours, theirs);
            }
            for (a, b) in ours.iter().zip(&theirs) {
                assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
            }
        }
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn off_flex_the_step_is_burns() {
        #[allow(deprecated)]
        let device = Device::ndarray();
        let config = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.01);
        let fused = FusedAdamW::new(0.9, 0.999, 1e-8, 0.01, Some(0.1));
        let param =
            Tensor::<2>::from_data(TensorData::from([[0.5f32, -0.25], [1.0, 2.0]]), &device);
        let grad = Tensor::<2>::from_data(TensorData::from([[0.1f32, 0.2], [-0.3, 0.0]]), &device);
        let (ours, _) = fused.step(1e-2, param.clone(), grad.clone(), None);
        let clipped = GradientClipping::Norm(0.1).clip_gradient(grad);
        let (theirs, _) = config.build().step(1e-2, param, clipped, None);
        assert_eq!(ours.device(), device);
        assert_eq!(values(&ours), values(&theirs));
    }
}
