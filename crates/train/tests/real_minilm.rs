//! Tests on the real all-MiniLM-L6-v2 checkpoint, fetched through the project's own
//! asset route (thaw-assets) on first use.

mod common;

use common::*;
use thaw_train::events::silently;
use thaw_train::finetune::PrefixUse;
use thaw_train::freeze::count_params;
use thaw_train::load::load_encoder;
use thaw_train::prefix::PrefixCache;
use thaw_train::tokenize::TextTokenizer;
use thaw_train::*;

#[test]
fn last_hidden_state_matches_the_numpy_reference() {
    let worst = parity_max_difference(BackendKind::Flex);
    assert!(worst < 1e-4, "max abs difference {worst:e} against the numpy reference");
}

#[test]
fn freezing_keeps_frozen_tensors_bit_identical_and_moves_the_rest() {
    check_freezing(BackendKind::Flex);
}

#[test]
fn same_seed_same_backend_same_metrics_and_cache_matches_recompute() {
    let _rng = exclusive_rng();
    let cfg = config();
    let data = small_data(96, 32);
    let job = |freeze, backend| FineTuneJob {
        start: Start::Pretrained,
        freeze,
        seed: 11,
        settings: FineTuneSettings { epochs: 1, batch_size: 16, lr: 1e-4, ..Default::default() },
        backend,
        start_identity: "pretrained".into(),
        stop_after_epochs: None,
        measure_gradient_ratios: false,
    };
    // Flex runs thaw's own GELU and dropout kernels, ndarray burn's: both must repeat exactly.
    let backends = [BackendKind::Flex, BackendKind::Ndarray];
    for backend in backends.into_iter().filter(|b| b.check_built().is_ok()) {
        let a = silently(|o| fine_tune(minilm(), &cfg, &data, &job(4, backend), None, o)).unwrap();
        let b = silently(|o| fine_tune(minilm(), &cfg, &data, &job(4, backend), None, o)).unwrap();
        assert_eq!(
            a.epochs,
            b.epochs
                .iter()
                .map(|e| EpochMetrics { seconds: a.epochs[0].seconds, ..e.clone() })
                .collect::<Vec<_>>(),
            "{backend:?}"
        );
        assert_eq!(a.test, b.test, "{backend:?}");
    }

    // Depth 2 computes its prefix from the tokens, depth 4 from depth 2's; a second depth-4
    // job reuses it. All must train as if the frozen layers ran on every step.
    let mut cache = PrefixCache::new(1 << 30);
    let plan = [
        (2, vec![(PrefixUse::Computed, "frozen layers 0..2")]),
        (4, vec![(PrefixUse::Computed, "frozen layers 2..4"), (PrefixUse::Reused, "")]),
    ];
    for (depth, runs) in plan {
        let uncached =
            silently(|o| fine_tune(minilm(), &cfg, &data, &job(depth, BackendKind::Flex), None, o))
                .unwrap();
        for (expected, prefix_phase) in runs {
            let mut phases = Vec::new();
            let mut on_event = |e: &Event| {
                if let Event::Phase { phase: Phase::Prefix, detail } = e {
                    phases.push(detail.clone());
                }
            };
            let stop = std::sync::atomic::AtomicBool::new(false);
            let mut observer = Observer { on_event: &mut on_event, stop: &stop };
            let run = fine_tune(
                minilm(),
                &cfg,
                &data,
                &job(depth, BackendKind::Flex),
                Some(&mut cache),
                &mut observer,
            )
            .unwrap();
            assert_eq!(run.prefix_cache, expected);
            assert_eq!(
                phases.iter().any(|p| p.starts_with(prefix_phase)),
                expected == PrefixUse::Computed,
                "k={depth}: {phases:?}"
            );
            assert!(
                (run.epochs[0].train_loss - uncached.epochs[0].train_loss).abs() < 1e-4,
                "k={depth}: {} vs {}",
                run.epochs[0].train_loss,
                uncached.epochs[0].train_loss
            );
            assert!((run.validation.loss - uncached.validation.loss).abs() < 1e-4, "k={depth}");
            assert!(
                (run.test.as_ref().unwrap().loss - uncached.test.as_ref().unwrap().loss).abs()
                    < 1e-4,
                "k={depth}"
            );
        }
    }
}

#[test]
fn a_rung_is_the_full_jobs_first_epochs_and_never_reads_the_test_split() {
    let _rng = exclusive_rng();
    let cfg = config();
    let data = small_data(64, 32);
    let job = |stop_after_epochs| FineTuneJob {
        start: Start::Pretrained,
        freeze: 4,
        seed: 3,
        settings: FineTuneSettings { epochs: 2, batch_size: 16, lr: 3e-4, ..Default::default() },
        backend: BackendKind::Flex,
        start_identity: "pretrained".into(),
        stop_after_epochs,
        measure_gradient_ratios: false,
    };
    let full = silently(|o| fine_tune(minilm(), &cfg, &data, &job(None), None, o)).unwrap();
    let rung = silently(|o| fine_tune(minilm(), &cfg, &data, &job(Some(1)), None, o)).unwrap();
    assert_eq!(full.epochs.len(), 2);
    assert_eq!(rung.epochs.len(), 1);
    // Same schedule (2 epochs' warmup and decay), same seed: the rung's epoch is the full job's
    // first, so ranking learning rates on it ranks what the full jobs saw.
    let without_time = |e: &EpochMetrics| EpochMetrics { seconds: 0.0, ..e.clone() };
    assert_eq!(without_time(&rung.epochs[0]), without_time(&full.epochs[0]));
    assert!(full.test.is_some());
    assert_eq!(rung.test, None, "a rung leaves the test split unread");
}

