//! `toolflow graph`: tools.jsonl → graph.json (or GraphML), through the embedding cache.

use std::path::PathBuf;
use std::time::Instant;

use toolflow_core::{GraphMethod, ToolGraph, jsonl};
use toolflow_graph::{GraphStats, write_graphml};
use toolflow_pipeline::build::{build_tool_graph, write_graph_json};
use toolflow_pipeline::config::DEFAULT_GRAPH_METHOD;
use toolflow_pipeline::tables::graph_line;

use crate::progress::CliObserver;

#[derive(clap::Args)]
pub struct Args {
    /// The tools, one JSON object per line, as `toolflow import` writes them
    tools: PathBuf,
    /// Where to write the graph
    #[arg(short, long, default_value = "graph.json")]
    output: PathBuf,
    /// How edges are found: `paper` (the paper's cosine above τ, exact) or `flow`
    /// (return→param data flow and specific shared slots, each edge with its evidence)
    /// [default: paper]
    #[arg(long)]
    method: Option<GraphMethod>,
    /// Similarity threshold: an edge needs a cosine strictly above it
    #[arg(long, default_value_t = 0.82)]
    tau: f32,
    /// Use the all-MiniLM-L6-v2 files in this directory instead of resolving the model
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Never ask the Hugging Face hub for the model (as HF_HUB_OFFLINE=1 does)
    #[arg(long)]
    offline: bool,
    /// Print nodes, edges, isolated nodes, components and a degree histogram
    #[arg(long)]
    stats: bool,
    /// Output format: graph.json, or GraphML for networkx and Gephi
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Threads for the similarity join (0: all cores)
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Graphml,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let started = Instant::now();
    let built = build_tool_graph(
        &args.tools,
        args.method.unwrap_or(DEFAULT_GRAPH_METHOD),
        args.tau,
        global.model_options(args.model_dir.clone(), args.offline),
        args.threads,
        &CliObserver::new(global),
    )?;
    write_graph(&built.graph, &args)?;
    let stats = GraphStats::of(&built.graph)?;
    let line = graph_line(&args.output, &built, &stats);
    tracing::info!(model_load_s = built.embedding.load_seconds, "{line}");
    if global.json {
        let seconds = started.elapsed().as_secs_f64();
        println!("{}", built.summary(&args.output, args.tau, &stats, seconds));
    } else if !global.quiet {
        eprintln!("{line}");
        if args.stats {
            eprint!("{stats}");
        }
    }
    Ok(())
}

fn write_graph(graph: &ToolGraph, args: &Args) -> anyhow::Result<()> {
    match args.format {
        Format::Json => Ok(write_graph_json(graph, &args.output)?),
        Format::Graphml => Ok(jsonl::write_atomically(&args.output, |out| {
            write_graphml(graph, out)
        })?),
    }
}
