//! `toolflow overlap`: is a training tool set leaked from test sets? The paper's §7 check —
//! token 11-gram coverage of each tool's JSON and embedding cosine — per test set, into
//! overlap.json.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use toolflow_eval::overlap::{LeakCount, OverlapOptions, OverlapReport, TestSetOverlap};
use toolflow_pipeline::overlap::measure_overlap;

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
        eprint!("{}", table(&document.report, &args));
        eprintln!(
            "wrote {} in {:.1}s",
            args.output.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn table(report: &OverlapReport, args: &Args) -> String {
    let mut out = format!(
        "train: {} ({} tools); leaked when n-gram ({}-token) coverage > {} or cosine > {}\n",
        args.train.display(),
        report.train_tools,
        args.ngram,
        args.coverage,
        args.cosine
    );
    out.push_str(&format!(
        "{:<28} {:>6} | {:>26} | {:>26}\n",
        "", "", "train tools leaked", "test tools leaked"
    ));
    out.push_str(&format!(
        "{:<28} {:>6} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}\n",
        "test set", "tools", "n-gram", "similar", "either", "n-gram", "similar", "either"
    ));
    let percent = |count: LeakCount| format!("{:.3}%", count.percent);
    for set in &report.test_sets {
        out.push_str(&format!(
            "{:<28} {:>6} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}\n",
            set.name,
            set.test.tools,
            percent(set.train.ngram),
            percent(set.train.similarity),
            percent(set.train.either),
            percent(set.test.ngram),
            percent(set.test.similarity),
            percent(set.test.either),
        ));
    }
    out.push_str("closest: highest n-gram coverage / cosine of any train tool, of any test tool\n");
    for set in &report.test_sets {
        out.push_str(&format!(
            "{:<28} train {:>5.1}% / {:.3}   test {:>5.1}% / {:.3}\n",
            set.name,
            100.0 * set.train.max_ngram_coverage,
            set.train.max_cosine,
            100.0 * set.test.max_ngram_coverage,
            set.test.max_cosine
        ));
    }
    for set in &report.test_sets {
        out.push_str(&leaked_list(set, args.show));
    }
    out
}

fn leaked_list(set: &TestSetOverlap, show: usize) -> String {
    if set.leaked.is_empty() || show == 0 {
        return String::new();
    }
    let mut out = format!(
        "\nleaked training tools vs {} ({}, first {}):\n",
        set.name,
        set.leaked.len(),
        show.min(set.leaked.len())
    );
    for tool in set.leaked.iter().take(show) {
        out.push_str(&format!(
            "  {:<40} n-gram {:>5.1}%  cosine {:.3} to {}\n",
            tool.name,
            100.0 * tool.ngram_coverage,
            tool.cosine,
            tool.best_match
        ));
    }
    out
}
