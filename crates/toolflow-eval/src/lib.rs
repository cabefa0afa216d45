//! Turning raw dialogues into a dataset people can trust: the rule-based [`filter`] (paper
//! §3.3) and the dataset measures of §4 and appendix A.1 that need no model ([`metrics`]).
//!
//! Model-based measures (SS, EnR, the LLM judge) are not computed here yet; [`evaluate_file`]
//! reports them as explicitly unavailable rather than leaving them out.

pub mod filter;
pub mod input;
pub mod metrics;
pub mod minhash;
pub mod overlap;
pub mod sgd;
pub mod text;
pub mod words;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

pub use filter::{Filter, FilterConfig, FilterSummary, Level, Reason, Rule, filter_file};
pub use input::Format;
pub use metrics::{DatasetMeasures, Diversity, Statistics};
pub use overlap::{OverlapOptions, OverlapReport, TestSet, overlap};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a dialogue record: {source}")]
    Json {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{path}: element {index}: {detail}")]
    Record {
        path: PathBuf,
        index: usize,
        detail: String,
    },
    #[error("{path}: bad rules file: {detail}")]
    Rules { path: PathBuf, detail: String },
}

/// Why a measure has no value, written next to its `null`.
pub const NOT_COMPUTED: &str = "unavailable: not computed yet";

/// Every measure of one dataset file, as one entry of `metrics.json`'s `runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunMetrics {
    /// The file's stem, to label the run in tables.
    pub name: String,
    pub path: PathBuf,
    pub format: Format,
    pub statistics: Statistics,
    pub diversity: Diversity,
    /// SS and EnR (appendix A.1): each `{"value": null, "note": ...}` until computed.
    pub coherence: Value,
    /// The LLM judge's NAT, COH, HELP, ACC (Table 15): `{"value": null, "note": ...}`.
    pub judge: Value,
}

/// Reads one dataset file and measures it.
pub fn evaluate_file(path: &Path) -> Result<RunMetrics, EvalError> {
    let mut measures = DatasetMeasures::default();
    let format = input::for_each_dialogue(path, |dialogue, _| {
        measures.add(&dialogue);
        Ok(())
    })?;
    let unavailable = || json!({"value": null, "note": NOT_COMPUTED});
    Ok(RunMetrics {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.to_path_buf(),
        format,
        statistics: measures.statistics(),
        diversity: measures.diversity(),
        coherence: json!({"ss": unavailable(), "enr": unavailable()}),
        judge: unavailable(),
    })
}

/// The whole `metrics.json`: how text was tokenized, then one entry per run, side by side.
pub fn metrics_document(runs: &[RunMetrics]) -> Value {
    json!({
        "tokenizer": {"name": words::TOKENIZER, "rule": words::TOKENIZER_RULE},
        "definitions": {
            "tokens": "words over all text: user and assistant text, tool calls as name + JSON arguments, tool results as JSON",
            "diversity": "over user and assistant text only; entropy in bits (log base 2); Distinct-3 = distinct word trigrams / word trigrams, trigrams within one turn",
            "chitchat_share": "rounds (a user turn up to the next) without a tool call whose reply is not a clarification question leading to a call, over all rounds",
        },
        "runs": runs,
    })
}
