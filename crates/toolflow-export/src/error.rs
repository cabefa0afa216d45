//! What can go wrong in an export.

use std::path::PathBuf;

use toolflow_core::jsonl;

/// Why an export could not be written, or a record not read back.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The input is not dialogue records.
    #[error("reading dialogue records: {0}")]
    Input(#[from] jsonl::JsonlError),
    /// The format or the template cannot hold this dialogue.
    #[error("dialogue {id}: {detail}")]
    Dialogue {
        /// The dialogue's id.
        id: String,
        /// Why.
        detail: String,
    },
    /// The chat template is missing or does not compile.
    #[error("{path}: {detail}")]
    Template {
        /// The tokenizer config or output directory concerned.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// An exported record does not parse back into a dialogue.
    #[error("cannot read back the exported record: {0}")]
    Parse(String),
}
