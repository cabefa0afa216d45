//! What can go wrong reading a report's inputs.

use std::path::PathBuf;

/// An input that exists but cannot be read; the error names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// `metrics.json` is not JSON, or not metrics.
    #[error("{path}: not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// `graph.json` is not a tool graph.
    #[error("{path}: not a tool graph: {source}")]
    Graph {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A JSON Lines file with a line that is not the expected record.
    #[error(transparent)]
    Jsonl(#[from] toolflow_core::jsonl::JsonlError),
}
