//! BERT's attention softmax with its padding mask, on Flex: one pass forward, one backward.
//!
//! burn computes `softmax(scores.mask_fill(padding, -1e4))` as a mask fill, then max,
//! subtract, exp, sum and divide (under autodiff each differentiated on its own). Here the
//! masked scores are never written: a padding key gets exactly the 0 that burn's
//! exp(-10000 − max) gives it, the exponentials come from the polynomial in `kernels`
//! (compiled for AVX-512 or AVX2 at run time), and the backward pass is the softmax
//! Jacobian in one sweep, `dx = y·(g − Σ g·y)`.

use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, Tensor, TensorData};
use rayon::prelude::*;

use super::{
    Keep, LANES, OwnOp, contiguous_f32, exp_nonpositive, fused_ops_apply, lane_sum, own,
    unary_autodiff,
};

/// The score BERT's extended attention mask gives a padding key.
const MASKED: f32 = -1.0e4;

/// Rows per task.
const ROWS_PER_TASK: usize = 256;

/// Attention probabilities from scores `[batch, heads, queries, keys]`, keys where
/// `padding` `[batch, keys]` is true set to -10000 first (as BERT's extended mask does).
pub fn masked_softmax(scores: Tensor<4>, padding: &Tensor<2, Bool>) -> Tensor<4> {
    let [batch, _, _, keys] = scores.dims();
    let burns = |scores: Tensor<4>| {
        let mask = padding.clone().reshape([batch, 1, 1, keys]);
        softmax(scores.mask_fill(mask, MASKED), 3)
    };
    let ours = own(OwnOp::Softmax) && fused_ops_apply(&scores.device());
    if !ours || scores.dtype() != DType::F32 {
        return burns(scores);
    }
    if let Ok(tracked) = scores.clone().try_into_primitive::<Autodiff<Flex>>() {
        let flags = padding_flags(padding);
        let probs = unary_autodiff(tracked, |s| forward(s, &flags), Keep::Output, backward);
        return Tensor::from_primitive::<Autodiff<Flex>>(probs);
    }
    match scores.clone().try_into_primitive::<Flex>() {
        Ok(plain) => Tensor::from_primitive::<Flex>(forward(&plain, &padding_flags(padding))),
        Err(_) => burns(scores),
    }
}

fn padding_flags(padding: &Tensor<2, Bool>) -> Vec<bool> {
    padding.clone().into_data().convert::<bool>().try_to_vec::<bool>().expect("bool padding mask")
}

fn forward(scores: &FlexTensor, padding: &[bool]) -> FlexTensor {
    let shape = scores.shape();
    let keys = shape[3];
    let rows_per_batch = shape[1] * shape[2];
    let scores = contiguous_f32(scores);
    let mut probs = vec![0.0f32; scores.len()];
    probs.par_chunks_mut(ROWS_PER_TASK * keys).enumerate().for_each(|(task, out)| {
        let first = task * ROWS_PER_TASK * keys;
        let scores = &scores[first..first + out.len()];
        forward_rows(scores, padding, out, task * ROWS_PER_TASK, keys, rows_per_batch)
    });
    FlexTensor::from_data(TensorData::new(probs, shape))
}

vectorised! {
    /// Rows `first_row..` of the scores, whose batch picks the padding mask.
    fn forward_rows(
        scores: &[f32],
        padding: &[bool],
        out: &mut [f32],
        first_row: usize,
        keys: usize,
        rows_per_batch: usize,
    ) {
        let rows = scores.chunks_exact(keys).zip(out.chunks_exact_mut(keys));
        for (i, (scores, out)) in rows.enumerate() {
            let batch = (first_row + i) / rows_per_batch;
            softmax_row(scores, &padding[batch * keys..(batch + 1) * keys], out);
        }
    }
}

