//! Writing a dialogue file as the train and validation files of one format.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use toolflow_core::{Dialogue, jsonl};

use crate::error::ExportError;
use crate::formats::{self, Format};
use crate::split;
use crate::template::ChatTemplate;

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportSummary {
    /// Records in the train file.
    pub train: u64,
    /// Records in the validation file.
    pub validation: u64,
    /// The train file.
    pub train_path: PathBuf,
    /// The validation file.
    pub validation_path: PathBuf,
    /// Assistant text that came with tool calls in the same turn, which ShareGPT cannot
    /// hold and so was left out (only for that format).
    pub dropped_assistant_texts: u64,
    /// Dialogues the format or the template refused (a template that raises on parallel
    /// calls, turns ShareGPT cannot alternate), each left out with a warning.
    pub skipped: u64,
    /// LLaMA-Factory's `dataset_info.json`, written next to ShareGPT files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_info: Option<PathBuf>,
}

/// Exports every dialogue of the JSON Lines file `input` into `out_dir/train.jsonl` and
/// `out_dir/validation.jsonl`. Both are written under temporary names and renamed into
/// place at the end, so a failed export never leaves a truncated file behind.
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
    if format == Format::Template && template.is_none() {
        return Err(ExportError::Template {
            path: out_dir.to_path_buf(),
            detail: "the template format needs a chat template (tokenizer_config.json)".into(),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let mut summary = ExportSummary {
        train_path: out_dir.join("train.jsonl"),
        validation_path: out_dir.join("validation.jsonl"),
        ..Default::default()
    };
    let temporary = |path: &Path| path.with_extension("jsonl.partial");
    let (train_tmp, validation_tmp) = (
        temporary(&summary.train_path),
        temporary(&summary.validation_path),
    );
    let mut train = BufWriter::new(File::create(&train_tmp).map_err(io(&train_tmp))?);
    let mut validation =
        BufWriter::new(File::create(&validation_tmp).map_err(io(&validation_tmp))?);
    for dialogue in jsonl::stream::<Dialogue>(input)? {
        let dialogue = dialogue?;
        let record = match format {
            Format::Template => template
                .expect("checked above")
                .render(&dialogue)
                .map(|text| (serde_json::json!({"text": text}), 0)),
            _ => formats::to_record(format, &dialogue),
        };
        let record = match record {
            Ok((record, dropped)) => {
                summary.dropped_assistant_texts += dropped;
                record
            }
            Err(error) => {
                tracing::warn!(
                    "dialogue {} left out of the {format:?} export: {error}",
                    dialogue.id
                );
                summary.skipped += 1;
                continue;
            }
        };
        let (out, path, count) = if split::is_validation(&dialogue.id, seed, validation_fraction) {
            (&mut validation, &validation_tmp, &mut summary.validation)
        } else {
            (&mut train, &train_tmp, &mut summary.train)
        };
        serde_json::to_writer(&mut *out, &record).map_err(|e| io(path)(e.into()))?;
        out.write_all(b"\n").map_err(io(path))?;
        *count += 1;
    }
    train.flush().map_err(io(&train_tmp))?;
    validation.flush().map_err(io(&validation_tmp))?;
    drop((train, validation));
    std::fs::rename(&train_tmp, &summary.train_path).map_err(io(&summary.train_path))?;
    std::fs::rename(&validation_tmp, &summary.validation_path)
        .map_err(io(&summary.validation_path))?;
    if format == Format::Sharegpt {
        let path = out_dir.join("dataset_info.json");
        let text = serde_json::to_string_pretty(&dataset_info()).expect("JSON") + "\n";
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text).map_err(io(&partial))?;
        std::fs::rename(&partial, &path).map_err(io(&path))?;
        summary.dataset_info = Some(path);
    }
    Ok(summary)
}

/// LLaMA-Factory's entries for the two files: without `columns` it ignores `tools` and
/// `system`, and without `tags` it expects other role names.
pub fn dataset_info() -> serde_json::Value {
    let entry = |file: &str| {
        serde_json::json!({
            "file_name": file,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                     "assistant_tag": "gpt", "observation_tag": "observation",
                     "function_tag": "function_call", "system_tag": "system"}
        })
    };
    serde_json::json!({
        "toolflow_train": entry("train.jsonl"),
        "toolflow_validation": entry("validation.jsonl"),
    })
}
