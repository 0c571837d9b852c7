//! The frozen-prefix cache. With the embeddings and layers `[0, k)` frozen (no gradient,
//! no dropout), their output is a pure function of the tokens, so it is computed once
//! per example and reused by every epoch and by every job that shares (start weights,
//! k, data, max length): other seeds, other learning rates. A deeper prefix starts from
//! the deepest shallower one already cached.

use std::collections::HashMap;
use std::sync::Arc;

use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::batch::{eval_batches, token_batch};
use crate::encode::{EncodedData, EncodedSplit};
use crate::error::{Result, TrainError};
use crate::events::{Observer, Phase};
use crate::model::BertModel;

/// The hidden states entering layer `depth`, one row block per example.
pub struct PrefixActivations {
    pub depth: usize,
    pub width: usize,
    pub train: Vec<Vec<f32>>,
    pub validation: Vec<Vec<f32>>,
    pub test: Vec<Vec<f32>>,
}

impl PrefixActivations {
    pub fn bytes(&self) -> usize {
        [&self.train, &self.validation, &self.test]
            .iter()
            .flat_map(|s| s.iter())
            .map(|v| v.len() * 4)
            .sum()
    }

    /// Estimated size before computing it: tokens x width x 4 bytes.
    pub fn estimate_bytes(data: &EncodedData, width: usize) -> usize {
        (data.train.tokens() + data.validation.tokens() + data.test.tokens()) * width * 4
    }

    /// `[batch, longest, width]` hidden states of `picked`, zero in padding positions
    /// (padding keys are masked, so their values never reach a real token).
    pub fn batch(
        rows: &[Vec<f32>],
        split: &EncodedSplit,
        picked: &[usize],
        width: usize,
        device: &Device,
    ) -> Tensor<3> {
        let longest = picked.iter().map(|&i| split.ids[i].len()).max().unwrap_or(1);
        let mut flat = vec![0.0f32; picked.len() * longest * width];
        for (b, &i) in picked.iter().enumerate() {
            let start = b * longest * width;
            flat[start..start + rows[i].len()].copy_from_slice(&rows[i]);
        }
        Tensor::from_data(TensorData::new(flat, [picked.len(), longest, width]), device)
    }
}

/// Runs the frozen prefix (inference mode) over all three splits: from the tokens, or on
/// from `shallower`, the cached output of fewer frozen layers of the same start weights
/// (the output of layers `[0, k)` is layer `k - 1` applied to that of `[0, k - 1)`), so a
/// sweep over depths pays for each frozen layer once.
pub fn compute_prefix(
    encoder: &BertModel,
    data: &EncodedData,
    depth: usize,
    shallower: Option<&PrefixActivations>,
    batch_size: usize,
    device: &Device,
    observer: &mut Observer,
) -> Result<PrefixActivations> {
    let width = encoder.embeddings.hidden_size();
    let from = shallower.map_or(0, |p| p.depth);
    debug_assert!(from < depth, "a shallower prefix is shallower");
    let mut run =
        |split: &EncodedSplit, earlier: Option<&[Vec<f32>]>, name: &str| -> Result<Vec<Vec<f32>>> {
            observer.phase(
                Phase::Prefix,
                format!("frozen layers {from}..{depth} over {} {name} examples", split.len()),
            );
            let mut rows = vec![Vec::new(); split.len()];
            for picked in eval_batches(&split.lengths(), batch_size) {
                if observer.should_stop() {
                    return Err(TrainError::Interrupted);
                }
                let (ids, mask): (_, Tensor<2, Bool>) =
                    token_batch(&split.ids, &picked, data.pad, device);
                let hidden = match earlier {
                    None => encoder.prefix(ids, &mask, depth),
                    Some(earlier) => encoder.layers_range(
                        PrefixActivations::batch(earlier, split, &picked, width, device),
                        &mask,
                        from,
                        depth,
                    ),
                };
                let [_, longest, _] = hidden.dims();
                let values: Vec<f32> = hidden
                    .into_data()
                    .try_to_vec()
                    .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
                for (b, &i) in picked.iter().enumerate() {
                    let len = split.ids[i].len();
                    let start = b * longest * width;
                    rows[i] = values[start..start + len * width].to_vec();
                }
            }
            Ok(rows)
        };
    Ok(PrefixActivations {
        depth,
        width,
        train: run(&data.train, shallower.map(|p| p.train.as_slice()), "train")?,
        validation: run(
            &data.validation,
            shallower.map(|p| p.validation.as_slice()),
            "validation",
        )?,
        test: run(&data.test, shallower.map(|p| p.test.as_slice()), "test")?,
    })
}

/// Frozen-prefix activations kept in memory under a byte budget (least recently used
/// evicted first). Past the budget, jobs recompute the prefix on every step instead.
pub struct PrefixCache {
    budget_bytes: usize,
    entries: HashMap<String, (Arc<PrefixActivations>, u64)>,
    clock: u64,
}

impl PrefixCache {
    pub fn new(budget_bytes: usize) -> Self {
        PrefixCache { budget_bytes, entries: HashMap::new(), clock: 0 }
    }

    pub fn budget_bytes(&self) -> usize {
        self.budget_bytes
    }

    pub fn get(&mut self, key: &str) -> Option<Arc<PrefixActivations>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(value, used)| {
            *used = clock;
            value.clone()
        })
    }

    /// Whether an entry of `bytes` can be held at all.
    pub fn fits(&self, bytes: usize) -> bool {
        bytes <= self.budget_bytes
    }

    pub fn insert(&mut self, key: String, value: Arc<PrefixActivations>) {
        let bytes = value.bytes();
        if !self.fits(bytes) {
            return;
        }
        while self.used_bytes() + bytes > self.budget_bytes {
            let oldest =
                self.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
        self.clock += 1;
        self.entries.insert(key, (value, self.clock));
    }

    pub fn used_bytes(&self) -> usize {
        self.entries.values().map(|(v, _)| v.bytes()).sum()
    }
}
