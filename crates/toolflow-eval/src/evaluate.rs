//! Measuring one dataset file into its entry of `metrics.json`, and the document that holds
//! the runs side by side.

use std::path::Path;

use toolflow_core::metrics::{
    CoherenceMetrics, Definitions, JudgeMetrics, MetricsDocument, RunMetrics, TokenizerInfo,
};

use crate::coherence::{self, Coherence};
use crate::error::EvalError;
use crate::input;
use crate::metrics::DatasetMeasures;
use crate::words;

/// Why a measure has no value, written next to its `null`.
pub const NOT_COMPUTED: &str = "unavailable: not computed yet";

/// Why SS and EnR have no value when no models were given.
pub const COHERENCE_NOT_MEASURED: &str = "unavailable: not measured (no models given)";

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
            chained_calls: "tool calls with an argument value (any scalar, at any depth) equal to a value of an earlier non-error tool result of the same dialogue, a number and a string holding it counting as equal; booleans, nulls, blank strings and the integers 0-9 are left out as chance matches; over all tool calls".into(),
            links_realised: "planned data-flow links (chain subsets) for which a call of the consumer passed, as the parameter, a value found at the field of an earlier result of the producer (anywhere in it when the field path cannot be followed), over all planned links".into(),
        },
        runs,
    }
}
