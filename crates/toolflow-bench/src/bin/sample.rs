//! Sampling benchmark: 10,000 subsets of 4 tools on the ToolBench graph, by random walk and
//! uniformly, on one thread and on all; then the same on a graph of only isolated nodes (every
//! step a restart) and with a size above the node count (every subset short).
//!
//! usage: cargo build --release -p toolflow && \
//!        cargo run --release -p toolflow-bench --bin sample -- [GRAPH.json]
//!
//! Without a graph file it builds the ToolBench graph with `toolflow graph` in the default
//! cache directory (fast once the embeddings are cached, e.g. after the `graph` benchmark).

#[path = "../common.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use common::{run_measured, shared_dir, toolflow_binary, unique_names_copy};
use toolflow_core::{SamplingStrategy, ToolGraph};
use toolflow_graph::{GraphStats, sample_subsets};

const COUNT: u64 = 10_000;
const SIZE: usize = 4;

fn main() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let graph_path = match std::env::args().nth(1) {
        Some(path) => PathBuf::from(path),
        None => {
            let tools = scratch.path().join("tools.jsonl");
            unique_names_copy(
                &shared_dir().join("data/tools/tools_toolbench.jsonl"),
                &tools,
            )?;
            let graph = scratch.path().join("graph.json");
            let built = run_measured(
                Command::new(toolflow_binary()?)
                    .arg("--quiet")
                    .arg("graph")
                    .arg(&tools)
                    .arg("-o")
                    .arg(&graph),
                scratch.path(),
            )?;
            println!(
                "built the ToolBench graph in {:.2}s",
                built.wall.as_secs_f64()
            );
            graph
        }
    };
    let graph: ToolGraph = serde_json::from_str(&std::fs::read_to_string(&graph_path)?)
        .with_context(|| format!("reading {}", graph_path.display()))?;
    let adjacency = graph.adjacency()?;
    let stats = GraphStats::of(&graph)?;
    println!(
        "{}: {} nodes, {} undirected pairs, {} isolated, {} components",
        graph_path.display(),
        stats.nodes,
        stats.undirected_pairs,
        stats.isolated_nodes,
        stats.components
    );
    let isolated = vec![Vec::new(); adjacency.len()];
    let path_of_three = vec![vec![1], vec![0, 2], vec![1]];
    let cases: [(&str, &[Vec<u32>], usize); 3] = [
        ("graph", &adjacency, SIZE),
        ("isolated nodes only", &isolated, SIZE),
        ("size above node count", &path_of_three, SIZE),
    ];
    for (label, adjacency, size) in cases {
        for strategy in [SamplingStrategy::Graph, SamplingStrategy::Random] {
            for threads in [1, 0] {
                let started = Instant::now();
                let subsets = sample_subsets(adjacency, &[], strategy, size, COUNT, 1, threads);
                let seconds = started.elapsed().as_secs_f64();
                let short = subsets.iter().filter(|s| s.short).count();
                let restarted = subsets.iter().filter(|s| s.restarts > 0).count();
                println!(
                    "{label:>22}, {strategy:?}, {}: {COUNT} subsets of {size} in {:.1} ms ({short} short, {restarted} restarted)",
                    if threads == 1 {
                        "1 thread"
                    } else {
                        "all threads"
                    },
                    seconds * 1e3,
                );
            }
        }
    }
    Ok(())
}
