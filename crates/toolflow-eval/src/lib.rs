//! Turning raw dialogues into a dataset people can trust: the rule-based [`filter`] (paper
//! §3.3) and the dataset measures of §4 and appendix A.1 that need no model ([`metrics`]).
//!
//! The coherence measures SS and EnR ([`coherence`]) need models, which the caller passes
//! in ([`evaluate_file_with`]); the LLM judge is not computed here. A measure without a
//! value is reported as explicitly unavailable, with why, rather than left out.

pub mod coherence;
pub mod filter;
pub mod input;
pub mod labelled;
pub mod metrics;
pub mod minhash;
pub mod multiwoz;
pub mod overlap;
pub mod sgd;
pub mod text;
pub mod words;

use std::path::{Path, PathBuf};

use toolflow_core::metrics::{
    CoherenceMetrics, Definitions, JudgeMetrics, MetricsDocument, TokenizerInfo,
};

pub use coherence::{Coherence, CoherenceError, Nli};
pub use filter::{
    Filter, FilterConfig, FilterSummary, JudgeMin, Level, PlanSimilarity, Reason, Rule,
    apply_judge_gate, filter_file, filter_file_with, plan_similarities,
};
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
    #[error("{path}: bad labels file: {detail}")]
    Labels { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Coherence {
        path: PathBuf,
        source: CoherenceError,
    },
}

/// Why a measure has no value, written next to its `null`.
pub const NOT_COMPUTED: &str = "unavailable: not computed yet";

/// Why SS and EnR have no value when no models were given.
pub const COHERENCE_NOT_MEASURED: &str = "unavailable: not measured (no models given)";

pub use toolflow_core::metrics::RunMetrics;

/// Reads one dataset file and measures it without models: SS and EnR are reported as not
/// measured. See [`evaluate_file_with`].
pub fn evaluate_file(path: &Path) -> Result<RunMetrics, EvalError> {
    evaluate_file_with(path, None)
}

/// Reads one dataset file and measures it, coherence (SS, EnR) with the given models.
pub fn evaluate_file_with(
    path: &Path,
    coherence: Option<&mut Coherence<'_>>,
) -> Result<RunMetrics, EvalError> {
    let mut measures = DatasetMeasures::default();
    let mut pairs = coherence::CoherencePairs::default();
    let format = input::for_each_dialogue(path, |dialogue, _| {
        measures.add(&dialogue);
        if coherence.is_some() {
            pairs.add(&dialogue);
        }
        Ok(())
    })?;
    let coherence = match coherence {
        Some(models) => pairs
            .measure(models)
            .map_err(|source| EvalError::Coherence {
                path: path.to_path_buf(),
                source,
            })?,
        None => CoherenceMetrics::unavailable(COHERENCE_NOT_MEASURED),
    };
    Ok(RunMetrics {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.to_path_buf(),
        format,
        statistics: measures.statistics(),
        diversity: measures.diversity(),
        coherence,
        judge: JudgeMetrics::unavailable(NOT_COMPUTED),
    })
}

/// The whole `metrics.json`: how text was tokenized, then one entry per run, side by side.
pub fn metrics_document(runs: Vec<RunMetrics>) -> MetricsDocument {
    MetricsDocument {
        tokenizer: TokenizerInfo {
            name: words::TOKENIZER.into(),
            rule: words::TOKENIZER_RULE.into(),
        },
        definitions: Definitions {
            tokens: "words over all text: user and assistant text, tool calls as name + JSON arguments, tool results as JSON".into(),
            diversity: "over user and assistant text only; entropy in bits (log base 2); Distinct-3 = distinct word trigrams / word trigrams, trigrams within one turn".into(),
            chitchat_share: "rounds (a user turn up to the next) without a tool call whose reply is not a clarification question leading to a call, over all rounds".into(),
        },
        runs,
    }
}
