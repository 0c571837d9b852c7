//! What the real-model test binaries share: the checkpoint and data through the project's
//! own asset route, the RNG lock, parameter snapshots, and the checks every backend must
//! pass (parity with the numpy reference, freezing).

#![allow(dead_code)] // each test binary uses its own part of this module

pub mod families;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};
use thaw_train::batch::token_batch;
use thaw_train::data::{DataFiles, SplitOptions, load_splits};
use thaw_train::encode::{EncodedData, encode_splits};
use thaw_train::events::silently;
use thaw_train::freeze::count_params;
use thaw_train::load::load_encoder;
use thaw_train::tokenize::TextTokenizer;
use thaw_train::*;

pub fn minilm() -> &'static ModelFiles {
    static FILES: OnceLock<ModelFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let resolved =
            thaw_assets::resolve_hub_model(thaw_assets::MINILM, None).expect("asset route");
        ModelFiles::in_dir(&resolved.dir).expect("model files")
    })
}

/// burn seeds one process-wide RNG per backend, and the test harness runs tests on parallel
/// threads: tests that draw random numbers (dropout, initialisation) hold this lock, so a
/// seed fixes their draws as it does in a worker process, which runs one job at a time.
pub fn exclusive_rng() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn config() -> ModelConfig {
    ModelConfig::from_file(&minilm().config).unwrap()
}

/// MiniLM's config with `change` made to it (a config that no longer matches the weights).
pub fn bert_config(change: impl FnOnce(&mut models::bert::BertConfig)) -> ModelConfig {
    let mut config = config();
    let ModelConfig::Bert(bert) = &mut config else { panic!("MiniLM is a BERT") };
    change(bert);
    config
}

/// Every float parameter by its module path (an enum's variant left out): its value, or
/// with `grads` its gradient (parameters without one are left out).
struct Snapshot<'a> {
    grads: Option<&'a Gradients>,
    tensors: BTreeMap<String, Vec<f32>>,
    path: Vec<Option<String>>,
}

impl ModuleVisitor for Snapshot<'_> {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.path.push((!container.starts_with("Enum:")).then(|| name.to_string()));
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = match self.grads {
            None => param.val(),
            Some(grads) => match param.val().grad(grads) {
                Some(grad) => grad,
                None => return,
            },
        };
        let path: Vec<&str> = self.path.iter().flatten().map(String::as_str).collect();
        let key = format!("{}#{}", path.join("."), self.tensors.len());
        self.tensors.insert(key, tensor.into_data().try_to_vec().unwrap());
    }
}

fn visit_snapshot<M: Module>(m: &M, grads: Option<&Gradients>) -> BTreeMap<String, Vec<f32>> {
    let mut s = Snapshot { grads, tensors: BTreeMap::new(), path: Vec::new() };
    m.visit(&mut s);
    s.tensors
}

pub fn snapshot<M: Module>(m: &M) -> BTreeMap<String, Vec<f32>> {
    visit_snapshot(m, None)
}

/// Every parameter's gradient in `grads`, keyed like [`snapshot`].
pub fn gradient_snapshot<M: Module>(m: &M, grads: &Gradients) -> BTreeMap<String, Vec<f32>> {
    visit_snapshot(m, Some(grads))
}

pub fn rt_files() -> DataFiles {
    let dir = thaw_assets::dataset_dir("rotten_tomatoes").unwrap();
    DataFiles {
        train: dir.join("train.jsonl"),
        validation: Some(dir.join("validation.jsonl")),
        test: Some(dir.join("test.jsonl")),
        fields: thaw_train::data::Fields::default(),
    }
}

/// The first `n` training texts of Rotten Tomatoes, as MLM text.
pub fn rt_train_texts(n: usize) -> Vec<String> {
    let train = rt_files().train;
    thaw_train::data::read_examples(&train, &thaw_train::data::Fields::default())
        .unwrap()
        .into_iter()
        .take(n)
        .map(|e| e.text)
        .collect()
}

pub fn small_data(n_train: usize, max_length: usize) -> Arc<EncodedData> {
    let mut splits =
        load_splits(&rt_files(), &SplitOptions { train_size: Some(n_train), ..Default::default() })
            .unwrap();
    splits.validation.truncate(64);
    splits.test.truncate(64);
    let tokenizer = TextTokenizer::from_file(&minilm().tokenizer, max_length).unwrap();
    encode_splits(&tokenizer, &splits, format!("rt-{n_train}-{max_length}")).unwrap()
}

