//! Exports dialogue records as supervised fine-tuning data, in the formats trainers take:
//!
//! - [`Format::Trl`]: OpenAI-style `messages` plus `tools`, as TRL's `SFTTrainer` takes a
//!   conversational dataset with tools (arguments as objects, tool results as text);
//! - [`Format::Sharegpt`]: `conversations` with `human` / `gpt` / `function_call` /
//!   `observation` turns, `system`, and `tools` as a JSON string, as LLaMA-Factory takes it;
//! - [`Format::Hermes`]: `conversations` whose text carries `<tools>` in the system prompt,
//!   `<tool_call>{json}</tool_call>` in assistant turns and `<tool_response>` turns;
//! - [`Format::Template`]: `{"text": ...}` rendered through a model's own chat template
//!   ([`template::ChatTemplate`]), exactly what that model is trained on.
//!
//! Each dialogue goes to `train.jsonl` or `validation.jsonl` by a seeded hash of its id
//! ([`split::is_validation`]), so a split never depends on input order.

#![warn(missing_docs)]

mod error;
pub mod formats;
pub mod python;
pub mod split;
pub mod template;
mod write;

pub use error::ExportError;
pub use formats::Format;
pub use template::ChatTemplate;
pub use write::{ExportSummary, dataset_info, export_file};
