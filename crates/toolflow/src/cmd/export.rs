//! `toolflow export`: kept dialogues → SFT training files, split into train and validation.

use std::path::PathBuf;

use anyhow::Context;
use toolflow_export::{ChatTemplate, Format, export_file};

#[derive(clap::Args)]
pub struct Args {
    /// The dialogues to export, one record per line (usually `kept.jsonl`)
    dialogues: PathBuf,
    /// trl (messages + tools), sharegpt (LLaMA-Factory), hermes (<tool_call> text), or
    /// template (text through --chat-template)
    #[arg(long)]
    format: Format,
    /// The directory for train.jsonl and validation.jsonl
    #[arg(long)]
    out: PathBuf,
    /// The share of dialogues that go to validation, chosen by a seeded hash of their id
    #[arg(long, default_value_t = 0.05)]
    val_fraction: f64,
    /// The split seed
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A model's tokenizer_config.json whose chat_template renders the text (--format template)
    #[arg(long)]
    chat_template: Option<PathBuf>,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.val_fraction),
        "--val-fraction must be between 0 and 1, not {}",
        args.val_fraction
    );
    let template = match (&args.chat_template, args.format) {
        (Some(path), _) => Some(ChatTemplate::from_tokenizer_config(path)?),
        (None, Format::Template) => {
            anyhow::bail!("--format template needs --chat-template tokenizer_config.json")
        }
        (None, _) => None,
    };
    let summary = export_file(
        &args.dialogues,
        args.format,
        &args.out,
        args.val_fraction,
        args.seed,
        template.as_ref(),
    )
    .with_context(|| format!("exporting {}", args.dialogues.display()))?;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !global.quiet {
        eprintln!(
            "{} train → {}, {} validation → {}",
            summary.train,
            summary.train_path.display(),
            summary.validation,
            summary.validation_path.display()
        );
        if summary.dropped_assistant_texts > 0 {
            eprintln!(
                "note: {} assistant texts sent with tool calls were left out (ShareGPT has no place for them)",
                summary.dropped_assistant_texts
            );
        }
    }
    Ok(())
}
