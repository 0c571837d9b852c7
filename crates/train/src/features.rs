//! Frozen features per encoder depth: every example of a split pooled (as the sweep's head
//! pools) after the embeddings and after each layer, with no training. What `thaw advise`
//! measures how far each depth already separates the task.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::backend::on_compute_threads;
use crate::batch::{eval_batches, token_batch, type_batch};
use crate::encode::EncodedSplit;
use crate::error::{Result, TrainError};
use crate::model::{Pooling, pool};
use crate::models::Encoder;

/// Pooled features of one split: `by_depth[d][i]` is example i's vector after d layers
/// (d = 0: the embeddings' output; the last depth as the family hands it on).
#[derive(Debug, Clone, PartialEq)]
pub struct DepthFeatures {
    pub by_depth: Vec<Vec<Vec<f32>>>,
}

/// The pooled states of every example of `split` at every depth, in the split's order,
/// computed in batches of `batch_size` on `device` (dropout off).
pub fn depth_features(
    encoder: &Encoder,
    split: &EncodedSplit,
    pad: u32,
    pooling: Pooling,
    batch_size: usize,
    device: &Device,
) -> Result<DepthFeatures> {
    on_compute_threads(|| {
        let encoder = encoder.clone().valid();
        let layers = encoder.num_layers();
        let mut by_depth = vec![vec![Vec::new(); split.len()]; layers + 1];
        for picked in eval_batches(&split.lengths(), batch_size.max(1)) {
            let (ids, mask) = token_batch(&split.ids, &picked, pad, device);
            let mut hidden = encoder.embed(ids, type_batch(split, &picked, device), &mask);
            for (depth, features) in by_depth.iter_mut().enumerate() {
                if depth > 0 {
                    hidden = encoder.layers_range(hidden, &mask, depth - 1, depth);
                }
                let shown =
                    if depth == layers { encoder.finish(hidden.clone()) } else { hidden.clone() };
                store_rows(pool(shown, &mask, pooling), &picked, features)?;
            }
        }
        Ok(DepthFeatures { by_depth })
    })
}

fn store_rows(pooled: Tensor<2>, picked: &[usize], into: &mut [Vec<f32>]) -> Result<()> {
    let [_, width] = pooled.dims();
    let values = pooled
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
    for (row, &i) in values.chunks_exact(width).zip(picked) {
        into[i] = row.to_vec();
    }
    Ok(())
}
