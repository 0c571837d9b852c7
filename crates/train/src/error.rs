//! One error type for training, each variant naming the file or tensor at fault.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Input the user can fix: a data file, a config, a corpus.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    BadInput { file: String, line: Option<usize>, message: String },

    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },

    /// A checkpoint that does not match the architecture its config.json describes.
    #[error("checkpoint {file}: {message}")]
    Checkpoint { file: String, message: String },

    /// A setting that cannot work with this model or data (e.g. a freeze depth past the layer count).
    #[error("{0}")]
    Invalid(String),

    /// The job was asked to stop (Ctrl-C, shutdown); nothing it computed is a result.
    #[error("interrupted before the job finished")]
    Interrupted,

    /// Training diverged or produced a non-finite number.
    #[error("{0}")]
    Numerical(String),

    #[error("{0}")]
    Backend(String),
}

impl TrainError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io { path: path.display().to_string(), source }
    }
}

pub type Result<T> = std::result::Result<T, TrainError>;
