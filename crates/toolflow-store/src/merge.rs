//! `toolflow merge`: the `dialogues.jsonl` files of a run's shards joined into one, ordered
//! by index, each record's bytes kept as they were.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use toolflow_core::Dialogue;
use toolflow_core::jsonl::JsonlError;

use crate::error::StoreError;

/// What a merge read and wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeReport {
    /// Input files read.
    pub files: usize,
    /// Dialogues read, duplicates included.
    pub read: u64,
    /// Dialogues written.
    pub written: u64,
    /// Exact copies (same id, same bytes) of a dialogue already read, dropped.
    pub duplicates: u64,
    /// With an expected count N: the indices below N that no input holds, ascending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<u64>>,
}

/// Where one record lies, and a digest of its bytes to tell copies from conflicts.
struct Located {
    file: usize,
    line: usize,
    offset: u64,
    len: usize,
    digest: String,
}

/// Joins dialogue files (the shards' `dialogues.jsonl`, or any files of [`Dialogue`]s) into
/// `output`, ordered by index, through a temporary file renamed into place (so `output` may
/// be one of the inputs). Every line must parse as a dialogue; errors name file and line.
/// Exact duplicates are dropped; two different records under one id or one index are
/// refused naming both places. With `expected` (the run's number of subsets), the report
/// lists the indices below it that no input holds. Records are located in a first pass and
/// copied in a second, so memory grows with the number of dialogues, not their size.
pub fn merge(
    inputs: &[PathBuf],
    output: &Path,
    expected: Option<u64>,
) -> Result<MergeReport, StoreError> {
    let mut by_index: BTreeMap<u64, Located> = BTreeMap::new();
    let mut index_of_id: HashMap<String, u64> = HashMap::new();
    let mut read = 0;
    let mut duplicates = 0;
    for (file, path) in inputs.iter().enumerate() {
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let mut reader = BufReader::new(File::open(path).map_err(io)?);
        let mut bytes = Vec::new();
        let mut offset = 0u64;
        for line in 1.. {
            bytes.clear();
            let consumed = reader.read_until(b'\n', &mut bytes).map_err(io)?;
            if consumed == 0 {
                break;
            }
            let record_offset = offset;
            offset += consumed as u64;
            let record = trim_line_end(&bytes);
            if record.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let dialogue: Dialogue =
                serde_json::from_slice(record).map_err(|source| JsonlError::Parse {
                    path: path.clone(),
                    line,
                    source,
                })?;
            read += 1;
            let here = Located {
                file,
                line,
                offset: record_offset,
                len: record.len(),
                digest: toolflow_core::content_hash(&[record]),
            };
            let conflict = |key: String, first: &Located| StoreError::MergeConflict {
                key,
                first_path: inputs[first.file].clone(),
                first_line: first.line,
                second_path: path.clone(),
                second_line: line,
            };
            match index_of_id.get(&dialogue.id) {
                Some(&index) if index != dialogue.index => {
                    return Err(conflict(format!("id {}", dialogue.id), &by_index[&index]));
                }
                _ => {}
            }
            match by_index.get(&dialogue.index) {
                Some(first) if first.digest == here.digest => duplicates += 1,
                Some(first) => return Err(conflict(format!("index {}", dialogue.index), first)),
                None => {
                    index_of_id.insert(dialogue.id, dialogue.index);
                    by_index.insert(dialogue.index, here);
                }
            }
        }
    }

    let mut files = Vec::with_capacity(inputs.len());
    for path in inputs {
        files.push(File::open(path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?);
    }
    // A failure to read an input is kept aside so that it is not reported as one of
    // writing the output.
    let mut read_failure = None;
    let mut record = Vec::new();
    toolflow_core::jsonl::write_atomically(output, |out| {
        for located in by_index.values() {
            let path = &inputs[located.file];
            if let Err(error) = read_at(&mut files[located.file], located, &mut record) {
                read_failure = Some(StoreError::Io {
                    path: path.clone(),
                    source: error,
                });
                return Err(std::io::Error::other("reading an input failed"));
            }
            out.write_all(&record)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
    .map_err(|error| read_failure.take().unwrap_or(StoreError::Jsonl(error)))?;

    let missing = expected.map(|expected| {
        (0..expected)
            .filter(|index| !by_index.contains_key(index))
            .collect()
    });
    Ok(MergeReport {
        files: inputs.len(),
        read,
        written: by_index.len() as u64,
        duplicates,
        missing,
    })
}

/// Reads the record at `located` again, checking it is the one the first pass saw.
fn read_at(file: &mut File, located: &Located, record: &mut Vec<u8>) -> std::io::Result<()> {
    record.resize(located.len, 0);
    file.seek(SeekFrom::Start(located.offset))?;
    file.read_exact(record)?;
    if toolflow_core::content_hash(&[record]) != located.digest {
        return Err(std::io::Error::other(format!(
            "line {} changed while merging",
            located.line
        )));
    }
    Ok(())
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
