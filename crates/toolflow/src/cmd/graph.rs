//! `toolflow graph`: tools.jsonl → graph.json (or GraphML), through the embedding cache.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use toolflow_core::{GraphMethod, ToolGraph, jsonl};
use toolflow_graph::{GraphStats, write_graphml};
use toolflow_pipeline::build::{BuiltGraph, build_tool_graph, write_graph_json};
use toolflow_pipeline::config::DEFAULT_GRAPH_METHOD;

use crate::progress::CliObserver;

#[derive(clap::Args)]
pub struct Args {
    /// The tools, one JSON object per line, as `toolflow import` writes them
    tools: PathBuf,
    /// Where to write the graph
    #[arg(short, long, default_value = "graph.json")]
    output: PathBuf,
    /// How edges are found: `flow` (return→param data flow and specific shared slots, each
    /// edge with its evidence) or `paper` (the paper's cosine above τ, exact) [default: flow]
    #[arg(long, value_enum)]
    method: Option<Method>,
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
enum Method {
    Paper,
    Flow,
}

impl From<Method> for GraphMethod {
    fn from(method: Method) -> Self {
        match method {
            Method::Paper => GraphMethod::Paper,
            Method::Flow => GraphMethod::Flow,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Graphml,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let started = Instant::now();
    let method = args.method.map_or(DEFAULT_GRAPH_METHOD, GraphMethod::from);
    let BuiltGraph {
        graph,
        report,
        embedding: embed_stats,
    } = build_tool_graph(
        &args.tools,
        method,
        args.tau,
        global.model_options(args.model_dir.clone(), args.offline),
        args.threads,
        &CliObserver::new(global),
    )?;
    write_graph(&graph, &args)?;
    let stats = GraphStats::of(&graph)?;
    tracing::info!(
        embed_s = report.embed_time.as_secs_f64(),
        join_s = report.join_time.as_secs_f64(),
        model_load_s = embed_stats.load_seconds,
        cache_hits = embed_stats.cache_hits,
        computed = embed_stats.computed,
        "wrote {} ({} nodes, {} edges)",
        args.output.display(),
        stats.nodes,
        stats.edges
    );

    if global.json {
        let summary = json!({
            "output": args.output,
            "method": method,
            "tau": args.tau,
            "model": graph.meta.model,
            "build": report,
            "embedding": {
                "cache_hits": embed_stats.cache_hits,
                "computed": embed_stats.computed,
                "tokens": embed_stats.tokens,
                "model_loaded": embed_stats.model_loaded,
                "model_load_seconds": embed_stats.load_seconds,
                "model_seconds": embed_stats.embed_seconds,
            },
            "stats": stats,
            "total_seconds": started.elapsed().as_secs_f64(),
        });
        println!("{summary}");
    } else if !global.quiet {
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "{}: {} tools, {} edges ({} strings: {} from cache, {} embedded in {:.2}s; join {:.3}s)",
            args.output.display(),
            stats.nodes,
            stats.edges,
            report.strings,
            embed_stats.cache_hits,
            embed_stats.computed,
            report.embed_time.as_secs_f64(),
            report.join_time.as_secs_f64(),
        )?;
        if args.stats {
            write!(err, "{stats}")?;
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