#[derive(serde::Deserialize)]
struct Parity {
    cases: Vec<ParityCase>,
}
#[derive(serde::Deserialize)]
struct ParityCase {
    text: String,
    ids: Vec<u32>,
    hidden: Vec<Vec<f64>>,
}

/// The largest absolute difference between MiniLM's last hidden states on `backend` and the
/// numpy reference (scripts/parity_reference.py), all sentences in one padded batch: padding
/// must not change any real token's state.
pub fn parity_max_difference(backend: BackendKind) -> f64 {
    // Building a model on a device may draw from its RNG: never while a seeded test trains.
    let _rng = exclusive_rng();
    let fixture: Parity = serde_json::from_str(include_str!("../fixtures/minilm_parity.json"))
        .expect("fixture written by scripts/parity_reference.py");
    let device = backend.device().unwrap();
    let cfg = config();
    let encoder = load_encoder(minilm(), &cfg, &Start::Pretrained, &device).unwrap().valid();
    let tokenizer = TextTokenizer::from_file(&minilm().tokenizer, 128).unwrap();
    let texts: Vec<&str> = fixture.cases.iter().map(|c| c.text.as_str()).collect();
    let ids = tokenizer.encode_all(&texts).unwrap();
    for (got, case) in ids.iter().zip(&fixture.cases) {
        assert_eq!(got, &case.ids, "tokenization of {:?}", case.text);
    }
    let all: Vec<usize> = (0..ids.len()).collect();
    let (input, mask) = token_batch(&ids, &all, tokenizer.special.pad, &device);
    let hidden = encoder.forward(input, None, &mask);
    let [_, longest, width] = hidden.dims();
    let values: Vec<f32> = hidden.into_data().try_to_vec().unwrap();
    let mut worst = 0.0f64;
    for (b, case) in fixture.cases.iter().enumerate() {
        for (t, row) in case.hidden.iter().enumerate() {
            for (d, want) in row.iter().enumerate() {
                let got = values[(b * longest + t) * width + d] as f64;
                worst = worst.max((got - want).abs());
            }
        }
    }
    eprintln!(
        "parity on {backend}: max abs difference {worst:e} over {} sentences",
        fixture.cases.len()
    );
    worst
}

/// Trains one epoch on `backend` with the embeddings and 3 layers frozen, through the public
/// path, and checks the encoder the job ended with: frozen tensors bit-identical, every
/// trainable one moved.
pub fn check_freezing(backend: BackendKind) {
    let _rng = exclusive_rng();
    let cfg = config();
    let device = backend.device().unwrap().autodiff();
    let depth = 3;
    let before = load_encoder(minilm(), &cfg, &Start::Pretrained, &device).unwrap();
    let counts = count_params(&before.clone().freeze_bottom(depth).unwrap());
    // Embeddings (30522+512+2)*384 + 2*384 and 3 layers of 1,774,464 are frozen.
    let layer = 4 * (384 * 384 + 384) + 2 * 384 * 1536 + 1536 + 384 + 4 * 384;
    let embeddings = (30522 + 512 + 2) * 384 + 2 * 384;
    assert_eq!(counts.total, embeddings + 6 * layer);
    assert_eq!(counts.trainable, 3 * layer);

    let data = small_data(64, 32);
    let job = FineTuneJob {
        start: Start::Pretrained,
        freeze: depth,
        seed: 5,
        settings: FineTuneSettings { epochs: 1, batch_size: 16, lr: 1e-3, ..Default::default() },
        backend,
        start_identity: "pretrained".into(),
        stop_after_epochs: None,
        measure_gradient_ratios: false,
    };
    let (outcome, trained) =
        silently(|o| finetune::fine_tune_returning_model(minilm(), &cfg, &data, &job, None, o))
            .unwrap();
    assert_eq!(outcome.trainable_params, 3 * layer + 384 * 2 + 2);
    let before = snapshot(&before);
    let after = snapshot(&trained.encoder);
    assert_eq!(before.len(), after.len());
    let (mut frozen, mut moved) = (0, 0);
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        let in_frozen_part = name.starts_with("embeddings")
            || (0..depth).any(|i| name.starts_with(&format!("encoder.layer.{i}.")));
        if in_frozen_part {
            assert!(a == b, "{backend}: frozen tensor {name} changed");
            frozen += 1;
        } else {
            assert!(a != b, "{backend}: trainable tensor {name} did not change");
            moved += 1;
        }
    }
    assert_eq!((frozen, moved), (5 + 3 * 16, 3 * 16));
}
