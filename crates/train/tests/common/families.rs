//! Parity with transformers for every encoder family, on the tiny random checkpoints
//! `scripts/make_family_fixtures.py` writes with transformers itself
//! (`tests/fixtures/families/<family>/`): tokenization, the last hidden state of single and
//! paired padded batches, every layer's output (the frozen prefixes), the masked-LM logits,
//! and that loading reads every tensor of the file.

use std::path::PathBuf;

use burn::tensor::{Int, Tensor, TensorData};
use serde::Deserialize;
use thaw_train::load::{ModelFiles, Start, load_encoder};
use thaw_train::models::{Encoder, MaskedLmHead, ModelConfig};
use thaw_train::tokenize::TextTokenizer;
use thaw_train::weights::{Checkpoint, Weights};
use thaw_train::{BackendKind, TrainError};

/// Every family folder, and whether its checkpoint has a masked-LM head.
pub const FAMILIES: [(&str, bool); 9] = [
    ("bert", true),
    ("roberta", true),
    ("xlm-roberta", true),
    ("distilbert", true),
    ("electra", true),
    ("electra-discriminator", false),
    ("deberta-v2", true),
    ("deberta-v2-lmhead", true),
    ("modernbert", true),
];

/// The largest difference allowed from transformers' numbers (the fixtures keep 7 digits).
pub const TOLERANCE: f64 = 1e-4;

#[derive(Deserialize)]
struct Expected {
    sentences: Vec<String>,
    single: Batch,
    pair: Batch,
    hidden_states_per_layer: PerLayer,
}

#[derive(Deserialize)]
struct Batch {
    input_ids: Vec<Vec<i64>>,
    attention_mask: Vec<Vec<i64>>,
    token_type_ids: Option<Vec<Vec<i64>>>,
    last_hidden_state: Vec<Vec<Vec<f64>>>,
    mlm: Option<Mlm>,
}

