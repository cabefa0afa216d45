//! What can go wrong finding, loading, running or caching the embedding model.

use std::path::PathBuf;

use crate::spec::MODEL_ID;

/// Why the model could not be found, loaded or run, or the cache not used.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model directory lacks files.
    #[error("model directory {} lacks {}", dir.display(), missing.join(", "))]
    MissingModelFiles {
        /// The directory.
        dir: PathBuf,
        /// The files it lacks.
        missing: Vec<String>,
    },

    /// No source had the model.
    #[error("could not obtain {MODEL_ID}; tried:\n{}", attempts.iter().map(|a| format!("  - {a}")).collect::<Vec<_>>().join("\n"))]
    ModelUnavailable {
        /// One line per place tried, with why it failed.
        attempts: Vec<toolflow_fetch::Attempt>,
    },

    /// A model file is not what all-MiniLM-L6-v2 should be.
    #[error("{}: {message}", path.display())]
    InvalidModel {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// bf16 was asked for on a CPU that cannot run it.
    #[error("bf16 embeddings need a CPU with AVX512-BF16, which this one lacks; use f32 or auto")]
    PrecisionUnsupported,

    /// The tokenizer failed to load or to encode a text.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A tokenized text is longer than the model's positions (truncation should prevent it).
    #[error("a sequence of {tokens} tokens is longer than the model's {max} positions")]
    SequenceTooLong {
        /// The sequence's length.
        tokens: usize,
        /// The model's positions.
        max: usize,
    },

    /// The tokenizer produced an id the model has no embedding for.
    #[error("token id {id} is outside the model's vocabulary of {vocab_size}")]
    TokenOutOfVocabulary {
        /// The token id.
        id: u32,
        /// The model's vocabulary size.
        vocab_size: usize,
    },

    /// SQLite failed on the embedding cache.
    #[error("embedding cache {}: {source}", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// A cached embedding is not a whole number of `f32`s.
    #[error("embedding cache {}: entry {key} is {len} bytes, not a multiple of 4", path.display())]
    CorruptCacheEntry {
        /// The cache file.
        path: PathBuf,
        /// The entry's key.
        key: String,
        /// Its length in bytes.
        len: usize,
    },

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

impl EmbedError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
