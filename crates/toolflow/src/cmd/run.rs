//! `toolflow run`: the pipeline end to end, one file per stage in the output directory, each
//! stage skipped when its output is current (see `toolflow_pipeline`).

use std::path::PathBuf;

use serde_json::json;
use toolflow_pipeline::RunOptions;
use toolflow_store::Shard;

use super::engine::EngineArgs;
use crate::progress::CliObserver;

#[derive(clap::Args)]
pub struct Args {
    /// Run configuration (TOML, see examples/run.toml); without one, the offline demo on the
    /// bundled tool set and the embedded model
    config: Option<PathBuf>,
    /// Where each stage writes its file, and where the run state lives
    #[arg(long, default_value = "toolflow-out")]
    out: PathBuf,
    /// Dialogues to write (overrides `[sample] count`)
    #[arg(long)]
    dialogues: Option<u64>,
    /// Write only shard i of N (0-based, e.g. `$SLURM_ARRAY_TASK_ID/8`); join the shards'
    /// dialogues with `toolflow merge`. Stops after synthesis.
    #[arg(long, value_name = "i/N")]
    shard: Option<Shard>,
    /// Write again the dialogues that failed in an earlier attempt of this run
    #[arg(long)]
    retry_failed: bool,
    /// A directory of prompt files (planner.txt, user.txt, assistant.txt, tool.txt,
    /// enrich.txt) replacing the built-in ones
    #[arg(long, value_name = "DIR")]
    prompts: Option<PathBuf>,
    /// Rerun every stage even when its output is current, and start the run store afresh
    #[arg(long)]
    force: bool,
    /// Never ask the Hugging Face hub for models
    #[arg(long)]
    offline: bool,
    /// Execute MCP tool calls anew instead of reading their recorded results
    #[arg(long)]
    refresh_tools: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let options = RunOptions {
        config: args.config,
        out: args.out,
        dialogues: args.dialogues,
        shard: args.shard,
        retry_failed: args.retry_failed,
        prompts: args.prompts,
        force: args.force,
        offline: args.offline,
        endpoints: args
            .engine
            .endpoints
            .as_ref()
            .map(|_| args.engine.config())
            .transpose()?,
        cache_mode: args.engine.cache_mode(),
        model_path: args.engine.model_path.clone(),
        embed_precision: global.embed_precision,
        refresh_tools: args.refresh_tools,
        ..RunOptions::new(PathBuf::new(), global.cache_dir())
    };
    let summary = toolflow_pipeline::run(&options, &CliObserver::new(global))?;
    if global.json {
        println!("{}", json!(summary));
    } else if !global.quiet {
        if !summary.shard.is_all() {
            eprintln!(
                "shard {}: done; join the shards with `toolflow merge <each shard's out>/dialogues.jsonl -o dialogues.jsonl`",
                summary.shard
            );
        }
        eprintln!(
            "done in {:.2}s: {} → … → {}",
            summary.seconds,
            summary.tools.display(),
            summary.last.display()
        );
    }
    Ok(())
}
