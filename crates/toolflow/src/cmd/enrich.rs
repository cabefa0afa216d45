//! `toolflow enrich`: the chat model fills the empty tool and parameter descriptions of a
//! tools file and proposes return schemas where the source has none (paper §3.4). Every
//! inferred field is listed in the tool's `meta.inferred`; answers are cached, so a rerun
//! costs nothing.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;
use toolflow_core::{Tool, jsonl};
use toolflow_llm::TallyRow;
use toolflow_synth::Prompts;
use toolflow_synth::enrich::{
    EnrichOptions, EnrichReport, enrich_tools_with_progress, needs_enrichment,
};

use super::engine::EngineArgs;

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
    let needing = tools
        .iter()
        .filter(|tool| needs_enrichment(tool, options.infer_returns))
        .count();
    let (report, usage) = if needing == 0 {
        // Nothing to ask: no engine, so no endpoint or model is needed at all.
        let report = EnrichReport {
            read: tools.len(),
            unchanged: tools.len(),
            tools,
            ..EnrichReport::default()
        };
        (report, Vec::new())
    } else {
        enrich(tools, &options, &args, global)?
    };

    anyhow::ensure!(
        needing == 0 || report.failed.len() < needing,
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

fn enrich(
    tools: Vec<Tool>,
    options: &EnrichOptions,
    args: &Args,
    global: &super::Global,
) -> anyhow::Result<(EnrichReport, Vec<TallyRow>)> {
    let prompts = match &args.prompts {
        Some(dir) => Prompts::from_dir(dir)?,
        None => Prompts::builtin()?,
    };
    let config = args.engine.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let engine = runtime
        .block_on(async { super::engine::build(&config, &args.engine, global, args.offline) })?;
    if let Some(model) = &options.model {
        anyhow::ensure!(
            engine.models().any(|known| known == model),
            "--model {model}: no endpoint serves it (configured: {})",
            engine.models().collect::<Vec<_>>().join(", ")
        );
    }

    let progress = global.show_progress().then(|| {
        let bar = indicatif::ProgressBar::new(tools.len() as u64).with_message("enriching");
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {wide_bar} {pos}/{len} tools ({per_sec}, {eta})",
            )
            .expect("a valid progress template"),
        );
        bar
    });
    let report = runtime.block_on(enrich_tools_with_progress(
        &engine,
        &prompts,
        tools,
        options,
        |done, _| {
            if let Some(bar) = &progress {
                bar.set_position(done as u64);
            }
        },
    ));
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok((report, engine.tallies()))
}
