//! `toolflow synth`: subsets.jsonl → dialogues.jsonl, through a run store beside the output
//! so that an interrupted synthesis resumes where it stopped.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use toolflow_pipeline::synth::standalone_key;
use toolflow_pipeline::{Interrupt, RunConfig, SynthJob, synthesize};
use toolflow_store::Shard;

use super::engine::EngineArgs;
use crate::progress::CliObserver;

#[derive(clap::Args)]
pub struct Args {
    /// The subsets, as `toolflow sample` writes them
    subsets: PathBuf,
    /// The tools the subsets name, as `toolflow import` writes them
    #[arg(long, default_value = "tools.jsonl")]
    tools: PathBuf,
    /// Where to write the dialogues, in index order
    #[arg(short, long, default_value = "dialogues.jsonl")]
    output: PathBuf,
    /// A run config whose `[synth]` table says how dialogues are written (see
    /// examples/run.toml); its `[[endpoint]]` tables are used unless --endpoints is given
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The run store; by default the output's name with `.sqlite`
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Write only shard i of N (0-based)
    #[arg(long, value_name = "i/N")]
    shard: Option<Shard>,
    /// A directory of prompt files replacing the built-in ones
    #[arg(long, value_name = "DIR")]
    prompts: Option<PathBuf>,
    /// Write again the dialogues that failed in an earlier attempt
    #[arg(long)]
    retry_failed: bool,
    /// Start the store afresh
    #[arg(long)]
    force: bool,
    /// Never ask the Hugging Face hub for the embedded model
    #[arg(long)]
    offline: bool,
    /// Execute MCP tool calls anew instead of reading their recorded results
    #[arg(long)]
    refresh_tools: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("(defaults)"));
    let config = match &args.config {
        Some(file) => RunConfig::load(Some(file))?.0,
        None => RunConfig::default(),
    };
    let endpoints = match &args.engine.endpoints {
        Some(_) => args.engine.config()?,
        None => config.llm(&path)?,
    };
    let prompts = toolflow_synth::Prompts::load(args.prompts.as_deref())?;
    let settings = args.engine.settings(&endpoints, global, args.offline);
    let (key_settings, run_key) =
        standalone_key(&config.synth, &settings, &prompts, &args.tools, &config.mcp)?;
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| toolflow_pipeline::synth::default_store_path(&args.output));
    let runtime = toolflow_pipeline::chat::runtime()?;
    let job = SynthJob {
        tools: &args.tools,
        subsets: &args.subsets,
        shard: args.shard.unwrap_or(Shard::ALL),
        config: &config.synth,
        prompts,
        store: &store,
        run_key: &run_key,
        settings: &key_settings,
        fresh: args.force,
        retry_failed: args.retry_failed,
        // Executed results and the servers' working directories go beside the output.
        executor: toolflow_pipeline::mcp::executor(
            &config.mcp,
            config.synth.tools,
            &args.output.with_extension("tool-results.sqlite"),
            &args.output.with_extension("mcp"),
            args.refresh_tools,
        )?,
    };
    let engine = || {
        let engine = runtime.block_on(async { toolflow_pipeline::build_engine(&settings) })?;
        Ok(Arc::new(engine))
    };
    let done = synthesize(
        job,
        &args.output,
        engine,
        &runtime,
        &Interrupt::CtrlC,
        &CliObserver::new(global),
    )?;
    if global.json {
        println!(
            "{}",
            json!({"output": args.output, "store": store, "synth": done.summary, "in_store": done.in_store})
        );
    } else if !global.quiet {
        let counts = done.in_store;
        eprintln!(
            "{}: {} dialogues ({} resumed): {} completed, {} at the turn limit, {} failed",
            args.output.display(),
            done.dialogues,
            done.summary.resumed,
            counts.completed,
            counts.turn_limit,
            counts.failed
        );
    }
    Ok(())
}
