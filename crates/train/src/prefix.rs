//! The frozen-prefix cache. With the embeddings and layers `[0, k)` frozen (no gradient,
//! no dropout), their output is a pure function of the tokens, so it is computed once
//! per example and reused by every epoch and by every job that shares (start weights,
//! k, data, max length): other seeds, other learning rates. A deeper prefix starts from
//! the deepest shallower one already cached. On a GPU backend the activations stay on the
//! device, under the same byte budget.

use std::collections::HashMap;
use std::sync::Arc;

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::batch::{eval_batches, token_batch, type_batch};
use crate::encode::{EncodedData, EncodedSplit};
use crate::error::{Result, TrainError};
use crate::events::{Observer, Phase};
use crate::models::Encoder;

/// The hidden states entering layer `depth`, for every example of the three splits.
pub struct PrefixActivations {
    pub depth: usize,
    pub width: usize,
    pub train: PrefixRows,
    pub validation: PrefixRows,
    pub test: PrefixRows,
}

/// One split's prefix states, where the backend wants them.
pub enum PrefixRows {
    /// One row block (`length x width`) per example in host memory: on a CPU backend a
    /// batch is a copy, not a transfer.
    Host(Vec<Vec<f32>>),
    /// All examples on the device as `[examples, split's longest, width]`, in the split's
    /// order, zero past each example's length: on a GPU a batch is a gather on the device,
    /// never an upload.
    Device(Box<Tensor<3>>),
}

impl PrefixRows {
    fn bytes(&self) -> usize {
        match self {
            PrefixRows::Host(rows) => rows.iter().map(|v| v.len() * 4).sum(),
            PrefixRows::Device(states) => states.dims().iter().product::<usize>() * 4,
        }
    }

    /// `[batch, longest, width]` hidden states of `picked`, zero in padding positions
    /// (padding keys are masked, so their values never reach a real token).
    pub fn batch(
        &self,
        split: &EncodedSplit,
        picked: &[usize],
        width: usize,
        device: &Device,
    ) -> Tensor<3> {
        let longest = picked.iter().map(|&i| split.ids[i].len()).max().unwrap_or(1);
        match self {
            PrefixRows::Host(rows) => {
                let mut flat = vec![0.0f32; picked.len() * longest * width];
                for (b, &i) in picked.iter().enumerate() {
                    let start = b * longest * width;
                    flat[start..start + rows[i].len()].copy_from_slice(&rows[i]);
                }
                Tensor::from_data(TensorData::new(flat, [picked.len(), longest, width]), device)
            }
            PrefixRows::Device(states) => {
                let rows = index_tensor(picked.iter().copied(), &states.device());
                let batch =
                    states.clone().select(0, rows).slice([0..picked.len(), 0..longest, 0..width]);
                // A constant for the autodiff graph: the prefix is frozen.
                if device.is_autodiff() { batch.autodiff() } else { batch }
            }
        }
    }
}

fn index_tensor(indices: impl Iterator<Item = usize>, device: &Device) -> Tensor<1, Int> {
    let indices: Vec<i64> = indices.map(|i| i as i64).collect();
    let n = indices.len();
    Tensor::from_data(TensorData::new(indices, [n]), device)
}

impl PrefixActivations {
    pub fn bytes(&self) -> usize {
        [&self.train, &self.validation, &self.test].iter().map(|rows| rows.bytes()).sum()
    }

    /// Estimated size before computing it: tokens x width x 4 bytes on the host; on the
    /// device every example takes its split's longest length.
    pub fn estimate_bytes(data: &EncodedData, width: usize, on_device: bool) -> usize {
        let tokens = |split: &EncodedSplit| {
            if on_device {
                split.len() * split.lengths().into_iter().max().unwrap_or(0)
            } else {
                split.tokens()
            }
        };
        (tokens(&data.train) + tokens(&data.validation) + tokens(&data.test)) * width * 4
    }
}

/// Runs the frozen prefix (inference mode) over all three splits: from the tokens, or on
/// from `shallower`, the cached output of fewer frozen layers of the same start weights
/// (the output of layers `[0, k)` is layer `k - 1` applied to that of `[0, k - 1)`), so a
/// sweep over depths pays for each frozen layer once. With `on_device` the states stay on
/// the device ([`PrefixRows::Device`]); otherwise they are read back to the host.
#[allow(clippy::too_many_arguments)]
pub fn compute_prefix(
    encoder: &Encoder,
    data: &EncodedData,
    depth: usize,
    shallower: Option<&PrefixActivations>,
    batch_size: usize,
    on_device: bool,
    device: &Device,
    observer: &mut Observer,
) -> Result<PrefixActivations> {
    let width = encoder.hidden_size();
    let from = shallower.map_or(0, |p| p.depth);
    debug_assert!(from < depth, "a shallower prefix is shallower");
    let mut run =
        |split: &EncodedSplit, earlier: Option<&PrefixRows>, name: &str| -> Result<PrefixRows> {
            observer.phase(
                Phase::Prefix,
                format!("frozen layers {from}..{depth} over {} {name} examples", split.len()),
            );
            let batches = eval_batches(&split.lengths(), batch_size);
            let split_longest = split.lengths().into_iter().max().unwrap_or(1);
            let mut host_rows = vec![Vec::new(); if on_device { 0 } else { split.len() }];
            let mut device_parts = Vec::new();
            for picked in &batches {
                if observer.should_stop() {
                    return Err(TrainError::Interrupted);
                }
                let (ids, mask): (_, Tensor<2, Bool>) =
                    token_batch(&split.ids, picked, data.pad, device);
                let hidden = match earlier {
                    None => {
                        let types = type_batch(split, picked, device);
                        encoder.layers_range(encoder.embed(ids, types, &mask), &mask, 0, depth)
                    }
                    Some(earlier) => encoder.layers_range(
                        earlier.batch(split, picked, width, device),
                        &mask,
                        from,
                        depth,
                    ),
                };
                let [batch, longest, _] = hidden.dims();
                if on_device {
                    let real = mask.bool_not().float().unsqueeze_dim::<3>(2);
                    let mut part = hidden * real;
                    if longest < split_longest {
                        let tail = Tensor::zeros([batch, split_longest - longest, width], device);
                        part = Tensor::cat(vec![part, tail], 1);
                    }
                    device_parts.push(part);
                    continue;
                }
                let values: Vec<f32> = hidden
                    .into_data()
                    .try_to_vec()
                    .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
                for (b, &i) in picked.iter().enumerate() {
                    let len = split.ids[i].len();
                    let start = b * longest * width;
                    host_rows[i] = values[start..start + len * width].to_vec();
                }
            }
            if !on_device {
                return Ok(PrefixRows::Host(host_rows));
            }
            // Rows come out in batch order; put example i at row i.
            let mut row_of = vec![0usize; split.len()];
            for (row, &example) in batches.iter().flatten().enumerate() {
                row_of[example] = row;
            }
            let states = if device_parts.is_empty() {
                Tensor::zeros([0, split_longest, width], device)
            } else {
                Tensor::cat(device_parts, 0).select(0, index_tensor(row_of.into_iter(), device))
            };
            Ok(PrefixRows::Device(Box::new(states)))
        };
    Ok(PrefixActivations {
        depth,
        width,
        train: run(&data.train, shallower.map(|p| &p.train), "train")?,
        validation: run(&data.validation, shallower.map(|p| &p.validation), "validation")?,
        test: run(&data.test, shallower.map(|p| &p.test), "test")?,
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
