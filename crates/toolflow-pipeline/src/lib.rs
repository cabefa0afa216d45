//! The pipeline engine: toolflow's stages chained into one run directory.
//!
//! [`run`] reads a run config ([`config`]) and runs import → (enrich) → graph → sample →
//! synth → filter → eval → export → report, one file per stage in the output directory.
//! Each stage is skipped when its output is current ([`stage`]: one key recipe, the hash of
//! the stage's settings and input files). Synthesis ([`synth`]) commits every finished
//! dialogue to the run store, so a run resumes after a crash, a `kill -9` or a
//! cancellation, byte-identical to an uninterrupted one.
//!
//! This is the one crate that joins the stage crates; the `toolflow` binary only parses
//! arguments and prints, through an [`Observer`].

#![warn(missing_docs)]

pub mod build;
pub mod chat;
pub mod config;
pub mod enrich;
mod error;
pub mod filter;
pub mod mcp;
pub mod measure;
pub mod observe;
pub mod overlap;
mod run;
pub mod stage;
pub mod synth;
pub mod tables;

pub use chat::{ChatModels, ChatSettings, build_engine};
pub use config::{ConfigError, RunConfig};
pub use error::PipelineError;
pub use observe::{Observer, Silent, StageReport, SynthProgress};
pub use run::{RunOptions, RunSummary, run};
pub use synth::{Interrupt, SynthJob, SynthSummary, Synthesized, synthesize};
