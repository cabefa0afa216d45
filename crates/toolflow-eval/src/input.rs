//! Reading dialogue files whatever their format, detected from the content:
//! - JSON Lines of toolflow [`Dialogue`] records (the first non-blank character is `{` and
//!   the first line is one record), read one line at a time;
//! - a MultiWOZ 2.0/2.1 `data.json` ([`crate::multiwoz`]): one JSON object keyed by
//!   dialogue name, told apart by its first entry's `log`;
//! - a JSON array of SGD dialogues ([`crate::sgd`], MultiWOZ 2.2 too) or of toolflow
//!   records (first character `[`), told apart by the first element's fields.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::Value;
use toolflow_core::Dialogue;

use crate::error::EvalError;
use crate::{multiwoz, sgd};

/// The format a dialogue file was read as.
pub use toolflow_core::metrics::DialogueFormat as Format;

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
            let mut first_line = String::new();
            reader.read_line(&mut first_line).map_err(io)?;
            let parse_line = |line: &str, number: usize| {
                serde_json::from_str::<Dialogue>(line).map_err(|source| EvalError::Json {
                    path: path.to_path_buf(),
                    line: number,
                    source,
                })
            };
            let first_record = first_line.trim_end_matches(['\n', '\r']);
            let first = match parse_line(first_record, 1) {
                Ok(dialogue) => dialogue,
                // Not a record on its first line: one JSON object over the whole file,
                // which MultiWOZ's data.json is, or else the line's error stands.
                Err(line_error) => {
                    let mut text = first_line.clone();
                    reader.read_to_string(&mut text).map_err(io)?;
                    return match serde_json::from_str::<Value>(&text) {
                        Ok(value) if multiwoz::looks_like_multiwoz(&value) => {
                            for_each_multiwoz(path, &value, each)
                        }
                        _ => Err(line_error),
                    };
                }
            };
            each(first, Some(first_record))?;
            for (number, line) in reader.lines().enumerate() {
                let line = line.map_err(io)?;
                if line.trim().is_empty() {
                    continue;
                }
                each(parse_line(&line, number + 2)?, Some(&line))?;
            }
            Ok(Format::ToolflowJsonl)
        }
    }
}

fn for_each_multiwoz(
    path: &Path,
    file: &Value,
    mut each: impl FnMut(Dialogue, Option<&str>) -> Result<(), EvalError>,
) -> Result<Format, EvalError> {
    let dialogues = file.as_object().expect("checked by looks_like_multiwoz");
    for (index, (name, value)) in dialogues.iter().enumerate() {
        let dialogue =
            multiwoz::convert(name, value, index as u64).map_err(|detail| EvalError::Record {
                path: path.to_path_buf(),
                index,
                detail: format!("{name}: {detail}"),
            })?;
        each(dialogue, None)?;
    }
    Ok(Format::Multiwoz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Result<(Format, Vec<Dialogue>), EvalError> {
        let mut dialogues = Vec::new();
        let format = for_each_dialogue(path, |dialogue, _| {
            dialogues.push(dialogue);
            Ok(())
        })?;
        Ok((format, dialogues))
    }

    #[test]
    fn each_format_is_told_apart_by_its_content() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let (format, dialogues) = read(&fixtures.join("multiwoz_two_dialogues.json")).unwrap();
        assert_eq!(format, Format::Multiwoz);
        assert_eq!(dialogues.len(), 2);
        assert_eq!(dialogues[1].id, "multiwoz-PMUL4398");
        let (format, sgd) = read(&fixtures.join("sgd_two_dialogues.json")).unwrap();
        assert_eq!(format, Format::Sgd);

        // The SGD dialogues written out as toolflow records read back line by line.
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("dialogues.jsonl");
        let lines: Vec<String> = sgd
            .iter()
            .map(|d| serde_json::to_string(d).unwrap())
            .collect();
        std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
        let (format, records) = read(&jsonl).unwrap();
        assert_eq!(format, Format::ToolflowJsonl);
        assert_eq!(records, sgd);

        // A first line that is neither a record nor the start of a MultiWOZ file is named.
        let broken = dir.path().join("broken.jsonl");
        std::fs::write(&broken, format!("{{\"id\": 3}}\n{}\n", lines[0])).unwrap();
        let error = read(&broken).unwrap_err().to_string();
        assert!(
            error.contains("broken.jsonl:1: not a dialogue record"),
            "{error}"
        );
        // A bad line further down keeps its own number.
        std::fs::write(&broken, format!("{}\n{{\"id\": 3}}\n", lines[0])).unwrap();
        let error = read(&broken).unwrap_err().to_string();
        assert!(
            error.contains("broken.jsonl:2: not a dialogue record"),
            "{error}"
        );
    }
}
