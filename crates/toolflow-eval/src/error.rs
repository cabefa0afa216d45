//! What can go wrong reading, filtering or measuring a dataset.

use std::path::PathBuf;

use crate::coherence::CoherenceError;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a dialogue record: {source}")]
    Json {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{path}: element {index}: {detail}")]
    Record {
        path: PathBuf,
        index: usize,
        detail: String,
    },
    #[error("{path}: bad rules file: {detail}")]
    Rules { path: PathBuf, detail: String },
    #[error("{path}: bad labels file: {detail}")]
    Labels { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Coherence {
        path: PathBuf,
        source: CoherenceError,
    },
}
