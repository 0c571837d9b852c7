//! Losses: cross-entropy, binary cross-entropy, and reading training losses back from the device in batches.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use crate::error::{Result, TrainError};

/// Mean cross-entropy of `logits` against `targets`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let picked = log_softmax(logits, 1).gather(1, targets.reshape([n, 1]));
    picked.mean().neg()
}

/// Mean binary cross-entropy of `logits` against 0/1 `targets` of the same shape, over
/// every element, in the stable form max(x, 0) - x·y + ln(1 + e^-|x|).
pub fn binary_cross_entropy_with_logits(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let positive_part = logits.clone().clamp_min(0.0);
    let softplus_of_minus_abs = logits.clone().abs().neg().exp().log1p();
    (positive_part - logits * targets + softplus_of_minus_abs).mean()
}

/// Training losses left on the device until a read is due (see
/// [`BackendKind::loss_read_interval`]), then read back together.
pub(crate) struct UnreadLosses {
    interval: usize,
    pending: Vec<Tensor<1>>,
}

impl UnreadLosses {
    pub(crate) fn new(interval: usize) -> Self {
        UnreadLosses { interval, pending: Vec::new() }
    }

    pub(crate) fn push(&mut self, loss: &Tensor<1>) {
        self.pending.push(loss.clone().detach());
    }

    /// After (1-based) `step`: the pending losses with the step number of the first, once
    /// `interval` have gathered or at the `last` step; None while a read is not yet due.
    pub(crate) fn read_if_due(
        &mut self,
        step: usize,
        last: bool,
    ) -> Result<Option<(usize, Vec<f32>)>> {
        if self.pending.len() < self.interval && !last {
            return Ok(None);
        }
        let read = read_floats(std::mem::take(&mut self.pending))?;
        Ok(Some((step + 1 - read.len(), read)))
    }
}

/// One read back for many scalar tensors (losses), in order.
pub(crate) fn read_floats(scalars: Vec<Tensor<1>>) -> Result<Vec<f32>> {
    if scalars.is_empty() {
        return Ok(Vec::new());
    }
    Tensor::cat(scalars, 0)
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| TrainError::Backend(format!("{e:?}")))
}
