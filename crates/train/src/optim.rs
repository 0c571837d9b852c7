//! How thaw steps its models, fine-tuning and masked-LM alike: AdamW and the learning-rate
//! schedule.

use burn::optim::ModuleOptimizer;

use crate::kernels::FusedAdamW;

/// AdamW as thaw trains with it (fine-tuning and MLM alike): PyTorch's epsilon 1e-8, gradient
/// clipping per parameter tensor at `max_grad_norm` (0 disables), as burn's
/// `GradientClipping::Norm`; clip and update in one pass per tensor on Flex ([`FusedAdamW`]).
pub fn adamw(weight_decay: f64, max_grad_norm: f64) -> ModuleOptimizer {
    let clip = (max_grad_norm > 0.0).then_some(max_grad_norm as f32);
    ModuleOptimizer::from(FusedAdamW::new(0.9, 0.999, 1e-8, weight_decay as f32, clip))
}

/// Learning rate at `step` (0-based) of `total`: linear warmup, then linear decay to 0.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        let remaining = total.saturating_sub(step) as f64;
        let span = total.saturating_sub(warmup).max(1) as f64;
        peak * remaining / span
    }
}