/// One row. A padding key's -10000 lies hundreds below any real score, where burn's exp is
/// exactly 0; here it is written as 0 directly. A row of padding only (never built: every
/// sequence keeps its [CLS]) is uniform, as burn's softmax of equal scores.
#[inline(always)]
fn softmax_row(scores: &[f32], padding: &[bool], out: &mut [f32]) {
    let max = real_max(scores, padding);
    if max == f32::NEG_INFINITY {
        out.fill(1.0 / out.len() as f32);
        return;
    }
    for ((o, &s), &pad) in out.iter_mut().zip(scores).zip(padding) {
        let e = exp_nonpositive((s - max).min(0.0));
        *o = if pad { 0.0 } else { e };
    }
    let inverse = 1.0 / lane_sum(out, out, |e, _| e);
    out.iter_mut().for_each(|o| *o *= inverse);
}

/// The largest score of a real (not padding) key, in [`LANES`] running maxima.
#[inline(always)]
fn real_max(scores: &[f32], padding: &[bool]) -> f32 {
    let masked = |s: f32, pad: bool| if pad { f32::NEG_INFINITY } else { s };
    let mut acc = [f32::NEG_INFINITY; LANES];
    let (blocks, pads) = (scores.chunks_exact(LANES), padding.chunks_exact(LANES));
    let tail = blocks
        .remainder()
        .iter()
        .zip(pads.remainder())
        .fold(f32::NEG_INFINITY, |m, (&s, &pad)| m.max(masked(s, pad)));
    for (block, pad) in blocks.zip(pads) {
        for i in 0..LANES {
            acc[i] = acc[i].max(masked(block[i], pad[i]));
        }
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}

fn backward(probs: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let shape = probs.shape();
    let keys = shape[3];
    let (probs, grad) = (contiguous_f32(probs), contiguous_f32(grad));
    let mut dx = vec![0.0f32; probs.len()];
    let task = ROWS_PER_TASK * keys;
    dx.par_chunks_mut(task)
        .zip(probs.par_chunks(task))
        .zip(grad.par_chunks(task))
        .for_each(|((dx, y), g)| backward_rows(dx, y, g, keys));
    FlexTensor::from_data(TensorData::new(dx, shape))
}

vectorised! {
    /// `dx = y·(g − Σ g·y)` per row.
    fn backward_rows(dx: &mut [f32], y: &[f32], g: &[f32], keys: usize) {
        let rows = dx.chunks_exact_mut(keys).zip(y.chunks_exact(keys)).zip(g.chunks_exact(keys));
        for ((dx, y), g) in rows {
            let dot = lane_sum(y, g, |y, g| y * g);
            for ((d, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                *d = y * (g - dot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn probabilities_and_gradient_match_burns_mask_fill_then_softmax() {
        let _seeded = crate::seeded_device_lock();
        let device = Device::flex().autodiff();
        device.seed(9);
        let (batch, heads, seq) = (3, 4, 30);
        let scores =
            Tensor::<4>::random([batch, heads, seq, seq], Distribution::Normal(0.0, 4.0), &device);
        let weights = Tensor::<4>::random([batch, heads, seq, seq], Distribution::Default, &device);
        // Sequences of 30, 17 and 1 real tokens.
        let lengths = [30, 17, 1];
        let flags: Vec<bool> =
            lengths.iter().flat_map(|&n| (0..seq).map(move |i| i >= n)).collect();
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(flags, [batch, seq]), &device);
        let run = |fused: bool| {
            let x = scores.clone().require_grad();
            let y = if fused {
                masked_softmax(x.clone(), &padding)
            } else {
                let mask = padding.clone().reshape([batch, 1, 1, seq]);
                softmax(x.clone().mask_fill(mask, MASKED), 3)
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            (values(y), values(x.grad(&grads).unwrap()))
        };
        let ((y, dx), (burn_y, burn_dx)) = (run(true), run(false));
        for (a, b) in y.iter().zip(&burn_y).chain(dx.iter().zip(&burn_dx)) {
            assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
        }
        // Padding keys get exactly nothing; each row sums to one.
        for (row, probs) in y.chunks_exact(seq).enumerate() {
            let n = lengths[row / (heads * seq)];
            assert!(probs[n..].iter().all(|&p| p == 0.0));
            assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        // Outside autodiff (evaluation) the same values come back.
        let plain = masked_softmax(scores.clone().inner(), &padding.clone().inner());
        assert_eq!(values(plain), y);
    }
}
