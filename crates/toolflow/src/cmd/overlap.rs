//! `toolflow overlap`: is a training tool set leaked from test sets? The paper's §7 check —
//! token 11-gram coverage of each tool's JSON and embedding cosine — per test set, into
//! overlap.json.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use toolflow_eval::overlap::OverlapOptions;
use toolflow_pipeline::overlap::measure_overlap;
use toolflow_pipeline::tables::overlap_table;

#[derive(clap::Args)]
pub struct Args {
    /// The training tools: tools.jsonl, dialogues.jsonl (the tools of its records, by name),
    /// or any tool file or directory `toolflow import` reads
    train: PathBuf,
    /// A test set: any tool file or directory `toolflow import` reads (BFCL, API-Bank, …);
    /// repeat for several, each reported apart
    #[arg(long, required = true, num_args = 1..)]
    against: Vec<PathBuf>,
    /// Where to write the report
    #[arg(short, long, default_value = "overlap.json")]
    output: PathBuf,
    /// Tokens per n-gram ("longer than 10 tokens")
    #[arg(long, default_value_t = toolflow_eval::overlap::DEFAULT_NGRAM)]
    ngram: usize,
    /// A tool is leaked when more than this share of its JSON tokens is in shared n-grams
    #[arg(long, default_value_t = toolflow_eval::overlap::DEFAULT_COVERAGE)]
    coverage: f64,
    /// A tool is leaked when its embedding cosine to any tool of the other set is above this
    #[arg(long, default_value_t = toolflow_eval::overlap::DEFAULT_COSINE)]
    cosine: f64,
    /// Use the all-MiniLM-L6-v2 files in this directory instead of resolving the model
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Never ask the Hugging Face hub for the model (as HF_HUB_OFFLINE=1 does)
    #[arg(long)]
    offline: bool,
    /// Leaked tools listed per test set in the table (all are in the report)
    #[arg(long, default_value_t = 10)]
    show: usize,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let started = Instant::now();
    anyhow::ensure!(args.ngram >= 1, "--ngram must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.coverage),
        "--coverage must be a share between 0 and 1, got {}",
        args.coverage
    );
    let options = OverlapOptions {
        ngram: args.ngram,
        coverage: args.coverage,
        cosine: args.cosine,
    };
    let model = global.model_options(args.model_dir.clone(), args.offline);
    let document = measure_overlap(&args.train, &args.against, &options, model)?;
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(&args.output, format!("{text}\n"))
        .with_context(|| format!("writing {}", args.output.display()))?;
    if global.json {
        println!("{text}");
    } else if !global.quiet {
        eprint!(
            "{}",
            overlap_table(&document.report, &args.train, &options, args.show)
        );
        eprintln!(
            "wrote {} in {:.1}s",
            args.output.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