#[test]
fn corrupt_or_mismatched_checkpoints_are_named_errors() {
    // Building a model on a device may draw from its RNG: never while a seeded test trains.
    let _rng = exclusive_rng();
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(minilm().config.parent().unwrap().join(f), dir.path().join(f)).unwrap();
    }
    let files = ModelFiles::in_dir(dir.path()).map(|_| ()).expect_err("no weights yet");
    assert!(files.to_string().contains("model.safetensors: missing"), "{files}");

    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&minilm().weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let files = ModelFiles::in_dir(dir.path()).unwrap();
    let device = BackendKind::Flex.device().unwrap();
    let err = load_encoder(&files, &config(), &Start::Pretrained, &device)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a readable safetensors file"), "{err}");

    // A config promising a wider model than the weights hold: the error names the tensor and both shapes.
    let cfg = bert_config(|c| c.intermediate_size = 2048);
    std::fs::write(&weights, &bytes).unwrap();
    let err = load_encoder(&files, &cfg, &Start::Pretrained, &device)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("'encoder.layer.0.intermediate.dense.weight' has shape [1536, 384], expected [2048, 384]"), "{err}");

    // Fewer layers in the config than in the file: leftover tensors are reported.
    let cfg = bert_config(|c| c.num_hidden_layers = 5);
    let err = load_encoder(&files, &cfg, &Start::Pretrained, &device)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("do not belong to the architecture") && err.contains("encoder.layer.5."),
        "{err}"
    );

    // A stage checkpoint written by an older thaw (burn record, other field names) is refused, not misread.
    let old = dir.path().join("stage.bpk");
    std::fs::write(&old, b"burnpack").unwrap();
    let err = load_encoder(&files, &config(), &Start::Checkpoint(old), &device)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("older thaw"), "{err}");
}

#[test]
fn field_names_are_the_checkpoints_tensor_names_and_saving_round_trips() {
    // Building a model on a device may draw from its RNG: never while a seeded test trains.
    let _rng = exclusive_rng();
    let device = BackendKind::Flex.device().unwrap();
    let bert = load_encoder(minilm(), &config(), &Start::Pretrained, &device).unwrap();
    let saved = thaw_train::weights::hf_tensors(&bert);
    // Every tensor of the file but the position-id buffer and the pooler, which thaw's heads do not use.
    let bytes = std::fs::read(&minilm().weights).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut expected: Vec<String> = file
        .names()
        .into_iter()
        .filter(|n| !n.ends_with("position_ids") && !n.starts_with("pooler."))
        .map(String::from)
        .collect();
    expected.sort();
    let mut names: Vec<String> = saved.iter().map(|t| t.name.clone()).collect();
    names.sort();
    assert_eq!(
        names, expected,
        "module paths, mapped only for `self` and gamma/beta, are the checkpoint's names"
    );
    for thaw_train::weights::NamedTensor { name, shape, values } in &saved {
        let view = file.tensor(name).unwrap();
        assert_eq!(view.shape(), shape.as_slice(), "{name}");
        let stored: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert!(
            &stored == values,
            "{name}: the values (Linear weights transposed back) are the file's"
        );
    }
    // Written and read back through the loader the pretrained file uses: the same model, bit for bit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.safetensors");
    thaw_train::weights::save_tensors(&saved, &path).unwrap();
    let reloaded = load_encoder(minilm(), &config(), &Start::Checkpoint(path), &device).unwrap();
    assert_eq!(snapshot(&reloaded), snapshot(&bert));
}

