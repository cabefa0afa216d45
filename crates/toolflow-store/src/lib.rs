//! The run store of `toolflow run`: every finished dialogue is committed to a SQLite file in
//! its own transaction, so that rerunning the same command after a crash or `kill -9` redoes
//! nothing that finished and loses nothing ([`RunStore`]). A run can be split over machines
//! by subset index ([`Shard`]), and the shards' `dialogues.jsonl` files joined back into one
//! ([`merge`]).

mod merge;
mod shard;
mod store;

use std::path::PathBuf;

pub use merge::{MergeReport, merge};
pub use shard::{Shard, ShardError};
pub use store::{RunStore, StoreCounts, StoreMeta};

/// Everything that can go wrong with a run store or a merge; each error names its file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("run store {path}: {source}")]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
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
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// Another process has the store open: the same run (or shard) started twice.
    #[error("run store {path} is open in another process: is this run already running?")]
    InUse { path: PathBuf },
    /// The file was written by a newer toolflow, with a table layout this one does not know.
    #[error("run store {path} has layout version {found}; this toolflow knows up to {known}")]
    UnknownLayout {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// Ids derive from the run seed and the index, so one id at two indices is a bug upstream.
    #[error("run store {path}: dialogue {index} has id {id}, already taken by dialogue {taken_by}")]
    IdTaken {
        path: PathBuf,
        id: String,
        index: u64,
        taken_by: u64,
    },
    #[error("run store {path}: the stored settings are not JSON: {source}")]
    Settings {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("dialogue {index} does not serialize: {source}")]
    Serialize {
        index: u64,
        #[source]
        source: serde_json::Error,
    },
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
        first_path: PathBuf,
        first_line: usize,
        second_path: PathBuf,
        second_line: usize,
    },
}
