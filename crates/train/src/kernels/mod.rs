//! The steps outside the matrix multiplies that profiling showed dominating a BERT training
//! step on the Flex CPU backend, done here instead: GELU (forward and backward) and dropout
//! (this file), LayerNorm ([`layer_norm()`]), the masked attention softmax
//! ([`masked_softmax`]) and AdamW's update ([`FusedAdamW`]).
//!
//! burn-flex computes GELU with a scalar libm `erff` per element on one thread (about a
//! quarter of a k = 0 step), and burn's dropout draws each mask element through ChaCha20
//! (another 8%). Here GELU is the exact erf form, vectorised (AVX-512, else AVX2/FMA, picked
//! at run time) and split over threads, plugged into burn's autodiff as a custom op; dropout
//! masks come from a small fast generator seeded from the device's own seeded RNG, so a
//! seed still fixes the run. Other backends (ndarray, wgpu) keep burn's own operations:
//! there these steps are not the bottleneck, and a GPU should draw its masks itself.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, GradientCheckpointingStrategy, TensorMetadata};
use burn::nn::Dropout;
use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU8, Ordering};

/// Defines a function whose body is compiled for the widest vector extension this CPU has:
/// AVX-512, else AVX2 with FMA, else the build's baseline (the body, and what it calls
/// `#[inline(always)]`, is inlined into one variant per extension, picked at run time).
macro_rules! vectorised {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has just been checked for the features it enables.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

mod adamw;
mod layer_norm;
mod softmax;

pub use adamw::FusedAdamW;
pub use layer_norm::layer_norm;
pub use softmax::masked_softmax;

/// thaw's own CPU ops. Each can be handed back to burn ([`use_burns`]), so the benchmark
/// can measure what each one buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnOp {
    Gelu,
    Dropout,
    LayerNorm,
    Softmax,
    AdamW,
}

impl OwnOp {
    pub const ALL: [OwnOp; 5] =
        [OwnOp::Gelu, OwnOp::Dropout, OwnOp::LayerNorm, OwnOp::Softmax, OwnOp::AdamW];

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

static HANDED_BACK: AtomicU8 = AtomicU8::new(0);

/// From now on, in this process, `op` runs burn's way (`true`) or thaw's (`false`, the
/// default). For measurements: burn's dropout draws other masks, and the other ops differ
/// from thaw's by float rounding, so a training run's numbers change with the choice.
pub fn use_burns(op: OwnOp, burns: bool) {
    if burns {
        HANDED_BACK.fetch_or(op.bit(), Ordering::Relaxed);
    } else {
        HANDED_BACK.fetch_and(!op.bit(), Ordering::Relaxed);
    }
}

fn own(op: OwnOp) -> bool {
    HANDED_BACK.load(Ordering::Relaxed) & op.bit() == 0
}

/// Gaussian error linear unit, `x * Φ(x)` with the exact erf (as BERT defines it).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !own(OwnOp::Gelu) || !fused_ops_apply(&x.device()) || x.dtype() != DType::F32 {
        return burn::tensor::activation::gelu(x);
    }
    if let Ok(tracked) = x.clone().try_into_primitive::<Autodiff<Flex>>() {
        let output = unary_autodiff(tracked, gelu_flex, Keep::Input, gelu_backward_flex);
        return Tensor::from_primitive::<Autodiff<Flex>>(output);
    }
    match x.clone().try_into_primitive::<Flex>() {
        Ok(plain) => Tensor::from_primitive::<Flex>(gelu_flex(&plain)),
        Err(_) => burn::tensor::activation::gelu(x),
    }
}

/// Inverted dropout as burn's [`Dropout`] module does it (same switches: off when frozen,
/// off outside autodiff, off at probability 0), with the mask drawn on the CPU side.
pub fn dropout<const D: usize>(module: &Dropout, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !own(OwnOp::Dropout)
        || !on_flex(&device)
        || !module.training.is_enabled()
        || !device.is_autodiff()
        || module.prob == 0.0
    {
        return module.forward(x);
    }
    let shape = x.shape();
    let mask = keep_mask(shape.num_elements(), module.prob, draw_seed(&device));
    x * Tensor::from_data(TensorData::new(mask, shape), &device)
}

