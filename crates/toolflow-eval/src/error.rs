//! What can go wrong reading, filtering or measuring a dataset.

use std::path::PathBuf;

use crate::coherence::CoherenceError;

/// Why reading, filtering or measuring failed; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line (or a whole JSON array) that does not parse as the record expected there.
    #[error("{path}:{line}: not a dialogue record: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// An element of an array or object file (toolflow, SGD or MultiWOZ) that could not be
    /// turned into a dialogue.
    #[error("{path}: element {index}: {detail}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The element's position, from 0.
        index: usize,
        /// What was wrong with it.
        detail: String,
    },
    /// A filter rules file that could not be understood.
    #[error("{path}: bad rules file: {detail}")]
    Rules {
        /// The rules file.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
    /// A labels file that could not be understood.
    #[error("{path}: bad labels file: {detail}")]
    Labels {
        /// The labels file.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
    /// A coherence measure failed on the dialogues of a file.
    #[error("{path}: {source}")]
    Coherence {
        /// The dialogue file being measured.
        path: PathBuf,
        /// The measure's error.
        source: CoherenceError,
    },
}
