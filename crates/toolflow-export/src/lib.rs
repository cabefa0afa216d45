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

pub mod formats;
pub mod split;
pub mod template;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use toolflow_core::{Dialogue, jsonl};

pub use formats::Format;
pub use template::ChatTemplate;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading dialogue records: {0}")]
    Input(#[from] jsonl::JsonlError),
    #[error("dialogue {id}: {detail}")]
    Dialogue { id: String, detail: String },
    #[error("{path}: {detail}")]
    Template { path: PathBuf, detail: String },
    #[error("cannot read back the exported record: {0}")]
    Parse(String),
}

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportSummary {
    pub train: u64,
    pub validation: u64,
    pub train_path: PathBuf,
    pub validation_path: PathBuf,
    /// Assistant text that came with tool calls in the same turn, which ShareGPT cannot
    /// hold and so was left out (only for that format).
    pub dropped_assistant_texts: u64,
}

/// Exports every dialogue of the JSON Lines file `input` into `out_dir/train.jsonl` and
/// `out_dir/validation.jsonl`.
pub fn export_file(
    input: &Path,
    format: Format,
    out_dir: &Path,
    validation_fraction: f64,
    seed: u64,
    template: Option<&ChatTemplate>,
) -> Result<ExportSummary, ExportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io {
            path: path.clone(),
            source,
        }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let mut summary = ExportSummary {
        train_path: out_dir.join("train.jsonl"),
        validation_path: out_dir.join("validation.jsonl"),
        ..Default::default()
    };
    let mut train =
        BufWriter::new(File::create(&summary.train_path).map_err(io(&summary.train_path))?);
    let mut validation = BufWriter::new(
        File::create(&summary.validation_path).map_err(io(&summary.validation_path))?,
    );
    for dialogue in jsonl::stream::<Dialogue>(input)? {
        let dialogue = dialogue?;
        let record = match format {
            Format::Template => {
                let template = template.ok_or_else(|| ExportError::Dialogue {
                    id: dialogue.id.clone(),
                    detail: "the template format needs a chat template (tokenizer_config.json)"
                        .into(),
                })?;
                serde_json::json!({"text": template.render(&dialogue)?})
            }
            _ => {
                let (record, dropped) = formats::to_record(format, &dialogue)?;
                summary.dropped_assistant_texts += dropped;
                record
            }
        };
        let (out, path, count) = if split::is_validation(&dialogue.id, seed, validation_fraction) {
            (
                &mut validation,
                &summary.validation_path,
                &mut summary.validation,
            )
        } else {
            (&mut train, &summary.train_path, &mut summary.train)
        };
        serde_json::to_writer(&mut *out, &record).map_err(|e| io(path)(e.into()))?;
        out.write_all(b"\n").map_err(io(path))?;
        *count += 1;
    }
    train.flush().map_err(io(&summary.train_path))?;
    validation.flush().map_err(io(&summary.validation_path))?;
    Ok(summary)
}
