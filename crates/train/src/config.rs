//! `config.json` of a Hugging Face BERT checkpoint, mirrored field for field.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::TrainError;

/// The subset of a BERT `config.json` that changes the architecture.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}

impl BertConfig {
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let config: BertConfig = serde_json::from_str(&text).map_err(|e| TrainError::BadInput {
            file: path.display().to_string(),
            line: Some(e.line()),
            message: format!("not a BERT config.json: {e}"),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), TrainError> {
        let bad = |message: String| TrainError::BadInput {
            file: path.display().to_string(),
            line: None,
            message,
        };
        if let Some(kind) = &self.model_type
            && kind != "bert"
        {
            return Err(bad(format!("model_type '{kind}' is not a BERT-family encoder")));
        }
        if self.hidden_act != "gelu" {
            return Err(bad(format!(
                "hidden_act '{}' is not supported; thaw's encoder uses gelu (as BERT and MiniLM do)",
                self.hidden_act
            )));
        }
        if let Some(kind) = &self.position_embedding_type
            && kind != "absolute"
        {
            return Err(bad(format!(
                "position_embedding_type '{kind}' is not supported; only 'absolute'"
            )));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        Ok(())
    }
}
