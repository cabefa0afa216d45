//! `toolflow merge`: the `dialogues.jsonl` files of a run's shards → one file ordered by
//! index, exact duplicates dropped, conflicting records refused.

use std::path::PathBuf;

use anyhow::Context;
use toolflow_store::MergeReport;

#[derive(clap::Args)]
pub struct Args {
    /// The shards' dialogue files (each `--shard i/N` run's dialogues.jsonl), or any
    /// dialogue files of one run
    #[arg(required = true, value_name = "SHARD_FILES")]
    inputs: Vec<PathBuf>,
    /// Where the joined dialogues go; may be one of the inputs
    #[arg(short, long)]
    output: PathBuf,
    /// The run's number of dialogues: after writing, fail if any index below N is missing
    #[arg(long, value_name = "N")]
    expect: Option<u64>,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let report = toolflow_store::merge(&args.inputs, &args.output, args.expect)
        .with_context(|| format!("merging into {}", args.output.display()))?;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !global.quiet {
        eprintln!("{}", human_summary(&report, &args.output));
    }
    match report.missing.as_deref() {
        Some(missing) if !missing.is_empty() => {
            const SHOWN: usize = 20;
            let mut shown: Vec<String> = missing.iter().take(SHOWN).map(u64::to_string).collect();
            if missing.len() > SHOWN {
                shown.push("…".to_string());
            }
            anyhow::bail!(
                "{} of the {} expected dialogues are missing (indices {}): has every shard finished?",
                missing.len(),
                args.expect.unwrap_or_default(),
                shown.join(", ")
            )
        }
        _ => Ok(()),
    }
}

fn human_summary(report: &MergeReport, output: &std::path::Path) -> String {
    let mut line = format!(
        "{} files, {} dialogues read, {} written to {}",
        report.files,
        report.read,
        report.written,
        output.display()
    );
    if report.duplicates > 0 {
        line.push_str(&format!(", {} exact duplicates dropped", report.duplicates));
    }
    if let Some(missing) = &report.missing {
        line.push_str(&format!(", {} missing", missing.len()));
    }
    line
}
