//! The encoder families thaw fine-tunes, one file each, named and structured after the
//! family's `modeling_*.py` in transformers so that a parameter's path is its tensor name:
//! [`bert`] (BERT, MiniLM), [`roberta`] (RoBERTa, XLM-R), [`distilbert`], [`electra`],
//! [`deberta_v2`] (DeBERTa-v2 and -v3), [`modernbert`]. What they share: [`blocks`] (dense,
//! norm and embedding layers as loaded), [`attention`] (BERT's multi-head attention),
//! [`activation`]; [`config_file`] reads a `config.json` and refuses what thaw does not
//! implement, by name.
//!
//! Everything outside this folder reaches the families through [`ModelConfig`] (which
//! family a checkpoint is), [`Encoder`] (embed, run layers, freeze, reinitialise, group
//! parameters) and [`MaskedLmHead`].

pub mod activation;
pub mod attention;
pub mod bert;
pub mod blocks;
pub mod config;
pub mod config_file;
pub mod deberta_v2;
pub mod distilbert;
pub mod electra;
pub mod encoder;
pub mod mlm_head;
pub mod modernbert;
pub mod roberta;

pub use config::{ModelConfig, SUPPORTED_MODEL_TYPES};
pub use encoder::Encoder;
pub use mlm_head::MaskedLmHead;