fn on_flex(device: &Device) -> bool {
    device.clone().without_autodiff() == Device::flex()
}

/// Whether thaw's own ops replace burn's on `device`: on Flex, and without gradient
/// checkpointing (the custom ops are registered without it; thaw never enables it).
fn fused_ops_apply(device: &Device) -> bool {
    let checkpointing = device
        .gradient_checkpointing_strategy()
        .is_some_and(|s| s != GradientCheckpointingStrategy::Disabled);
    on_flex(device) && !checkpointing
}

/// One seed per mask from the device's RNG, which `Device::seed` fixes for the job.
fn draw_seed(device: &Device) -> u64 {
    let draws = Tensor::<1>::random([2], Distribution::Default, device).into_data();
    let draws = draws.as_slice::<f32>().expect("f32 random draws");
    (u64::from(draws[0].to_bits()) << 32) | u64::from(draws[1].to_bits())
}

/// `1 / (1 - p)` where an element is kept, 0 where it is dropped. Drawn in blocks of
/// [`CHUNK`] elements, block i from its own generator seeded with (seed, i), so the mask
/// is the same however many threads draw it.
fn keep_mask(len: usize, prob: f64, seed: u64) -> Vec<f32> {
    let scale = (1.0 / (1.0 - prob)) as f32;
    // Keep when a uniform u32 falls below (1 - p) * 2^32.
    let threshold = ((1.0 - prob) * 4_294_967_296.0).min(4_294_967_295.0) as u32;
    let mut mask = vec![0.0f32; len];
    mask.par_chunks_mut(CHUNK).enumerate().for_each(|(block, out)| {
        let mut rng =
            SmallRng::seed_from_u64(seed ^ (block as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        out.iter_mut().for_each(|m| *m = if rng.random::<u32>() < threshold { scale } else { 0.0 });
    });
    mask
}

// ---- GELU on Flex ------------------------------------------------------------------------

/// The backward pass of a one-input op whose derivative reads one tensor the forward pass
/// kept (GELU its input, the softmax its output): `derivative(kept, output gradient)`.
#[derive(Debug)]
struct UnaryBackward {
    derivative: fn(&FlexTensor, &FlexTensor) -> FlexTensor,
}

impl Backward<Flex, 1> for UnaryBackward {
    type State = FlexTensor;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let kept = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| (self.derivative)(&kept, &grad));
    }
}

/// What a [`UnaryBackward`] keeps from the forward pass.
enum Keep {
    Input,
    Output,
}

/// `forward` on Flex as one custom op under autodiff, differentiated by `derivative`.
fn unary_autodiff(
    x: FloatTensor<Autodiff<Flex>>,
    forward: impl FnOnce(&FlexTensor) -> FlexTensor,
    keep: Keep,
    derivative: fn(&FlexTensor, &FlexTensor) -> FlexTensor,
) -> FloatTensor<Autodiff<Flex>> {
    let op = UnaryBackward { derivative };
    match op.prepare::<NoCheckpointing>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let input = x.into_primitive();
            let output = forward(&input);
            let kept = match keep {
                Keep::Input => input,
                Keep::Output => output.clone(),
            };
            prep.finish(kept, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&x.into_primitive())),
    }
}

fn gelu_flex(x: &FlexTensor) -> FlexTensor {
    map_flex(Kernel::GeluForward, x, None)
}

fn gelu_backward_flex(x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    map_flex(Kernel::GeluBackward, x, Some(grad))
}

