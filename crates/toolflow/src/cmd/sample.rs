//! `toolflow sample`: graph.json → subsets.jsonl, by random walk (Algorithm 1), along data
//! flow (chains) or uniformly.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use toolflow_core::{SamplingStrategy, jsonl};
use toolflow_pipeline::build::{read_graph, sample_graph};

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
    #[arg(long, value_enum, default_value_t = Strategy::Graph)]
    strategy: Strategy,
    /// Threads (0: all cores); the output does not depend on it
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Strategy {
    Graph,
    Chain,
    Random,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let started = Instant::now();
    let graph = read_graph(&args.graph)?;
    let strategy = match args.strategy {
        Strategy::Graph => SamplingStrategy::Graph,
        Strategy::Chain => SamplingStrategy::Chain,
        Strategy::Random => SamplingStrategy::Random,
    };
    if args.size > graph.nodes.len() {
        tracing::warn!(
            "subsets of {} asked from a graph of {} tools: every subset will be short",
            args.size,
            graph.nodes.len()
        );
    }

    let subsets = sample_graph(
        &graph,
        &args.graph,
        strategy,
        args.size,
        args.count,
        args.seed,
        args.threads,
    )?;
    jsonl::write(&args.output, &subsets)?;

    let short = subsets.iter().filter(|s| s.short).count();
    let restarted = subsets.iter().filter(|s| s.restarts > 0).count();
    let restarts: u64 = subsets.iter().map(|s| u64::from(s.restarts)).sum();
    let links: usize = subsets.iter().map(|s| s.links.len()).sum();
    let fallbacks: u64 = subsets.iter().map(|s| u64::from(s.fallbacks)).sum();
    let seconds = started.elapsed().as_secs_f64();
    if global.json {
        println!(
            "{}",
            json!({
                "output": args.output,
                "subsets": subsets.len(),
                "short": short,
                "restarted": restarted,
                "restarts": restarts,
                "links": links,
                "fallbacks": fallbacks,
                "seconds": seconds,
            })
        );
    } else if !global.quiet {
        let chained = if strategy == SamplingStrategy::Chain {
            format!(", {links} links, {fallbacks} graph steps where a chain could not grow")
        } else {
            String::new()
        };
        eprintln!(
            "{}: {} subsets of {} tools ({} short, {} needed a restart{chained}), {:.3}s",
            args.output.display(),
            subsets.len(),
            args.size,
            short,
            restarted,
            seconds
        );
    }
    Ok(())
}
