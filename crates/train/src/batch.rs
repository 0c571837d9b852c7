//! Batching: length-sorted buckets and dynamic padding, so a batch of short sentences
//! costs what short sentences cost.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::data::Targets;
use crate::encode::{EncodedSplit, Standardization};

/// Training batches: shuffle, sort by length inside pools of 50 batches, cut, shuffle the batches.
pub fn train_batches(lengths: &[usize], batch_size: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(rng);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for pool in order.chunks(batch_size * 50) {
        let mut pool = pool.to_vec();
        pool.sort_by_key(|&i| lengths[i]);
        batches.extend(pool.chunks(batch_size).map(|c| c.to_vec()));
    }
    batches.shuffle(rng);
    batches
}

/// Evaluation batches: sorted by length, in a fixed order.
pub fn eval_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    order.chunks(batch_size).map(|c| c.to_vec()).collect()
}

/// Token ids `[batch, longest]` padded with `pad`, and the padding mask (true = padding).
pub fn token_batch(
    ids: &[Vec<u32>],
    picked: &[usize],
    pad: u32,
    device: &Device,
) -> (Tensor<2, Int>, Tensor<2, Bool>) {
    let longest = picked.iter().map(|&i| ids[i].len()).max().unwrap_or(1);
    let mut flat = Vec::with_capacity(picked.len() * longest);
    let mut mask = Vec::with_capacity(picked.len() * longest);
    for &i in picked {
        let row = &ids[i];
        flat.extend(row.iter().map(|&t| t as i64));
        flat.extend(std::iter::repeat_n(pad as i64, longest - row.len()));
        mask.extend(std::iter::repeat_n(false, row.len()));
        mask.extend(std::iter::repeat_n(true, longest - row.len()));
    }
    let shape = [picked.len(), longest];
    (
        Tensor::from_data(TensorData::new(flat, shape), device),
        Tensor::from_data(TensorData::new(mask, shape), device),
    )
}

/// Token types `[batch, longest]` (1 from each example's second text on), when the split
/// holds pairs in a family with token types; None otherwise (every type 0).
pub fn type_batch(
    split: &EncodedSplit,
    picked: &[usize],
    device: &Device,
) -> Option<Tensor<2, Int>> {
    if !split.has_token_types() {
        return None;
    }
    let longest = picked.iter().map(|&i| split.ids[i].len()).max().unwrap_or(1);
    let mut flat = Vec::with_capacity(picked.len() * longest);
    for &i in picked {
        let second = split.second_text_at[i].unwrap_or(longest);
        flat.extend((0..longest).map(|p| i64::from(p >= second && p < split.ids[i].len())));
    }
    Some(Tensor::from_data(TensorData::new(flat, [picked.len(), longest]), device))
}

/// Regression targets of `picked`, standardized.
pub fn score_batch(
    scores: &[f64],
    picked: &[usize],
    scale: Standardization,
    device: &Device,
) -> Tensor<1> {
    let values: Vec<f32> = picked.iter().map(|&i| scale.standardize(scores[i]) as f32).collect();
    Tensor::from_data(TensorData::new(values, [picked.len()]), device)
}

/// The tagged positions of a batch: for every word whose first token survived truncation,
/// its flat index into `[batch * longest]`, and its tag id.
pub fn tag_positions(split: &EncodedSplit, picked: &[usize]) -> (Vec<i64>, Vec<i64>) {
    let Targets::Tags(tags) = &split.targets else { return (Vec::new(), Vec::new()) };
    let longest = picked.iter().map(|&i| split.ids[i].len()).max().unwrap_or(1);
    let (mut positions, mut ids) = (Vec::new(), Vec::new());
    for (b, &i) in picked.iter().enumerate() {
        for (start, &tag) in split.word_starts[i].iter().zip(&tags[i]) {
            if let Some(start) = start {
                positions.push((b * longest + start) as i64);
                ids.push(tag as i64);
            }
        }
    }
    (positions, ids)
}

/// Multi-label targets of `picked` as 0/1 floats `[batch, labels]`.
pub fn label_set_batch(sets: &[Vec<bool>], picked: &[usize], device: &Device) -> Tensor<2> {
    let labels = sets.first().map_or(0, Vec::len);
    let values: Vec<f32> =
        picked.iter().flat_map(|&i| sets[i].iter().map(|&yes| f32::from(u8::from(yes)))).collect();
    Tensor::from_data(TensorData::new(values, [picked.len(), labels]), device)
}

pub fn index_tensor(values: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

pub fn label_batch(labels: &[usize], picked: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = picked.iter().map(|&i| labels[i] as i64).collect();
    Tensor::from_data(TensorData::new(values, [picked.len()]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn train_batches_cover_every_example_once_and_group_lengths() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 7919) % 60 + 3).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let batches = train_batches(&lengths, 16, &mut rng);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        let padded: usize =
            batches.iter().map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap()).sum();
        let real: usize = lengths.iter().sum();
        assert!(
            (padded as f64) < 1.1 * real as f64,
            "bucketing keeps padding low: {padded} vs {real}"
        );
        let again = train_batches(&lengths, 16, &mut rand::rngs::StdRng::seed_from_u64(1));
        assert_eq!(batches, again, "same seed, same batches");
    }
}