/// `kernel` over `x` (and the incoming gradient), into a new contiguous tensor of x's shape.
fn map_flex(kernel: Kernel, x: &FlexTensor, grad: Option<&FlexTensor>) -> FlexTensor {
    let shape = x.shape();
    let x = contiguous_f32(x);
    let grad = grad.map(contiguous_f32);
    let mut out = vec![0.0f32; x.len()];
    parallel_map(&x, grad.as_deref().unwrap_or(&[]), &mut out, kernel);
    FlexTensor::from_data(TensorData::new(out, shape))
}

fn contiguous_f32(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(
            t.to_contiguous().as_slice::<f32>().expect("contiguous f32").to_vec(),
        ),
    }
}

#[derive(Clone, Copy)]
enum Kernel {
    GeluForward,
    GeluBackward,
}

/// Elements per task: big enough to amortise scheduling, small enough to share two cores.
const CHUNK: usize = 16 * 1024;

fn parallel_map(x: &[f32], grad: &[f32], out: &mut [f32], kernel: Kernel) {
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, out)| {
        let start = i * CHUNK;
        let x = &x[start..start + out.len()];
        let grad = if grad.is_empty() { grad } else { &grad[start..start + out.len()] };
        run_kernel(x, grad, out, kernel);
    });
}

vectorised! {
    /// `kernel` over one block.
    fn run_kernel(x: &[f32], grad: &[f32], out: &mut [f32], kernel: Kernel) {
        kernel_portable(x, grad, out, kernel)
    }
}

/// Vector lanes the row reductions below keep apart (then add in order): 16 f32 fill an
/// AVX-512 register, and fixed lanes keep a sum the same on every CPU.
const LANES: usize = 16;

