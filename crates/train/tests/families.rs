//! Every encoder family against transformers, on tiny random checkpoints written by
//! transformers itself (`scripts/make_family_fixtures.py`), on the CPU backends.

mod common;

use common::exclusive_rng;
use common::families::{
    FAMILIES, TOLERANCE, family_data, folder, tokenization_matches, worst_difference,
};
use thaw_train::events::silently;
use thaw_train::finetune::PrefixUse;
use thaw_train::load::{ModelFiles, Start};
use thaw_train::models::ModelConfig;
use thaw_train::prefix::PrefixCache;
use thaw_train::{BackendKind, FineTuneJob, FineTuneSettings, fine_tune};

#[test]
fn every_family_matches_transformers_on_the_cpu_backends() {
    let backends = [BackendKind::Flex, BackendKind::Ndarray];
    for backend in backends.into_iter().filter(|b| b.check_built().is_ok()) {
        for (family, has_mlm) in FAMILIES {
            let (worst, detail) = worst_difference(family, has_mlm, backend);
            eprintln!("{detail}");
            assert!(worst < TOLERANCE, "{detail}");
        }
    }
}

#[test]
fn every_familys_tokenizer_gives_transformers_ids() {
    for (family, _) in FAMILIES {
        tokenization_matches(family).unwrap();
    }
}

#[test]
fn an_unsupported_family_or_option_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let write = |json: serde_json::Value| {
        let path = dir.path().join("config.json");
        std::fs::write(&path, json.to_string()).unwrap();
        ModelConfig::from_file(&path).map(|_| ()).unwrap_err().to_string()
    };
    let err = write(serde_json::json!({"model_type": "gpt2"}));
    assert!(err.contains("model_type = gpt2 is not supported"), "{err}");
    assert!(
        err.contains("roberta, xlm-roberta, distilbert, electra, deberta-v2, modernbert"),
        "{err}"
    );

    let modernbert: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(folder("modernbert").join("config.json")).unwrap(),
    )
    .unwrap();
    let mut scaled = modernbert.clone();
    scaled["rope_parameters"]["full_attention"]["rope_type"] = "yarn".into();
    let err = write(scaled);
    assert!(
        err.contains("rope_parameters.full_attention.rope_type = yarn is not supported")
            && err.contains("default"),
        "{err}"
    );

    let deberta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(folder("deberta-v2").join("config.json")).unwrap(),
    )
    .unwrap();
    let mut conv = deberta.clone();
    conv["conv_kernel_size"] = 3.into();
    let err = write(conv);
    assert!(err.contains("conv_kernel_size = 3 is not supported"), "{err}");
    let mut p2p = deberta;
    p2p["pos_att_type"] = serde_json::json!(["p2c", "p2p"]);
    let err = write(p2p);
    assert!(
        err.contains("pos_att_type = p2p is not supported by thaw; supported: c2p, p2c"),
        "{err}"
    );

    let bert: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder("bert").join("config.json")).unwrap())
            .unwrap();
    let mut relative = bert;
    relative["position_embedding_type"] = "relative_key".into();
    let err = write(relative);
    assert!(
        err.contains(
            "position_embedding_type = relative_key is not supported by thaw; supported: absolute"
        ),
        "{err}"
    );
}

/// The frozen-prefix cache for every family: at each depth, training on the cached states
/// of the frozen layers gives what running them on every step gives.
#[test]
fn every_familys_cached_prefix_trains_as_recomputing_it_does() {
    let _rng = exclusive_rng();
    for (family, _) in FAMILIES {
        let files = ModelFiles::in_dir(&folder(family)).unwrap();
        let config = ModelConfig::from_file(&files.config).unwrap();
        let data = family_data(family, 48);
        let job = |freeze| FineTuneJob {
            start: Start::Pretrained,
            freeze,
            seed: 7,
            settings: FineTuneSettings {
                epochs: 1,
                batch_size: 16,
                lr: 1e-3,
                ..Default::default()
            },
            backend: BackendKind::Flex,
            start_identity: family.into(),
            stop_after_epochs: None,
            measure_gradient_ratios: false,
        };
        let mut cache = PrefixCache::new(1 << 28);
        for depth in 1..=config.num_layers() {
            let recomputed =
                silently(|o| fine_tune(&files, &config, &data, &job(depth), None, o)).unwrap();
            let cached =
                silently(|o| fine_tune(&files, &config, &data, &job(depth), Some(&mut cache), o))
                    .unwrap();
            assert_eq!(cached.prefix_cache, PrefixUse::Computed, "{family} k={depth}");
            let (a, b) = (&cached.epochs[0], &recomputed.epochs[0]);
            assert!(
                (a.train_loss - b.train_loss).abs() < 1e-4,
                "{family} k={depth}: {a:?} vs {b:?}"
            );
            assert!((a.val_loss - b.val_loss).abs() < 1e-4, "{family} k={depth}: {a:?} vs {b:?}");
            let (ta, tb) = (cached.test.unwrap(), recomputed.test.unwrap());
            assert!(
                (ta.loss - tb.loss).abs() < 1e-4,
                "{family} k={depth}: test {} vs {}",
                ta.loss,
                tb.loss
            );
        }
    }
}

/// Words already split (tagging) tokenize as transformers tokenizes them with
/// `is_split_into_words=True` from the tokenizer files a tagging export writes: the same ids,
/// and each word's label on the same first token (`scripts/make_word_fixtures.py`).
#[test]
fn every_familys_tokenizer_splits_words_as_transformers_does() {
    use thaw_train::tokenize::{TextInput, TextTokenizer};
    let path = folder("bert").parent().unwrap().join("words.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let sentences: Vec<Vec<String>> = serde_json::from_value(fixture["sentences"].clone()).unwrap();
    for (family, _) in FAMILIES {
        let files = ModelFiles::in_dir(&folder(family)).unwrap();
        let tokenizer = TextTokenizer::from_file(&files.tokenizer, 512).unwrap();
        let inputs: Vec<TextInput> = sentences.iter().map(|w| TextInput::Words(w)).collect();
        let got = tokenizer.tokenize_all(&inputs).unwrap();
        for (ours, theirs) in got.iter().zip(fixture["families"][family].as_array().unwrap()) {
            let ids: Vec<u32> = serde_json::from_value(theirs["input_ids"].clone()).unwrap();
            let starts: Vec<Option<usize>> =
                serde_json::from_value(theirs["word_starts"].clone()).unwrap();
            assert_eq!(ours.ids, ids, "{family}: ids");
            assert_eq!(ours.word_starts, starts, "{family}: word starts");
        }
    }
}
