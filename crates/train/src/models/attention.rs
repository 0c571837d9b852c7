//! Multi-head scaled dot-product attention as BERT computes it, shared by the families whose
//! attention is BERT's (RoBERTa, XLM-R, ELECTRA, DistilBERT): queries scaled by 1/√d,
//! padding keys masked, dropout on the probabilities.

use burn::nn::Dropout;
use burn::tensor::{Bool, Tensor};

use crate::kernels::{dropout, masked_softmax};

/// `[batch, seq, width]` as `[batch, heads, seq, width / heads]`.
pub fn split_heads(t: Tensor<3>, heads: usize) -> Tensor<4> {
    let [batch, seq, width] = t.dims();
    t.reshape([batch, seq, heads, width / heads]).swap_dims(1, 2)
}

/// `[batch, heads, seq, head_width]` back to `[batch, seq, width]`.
pub fn merge_heads(t: Tensor<4>) -> Tensor<3> {
    let [batch, heads, seq, head_width] = t.dims();
    t.swap_dims(1, 2).reshape([batch, seq, heads * head_width])
}

/// The attention context of projected `query`, `key` and `value` `[batch, seq, width]`.
pub fn attend(
    query: Tensor<3>,
    key: Tensor<3>,
    value: Tensor<3>,
    heads: usize,
    mask_pad: &Tensor<2, Bool>,
    probs_dropout: &Dropout,
) -> Tensor<3> {
    let head_width = query.dims()[2] / heads;
    // Scaling the queries costs a [seq, head] pass instead of a [seq, seq] one.
    let query = split_heads(query, heads).div_scalar((head_width as f32).sqrt());
    let key = split_heads(key, heads);
    let value = split_heads(value, heads);
    // Padding keys get -10000 before the softmax, as BERT's extended attention mask does.
    let scores = query.matmul(key.swap_dims(2, 3));
    let probs = dropout(probs_dropout, masked_softmax(scores, mask_pad));
    merge_heads(probs.matmul(value))
}
