//! Reading dialogue files whatever their format, detected from the content:
//! - JSON Lines of toolflow [`Dialogue`] records (the first non-blank character is `{`),
//!   read one line at a time;
//! - a JSON array of SGD dialogues ([`crate::sgd`]) or of toolflow records (first character
//!   `[`), told apart by the first element's fields.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use toolflow_core::Dialogue;

use crate::{EvalError, sgd};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// toolflow dialogue records, one per line.
    ToolflowJsonl,
    /// toolflow dialogue records in one JSON array.
    ToolflowArray,
    /// Schema-Guided Dialogue (DSTC8) files.
    Sgd,
}

/// Calls `each` with every dialogue of `path`, in file order; returns the format found.
/// One line, or one element, of a JSON Lines file is handed over with its raw text, so that
/// a filter can copy kept records byte for byte.
pub fn for_each_dialogue(
    path: &Path,
    mut each: impl FnMut(Dialogue, Option<&str>) -> Result<(), EvalError>,
) -> Result<Format, EvalError> {
    let io = |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io)?);
    let first = loop {
        let buffer = reader.fill_buf().map_err(io)?;
        match buffer.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => break Some(buffer[at]),
            None if buffer.is_empty() => break None,
            None => {
                let n = buffer.len();
                reader.consume(n);
            }
        }
    };
    match first {
        None => Ok(Format::ToolflowJsonl),
        Some(b'[') => {
            let mut text = String::new();
            reader.read_to_string(&mut text).map_err(io)?;
            let values: Vec<Value> =
                serde_json::from_str(&text).map_err(|source| EvalError::Json {
                    path: path.to_path_buf(),
                    line: source.line(),
                    source,
                })?;
            let format = match values.first() {
                Some(value) if sgd::looks_like_sgd(value) => Format::Sgd,
                _ => Format::ToolflowArray,
            };
            for (index, value) in values.into_iter().enumerate() {
                let dialogue = match format {
                    Format::Sgd => sgd::convert(value, index as u64),
                    _ => serde_json::from_value(value).map_err(|e| e.to_string()),
                }
                .map_err(|detail| EvalError::Record {
                    path: path.to_path_buf(),
                    index,
                    detail,
                })?;
                each(dialogue, None)?;
            }
            Ok(format)
        }
        Some(_) => {
            for (number, line) in reader.lines().enumerate() {
                let line = line.map_err(io)?;
                if line.trim().is_empty() {
                    continue;
                }
                let dialogue = serde_json::from_str(&line).map_err(|source| EvalError::Json {
                    path: path.to_path_buf(),
                    line: number + 1,
                    source,
                })?;
                each(dialogue, Some(&line))?;
            }
            Ok(Format::ToolflowJsonl)
        }
    }
}