#[test]
fn intermediate_mlm_lowers_held_out_loss_and_writes_a_loadable_checkpoint() {
    let _rng = exclusive_rng();
    let cfg = config();
    let texts = rt_train_texts(600);
    let settings = MlmSettings {
        steps: 15,
        batch_size: 12,
        lr: 1e-4,
        max_length: 32,
        head_warmup_steps: 20,
        heldout_docs: 48,
        ..Default::default()
    };
    let job = MlmJob { start: Start::Pretrained, seed: 3, settings, backend: BackendKind::Flex };
    let out = tempfile::tempdir().unwrap();
    let checkpoint = out.path().join("stage.safetensors");
    let done = silently(|o| train_mlm(minilm(), &cfg, &texts, &job, &checkpoint, o)).unwrap();
    // Even a briefly fitted head on pretrained features beats a uniform guess (ln 30522 = 10.3).
    assert!(done.loss_before < 9.0, "before {}", done.loss_before);
    assert!(
        done.loss_after < done.loss_before,
        "MLM training lowers held-out loss: {} -> {}",
        done.loss_before,
        done.loss_after
    );
    assert!((done.perplexity_before - done.loss_before.exp()).abs() < 1e-6);
    // English snippets under an English WordPiece: whole words, several characters a token.
    assert!(
        (3.0..7.0).contains(&done.heldout_chars_per_token),
        "characters per token {}",
        done.heldout_chars_per_token
    );
    assert_eq!(
        done.trainable_params,
        count_params(
            &load_encoder(
                minilm(),
                &cfg,
                &Start::Pretrained,
                &BackendKind::Flex.device().unwrap().autodiff()
            )
            .unwrap()
        )
        .trainable
            + 384 * 384
            + 384
            + 2 * 384
            + 30522
    );
    // The checkpoint loads as a fine-tuning start and differs from the pretrained weights.
    let device = BackendKind::Flex.device().unwrap();
    let adapted =
        load_encoder(minilm(), &cfg, &Start::Checkpoint(checkpoint.clone()), &device).unwrap();
    let pretrained = load_encoder(minilm(), &cfg, &Start::Pretrained, &device).unwrap();
    let top = |encoder: &models::Encoder| match encoder {
        models::Encoder::Bert(bert) => snapshot(&bert.encoder.layer[5]),
        other => panic!("MiniLM is a BERT, not {other:?}"),
    };
    assert_ne!(top(&adapted), top(&pretrained));
    assert!(!checkpoint.with_extension("partial.safetensors").exists());
}

#[test]
fn token_memo_tokenizes_each_distinct_text_once_and_matches_direct_encoding() {
    let tokenizer = TextTokenizer::from_file(&minilm().tokenizer, 16).unwrap();
    let mut memo = encode::TokenMemo::default();
    let first = memo.encode(&tokenizer, &["a fine film", "a fine film", "dull and long"]).unwrap();
    let again = memo.encode(&tokenizer, &["dull and long", "bright"]).unwrap();
    assert_eq!(memo.tokenized, 3, "three distinct texts");
    assert_eq!(first[0], first[1]);
    assert_eq!(first[2], again[0]);
    assert_eq!(again, tokenizer.encode_all(&["dull and long", "bright"]).unwrap());
    assert_eq!(first[0], vec![101, 1037, 2986, 2143, 102], "[CLS] a fine film [SEP]");
}

#[test]
fn a_checkpoints_own_mlm_head_is_used_without_warm_up_and_must_be_tied() {
    let _rng = exclusive_rng();
    let cfg = config();
    let texts = rt_train_texts(400);
    let settings = MlmSettings {
        steps: 4,
        batch_size: 8,
        max_length: 32,
        head_warmup_steps: 6,
        heldout_docs: 32,
        ..Default::default()
    };
    let job = MlmJob { start: Start::Pretrained, seed: 4, settings, backend: BackendKind::Flex };
    // An MLM stage writes a whole BertForMaskedLM: laid out as a model folder, it is a
    // checkpoint with its own trained head, as BERT-base is.
    let folder = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(minilm().config.parent().unwrap().join(f), folder.path().join(f)).unwrap();
    }
    let weights = folder.path().join("model.safetensors");
    let stage = silently(|o| train_mlm(minilm(), &cfg, &texts, &job, &weights, o)).unwrap();
    assert_eq!(stage.head_warmup_steps, Some(6), "MiniLM has no head: a fresh one is fitted");

    let with_head = ModelFiles::in_dir(folder.path()).unwrap();
    let out = folder.path().join("again.safetensors");
    let again = silently(|o| train_mlm(&with_head, &cfg, &texts, &job, &out, o)).unwrap();
    assert_eq!(again.head_warmup_steps, None, "the checkpoint's own head is used, not warmed up");
    // Same encoder, same head, same held-out masks: the new "before" is the stage's "after".
    assert!(
        (again.loss_before - stage.loss_after).abs() < 1e-5,
        "{} vs {}",
        again.loss_before,
        stage.loss_after
    );

    // A stored decoder that is not the word-embedding matrix is refused, not silently retied.
    let bytes = std::fs::read(&weights).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let embeddings = file.tensor("bert.embeddings.word_embeddings.weight").unwrap();
    let untied: Vec<u8> = embeddings
        .data()
        .chunks_exact(4)
        .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) + 0.5).to_le_bytes())
        .collect();
    let mut views: Vec<(String, safetensors::tensor::TensorView)> =
        file.tensors().into_iter().collect();
    views.push((
        "cls.predictions.decoder.weight".into(),
        safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            embeddings.shape().to_vec(),
            &untied,
        )
        .unwrap(),
    ));
    safetensors::serialize_to_file(views, None, &weights).unwrap();
    let err = silently(|o| train_mlm(&with_head, &cfg, &texts, &job, &out, o)).unwrap_err();
    assert!(err.to_string().contains("differs from"), "{err}");
}
