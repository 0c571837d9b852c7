//! The model card (`README.md`) of an exported job: what the model is, what it measured, and
//! the few lines of `transformers` code that use it, which `scripts/check_export.py` runs as
//! written against thaw's own test predictions.

use thaw_store::JobResultRow;
use thaw_train::ModelConfig;
use thaw_train::data::Task;
use thaw_train::encode::Standardization;

use crate::jobspec::JobSpec;

/// An exported job and where its model came from, for its card.
pub(super) struct About<'a> {
    pub spec: &'a JobSpec,
    pub row: &'a JobResultRow,
    /// "read from the kept weights ..." or "trained again on ...".
    pub origin: &'a str,
    /// The sweep's recommendation, when the export is the recommended cell's.
    pub verdict: Option<&'a str>,
    pub config: &'a ModelConfig,
    /// The test metric the exported model gives.
    pub exported_metric: f64,
    pub test_examples: usize,
    /// Regression: the training targets' scale, which the head's output is in.
    pub standardization: Option<Standardization>,
    /// Multi-label: the probability from which a label is predicted (chosen on validation).
    pub threshold: Option<f64>,
}

impl About<'_> {
    fn has_pairs(&self) -> bool {
        self.spec.data.text_pair_field.is_some()
    }
}

pub(super) fn job_card(about: &About) -> String {
    let (spec, row) = (about.spec, about.row);
    let what = match (spec.data.task, about.has_pairs()) {
        (Task::Classification, false) => "A text classifier",
        (Task::Classification, true) => "A sentence-pair classifier",
        (Task::Regression, false) => "A text regressor (one score per text)",
        (Task::Regression, true) => "A sentence-pair regressor (one score per pair)",
        (Task::Tokens, _) => "A word tagger (one tag per word)",
        (Task::MultiLabel, false) => "A multi-label text classifier (a set of labels per text)",
        (Task::MultiLabel, true) => "A multi-label sentence-pair classifier",
    };
    let verdict = about.verdict.map_or(String::new(), |v| {
        // "(below)" points into the report, which the card does not include.
        format!("The sweep's verdict: {}\n\n", v.replace(" (below)", ""))
    });
    format!(
        "# {sweep}: job {key}\n\n\
         {what} fine-tuned by thaw from `{model}` on `{data}`, exported with `thaw export`.\n\n\
         {table}\n{verdict}## Use it\n\n{usage}",
        sweep = row.sweep,
        key = row.job_key,
        model = spec.model.origin,
        data = spec.data.name,
        table = table(about),
        usage = match spec.data.task {
            Task::Tokens => tagger_usage(about),
            _ => pooled_usage(about),
        },
    )
}

fn table(about: &About) -> String {
    let (spec, row) = (about.spec, about.row);
    let metric = spec.settings.metric.title();
    let percent = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2} %", 100.0 * v));
    let cell = format!(
        "{} init, intermediate MLM: {}{}, {} of {} encoder layers frozen ({} unfrozen), {} pooling, training examples: {}",
        spec.init,
        row.intermediate,
        row.mlm_freeze.map_or(String::new(), |k| format!(" (MLM freeze {k})")),
        spec.freeze,
        row.num_layers,
        row.unfrozen_layers,
        spec.settings.pooling.as_str(),
        spec.train_size.map_or("all".to_string(), |n| n.to_string()),
    );
    let mut rows = vec![
        ("cell".to_string(), cell),
        ("seed".into(), spec.seed.to_string()),
        ("learning rate".into(), format!("{:e}", spec.settings.lr)),
        (
            "epochs".into(),
            format!(
                "{} (best on validation: {})",
                spec.settings.epochs,
                row.best_epoch.unwrap_or(0)
            ),
        ),
        ("max length".into(), format!("{} tokens", spec.data.max_length)),
        (format!("validation {metric}"), percent(row.val_metric)),
        (
            format!("test {metric}"),
            format!(
                "{} ({} examples; this export, {}: {:.2} %)",
                percent(row.test_metric),
                about.test_examples,
                about.origin,
                100.0 * about.exported_metric
            ),
        ),
    ];
    if spec.data.task == Task::Classification {
        rows.push(("test macro-F1".into(), percent(row.test_macro_f1)));
    }
    if let Some(scale) = about.standardization {
        rows.push((
            "target".into(),
            format!(
                "the head predicts the standardized score (score - {}) / {}, the training split's mean and standard deviation",
                scale.mean, scale.sd
            ),
        ));
    }
    let body: String = rows.iter().map(|(k, v)| format!("| {k} | {v} |\n")).collect();
    format!("| | |\n|---|---|\n{body}")
}

