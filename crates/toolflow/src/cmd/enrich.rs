//! `toolflow enrich`: the chat model fills the empty tool and parameter descriptions of a
//! tools file and proposes return schemas where the source has none (paper §3.4). Every
//! inferred field is listed in the tool's `meta.inferred`; answers are cached, so a rerun
//! costs nothing.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;
use toolflow_core::{Tool, jsonl};
use toolflow_pipeline::ChatModels;
use toolflow_pipeline::enrich::enrich;
use toolflow_synth::Prompts;
use toolflow_synth::enrich::EnrichOptions;

use super::engine::EngineArgs;
use crate::progress::CliObserver;

#[derive(clap::Args)]
pub struct Args {
    /// The tools to enrich (tools.jsonl, as `toolflow import` writes it)
    tools: PathBuf,
    /// Where to write the enriched tools
    #[arg(short, long)]
    output: PathBuf,
    /// Fill descriptions only; leave tools without a return schema as they are
    #[arg(long)]
    no_returns: bool,
    /// Mixed with each tool's name into its request seed (and model draw)
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The model to ask, by its id in the endpoints file (default: drawn per tool)
    #[arg(long)]
    model: Option<String>,
    /// A directory whose enrich.txt replaces the built-in prompt
    #[arg(long, value_name = "DIR")]
    prompts: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    /// Never ask the Hugging Face hub for the embedded model (as TOOLFLOW_OFFLINE=1 does)
    #[arg(long)]
    offline: bool,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let tools: Vec<Tool> = jsonl::read(&args.tools)?;
    let options = EnrichOptions {
        infer_returns: !args.no_returns,
        seed: args.seed,
        model: args.model.clone(),
        ..EnrichOptions::default()
    };
    let prompts = Prompts::load(args.prompts.as_deref())?;
    let settings = args
        .engine
        .settings(&args.engine.config()?, global, args.offline);
    let runtime = toolflow_pipeline::chat::runtime()?;
    let mut chat = ChatModels::new(settings, &runtime);
    let report = enrich(
        tools,
        &options,
        &prompts,
        &mut chat,
        &CliObserver::new(global),
    )?;
    let usage = chat
        .built()
        .map(|engine| engine.tallies())
        .unwrap_or_default();

    anyhow::ensure!(
        report.enriched > 0 || report.failed.is_empty(),
        "every enrichment request failed, so {} was not written; the first: {}: {}",
        args.output.display(),
        report.failed[0].tool,
        report.failed[0].error
    );
    jsonl::write(&args.output, &report.tools)
        .with_context(|| format!("writing {}", args.output.display()))?;

    if global.json {
        let summary = json!({"output": args.output, "report": &report, "usage": usage});
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !global.quiet {
        let fields = &report.fields;
        eprintln!(
            "enriched {} of {} tools ({} descriptions, {} parameter descriptions, {} return schemas), \
             {} unchanged, {} failed; wrote {}",
            report.enriched,
            report.read,
            fields.descriptions,
            fields.parameters,
            fields.returns,
            report.unchanged,
            report.failed.len(),
            args.output.display()
        );
    }
    Ok(())
}
