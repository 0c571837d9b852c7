//! A checkpoint's `config.json` as read once: its text for serde, its keys for the checks
//! that refuse what thaw does not implement by name (the key, its value and what is
//! supported), never silently.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Result, TrainError};

pub struct ConfigFile {
    pub path: PathBuf,
    pub json: Value,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let json: Value = serde_json::from_str(&text).map_err(|e| TrainError::BadInput {
            file: path.display().to_string(),
            line: Some(e.line()),
            message: format!("not valid JSON: {e}"),
        })?;
        if !json.is_object() {
            return Err(TrainError::BadInput {
                file: path.display().to_string(),
                line: None,
                message: "config.json is not a JSON object".into(),
            });
        }
        Ok(ConfigFile { path: path.to_path_buf(), json })
    }

    /// The file as the family's config struct.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.json.clone()).map_err(|e| TrainError::BadInput {
            file: self.path.display().to_string(),
            line: None,
            message: format!("not a config.json thaw can read: {e}"),
        })
    }

    /// The value of `key`, when the file sets it (and not to null).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.json.get(key).filter(|v| !v.is_null())
    }

    /// `model_type`, or the family named by `architectures` (a `BertModel` file without one).
    pub fn model_type(&self) -> Option<String> {
        if let Some(kind) = self.get("model_type").and_then(Value::as_str) {
            return Some(kind.to_string());
        }
        let first = self.get("architectures")?.as_array()?.first()?.as_str()?;
        KNOWN_ARCHITECTURES
            .iter()
            .find(|(prefix, _)| first.starts_with(prefix))
            .map(|(_, kind)| kind.to_string())
    }
}

/// Class-name beginnings of `architectures` and the `model_type` they mean, longest first
/// (so `DebertaV2` is not taken for `Deberta`, nor `XLMRoberta` for `Roberta`).
const KNOWN_ARCHITECTURES: [(&str, &str); 7] = [
    ("XLMRoberta", "xlm-roberta"),
    ("DistilBert", "distilbert"),
    ("ModernBert", "modernbert"),
    ("DebertaV2", "deberta-v2"),
    ("Electra", "electra"),
    ("Roberta", "roberta"),
    ("Bert", "bert"),
];

/// Builds the errors that refuse a configuration value.
pub struct Unsupported<'a> {
    file: &'a ConfigFile,
}

impl<'a> Unsupported<'a> {
    pub fn new(file: &'a ConfigFile) -> Self {
        Unsupported { file }
    }

    /// `key = value` is not implemented; `supported` says what is.
    pub fn value(&self, key: &str, value: &str, supported: &str) -> TrainError {
        TrainError::BadInput {
            file: self.file.path.display().to_string(),
            line: None,
            message: format!("{key} = {value} is not supported by thaw; supported: {supported}"),
        }
    }

    /// A key whose presence (with a value other than `allowed`) changes the computation in
    /// a way thaw does not implement.
    pub fn refuse_unless(&self, key: &str, allowed: &[Value], supported: &str) -> Result<()> {
        match self.file.get(key) {
            Some(v) if !allowed.contains(v) => Err(self.value(key, &v.to_string(), supported)),
            _ => Ok(()),
        }
    }

    /// Heads must split the width evenly.
    pub fn check_heads(&self, hidden: usize, heads: usize) -> Result<()> {
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(TrainError::BadInput {
                file: self.file.path.display().to_string(),
                line: None,
                message: format!(
                    "the hidden size {hidden} is not divisible by the {heads} attention heads"
                ),
            });
        }
        Ok(())
    }
}
