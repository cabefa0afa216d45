//! `toolflow sample`: graph.json → subsets.jsonl, by random walk (Algorithm 1), along data
//! flow (chains) or uniformly.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use toolflow_core::{SamplingStrategy, jsonl};
use toolflow_pipeline::build::{SampleCounts, read_graph, sample_graph};

#[derive(clap::Args)]
pub struct Args {
    /// The tool graph, as `toolflow graph` writes it
    graph: PathBuf,
    /// Where to write the subsets, one JSON object per line
    #[arg(short, long, default_value = "subsets.jsonl")]
    output: PathBuf,
    /// Tools per subset
    #[arg(long, default_value_t = 4)]
    size: usize,
    /// Number of subsets
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// Run seed: the same seed gives the same file on every machine
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `graph`: random walk on the tool graph (Algorithm 1); `chain`: a walk along return→param
    /// edges, each subset recording its links; `random`: uniform, the ablation
    #[arg(long, default_value = "graph")]
    strategy: SamplingStrategy,
    /// Threads (0: all cores); the output does not depend on it
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let started = Instant::now();
    let graph = read_graph(&args.graph)?;

    let subsets = sample_graph(
        &graph,
        &args.graph,
        args.strategy,
        args.size,
        args.count,
        args.seed,
        args.threads,
    )?;
    jsonl::write(&args.output, &subsets)?;

    let counts = SampleCounts::of(&subsets);
    let seconds = started.elapsed().as_secs_f64();
    if global.json {
        let mut summary = json!(counts);
        summary["output"] = json!(args.output);
        summary["seconds"] = json!(seconds);
        println!("{summary}");
    } else if !global.quiet {
        let chained = if args.strategy == SamplingStrategy::Chain {
            format!(
                ", {} links, {} graph steps where a chain could not grow",
                counts.links, counts.fallbacks
            )
        } else {
            String::new()
        };
        eprintln!(
            "{}: {} subsets of {} tools ({} short, {} needed a restart{chained}), {seconds:.3}s",
            args.output.display(),
            counts.subsets,
            args.size,
            counts.short,
            counts.restarted,
        );
    }
    Ok(())
}
