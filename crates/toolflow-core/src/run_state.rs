//! `run-state.json`: what `toolflow run` has done in its output directory, so that a rerun
//! skips the stages whose output is current.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole `run-state.json`: per stage, its last completed run.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunState {
    /// By stage name (`import`, `graph`, `synth`, `export trl`, …).
    pub stages: BTreeMap<String, StageRecord>,
}

/// One stage's last completed run: it is current while both still hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageRecord {
    /// The hash of the stage's settings and input files it ran with.
    pub key: String,
    /// The content hash of the file it wrote.
    pub output_hash: String,
}
