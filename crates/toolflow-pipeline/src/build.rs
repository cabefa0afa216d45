//! The offline stages' work, shared by `toolflow graph`, `toolflow sample` and the run:
//! the tool graph through the embedding cache, and subsets drawn from it.

use std::io::Write;
use std::path::Path;

use toolflow_core::{GraphMethod, SamplingStrategy, Subset, Tool, ToolGraph, jsonl};
use toolflow_embed::{CachedEmbedder, EmbedStats, ModelOptions};
use toolflow_graph::{
    BuildOptions, BuildReport, FlowOptions, GraphStats, build_flow_graph, build_graph,
    forward_steps, sample_subsets,
};

use crate::error::PipelineError;
use crate::observe::Observer;

/// A built graph with what it cost.
pub struct BuiltGraph {
    /// The graph.
    pub graph: ToolGraph,
    /// Strings, timings of the embedding and the join.
    pub report: BuildReport,
    /// What the embedding cache and model did.
    pub embedding: EmbedStats,
}

impl BuiltGraph {
    /// `toolflow graph --json`'s summary: the output, the method, the threshold and model, the build's
    /// sizes and timings, the embedding cache's work, the graph's statistics.
    pub fn summary(
        &self,
        output: &Path,
        tau: f32,
        stats: &GraphStats,
        seconds: f64,
    ) -> serde_json::Value {
        let embedding = &self.embedding;
        serde_json::json!({
            "output": output,
            "method": self.graph.meta.method,
            "tau": tau,
            "model": self.graph.meta.model,
            "build": self.report,
            "embedding": {
                "cache_hits": embedding.cache_hits,
                "computed": embedding.computed,
                "tokens": embedding.tokens,
                "model_loaded": embedding.model_loaded,
                "model_load_seconds": embedding.load_seconds,
                "model_seconds": embedding.embed_seconds,
            },
            "stats": stats,
            "total_seconds": seconds,
        })
    }
}

/// Builds the graph of the tools in `tools_path` by `method` with threshold `tau`, through
/// the embedding cache; embedding progress goes to `observer`.
pub fn build_tool_graph(
    tools_path: &Path,
    method: GraphMethod,
    tau: f32,
    model: ModelOptions,
    threads: usize,
    observer: &dyn Observer,
) -> Result<BuiltGraph, PipelineError> {
    let bytes = std::fs::read(tools_path).map_err(PipelineError::io(tools_path))?;
    let tools_hash = toolflow_core::content_hash(&[&bytes]);
    let tools: Vec<Tool> = jsonl::read(tools_path)?;
    if tools.is_empty() {
        return Err(PipelineError::NoTools);
    }
    let mut embedder = CachedEmbedder::open(model)?;
    let options = BuildOptions {
        tau,
        model: embedder.model_id().to_string(),
        tools_hash,
        threads,
    };
    let embed = |strings: &[String]| {
        embedder.embed_with_progress(strings, &|done, total| observer.embedding(done, total))
    };
    let built = match method {
        GraphMethod::Paper => build_graph(&tools, &options, embed),
        GraphMethod::Flow => build_flow_graph(&tools, &options, &FlowOptions::default(), embed),
    };
    observer.embedding_finished();
    let (graph, report) = built.map_err(|error| PipelineError::Graph {
        path: tools_path.to_path_buf(),
        error,
    })?;
    Ok(BuiltGraph {
        graph,
        report,
        embedding: embedder.stats(),
    })
}

/// Writes `graph.json`.
pub fn write_graph_json(graph: &ToolGraph, path: &Path) -> Result<(), PipelineError> {
    jsonl::write_atomically(path, |out| {
        serde_json::to_writer(&mut *out, graph).map_err(std::io::Error::from)?;
        out.write_all(b"\n")
    })?;
    Ok(())
}

/// Reads a `graph.json`.
pub fn read_graph(path: &Path) -> Result<ToolGraph, PipelineError> {
    let bytes = std::fs::read(path).map_err(PipelineError::io(path))?;
    serde_json::from_slice(&bytes).map_err(|error| PipelineError::NotAGraph {
        path: path.to_path_buf(),
        error,
    })
}

/// `count` subsets of `size` tools from the graph read from `graph_path`, named.
pub fn sample_graph(
    graph: &ToolGraph,
    graph_path: &Path,
    strategy: SamplingStrategy,
    size: usize,
    count: u64,
    seed: u64,
    threads: usize,
) -> Result<Vec<Subset>, PipelineError> {
    let unknown = |error| PipelineError::UnknownNode {
        path: graph_path.to_path_buf(),
        error,
    };
    let adjacency = graph.adjacency().map_err(unknown)?;
    let forward = forward_steps(graph).map_err(unknown)?;
    if size > graph.nodes.len() {
        tracing::warn!(
            "subsets of {size} asked from a graph of {} tools: every subset will be short",
            graph.nodes.len()
        );
    }
    let sampled = sample_subsets(&adjacency, &forward, strategy, size, count, seed, threads);
    Ok(sampled
        .into_iter()
        .map(|s| s.into_subset(&graph.nodes, &forward))
        .collect())
}

/// How a sample's walks went, for `toolflow sample`'s summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SampleCounts {
    /// Subsets drawn.
    pub subsets: usize,
    /// Subsets with fewer tools than asked for.
    pub short: usize,
    /// Subsets whose walk restarted at least once.
    pub restarted: usize,
    /// Restarts over all walks.
    pub restarts: u64,
    /// Producer-to-consumer links recorded by chain walks.
    pub links: usize,
    /// Graph steps taken where a chain could not grow.
    pub fallbacks: u64,
}

impl SampleCounts {
    /// The counts of `subsets`.
    pub fn of(subsets: &[Subset]) -> Self {
        SampleCounts {
            subsets: subsets.len(),
            short: subsets.iter().filter(|s| s.short).count(),
            restarted: subsets.iter().filter(|s| s.restarts > 0).count(),
            restarts: subsets.iter().map(|s| u64::from(s.restarts)).sum(),
            links: subsets.iter().map(|s| s.links.len()).sum(),
            fallbacks: subsets.iter().map(|s| u64::from(s.fallbacks)).sum(),
        }
    }
}
