//! The run store of `toolflow run`: every finished dialogue is committed to a SQLite file in
//! its own transaction, so that rerunning the same command after a crash or `kill -9` redoes
//! nothing that finished and loses nothing ([`RunStore`]). A run can be split over machines
//! by subset index ([`Shard`]), and the shards' `dialogues.jsonl` files joined back into one
//! ([`merge`]).

#![warn(missing_docs)]

mod error;
mod merge;
mod shard;
mod store;

pub use error::StoreError;
pub use merge::{MergeReport, merge};
pub use shard::{Shard, ShardError};
pub use store::{RunStore, StoreCounts, StoreMeta};
