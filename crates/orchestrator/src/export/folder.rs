//! What an exported job's folder holds, by task:
//! - classification, multi-label and regression: `model.safetensors` is the bare encoder (`BertModel`,
//!   no pooler) and the head sits apart in `classifier.safetensors`, because thaw's head
//!   reads the pooled encoder, which no `*ForSequenceClassification` class does;
//! - word tagging: the family's own `*ForTokenClassification` (encoder, dropout, classifier
//!   on every token, as thaw's tagger), loaded by `AutoModelForTokenClassification`.
//!
//! Beside them, `test_predictions.jsonl`: thaw's outputs for every test example, which
//! `scripts/check_export.py` compares with what `transformers` computes from the folder.

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};
use thaw_train::data::{Example, Label, Task};
use thaw_train::encode::EncodedData;
use thaw_train::hf_folder::FolderContents;
use thaw_train::model::Classifier;
use thaw_train::outputs::SplitOutputs;
use thaw_train::weights::{NamedTensor, hf_tensors};
use thaw_train::{ModelConfig, ModelFiles};

use super::card::About;
use crate::jobspec::JobSpec;

/// Refuses a task the family cannot be exported for, before any training again.
pub(super) fn check_exportable(task: Task, config: &ModelConfig) -> Result<()> {
    if task == Task::Tokens && config.model_type() == "modernbert" {
        bail!(
            "thaw export cannot write this word tagger: ModernBertForTokenClassification puts a dense layer and a norm \
             between the encoder and its classifier, which thaw's tagger does not have, so no transformers class would \
             reproduce it (its results are in the store; `thaw results` lists them)"
        );
    }
    Ok(())
}

/// A job's folder, before it is written.
pub(super) struct TaskFolder {
    /// `model.safetensors`.
    pub tensors: Vec<NamedTensor>,
    config: Map<String, Value>,
    extra_tensors: Vec<(String, Vec<NamedTensor>)>,
    predictions: String,
    task: Task,
}

impl TaskFolder {
    pub fn new(
        about: &About,
        model: &Classifier,
        data: &EncodedData,
        test: &[Example],
        outputs: &SplitOutputs,
    ) -> Result<Self> {
        let task = about.spec.data.task;
        let mut config = Map::new();
        config.insert("thaw".into(), thaw_fields(about));
        let (tensors, extra_tensors, architecture) = match task {
            Task::Tokens => (
                model.named_tensors(about.config),
                Vec::new(),
                about.config.token_classifier_architecture(),
            ),
            // The encoder alone, so AutoModel reads every tensor of model.safetensors.
            _ => (
                hf_tensors(&model.encoder),
                vec![("classifier.safetensors".into(), head_tensors(model))],
                about.config.architecture(false),
            ),
        };
        config.insert("architectures".into(), json!([architecture]));
        if task == Task::Regression {
            config.insert("id2label".into(), json!({"0": "score"}));
            config.insert("label2id".into(), json!({"score": 0}));
        } else {
            let labels = &data.labels;
            config.insert(
                "id2label".into(),
                labels.iter().enumerate().map(|(i, l)| (i.to_string(), json!(l))).collect(),
            );
            config.insert(
                "label2id".into(),
                labels.iter().enumerate().map(|(i, l)| (l.clone(), json!(i))).collect(),
            );
        }
        let predictions = prediction_lines(test, data, outputs)?;
        Ok(TaskFolder { tensors, config, extra_tensors, predictions, task })
    }

    pub fn contents<'a>(
        &self,
        files: &'a ModelFiles,
        spec: &JobSpec,
        card: String,
    ) -> FolderContents<'a> {
        FolderContents {
            files,
            config: self.config.clone(),
            max_length: spec.data.max_length,
            card,
            extra: vec![("test_predictions.jsonl".into(), self.predictions.clone())],
            extra_tensors: self.extra_tensors.clone(),
            pre_split_words: self.task == Task::Tokens,
        }
    }
}

/// `config.json`'s `thaw` section: where the model came from and how thaw's head reads it.
fn thaw_fields(about: &About) -> Value {
    let (spec, row) = (about.spec, about.row);
    let mut fields = json!({
        "job": row.job_key,
        "sweep": row.sweep,
        "task": spec.data.task.to_string(),
        "metric": spec.settings.metric.name(),
        "max_length": spec.data.max_length,
    });
    if spec.data.task != Task::Tokens {
        fields["pooling"] = json!(spec.settings.pooling.as_str());
        fields["head"] = json!("classifier.safetensors (classifier.weight, classifier.bias)");
    }
    if let Some(scale) = about.standardization {
        fields["target_mean"] = json!(scale.mean);
        fields["target_sd"] = json!(scale.sd);
    }
    if let Some(threshold) = about.threshold {
        fields["threshold"] = json!(threshold);
    }
    fields
}

/// The head as `classifier.weight` ([outputs, hidden], as PyTorch stores it) and `classifier.bias`.
fn head_tensors(model: &Classifier) -> Vec<NamedTensor> {
    hf_tensors(&model.classifier)
        .into_iter()
        .map(|t| NamedTensor { name: format!("classifier.{}", t.name), ..t })
        .collect()
}

/// One JSON line per test example: its input, its truth, and thaw's outputs (logits per
/// example, per label or per word, or the predicted score in the target's units).
fn prediction_lines(
    test: &[Example],
    data: &EncodedData,
    outputs: &SplitOutputs,
) -> Result<String> {
    let mut lines = String::new();
    let scale = data.standardization;
    for (i, example) in test.iter().enumerate() {
        let line = match (&example.label, outputs) {
            (Label::Class(label), SplitOutputs::Sequence(rows)) => {
                json!({"text": example.text, "text_pair": example.text_pair, "label": label, "logits": rows[i]})
            }
            (Label::Score(score), SplitOutputs::Sequence(rows)) => {
                let scale = scale.expect("regression data is standardized");
                let predicted = scale.to_units(rows[i][0] as f64);
                json!({"text": example.text, "text_pair": example.text_pair, "score": score, "prediction": predicted})
            }
            (Label::Labels(labels), SplitOutputs::Sequence(rows)) => {
                json!({"text": example.text, "text_pair": example.text_pair, "labels": labels, "logits": rows[i]})
            }
            (Label::Tags(tags), SplitOutputs::Words(sentences)) => {
                json!({"tokens": example.words, "tags": tags, "logits": sentences[i]})
            }
            _ => bail!("test example {i} does not match the model's outputs"),
        };
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    Ok(lines)
}
