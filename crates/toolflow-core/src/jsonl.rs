//! Reading and writing JSON Lines with errors that name the file and line.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a JSON Lines file could not be read or written, naming the file (and the line).
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A line is not the record expected.
    #[error("{path}:{line}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What JSON decoding said.
        source: serde_json::Error,
    },
}

/// Reads every non-blank line of `path` as a `T`; the first bad line fails the read.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, JsonlError> {
    stream(path)?.collect()
}

/// The non-blank lines of `path` as `T`s, one at a time, so that a large file is never held
/// in memory; each error names the file and line.
pub fn stream<T: DeserializeOwned>(
    path: &Path,
) -> Result<impl Iterator<Item = Result<T, JsonlError>>, JsonlError> {
    let path = path.to_path_buf();
    let file = File::open(&path).map_err(|source| JsonlError::Io {
        path: path.clone(),
        source,
    })?;
    let lines = BufReader::new(file).lines().enumerate();
    Ok(lines.filter_map(move |(number, line)| {
        let line = match line {
            Ok(line) => line,
            Err(source) => {
                return Some(Err(JsonlError::Io {
                    path: path.clone(),
                    source,
                }));
            }
        };
        if line.trim().is_empty() {
            return None;
        }
        Some(
            serde_json::from_str(&line).map_err(|source| JsonlError::Parse {
                path: path.clone(),
                line: number + 1,
                source,
            }),
        )
    }))
}

/// Writes `records` to `path`, one compact JSON object per line, through a temporary file
/// renamed into place so that a crash never leaves a half-written file behind.
pub fn write<'a, T: Serialize + 'a>(
    path: &Path,
    records: impl IntoIterator<Item = &'a T>,
) -> Result<(), JsonlError> {
    write_atomically(path, |out| {
        for record in records {
            serde_json::to_writer(&mut *out, record).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Creates `path` by writing a sibling temporary file and renaming it over `path`.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), JsonlError> {
    let io = |source| JsonlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    let mut out = BufWriter::new(File::create(&temporary).map_err(io)?);
    fill(&mut out).map_err(io)?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_numbers() {
        let dir = std::env::temp_dir().join(format!("toolflow-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.jsonl");
        write(&path, &[1u32, 2, 3]).unwrap();
        assert_eq!(read::<u32>(&path).unwrap(), [1, 2, 3]);
        std::fs::write(&path, "1\n\n2\nnope\n").unwrap();
        let error = read::<u32>(&path).unwrap_err().to_string();
        assert!(error.contains("x.jsonl:4:"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
