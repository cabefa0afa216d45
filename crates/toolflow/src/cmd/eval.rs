//! `toolflow eval`: one or more dialogue files → metrics.json, the runs side by side.

use std::path::PathBuf;

use anyhow::Context;
use toolflow_eval::{RunMetrics, evaluate_file, metrics_document};

#[derive(clap::Args)]
pub struct Args {
    /// Dialogue files, each one run: toolflow records (JSON Lines) or SGD files (detected)
    #[arg(required = true)]
    dialogues: Vec<PathBuf>,
    /// Where to write the metrics
    #[arg(short, long, default_value = "metrics.json")]
    output: PathBuf,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for path in &args.dialogues {
        let run = evaluate_file(path).with_context(|| format!("evaluating {}", path.display()))?;
        tracing::info!(run = %run.name, dialogues = run.statistics.dialogues, "measured");
        runs.push(run);
    }
    let document = metrics_document(&runs);
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(&args.output, format!("{text}\n"))
        .with_context(|| format!("writing {}", args.output.display()))?;
    if global.json {
        println!("{text}");
    } else if !global.quiet {
        eprint!("{}", table(&runs));
        eprintln!(
            "SS, EnR and judge scores: not computed yet (null in {})",
            args.output.display()
        );
    }
    Ok(())
}

fn table(runs: &[RunMetrics]) -> String {
    let mut out = format!(
        "{:<24} {:>9} {:>8} {:>11} {:>8} {:>10} {:>9} {:>8} {:>7}\n",
        "run", "dialogues", "turns", "tokens", "calls", "call turns", "chitchat", "H (bits)", "D-3"
    );
    for run in runs {
        let (s, d) = (&run.statistics, &run.diversity);
        out.push_str(&format!(
            "{:<24} {:>9} {:>8} {:>11} {:>8} {:>10} {:>8.1}% {:>8.2} {:>7.4}\n",
            run.name,
            s.dialogues,
            s.turns,
            s.tokens,
            s.tool_calls,
            s.call_turns,
            100.0 * s.chitchat_share,
            d.entropy_bits,
            d.distinct_3
        ));
    }
    out
}
