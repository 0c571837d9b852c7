//! Which encoder a checkpoint is: its `config.json` read by `model_type` (or `architectures`)
//! into the family's own config, every value thaw does not implement refused by name.

use std::path::Path;

use super::bert::BertConfig;
use super::config_file::ConfigFile;
use super::deberta_v2::DebertaV2Config;
use super::distilbert::DistilBertConfig;
use super::modernbert::ModernBertConfig;
use super::roberta;
use crate::error::{Result, TrainError};

/// The `model_type`s thaw reads, for error messages.
pub const SUPPORTED_MODEL_TYPES: &str =
    "bert, roberta, xlm-roberta, distilbert, electra, deberta-v2, modernbert";

/// A checkpoint's architecture, one variant per family.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    Bert(BertConfig),
    /// RoBERTa and XLM-R (`model_type` says which).
    Roberta(BertConfig),
    DistilBert(DistilBertConfig),
    Electra(BertConfig),
    DebertaV2(DebertaV2Config),
    ModernBert(ModernBertConfig),
}

impl ModelConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let file = ConfigFile::read(path)?;
        let kind = file.model_type().unwrap_or_else(|| "bert".into());
        Ok(match kind.as_str() {
            "bert" => ModelConfig::Bert(BertConfig::from_config(&file)?),
            "roberta" | "xlm-roberta" => ModelConfig::Roberta(BertConfig::from_config(&file)?),
            "distilbert" => ModelConfig::DistilBert(DistilBertConfig::from_config(&file)?),
            "electra" => ModelConfig::Electra(BertConfig::from_config(&file)?),
            "deberta-v2" => ModelConfig::DebertaV2(DebertaV2Config::from_config(&file)?),
            "modernbert" => ModelConfig::ModernBert(ModernBertConfig::from_config(&file)?),
            other => {
                return Err(TrainError::BadInput {
                    file: path.display().to_string(),
                    line: None,
                    message: format!(
                        "model_type = {other} is not supported by thaw; supported: {SUPPORTED_MODEL_TYPES}"
                    ),
                });
            }
        })
    }

    /// The family as transformers names its `model_type`.
    pub fn model_type(&self) -> &str {
        match self {
            ModelConfig::Bert(_) => "bert",
            ModelConfig::Roberta(c) => match c.model_type.as_deref() {
                Some("xlm-roberta") => "xlm-roberta",
                _ => "roberta",
            },
            ModelConfig::DistilBert(_) => "distilbert",
            ModelConfig::Electra(_) => "electra",
            ModelConfig::DebertaV2(_) => "deberta-v2",
            ModelConfig::ModernBert(_) => "modernbert",
        }
    }

    /// The prefix the family's task classes put before the encoder's tensor names.
    pub fn weight_prefix(&self) -> &'static str {
        match self {
            ModelConfig::Bert(_) => "bert",
            ModelConfig::Roberta(_) => "roberta",
            ModelConfig::DistilBert(_) => "distilbert",
            ModelConfig::Electra(_) => "electra",
            ModelConfig::DebertaV2(_) => "deberta",
            ModelConfig::ModernBert(_) => "model",
        }
    }

    /// transformers' class for the bare encoder (`BertModel`) or with its masked-LM head
    /// (`BertForMaskedLM`).
    pub fn architecture(&self, masked_lm: bool) -> String {
        format!("{}{}", self.class_stem(), if masked_lm { "ForMaskedLM" } else { "Model" })
    }

    /// transformers' class for the encoder with a tagging head (`BertForTokenClassification`).
    pub fn token_classifier_architecture(&self) -> String {
        format!("{}ForTokenClassification", self.class_stem())
    }

    /// What transformers' classes of the family begin with (`Bert`, `XLMRoberta`).
    fn class_stem(&self) -> &'static str {
        match self.model_type() {
            "bert" => "Bert",
            "roberta" => "Roberta",
            "xlm-roberta" => "XLMRoberta",
            "distilbert" => "DistilBert",
            "electra" => "Electra",
            "deberta-v2" => "DebertaV2",
            _ => "ModernBert",
        }
    }

    pub fn num_layers(&self) -> usize {
        match self {
            ModelConfig::Bert(c) | ModelConfig::Roberta(c) | ModelConfig::Electra(c) => {
                c.num_hidden_layers
            }
            ModelConfig::DistilBert(c) => c.n_layers,
            ModelConfig::DebertaV2(c) => c.num_hidden_layers,
            ModelConfig::ModernBert(c) => c.num_hidden_layers,
        }
    }

    pub fn hidden_size(&self) -> usize {
        match self {
            ModelConfig::Bert(c) | ModelConfig::Roberta(c) | ModelConfig::Electra(c) => {
                c.hidden_size
            }
            ModelConfig::DistilBert(c) => c.dim,
            ModelConfig::DebertaV2(c) => c.hidden_size,
            ModelConfig::ModernBert(c) => c.hidden_size,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            ModelConfig::Bert(c) | ModelConfig::Roberta(c) | ModelConfig::Electra(c) => {
                c.vocab_size
            }
            ModelConfig::DistilBert(c) => c.vocab_size,
            ModelConfig::DebertaV2(c) => c.vocab_size,
            ModelConfig::ModernBert(c) => c.vocab_size,
        }
    }

    /// The longest sequence, special tokens included, the model's positions allow.
    pub fn max_tokens(&self) -> usize {
        match self {
            ModelConfig::Bert(c) | ModelConfig::Electra(c) => c.max_position_embeddings,
            ModelConfig::Roberta(c) => roberta::usable_positions(c),
            ModelConfig::DistilBert(c) => c.max_position_embeddings,
            ModelConfig::DebertaV2(c) => c.max_position_embeddings,
            ModelConfig::ModernBert(c) => c.max_position_embeddings,
        }
    }

    /// The standard deviation of the family's normal initialisation (scratch weights, heads).
    pub fn initializer_range(&self) -> f64 {
        match self {
            ModelConfig::Bert(c) | ModelConfig::Roberta(c) | ModelConfig::Electra(c) => {
                c.initializer_range
            }
            ModelConfig::DistilBert(c) => c.initializer_range,
            ModelConfig::DebertaV2(c) => c.initializer_range,
            ModelConfig::ModernBert(c) => c.initializer_range,
        }
    }

    /// Dropout before a task head (the family's hidden dropout).
    pub fn head_dropout(&self) -> f64 {
        match self {
            ModelConfig::Bert(c) | ModelConfig::Roberta(c) | ModelConfig::Electra(c) => {
                c.hidden_dropout_prob
            }
            ModelConfig::DistilBert(c) => c.dropout,
            ModelConfig::DebertaV2(c) => c.hidden_dropout_prob,
            ModelConfig::ModernBert(c) => c.mlp_dropout,
        }
    }

    /// The id the model pads with, as its config says (`pad_token_id`).
    pub fn pad_token_id(&self) -> usize {
        match self {
            ModelConfig::Bert(c) | ModelConfig::Roberta(c) | ModelConfig::Electra(c) => {
                c.pad_token_id
            }
            ModelConfig::DistilBert(c) => c.pad_token_id,
            ModelConfig::DebertaV2(c) => c.pad_token_id,
            ModelConfig::ModernBert(c) => c.pad_token_id,
        }
    }
}
