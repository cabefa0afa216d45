//! `toolflow report`: a run directory (or the files given one by one) → one self-contained
//! HTML page with the metrics, the tool graph, rejections, tool usage and a dialogue browser.

use std::path::PathBuf;

use anyhow::Context;
use toolflow_report::{InputPaths, ReportInputs, render};

#[derive(clap::Args)]
pub struct Args {
    /// The run directory whose standard files are read (metrics.json, graph.json,
    /// dialogues.jsonl or else kept.jsonl, rejected.jsonl); absent files leave their section empty
    dir: Option<PathBuf>,
    /// Where to write the page [default: DIR/report.html]
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// metrics.json to show instead of DIR's
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// graph.json to show instead of DIR's
    #[arg(long)]
    graph: Option<PathBuf>,
    /// Dialogue file (JSON Lines) to browse instead of DIR's
    #[arg(long)]
    dialogues: Option<PathBuf>,
    /// rejected.jsonl to show instead of DIR's
    #[arg(long)]
    rejected: Option<PathBuf>,
    /// The most dialogues the browser holds
    #[arg(long, default_value_t = toolflow_report::DEFAULT_BROWSER_LIMIT)]
    max_dialogues: usize,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let mut paths = args
        .dir
        .as_deref()
        .map(InputPaths::in_run_dir)
        .unwrap_or_default();
    let overrides = [
        (&mut paths.metrics, args.metrics),
        (&mut paths.graph, args.graph),
        (&mut paths.dialogues, args.dialogues),
        (&mut paths.rejected, args.rejected),
    ];
    for (path, given) in overrides {
        if given.is_some() {
            *path = given;
        }
    }
    let output = match (args.output, &args.dir) {
        (Some(output), _) => output,
        (None, Some(dir)) => dir.join("report.html"),
        (None, None) => anyhow::bail!("give a run directory or --output"),
    };
    let title = match &args.dir {
        Some(dir) => toolflow_report::run_title(dir),
        None => output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let mut inputs = ReportInputs::load(title, &paths)?;
    inputs.browser_limit = args.max_dialogues;
    let page = render(&inputs)?;
    std::fs::write(&output, &page).with_context(|| format!("writing {}", output.display()))?;
    if global.json {
        println!(
            "{}",
            serde_json::json!({"report": output, "bytes": page.len()})
        );
    } else if !global.quiet {
        eprintln!(
            "wrote {} ({} KiB)",
            output.display(),
            page.len().div_ceil(1024)
        );
    }
    Ok(())
}