/// Σ f(aᵢ, bᵢ) in [`LANES`] partial sums, which the compiler vectorises.
#[inline(always)]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (blocks_a, blocks_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 =
        blocks_a.remainder().iter().zip(blocks_b.remainder()).map(|(&x, &y)| f(x, y)).sum();
    for (x, y) in blocks_a.zip(blocks_b) {
        for i in 0..LANES {
            acc[i] += f(x[i], y[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Branch-free loops the compiler vectorises for whatever features the caller enabled.
#[inline(always)]
fn kernel_portable(x: &[f32], grad: &[f32], out: &mut [f32], kernel: Kernel) {
    match kernel {
        Kernel::GeluForward => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
        Kernel::GeluBackward => {
            const INV_SQRT_2PI: f32 = 0.398_942_3;
            for ((o, &v), &g) in out.iter_mut().zip(x).zip(grad) {
                let cdf = 0.5 * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = INV_SQRT_2PI * exp_nonpositive(-0.5 * v * v);
                *o = g * (cdf + v * pdf);
            }
        }
    }
}

/// erf as a rational function of x² on [-4, 4] (Eigen's and XLA's f32 erf; |error| < 1e-6,
/// and erf(±4) is ±1 in f32 already).
#[inline(always)]
fn erf(x: f32) -> f32 {
    const ALPHA: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-08,
        -2.101_024e-06,
        -5.692_506_4e-05,
        -7.349_906_3e-04,
        -2.954_6e-3,
        -1.609_603_3e-02,
    ];
    const BETA: [f32; 5] =
        [-1.456_607_2e-05, -2.133_740_6e-04, -1.682_827e-03, -7.373_329_3e-03, -1.426_474e-02];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = ALPHA[0];
    for a in &ALPHA[1..] {
        p = p * x2 + a;
    }
    let mut q = BETA[0];
    for b in &BETA[1..] {
        q = q * x2 + b;
    }
    x * p / q
}

/// e^v for v <= 0 (Cephes-style: 2^n by exponent bits, e^r by a degree-6 polynomial on
/// |r| <= ln2/2; relative error about 1e-7). Below -87 the result is 0 in f32 terms.
#[inline(always)]
fn exp_nonpositive(v: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting it rounds to an integer
    let v = v.max(-87.0);
    let n = (v * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = v - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let poly = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    f32::from_bits(((n as i32 + 127) as u32) << 23) * poly
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;

    fn grid() -> Vec<f32> {
        (-2000..=2000).map(|i| i as f32 * 0.005).chain([-30.0, -9.0, 9.0, 30.0]).collect()
    }

    #[test]
    fn erf_and_exp_match_libm() {
        for x in grid() {
            assert!((erf(x) - libm::erf(f64::from(x)) as f32).abs() < 1e-6, "erf({x})");
            let e = exp_nonpositive(-x.abs());
            let reference = (-x.abs()).exp();
            assert!(
                (e - reference).abs() <= 4e-7 * reference + 1e-37,
                "exp({}) = {e}, libm {reference}",
                -x.abs()
            );
        }
    }

    #[test]
    fn every_kernel_path_agrees() {
        let x = grid();
        let grad: Vec<f32> = x.iter().map(|v| 0.3 - v * 0.1).collect();
        for kernel in [Kernel::GeluForward, Kernel::GeluBackward] {
            let mut portable = vec![0.0; x.len()];
            kernel_portable(&x, &grad, &mut portable, kernel);
            let mut dispatched = vec![0.0; x.len()];
            parallel_map(&x, &grad, &mut dispatched, kernel);
            for (a, b) in portable.iter().zip(&dispatched) {
                assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0));
            }
        }
    }

    #[test]
    fn keep_mask_keeps_the_right_share_and_scales() {
        let mask = keep_mask(200_000, 0.1, 7);
        let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept {kept}");
        assert!(mask.iter().all(|&m| m == 0.0 || (m - 1.0 / 0.9).abs() < 1e-6));
        assert_eq!(mask, keep_mask(200_000, 0.1, 7));
        assert_ne!(mask, keep_mask(200_000, 0.1, 8));
    }

    fn sample(device: &Device) -> Tensor<3> {
        let values: Vec<f32> = grid().into_iter().take(4000).collect();
        Tensor::from_data(TensorData::new(values, [4, 10, 100]), device)
    }

    #[test]
    fn gelu_and_its_gradient_match_burns_on_flex() {
        let device = Device::flex().autodiff();
        let weights = sample(&device).cos();
        let run = |f: fn(Tensor<3>) -> Tensor<3>| {
            let x = sample(&device).require_grad();
            let y = f(x.clone());
            let grads = (y.clone() * weights.clone()).sum().backward();
            (
                y.into_data().try_to_vec::<f32>().unwrap(),
                x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap(),
            )
        };
        let (ours, our_grad) = run(gelu);
        let (burns, burn_grad) = run(burn::tensor::activation::gelu);
        for (a, b) in ours.iter().zip(&burns).chain(our_grad.iter().zip(&burn_grad)) {
            assert!((a - b).abs() < 2e-6, "{a} vs {b}");
        }
        // Outside autodiff (evaluation, the frozen prefix) the same values come back.
        let plain = gelu(sample(&Device::flex())).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(plain, ours);
    }

    #[test]
    fn dropout_follows_the_device_seed_and_the_module_switches() {
        let _seeded = crate::seeded_device_lock();
        let device = Device::flex().autodiff();
        let module = burn::nn::DropoutConfig::new(0.25).init();
        let masked = |seed| {
            device.seed(seed);
            dropout(&module, Tensor::<2>::ones([64, 512], &device))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let first = masked(3);
        assert_eq!(first, masked(3));
        assert_ne!(first, masked(4));
        let kept = first.iter().filter(|&&v| v != 0.0).count() as f64 / first.len() as f64;
        assert!((kept - 0.75).abs() < 0.01, "kept {kept}");
        // Frozen (or outside autodiff) it is the identity, as burn's own Dropout.
        let ones = Tensor::<2>::ones([8, 8], &device);
        assert_eq!(
            dropout(&module.clone().freeze(), ones.clone()).into_data(),
            ones.clone().into_data()
        );
        assert_eq!(
            dropout(&module, Tensor::<2>::ones([8, 8], &Device::flex())).into_data(),
            Tensor::<2>::ones([8, 8], &Device::flex()).into_data()
        );
    }
}
