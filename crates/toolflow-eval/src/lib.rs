//! Turning raw dialogues into a dataset people can trust: the rule-based [`filter`] (paper
//! §3.3) and the dataset measures of §4 and appendix A.1 that need no model ([`metrics`]).
//!
//! The coherence measures SS and EnR ([`coherence`]) need models, which the caller passes
//! in ([`evaluate_file_with`]); the LLM judge is not computed here. A measure without a
//! value is reported as explicitly unavailable, with why, rather than left out.

#![warn(missing_docs)]

pub mod coherence;
mod error;
mod evaluate;
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

pub use coherence::{Coherence, CoherenceError, Nli};
pub use error::EvalError;
pub use evaluate::{
    COHERENCE_NOT_MEASURED, NOT_COMPUTED, evaluate_file, evaluate_file_with, metrics_document,
};
pub use filter::{
    Filter, FilterConfig, FilterSummary, JudgeMin, Level, PlanSimilarity, Reason, Rule,
    apply_judge_gate, filter_file, filter_file_with, plan_similarities,
};
pub use input::Format;
pub use metrics::{DatasetMeasures, Diversity, Statistics};
pub use overlap::{OverlapOptions, OverlapReport, TestSet, overlap};

pub use toolflow_core::metrics::RunMetrics;
