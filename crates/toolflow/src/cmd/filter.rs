//! `toolflow filter`: dialogues → kept + rejected (each rejection with all its reasons),
//! and a per-rule count.

use std::path::PathBuf;

use anyhow::Context;
use toolflow_eval::{FilterConfig, FilterSummary, Level, filter_file};

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
    /// A TOML rules file: per-rule level (off, warn, reject) and near-duplicate settings
    #[arg(long)]
    rules: Option<PathBuf>,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let config = match &args.rules {
        Some(path) => FilterConfig::load(path)?,
        None => FilterConfig::default(),
    };
    let summary = filter_file(&args.dialogues, &args.kept, &args.rejected, config)
        .with_context(|| format!("filtering {}", args.dialogues.display()))?;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !global.quiet {
        eprint!("{}", human_summary(&summary));
    }
    Ok(())
}

fn human_summary(summary: &FilterSummary) -> String {
    let mut out = format!(
        "{} dialogues: {} kept ({} with warnings), {} rejected\n",
        summary.dialogues, summary.kept, summary.kept_with_warnings, summary.rejected
    );
    out.push_str(&format!(
        "  {:<22} {:>7} {:>10} {:>8}\n",
        "rule", "level", "dialogues", "reasons"
    ));
    for count in &summary.rules {
        let level = match count.level {
            Level::Off => "off",
            Level::Warn => "warn",
            Level::Reject => "reject",
        };
        out.push_str(&format!(
            "  {:<22} {:>7} {:>10} {:>8}\n",
            count.rule.id(),
            level,
            count.dialogues,
            count.reasons
        ));
    }
    out
}
