//! `toolflow graph`: tools.jsonl → graph.json (or GraphML), through the embedding cache.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use toolflow_core::{Tool, ToolGraph, jsonl};
use toolflow_embed::{CachedEmbedder, ModelOptions};
use toolflow_graph::{BuildOptions, GraphStats, build_graph, write_graphml};

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

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let started = Instant::now();
    let bytes = std::fs::read(&args.tools).with_context(|| format!("reading {}", args.tools.display()))?;
    let tools_hash = toolflow_core::content_hash(&[&bytes]);
    let tools: Vec<Tool> = jsonl::read(&args.tools)?;
    anyhow::ensure!(!tools.is_empty(), "{}: no tools", args.tools.display());

    let mut embedder = CachedEmbedder::open(ModelOptions {
        model_dir: args.model_dir.clone(),
        cache_dir: global.cache_dir(),
        offline: args.offline,
    })?;
    let options =
        BuildOptions { tau: args.tau, model: embedder.model_id().to_string(), tools_hash, threads: args.threads };
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
    .with_context(|| format!("building the graph of {}", args.tools.display()))?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    write_graph(&graph, &args)?;
    let embed_stats = embedder.stats();
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
    jsonl::write_atomically(&args.output, |out| match args.format {
        Format::Json => {
            serde_json::to_writer(&mut *out, graph).map_err(std::io::Error::from)?;
            out.write_all(b"\n")
        }
        Format::Graphml => write_graphml(graph, out),
    })?;
    Ok(())
}
