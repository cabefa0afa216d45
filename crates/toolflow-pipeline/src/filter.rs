//! Filtering dialogue files, shared by `toolflow filter` and the run's filter stage: the
//! rules, [`Rule::OffPlan`] measured with the sentence embedder, and the judge gate
//! ([`Rule::Judge`]) through the chat engine.

use std::collections::HashMap;
use std::path::Path;

use toolflow_embed::CachedEmbedder;
use toolflow_eval::{FilterConfig, FilterSummary, Level, Rule};
use toolflow_llm::Engine;
use toolflow_synth::Prompts;
use toolflow_synth::judge::JudgeOptions;

use crate::error::PipelineError;

/// The judge the gate asks, with the settings of its requests (its `sample` is ignored:
/// the gate judges every dialogue the rules keep).
pub struct GateJudge<'a> {
    /// The endpoints, or the embedded model.
    pub engine: &'a Engine,
    /// The prompts, the judge's among them.
    pub prompts: &'a Prompts,
    /// Seed, model, attempts and answer form of the judge's requests.
    pub options: JudgeOptions,
    /// Runs the engine's requests.
    pub runtime: &'a tokio::runtime::Runtime,
}

/// Filters `input` into `kept` and `rejected`. With `embedder` (and [`Rule::OffPlan`] not
/// off), user turns are compared with their plan steps; with `config.judge_min`, `judge`
/// scores every dialogue the rules keep and those below the minimum are rejected.
pub fn filter_dialogues(
    input: &Path,
    kept: &Path,
    rejected: &Path,
    config: &FilterConfig,
    embedder: Option<&mut CachedEmbedder>,
    judge: Option<GateJudge<'_>>,
) -> Result<FilterSummary, PipelineError> {
    let mut summary = match embedder.filter(|_| config.level(Rule::OffPlan) != Level::Off) {
        Some(embedder) => {
            let mut embed = |texts: &[String]| {
                tracing::info!(texts = texts.len(), "embedding user turns and plan steps");
                embedder.embed(texts).map_err(|err| err.to_string())
            };
            toolflow_eval::filter_file_with(
                input,
                kept,
                rejected,
                config.clone(),
                Some(&mut embed),
            )?
        }
        None => toolflow_eval::filter_file(input, kept, rejected, config.clone())?,
    };
    if let Some(min) = &config.judge_min {
        let judge = judge.ok_or_else(|| {
            PipelineError::ConfigValue("[filter] judge-min is set but no judge model is".into())
        })?;
        let verdicts = judge_all(kept, &judge)?;
        toolflow_eval::apply_judge_gate(kept, rejected, &verdicts, min, &mut summary)?;
    }
    Ok(summary)
}

/// The judge's scores for every dialogue of `path`, by id; a dialogue the judge could not
/// score is absent (and logged).
fn judge_all(path: &Path, judge: &GateJudge) -> Result<HashMap<String, [u8; 4]>, PipelineError> {
    let mut dialogues = Vec::new();
    toolflow_eval::input::for_each_dialogue(path, |dialogue, _| {
        dialogues.push(dialogue);
        Ok(())
    })?;
    let options = JudgeOptions {
        sample: dialogues.len(),
        ..judge.options.clone()
    };
    tracing::info!(
        dialogues = dialogues.len(),
        "the judge gate scores the kept dialogues"
    );
    let report = judge.runtime.block_on(toolflow_synth::judge::judge(
        judge.engine,
        judge.prompts,
        &dialogues,
        &options,
    ));
    for failure in &report.failures {
        tracing::warn!(
            "judge gate: dialogue {} kept unscored: {}",
            failure.id,
            failure.error
        );
    }
    Ok(report
        .verdicts
        .into_iter()
        .map(|verdict| (verdict.id, verdict.scores))
        .collect())
}