#[derive(Deserialize)]
struct Mlm {
    positions: Vec<(usize, usize)>,
    logits: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct PerLayer {
    positions: Vec<(usize, usize)>,
    /// `[entry][position][hidden]`: entry 0 the embeddings' output, entry i layer i's.
    values: Vec<Vec<Vec<f64>>>,
}

pub fn folder(family: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families").join(family)
}

fn expected(family: &str) -> Expected {
    let text = std::fs::read_to_string(folder(family).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The worst difference from transformers over everything the fixture of `family` holds,
/// computed on `backend`; with what each part measured, for the failure message.
pub fn worst_difference(family: &str, has_mlm: bool, backend: BackendKind) -> (f64, String) {
    let files = ModelFiles::in_dir(&folder(family)).unwrap();
    let config = ModelConfig::from_file(&files.config).unwrap();
    let device = backend.device().unwrap();
    let encoder = load_encoder(&files, &config, &Start::Pretrained, &device).unwrap();
    let want = expected(family);
    let mut parts = Vec::new();
    for (name, batch) in [("single", &want.single), ("pair", &want.pair)] {
        let (ids, types, mask) = tensors(batch, &device);
        let hidden = encoder.forward(ids, types, &mask);
        parts.push((format!("{name} hidden"), hidden_difference(hidden, batch)));
    }
    parts.push(("layers".into(), layer_difference(&encoder, &want, &device)));
    if has_mlm {
        let head = own_head(&files, &config, &device);
        for (name, batch) in [("single", &want.single), ("pair", &want.pair)] {
            parts.push((format!("{name} mlm"), mlm_difference(&encoder, &head, batch, &device)));
        }
    }
    let worst = parts.iter().map(|p| p.1).fold(0.0, f64::max);
    let text = parts.iter().map(|(n, d)| format!("{n} {d:.1e}")).collect::<Vec<_>>().join(", ");
    (worst, format!("{family} on {backend}: {text}"))
}

fn tensors(
    batch: &Batch,
    device: &burn::tensor::Device,
) -> (Tensor<2, Int>, Option<Tensor<2, Int>>, Tensor<2, burn::tensor::Bool>) {
    let rows = batch.input_ids.len();
    let cols = batch.input_ids[0].len();
    let int = |values: &[Vec<i64>]| {
        Tensor::<2, Int>::from_data(TensorData::new(values.concat(), [rows, cols]), device)
    };
    let ids = int(&batch.input_ids);
    let types = batch.token_type_ids.as_deref().map(int);
    let mask = int(&batch.attention_mask).equal_elem(0);
    (ids, types, mask)
}

fn hidden_difference(hidden: Tensor<3>, batch: &Batch) -> f64 {
    let [_, seq, width] = hidden.dims();
    let got: Vec<f32> = hidden.into_data().try_to_vec().unwrap();
    let mut worst = 0.0f64;
    for (b, rows) in batch.last_hidden_state.iter().enumerate() {
        for (t, row) in rows.iter().enumerate() {
            if batch.attention_mask[b][t] == 0 {
                continue;
            }
            for (d, want) in row.iter().enumerate() {
                worst = worst.max((got[(b * seq + t) * width + d] as f64 - want).abs());
            }
        }
    }
    worst
}

/// Every layer's output (the frozen prefix of each depth) at the fixture's positions; the
/// last entry is the model's output, so the head side's final step is applied there.
fn layer_difference(encoder: &Encoder, want: &Expected, device: &burn::tensor::Device) -> f64 {
    let (ids, types, mask) = tensors(&want.single, device);
    let layers = encoder.num_layers();
    let mut x = encoder.embed(ids, types, &mask);
    let mut worst = 0.0f64;
    for (depth, entry) in want.hidden_states_per_layer.values.iter().enumerate() {
        if depth > 0 {
            x = encoder.layers_range(x, &mask, depth - 1, depth);
        }
        let state = if depth == layers { encoder.finish(x.clone()) } else { x.clone() };
        let [_, seq, width] = state.dims();
        let got: Vec<f32> = state.into_data().try_to_vec().unwrap();
        for (&(b, t), row) in want.hidden_states_per_layer.positions.iter().zip(entry) {
            for (d, value) in row.iter().enumerate() {
                worst = worst.max((got[(b * seq + t) * width + d] as f64 - value).abs());
            }
        }
    }
    worst
}

/// The checkpoint's own masked-LM head, read with the encoder, and every tensor of the file
/// taken by the two.
fn own_head(
    files: &ModelFiles,
    config: &ModelConfig,
    device: &burn::tensor::Device,
) -> MaskedLmHead {
    let mut checkpoint = Checkpoint::open(&files.weights, device).unwrap();
    let prefix = checkpoint.encoder_prefix(config.weight_prefix());
    Encoder::load(config, &mut Weights::under(&mut checkpoint, &prefix), device).unwrap();
    let head = MaskedLmHead::load(config, &mut Weights::new(&mut checkpoint), device).unwrap();
    let unused = checkpoint.unused_tensors("", &[]);
    assert!(unused.is_empty(), "{}: tensors not read: {unused:?}", files.weights.display());
    head
}

fn mlm_difference(
    encoder: &Encoder,
    head: &MaskedLmHead,
    batch: &Batch,
    device: &burn::tensor::Device,
) -> f64 {
    let mlm = batch.mlm.as_ref().expect("an MLM fixture");
    let (ids, types, mask) = tensors(batch, device);
    let hidden = encoder.forward(ids, types, &mask);
    let [_, seq, width] = hidden.dims();
    let flat: Vec<i64> = mlm.positions.iter().map(|&(b, t)| (b * seq + t) as i64).collect();
    let picked = hidden.reshape([seq * batch.input_ids.len(), width]).select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(flat.clone(), [flat.len()]), device),
    );
    let logits: Vec<f32> =
        head.logits(picked, encoder.word_embeddings()).into_data().try_to_vec().unwrap();
    let vocab = mlm.logits[0].len();
    let mut worst = 0.0f64;
    for (i, row) in mlm.logits.iter().enumerate() {
        for (v, want) in row.iter().enumerate() {
            worst = worst.max((logits[i * vocab + v] as f64 - want).abs());
        }
    }
    worst
}

/// thaw's tokenization of the fixture's sentences: the ids transformers gave (padding aside).
pub fn tokenization_matches(family: &str) -> Result<(), String> {
    let files = ModelFiles::in_dir(&folder(family)).map_err(|e: TrainError| e.to_string())?;
    let tokenizer = TextTokenizer::from_file(&files.tokenizer, 512).map_err(|e| e.to_string())?;
    let want = expected(family);
    let texts: Vec<&str> = want.sentences.iter().map(String::as_str).collect();
    let got = tokenizer.encode_all(&texts).map_err(|e| e.to_string())?;
    for ((ids, row), mask) in
        got.iter().zip(&want.single.input_ids).zip(&want.single.attention_mask)
    {
        let real: Vec<i64> =
            row.iter().zip(mask).filter(|(_, m)| **m == 1).map(|(id, _)| *id).collect();
        let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        if ids != real {
            return Err(format!("{family}: thaw {ids:?}, transformers {real:?}"));
        }
    }
    Ok(())
}

/// Rotten Tomatoes snippets tokenized with `family`'s own tokenizer.
pub fn family_data(
    family: &str,
    n_train: usize,
) -> std::sync::Arc<thaw_train::encode::EncodedData> {
    use thaw_train::data::{SplitOptions, load_splits};
    let mut splits = load_splits(
        &super::rt_files(),
        &SplitOptions { train_size: Some(n_train), ..Default::default() },
    )
    .unwrap();
    splits.validation.truncate(32);
    splits.test.truncate(32);
    let files = ModelFiles::in_dir(&folder(family)).unwrap();
    let tokenizer = TextTokenizer::from_file(&files.tokenizer, 24).unwrap();
    thaw_train::encode::encode_splits(&tokenizer, &splits, format!("rt-{family}-{n_train}"))
        .unwrap()
}
