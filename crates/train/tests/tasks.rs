//! Each task on the real all-MiniLM-L6-v2 and real data of the asset route: word tagging on
//! WNUT-2016, sentence-pair regression on STS-B and multi-label tags of cooking questions
//! learn something a trivial predictor cannot, and what training consumes (pair token types, each word's first token) is what
//! transformers builds for the same input.

mod common;

use common::*;
use thaw_metrics::TaskScores;
use thaw_train::data::{DataFiles, Fields, Metric, SplitOptions, Targets, Task, load_splits};
use thaw_train::encode::{EncodedData, encode_splits};
use thaw_train::events::silently;
use thaw_train::tokenize::TextTokenizer;
use thaw_train::*;

fn task_data(dataset: &str, fields: Fields, n_train: usize, n_eval: usize) -> EncodedData {
    let dir = thaw_assets::dataset_dir(dataset).unwrap();
    let files = DataFiles {
        train: dir.join("train.jsonl"),
        validation: Some(dir.join("validation.jsonl")),
        test: Some(dir.join("test.jsonl")),
        fields,
    };
    let options = SplitOptions { train_size: Some(n_train), ..Default::default() };
    let mut splits = load_splits(&files, &options).unwrap();
    splits.validation.truncate(n_eval);
    splits.test.truncate(n_eval);
    let tokenizer = TextTokenizer::from_file(&minilm().tokenizer, 64).unwrap();
    (*encode_splits(&tokenizer, &splits, format!("{dataset}-{n_train}")).unwrap()).clone()
}

fn head_only(lr: f64, epochs: usize, metric: Metric) -> FineTuneJob {
    FineTuneJob {
        start: Start::Pretrained,
        freeze: 6,
        seed: 1,
        settings: FineTuneSettings { epochs, batch_size: 16, lr, metric, ..Default::default() },
        backend: BackendKind::Flex,
        start_identity: "pretrained".into(),
        stop_after_epochs: None,
        measure_gradient_ratios: false,
    }
}

#[test]
fn pairs_carry_token_types_and_tags_sit_on_each_words_first_token() {
    let pairs = task_data(
        "sts_b",
        Fields { task: Task::Regression, text_pair: Some("text_pair".into()), ..Fields::default() },
        20,
        4,
    );
    // "A plane is taking off." / "An air plane is taking off.": [CLS] a plane is taking off .
    // [SEP] starts the second segment at 8, as transformers' token_type_ids do.
    let first = pairs.train.ids.iter().position(|ids| ids.len() > 10).unwrap();
    let second = pairs.train.second_text_at[first].expect("a pair has a second segment");
    assert_eq!(pairs.train.ids[first][second - 1], 102, "[SEP] closes the first text");
    assert!(pairs.train.has_token_types());

    let tags = task_data("wnut_2016", Fields { task: Task::Tokens, ..Fields::default() }, 20, 4);
    let Targets::Tags(truth) = &tags.train.targets else { panic!("tags") };
    for (i, starts) in tags.train.word_starts.iter().enumerate() {
        assert_eq!(starts.len(), truth[i].len(), "one start per word");
        let placed: Vec<usize> = starts.iter().flatten().copied().collect();
        assert!(placed.windows(2).all(|w| w[0] < w[1]), "words in order");
        assert!(
            placed.iter().all(|&p| p >= 1 && p + 1 < tags.train.ids[i].len()),
            "inside [CLS] .. [SEP]"
        );
    }
}

#[test]
fn word_tagging_beats_all_o_and_sentence_pair_regression_beats_the_mean() {
    let _rng = exclusive_rng();
    let tags = task_data("wnut_2016", Fields { task: Task::Tokens, ..Fields::default() }, 400, 200);
    let job = head_only(3e-3, 3, Metric::EntityF1);
    let out = silently(|o| fine_tune(minilm(), &config(), &tags, &job, None, o)).unwrap();
    let test = out.test.unwrap();
    let TaskScores::Tokens { entity_f1, token_accuracy, .. } = test.scores else { panic!() };
    assert_eq!(test.metric, entity_f1);
    assert!(entity_f1 > 0.02, "all-O scores entity F1 0; head only reached {entity_f1}");
    assert!(token_accuracy > 0.8, "{token_accuracy}");

    let pairs = task_data(
        "sts_b",
        Fields { task: Task::Regression, text_pair: Some("text_pair".into()), ..Fields::default() },
        400,
        200,
    );
    let job = head_only(3e-3, 3, Metric::Spearman);
    let out = silently(|o| fine_tune(minilm(), &config(), &pairs, &job, None, o)).unwrap();
    let test = out.test.unwrap();
    let TaskScores::Regression { spearman, rmse, .. } = test.scores else { panic!() };
    assert!(spearman > 0.2, "the training mean has Spearman 0; head only reached {spearman}");
    let Targets::Scores(predicted) = &test.predictions else { panic!() };
    assert!(predicted.iter().all(|v| (-2.0..7.0).contains(v)), "in the target's units");
    assert!(rmse < 2.0, "{rmse}");

    let wrong = head_only(3e-3, 1, Metric::Accuracy);
    let err = silently(|o| fine_tune(minilm(), &config(), &pairs, &wrong, None, o)).unwrap_err();
    assert!(
        err.to_string().contains(
            "metric 'accuracy' scores classification tasks, but the data is a regression task"
        ),
        "{err}"
    );
}

#[test]
fn multi_label_tags_beat_each_labels_majority_at_the_threshold_validation_chose() {
    let _rng = exclusive_rng();
    let tags =
        task_data("cooking", Fields { task: Task::MultiLabel, ..Fields::default() }, 400, 200);
    assert_eq!(tags.outputs(), tags.labels.len(), "one sigmoid per label");
    let job = head_only(1e-2, 3, Metric::MicroF1);
    let out = silently(|o| fine_tune(minilm(), &config(), &tags, &job, None, o)).unwrap();
    let (validation, test) = (out.validation, out.test.unwrap());
    let TaskScores::MultiLabel { micro_f1, macro_f1, threshold } = test.scores else { panic!() };
    assert_eq!(test.metric, micro_f1);
    assert_eq!(threshold, validation.scores.threshold(), "test is decided at validation's");
    assert!(micro_f1 > 0.15, "no label at all scores micro-F1 0; head only reached {micro_f1}");
    assert!((0.0..=micro_f1 + 0.2).contains(&macro_f1), "{macro_f1}");
    assert!((test.per_example.metric_value() - micro_f1).abs() < 1e-12);
}