/// Classification and regression: thaw's head reads the pooled encoder, not a pooler, so the
/// card loads the bare encoder and applies the head kept in `classifier.safetensors`.
fn pooled_usage(about: &About) -> String {
    let spec = about.spec;
    let pooling = spec.settings.pooling.as_str();
    // Only the families whose base class carries a pooler take (and need) this argument.
    let without_pooler = match about.config.model_type() {
        "bert" | "roberta" | "xlm-roberta" => ", add_pooling_layer=False",
        _ => "",
    };
    let pairs = if about.has_pairs() { " (pairs: the second texts, as a list)" } else { "" };
    let scores = match about.standardization {
        Some(scale) => format!(
            "\n\
             def scores(texts, tokenizer, encoder, weight, bias, pairs=None):\n\
             \x20   \"\"\"Predicted scores in the target's own units.\"\"\"\n\
             \x20   return logits(texts, tokenizer, encoder, weight, bias, pairs)[:, 0] * {} + {}\n",
            scale.sd, scale.mean
        ),
        None => String::new(),
    };
    let label_sets = match about.threshold {
        Some(threshold) => format!(
            "\n\
             def label_sets(texts, tokenizer, encoder, weight, bias, pairs=None, threshold={threshold}):\n\
             \x20   \"\"\"Per text, the labels whose probability reaches the threshold chosen on validation.\"\"\"\n\
             \x20   probabilities = torch.sigmoid(logits(texts, tokenizer, encoder, weight, bias, pairs))\n\
             \x20   names = encoder.config.id2label\n\
             \x20   return [[names[j] for j, p in enumerate(row) if p >= threshold] for row in probabilities.tolist()]\n"
        ),
        None => String::new(),
    };
    let outputs = match (about.standardization, about.threshold) {
        (Some(_), _) => "`scores` maps the head's output back to the target's units.",
        (None, Some(_)) => {
            "One sigmoid per label: `label_sets` keeps those at or above the threshold (`config.json`'s `thaw.threshold`)."
        }
        (None, None) => "Labels: `config.json`'s `id2label`.",
    };
    format!(
        "thaw's head reads the encoder's {pooling_text}, not BERT's pooler, so load the encoder with \
         `transformers` and apply the head, kept in `classifier.safetensors`, in a few lines{pairs} (no custom code; \
         `model.safetensors` is a plain `{class}` without pooler):\n\n\
         ```python\n\
         import torch\n\
         from safetensors.torch import load_file\n\
         from transformers import AutoModel, AutoTokenizer\n\
         \n\
         def load(folder):\n\
         \x20   tokenizer = AutoTokenizer.from_pretrained(folder)\n\
         \x20   encoder = AutoModel.from_pretrained(folder{without_pooler}).eval()\n\
         \x20   head = load_file(f\"{{folder}}/classifier.safetensors\")\n\
         \x20   return tokenizer, encoder, head[\"classifier.weight\"], head[\"classifier.bias\"]\n\
         \n\
         def logits(texts, tokenizer, encoder, weight, bias, pairs=None, pooling=\"{pooling}\", max_length={max_length}):\n\
         \x20   batch = tokenizer(texts, pairs, truncation=True, max_length=max_length, padding=True, return_tensors=\"pt\")\n\
         \x20   with torch.inference_mode():\n\
         \x20       hidden = encoder(**batch).last_hidden_state\n\
         \x20       if pooling == \"cls\":\n\
         \x20           pooled = hidden[:, 0]\n\
         \x20       else:\n\
         \x20           keep = batch[\"attention_mask\"].unsqueeze(-1).to(hidden.dtype)\n\
         \x20           pooled = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1)\n\
         \x20       return pooled @ weight.T + bias\n\
         {scores}{label_sets}\
         ```\n\n\
         {outputs} `test_predictions.jsonl` holds thaw's own outputs for the test split, \
         which `scripts/check_export.py` compares with these.\n",
        class = about.config.architecture(false),
        max_length = spec.data.max_length,
        pooling_text =
            if pooling == "cls" { "[CLS] hidden state" } else { "mean over non-padding tokens" },
    )
}

/// Word tagging: the folder is the family's own `*ForTokenClassification`; the card shows
/// how thaw reads a word's tag (at its first token).
fn tagger_usage(about: &About) -> String {
    format!(
        "The folder is a plain `{class}`: `AutoModelForTokenClassification` loads it with every key. thaw \
         labels each word at its first token, so read the tags there:\n\n\
         ```python\n\
         import torch\n\
         from transformers import AutoModelForTokenClassification, AutoTokenizer\n\
         \n\
         def load(folder):\n\
         \x20   tokenizer = AutoTokenizer.from_pretrained(folder)\n\
         \x20   return tokenizer, AutoModelForTokenClassification.from_pretrained(folder).eval()\n\
         \n\
         def word_logits(sentences, tokenizer, model, max_length={max_length}):\n\
         \x20   \"\"\"Per sentence (a list of words), per word: the logits at its first token; None\n\
         \x20   for a word that truncation cut (thaw predicts O there).\"\"\"\n\
         \x20   batch = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length, padding=True, return_tensors=\"pt\")\n\
         \x20   with torch.inference_mode():\n\
         \x20       logits = model(**batch).logits\n\
         \x20   out = []\n\
         \x20   for i, words in enumerate(sentences):\n\
         \x20       first = {{}}\n\
         \x20       for position, word in enumerate(batch.word_ids(i)):\n\
         \x20           if word is not None:\n\
         \x20               first.setdefault(word, position)\n\
         \x20       out.append([logits[i, first[w]] if w in first else None for w in range(len(words))])\n\
         \x20   return out\n\
         ```\n\n\
         Tags: `model.config.id2label[int(logits.argmax())]`. `test_predictions.jsonl` holds thaw's own logits for \
         the test split's words, which `scripts/check_export.py` compares with these.\n",
        class = about.config.token_classifier_architecture(),
        max_length = about.spec.data.max_length,
    )
}
