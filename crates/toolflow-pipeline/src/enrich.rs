//! Enriching tools with the chat model (paper §3.4), shared by `toolflow enrich` and the
//! run's enrich stage.

use toolflow_core::Tool;
use toolflow_synth::Prompts;
use toolflow_synth::enrich::{
    EnrichOptions, EnrichReport, enrich_tools_with_progress, needs_enrichment,
};

use crate::chat::ChatModels;
use crate::error::PipelineError;
use crate::observe::Observer;

/// Fills what `tools` lack. The engine is built only when some tool needs enrichment, so a
/// complete tools file needs no endpoint or model at all. A failed request leaves its tool
/// as it was and lands in the report's `failed`.
pub fn enrich(
    tools: Vec<Tool>,
    options: &EnrichOptions,
    prompts: &Prompts,
    chat: &mut ChatModels,
    observer: &dyn Observer,
) -> Result<EnrichReport, PipelineError> {
    if !tools
        .iter()
        .any(|tool| needs_enrichment(tool, options.infer_returns))
    {
        return Ok(EnrichReport {
            read: tools.len(),
            unchanged: tools.len(),
            tools,
            ..EnrichReport::default()
        });
    }
    let engine = chat.engine()?;
    if let Some(model) = &options.model
        && !engine.models().any(|served| served == model)
    {
        return Err(PipelineError::UnknownModel {
            model: model.clone(),
            served: engine.models().collect::<Vec<_>>().join(", "),
        });
    }
    let report = chat.runtime().block_on(enrich_tools_with_progress(
        &engine,
        prompts,
        tools,
        options,
        |done, total| observer.tools_enriched(done, total),
    ));
    observer.enrich_finished();
    Ok(report)
}
