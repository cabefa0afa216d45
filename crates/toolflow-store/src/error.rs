//! What can go wrong with a run store or a merge.

use std::path::PathBuf;

/// Everything that can go wrong with a run store or a merge; each error names its file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed on the store.
    #[error("run store {path}: {source}")]
    Sql {
        /// The store's file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The store was made for a run with other inputs or settings; reusing it would mix
    /// dialogues of two runs.
    #[error(
        "run store {path} belongs to another run (its key is {found}, this run's is {expected}): \
         its dialogues came from other inputs or settings; start it afresh or use another path"
    )]
    OtherRun {
        /// The store's file.
        path: PathBuf,
        /// The run key the store was made for.
        found: String,
        /// The run key of the run that opened it.
        expected: String,
    },
    /// Another process has the store open: the same run (or shard) started twice.
    #[error("run store {path} is open in another process: is this run already running?")]
    InUse {
        /// The store's file.
        path: PathBuf,
    },
    /// The file was written by a newer toolflow, with a table layout this one does not know.
    #[error("run store {path} has layout version {found}; this toolflow knows up to {known}")]
    UnknownLayout {
        /// The store's file.
        path: PathBuf,
        /// The layout version in the file.
        found: i64,
        /// The newest layout version this build reads.
        known: i64,
    },
    /// Ids derive from the run seed and the index, so one id at two indices is a bug upstream.
    #[error("run store {path}: dialogue {index} has id {id}, already taken by dialogue {taken_by}")]
    IdTaken {
        /// The store's file.
        path: PathBuf,
        /// The id both dialogues have.
        id: String,
        /// The index of the dialogue refused.
        index: u64,
        /// The index of the dialogue stored under that id.
        taken_by: u64,
    },
    /// The settings recorded in the store do not parse (the file was edited by hand).
    #[error("run store {path}: the stored settings are not JSON: {source}")]
    Settings {
        /// The store's file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A dialogue could not be serialized (a map with non-string keys, say).
    #[error("dialogue {index} does not serialize: {source}")]
    Serialize {
        /// The dialogue's index.
        index: u64,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A line of a dialogue file is not a dialogue, or the output could not be written.
    #[error(transparent)]
    Jsonl(#[from] toolflow_core::jsonl::JsonlError),
    /// Two input files of a merge hold different dialogues under one id or one index.
    #[error(
        "{first_path}:{first_line} and {second_path}:{second_line} hold different dialogues \
         for {key}; were they written by different runs?"
    )]
    MergeConflict {
        /// `index 7` or `id …`.
        key: String,
        /// The file read first.
        first_path: PathBuf,
        /// The line of the record in the file read first.
        first_line: usize,
        /// The file where the conflicting record was found.
        second_path: PathBuf,
        /// The line of the conflicting record.
        second_line: usize,
    },
}
