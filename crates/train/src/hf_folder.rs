//! A model as a folder that Hugging Face `transformers` reads: `config.json`,
//! `model.safetensors` (Hugging Face tensor names), `tokenizer.json` with its
//! `tokenizer_config.json`, and a `README.md` model card. Written under a temporary name and
//! renamed, so a half-written folder is never taken for an export.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::error::{Result, TrainError};
use crate::load::ModelFiles;
use crate::tokenize::space_before_words;
use crate::weights::{NamedTensor, save_tensors};

/// What goes into the folder beside the weights.
pub struct FolderContents<'a> {
    /// The model the weights came from (its config.json and tokenizer.json are the base).
    pub files: &'a ModelFiles,
    /// Fields set in config.json over the model's own (`architectures`, `id2label`, ...).
    pub config: Map<String, Value>,
    /// Longest input in tokens, `[CLS]` and `[SEP]` included: the tokenizer truncates there.
    pub max_length: usize,
    /// The model card, markdown.
    pub card: String,
    /// Further files, name and text (for example the split a check compares against).
    pub extra: Vec<(String, String)>,
    /// Further safetensors files, name and tensors (for example a task head kept apart).
    pub extra_tensors: Vec<(String, Vec<NamedTensor>)>,
    /// The model tags words already split: the tokenizer is written as thaw tokenized them
    /// (a byte-level BPE with a space before each word, see [`space_before_words`]).
    pub pre_split_words: bool,
}

/// Writes `tensors` (the model, under the names transformers reads) and `contents` as the
/// folder `out`, replacing an earlier export there.
pub fn write_folder(tensors: &[NamedTensor], contents: &FolderContents, out: &Path) -> Result<()> {
    let partial = out.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| TrainError::io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| TrainError::io(&partial, e))?;
    save_tensors(tensors, &partial.join("model.safetensors"))?;
    let write = |name: &str, text: &str| {
        let path = partial.join(name);
        std::fs::write(&path, text).map_err(|e| TrainError::io(&path, e))
    };
    write("config.json", &pretty(&config(contents)?))?;
    let mut tokenizer = tokenizer(contents)?;
    let spaced = contents.pre_split_words && space_before_words(&mut tokenizer);
    write("tokenizer.json", &pretty(&tokenizer))?;
    write("tokenizer_config.json", &pretty(&tokenizer_config(contents, &tokenizer, spaced)?))?;
    write("README.md", &contents.card)?;
    for (name, text) in &contents.extra {
        write(name, text)?;
    }
    for (name, tensors) in &contents.extra_tensors {
        save_tensors(tensors, &partial.join(name))?;
    }
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    }
    std::fs::rename(&partial, out).map_err(|e| TrainError::io(out, e))
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::BadInput {
        file: path.display().to_string(),
        line: Some(e.line()),
        message: format!("not valid JSON: {e}"),
    })
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("json") + "\n"
}

fn config(contents: &FolderContents) -> Result<Value> {
    let mut config = read_json(&contents.files.config)?;
    let Value::Object(fields) = &mut config else {
        return Err(TrainError::BadInput {
            file: contents.files.config.display().to_string(),
            line: None,
            message: "config.json is not a JSON object".into(),
        });
    };
    fields.extend(contents.config.clone());
    Ok(config)
}

/// The model's tokenizer.json without its built-in truncation and padding (MiniLM's pads
/// everything to 128): the tokenizer config and the caller decide those, as thaw did.
fn tokenizer(contents: &FolderContents) -> Result<Value> {
    let mut tokenizer = read_json(&contents.files.tokenizer)?;
    if let Value::Object(fields) = &mut tokenizer {
        fields.insert("truncation".into(), Value::Null);
        fields.insert("padding".into(), Value::Null);
    }
    Ok(tokenizer)
}

/// Whether any part of a tokenizer.json (its normalizer, for BERT) sets `"lowercase": true`.
fn lowercases(value: &Value) -> bool {
    match value {
        Value::Object(fields) => {
            fields.get("lowercase") == Some(&Value::Bool(true)) || fields.values().any(lowercases)
        }
        Value::Array(items) => items.iter().any(lowercases),
        _ => false,
    }
}

/// The model's own `tokenizer_config.json` (which names its class and special tokens) with
/// thaw's max length, and `add_prefix_space` when `spaced` (transformers' byte-level classes
/// rebuild their pre-tokenizer from it); a folder without one (a vocabulary thaw learnt) gets
/// BERT's.
fn tokenizer_config(contents: &FolderContents, tokenizer: &Value, spaced: bool) -> Result<Value> {
    let max_length = contents.max_length;
    if let Some(path) = contents.files.tokenizer_config() {
        let mut config = read_json(&path)?;
        if let Value::Object(fields) = &mut config {
            fields.insert("model_max_length".into(), json!(max_length));
            if spaced {
                fields.insert("add_prefix_space".into(), json!(true));
            }
            return Ok(config);
        }
    }
    Ok(json!({
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": lowercases(tokenizer),
        "model_max_length": max_length,
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "mask_token": "[MASK]",
        "unk_token": "[UNK]",
    }))
}
