//! A natural language inference cross-encoder for the entailment ratio EnR (paper appendix
//! A.1): a sequence-classification checkpoint of the BERT, RoBERTa or DeBERTa-v2 family,
//! run in candle on the CPU.
//!
//! - [`resolve_model`] finds the checkpoint: an explicit directory, toolflow's cache, then
//!   the Hugging Face hub ([`DEFAULT_MODEL`] unless told otherwise).
//! - [`NliClassifier`] loads `config.json`, `tokenizer.json` and `model.safetensors` and
//!   labels (premise, hypothesis) pairs. Label names come from the config's `id2label`;
//!   nothing assumes an order.

#![warn(missing_docs)]

mod checkpoint;
mod classifier;
mod error;
mod resolve;

pub use checkpoint::{DEFAULT_MODEL, ENTAILMENT, MODEL_FILES};
pub use classifier::{Architecture, NliClassifier};
pub use error::NliError;
pub use resolve::{NliOptions, resolve_model};
