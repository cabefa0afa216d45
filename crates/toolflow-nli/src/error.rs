//! What can go wrong finding, loading or running an NLI checkpoint.

use std::path::PathBuf;

/// Why no NLI classifier could be had, or why it failed on an input.
#[derive(Debug, thiserror::Error)]
pub enum NliError {
    /// A directory given or found lacks checkpoint files.
    #[error("NLI model directory {} lacks {}", dir.display(), missing.join(", "))]
    MissingModelFiles {
        /// The directory.
        dir: PathBuf,
        /// The files it lacks.
        missing: Vec<String>,
    },

    /// No source had a checkpoint; EnR is then reported as unavailable.
    #[error(
        "no NLI model; tried: {}",
        toolflow_fetch::Attempt::join(attempts, "; ")
    )]
    Unavailable {
        /// One line per place tried, with why it failed.
        attempts: Vec<toolflow_fetch::Attempt>,
    },

    /// `config.json` does not describe a supported classifier.
    #[error("{}: {message}", path.display())]
    InvalidConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// The classifier has no entailment class for EnR to count.
    #[error("{}: no label named \"entailment\" in id2label (labels: {})", path.display(), labels.join(", "))]
    NoEntailmentLabel {
        /// The config file.
        path: PathBuf,
        /// The labels it has.
        labels: Vec<String>,
    },

    /// `tokenizer.json` does not load or cannot encode an input.
    #[error("{}: {message}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizer's error.
        message: String,
    },

    /// The weights do not load into the architecture.
    #[error("{}: {source}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },

    /// The forward pass failed.
    #[error("NLI model forward pass: {0}")]
    Forward(#[from] candle_core::Error),

    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}
