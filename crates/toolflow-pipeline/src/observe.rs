//! How a run tells its caller what it is doing. The library never prints: the binary turns
//! these calls into progress bars and status lines.

use std::path::PathBuf;

use serde::Serialize;

/// What one stage did in this run, in `toolflow run --json`'s `stages`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageReport {
    /// The stage's name.
    pub stage: String,
    /// The file it wrote (or would have).
    pub output: PathBuf,
    /// It was current, so it did not run.
    pub skipped: bool,
    /// How long it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// One line on what it wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// The synthesis stage's counters, for a progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SynthProgress {
    /// Dialogues finished in this invocation (committed to the store).
    pub written: u64,
    /// Of those, failed.
    pub failed: u64,
    /// Started but not yet finished.
    pub in_flight: u64,
    /// Requests sent so far, retries included.
    pub requests: u64,
    /// Prompt and completion tokens so far.
    pub tokens: u64,
    /// Estimated cost so far, in US dollars.
    pub cost_usd: f64,
}

/// Receives a run's progress; every method does nothing by default.
pub trait Observer: Sync {
    /// A stage ran (or was skipped as current).
    fn stage_finished(&self, _report: &StageReport) {}
    /// `done` of `total` strings of the tool graph are embedded.
    fn embedding(&self, _done: usize, _total: usize) {}
    /// The graph's embedding is over.
    fn embedding_finished(&self) {}
    /// Synthesis starts on `dialogues` dialogues.
    fn synth_started(&self, _dialogues: u64) {}
    /// The synthesis counters changed (at least twice a second while it runs).
    fn synth_progress(&self, _progress: &SynthProgress) {}
    /// Synthesis is over (finished or interrupted).
    fn synth_finished(&self) {}
    /// `done` of `total` tools are through enrichment.
    fn tools_enriched(&self, _done: usize, _total: usize) {}
    /// Enrichment is over.
    fn enrich_finished(&self) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}
