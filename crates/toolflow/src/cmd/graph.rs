//! `toolflow graph`: tools.jsonl → graph.json (or GraphML), through the embedding cache.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use toolflow_core::{Tool, ToolGraph, jsonl};
use toolflow_embed::{CachedEmbedder, EmbedStats};
use toolflow_graph::{BuildOptions, BuildReport, GraphStats, build_graph, write_graphml};

#[derive(clap::Args)]
pub struct Args {
    /// The tools, one JSON object per line, as `toolflow import` writes them
    tools: PathBuf,
    /// Where to write the graph
    #[arg(short, long, default_value = "graph.json")]
    output: PathBuf,
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

/// A built graph with what it cost.
pub struct Built {
    pub graph: ToolGraph,
    pub report: BuildReport,
    pub embedding: EmbedStats,
}

/// Builds the graph of the tools in `tools_path` through the embedding cache, with a
/// progress bar for people.
pub fn build(
    tools_path: &Path,
    tau: f32,
    model_dir: Option<PathBuf>,
    offline: bool,
    threads: usize,
    global: &super::Global,
) -> anyhow::Result<Built> {
    let bytes = std::fs::read(tools_path).with_context(|| format!("reading {}", tools_path.display()))?;
    let tools_hash = toolflow_core::content_hash(&[&bytes]);
    let tools: Vec<Tool> = jsonl::read(tools_path)?;
    anyhow::ensure!(!tools.is_empty(), "{}: no tools", tools_path.display());

    let mut embedder = CachedEmbedder::open(global.model_options(model_dir, offline))?;
    let options = BuildOptions { tau, model: embedder.model_id().to_string(), tools_hash, threads };
    let progress = if global.show_progress() {
        let bar = indicatif::ProgressBar::new(0).with_message("embedding");
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} strings ({per_sec}, {eta})")
                .expect("a valid progress template"),
        );
        Some(bar)
    } else {
        None
    };
    let (graph, report) = build_graph(&tools, &options, |strings: &[String]| {
        embedder.embed_with_progress(strings, &|done, total| {
            if let Some(bar) = &progress {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
        })
    })
    .with_context(|| format!("building the graph of {}", tools_path.display()))?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    Ok(Built { graph, report, embedding: embedder.stats() })
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let started = Instant::now();
    let Built { graph, report, embedding: embed_stats } =
        build(&args.tools, args.tau, args.model_dir.clone(), args.offline, args.threads, global)?;
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
        Format::Json => write_json(graph, &args.output),
        Format::Graphml => Ok(jsonl::write_atomically(&args.output, |out| write_graphml(graph, out))?),
    }
}

/// Writes `graph.json`.
pub fn write_json(graph: &ToolGraph, path: &Path) -> anyhow::Result<()> {
    jsonl::write_atomically(path, |out| {
        serde_json::to_writer(&mut *out, graph).map_err(std::io::Error::from)?;
        out.write_all(b"\n")
    })?;
    Ok(())
}
