//! A natural language inference cross-encoder for the entailment ratio EnR (paper appendix
//! A.1): a sequence-classification checkpoint of the BERT, RoBERTa or DeBERTa-v2 family,
//! run in candle on the CPU.
//!
//! - [`resolve_model`] finds the checkpoint: an explicit directory, toolflow's cache, then
//!   the Hugging Face hub ([`DEFAULT_MODEL`] unless told otherwise).
//! - [`NliClassifier`] loads `config.json`, `tokenizer.json` and `model.safetensors` and
//!   labels (premise, hypothesis) pairs. Label names come from the config's `id2label`;
//!   nothing assumes an order.

mod classifier;
mod resolve;

use std::path::PathBuf;

pub use classifier::{Architecture, NliClassifier};
pub use resolve::{NliOptions, resolve_model};

/// The checkpoint used when none is named: the smallest of the cross-encoder NLI family
/// (a 22M-parameter DeBERTa-v3 backbone trained on SNLI and MultiNLI; 91.6% on SNLI's test
/// set, 87.8% on MultiNLI mismatched, by its model card), and DeBERTa-v2 is a candle model.
pub const DEFAULT_MODEL: &str = "cross-encoder/nli-deberta-v3-xsmall";

/// The files a checkpoint directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// The label EnR counts, compared without regard to case.
pub const ENTAILMENT: &str = "entailment";

#[derive(Debug, thiserror::Error)]
pub enum NliError {
    #[error("NLI model directory {} lacks {}", dir.display(), missing.join(", "))]
    MissingModelFiles { dir: PathBuf, missing: Vec<String> },

    #[error("no NLI model; tried: {}", attempts.join("; "))]
    Unavailable { attempts: Vec<String> },

    #[error("{}: {message}", path.display())]
    InvalidConfig { path: PathBuf, message: String },

    #[error("{}: no label named \"entailment\" in id2label (labels: {})", path.display(), labels.join(", "))]
    NoEntailmentLabel { path: PathBuf, labels: Vec<String> },

    #[error("{}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },

    #[error("{}: {source}", path.display())]
    Weights {
        path: PathBuf,
        source: candle_core::Error,
    },

    #[error("NLI model forward pass: {0}")]
    Forward(#[from] candle_core::Error),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
