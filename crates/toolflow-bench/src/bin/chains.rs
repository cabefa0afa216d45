//! Graph-quality benchmark: how much real data flow and co-usage a tool graph holds, for the
//! paper's method and the flow method (and, with `--ablate`, the flow method with each of its
//! signals switched off).
//!
//! - **NESTFUL** (`../shared/data/chains/`): 133 APIs and 429 gold data-flow links (an output
//!   field of one call passed to a parameter of the next). Directed recall: the link's
//!   producer → consumer pair carries a `return-param` edge that way; undirected: any edge
//!   joins the pair; field: the edge's evidence also names the gold field (leaf) and parameter.
//! - **ToolBench G2** (`../shared/data/raw/toolbench/G2_category.json`): the APIs of every
//!   query's `api_list`, imported as `toolflow import` does; the score is the share of distinct
//!   pairs of a query's `relevant APIs` from different RapidAPI tools that any edge joins.
//!
//! Density is the share of unordered tool pairs joined by any edge, lift is recall / density
//! (1 is chance). See `toolflow_graph::quality` for the exact definitions.
//!
//! Last, how far the tools' own text can tell G2's co-used pairs from the other cross-tool
//! pairs of their category: the AUC of the tool-description cosine (0.5 is chance).

//!
//! usage: cargo run --release -p toolflow-bench --bin chains -- [--ablate] [--write DIR] [--flow k=v,…] [--model-dir DIR]
//!
//! `--write DIR` keeps every graph scored (`nestful-flow.json`, `g2-paper.json`, …) for a look;
//! `--flow threshold=0.6,per_parameter=2` scores the flow method with other options.
//!
//! The embeddings go through toolflow's embedding cache (`~/.cache/toolflow`), so only the
//! first run pays for the model; build times are printed with that cache warm.

#[path = "../common.rs"]
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use common::shared_dir;
use serde_json::Value;
use toolflow_core::{GraphMethod, Tool, ToolGraph, jsonl};
use toolflow_embed::{CachedEmbedder, ModelOptions};
use toolflow_graph::{
    BuildOptions, DataFlowLink, FlowOptions, SignalSet, build_flow_graph, build_graph,
    score_co_usage, score_links,
};

/// One graph configuration to score.
struct Variant {
    label: String,
    method: GraphMethod,
    flow: FlowOptions,
}

/// A gold link and the NESTFUL subset it comes from (`executable`, `non-executable-sgd`, …).
struct GoldLink {
    link: DataFlowLink,
    set: String,
}

fn main() -> anyhow::Result<()> {
    let mut ablate = false;
    let mut model_dir: Option<PathBuf> = None;
    let mut write_dir: Option<PathBuf> = None;
    let mut tuned = FlowOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ablate" => ablate = true,
            "--flow" => tuned = flow_options(&args.next().context("--flow needs key=value,…")?)?,
            "--write" => write_dir = Some(args.next().context("--write needs a directory")?.into()),
            "--model-dir" => {
                model_dir = Some(args.next().context("--model-dir needs a directory")?.into())
            }
            _ => bail!("unknown argument {arg}"),
        }
    }
    let chains = shared_dir().join("data/chains");
    let g2_path = shared_dir().join("data/raw/toolbench/G2_category.json");
    if !chains.exists() || !g2_path.exists() {
        println!(
            "skipped: {} or {} is absent",
            chains.display(),
            g2_path.display()
        );
        return Ok(());
    }
    let nestful_tools: Vec<Tool> = jsonl::read(&chains.join("nestful_tools.jsonl"))?;
    let gold = read_gold(&chains.join("nestful_dependencies.jsonl"))?;
    let (g2_tools, g2_sets) = read_g2(&g2_path)?;
    println!(
        "NESTFUL: {} tools, {} links; ToolBench G2: {} tools, {} queries",
        nestful_tools.len(),
        gold.len(),
        g2_tools.len(),
        g2_sets.len()
    );

    let mut options = ModelOptions::with_cache_dir(toolflow_core::default_cache_dir());
    options.model_dir = model_dir;
    let mut embedder = CachedEmbedder::open(options)?;
    // Warm the cache with every variant's strings first, so that build times compare.
    for tools in [&nestful_tools, &g2_tools] {
        build(tools, &variants(false, &tuned)[1], &mut embedder)?;
    }

    let links: Vec<DataFlowLink> = gold.iter().map(|g| g.link.clone()).collect();
    let mut sets: Vec<&str> = gold.iter().map(|g| g.set.as_str()).collect();
    sets.sort_unstable();
    sets.dedup();
    println!(
        "\n| graph | NESTFUL directed | undirected | field | density | directed lift | {} | G2 joined | density | lift | build s (NESTFUL + G2) |",
        sets.iter()
            .map(|s| format!("directed {s}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!(
        "|---|---:|---:|---:|---:|---:|{}---:|---:|---:|---:|",
        "---:|".repeat(sets.len())
    );
    for variant in variants(ablate, &tuned) {
        let (nestful, nestful_seconds) = build(&nestful_tools, &variant, &mut embedder)?;
        let (g2, g2_seconds) = build(&g2_tools, &variant, &mut embedder)?;
        let score = score_links(&nestful, &links)?;
        let per_set: Vec<String> = sets
            .iter()
            .map(|set| {
                let subset: Vec<DataFlowLink> = gold
                    .iter()
                    .filter(|g| g.set == *set)
                    .map(|g| g.link.clone())
                    .collect();
                score_links(&nestful, &subset).map(|s| format!("{:.3}", s.directed_recall))
            })
            .collect::<Result<_, _>>()?;
        let co = score_co_usage(&g2, &g2_sets)?;
        if let Some(dir) = &write_dir {
            std::fs::create_dir_all(dir)?;
            for (name, graph) in [("nestful", &nestful), ("g2", &g2)] {
                let path = dir.join(format!("{name}-{}.json", variant.label.replace(' ', "_")));
                std::fs::write(&path, serde_json::to_vec_pretty(graph)?)?;
            }
        }
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.2}% | {:.1} | {} | {:.3} | {:.2}% | {:.1} | {:.3} + {:.3} |",
            variant.label,
            score.directed_recall,
            score.undirected_recall,
            score.field_recall,
            100.0 * score.density,
            score.directed_lift,
            per_set.join(" | "),
            co.joined,
            100.0 * co.density,
            co.lift,
            nestful_seconds,
            g2_seconds,
        );
    }
    co_usage_separability(&g2_tools, &g2_sets, &mut embedder)?;
    Ok(())
}

/// How far anything in the tools' own text can tell G2's co-used pairs from the other pairs
/// of the same category: the AUC of the cosine of the tools' `"{name}: {description}"`
/// embeddings, co-used cross-tool pairs against every other cross-tool pair of one category
/// (0.5 is chance), and the density of the graph that joins every such pair.
fn co_usage_separability(
    tools: &[Tool],
    sets: &[Vec<(String, String)>],
    embedder: &mut CachedEmbedder,
) -> anyhow::Result<()> {
    let strings: Vec<String> = tools
        .iter()
        .map(|tool| format!("{}: {}", tool.name, tool.description))
        .collect();
    let vectors = embedder.embed(&strings)?;
    let index: HashMap<&str, usize> = tools
        .iter()
        .enumerate()
        .map(|(i, tool)| (tool.name.as_str(), i))
        .collect();
    let mut co_used = std::collections::HashSet::new();
    for set in sets {
        for (at, (group_a, a)) in set.iter().enumerate() {
            for (group_b, b) in &set[at + 1..] {
                if let (true, Some(&i), Some(&j)) = (
                    group_a != group_b,
                    index.get(a.as_str()),
                    index.get(b.as_str()),
                ) {
                    co_used.insert((i.min(j), i.max(j)));
                }
            }
        }
    }
    let meta = |i: usize, key: &str| tools[i].meta.get(key).and_then(Value::as_str);
    let cosine = |i: usize, j: usize| -> f32 {
        vectors[i].iter().zip(&vectors[j]).map(|(a, b)| a * b).sum()
    };
    let (mut positive, mut negative) = (Vec::new(), Vec::new());
    for i in 0..tools.len() {
        for j in i + 1..tools.len() {
            if meta(i, "category") != meta(j, "category")
                || meta(i, "tool_name") == meta(j, "tool_name")
            {
                continue;
            }
            match co_used.contains(&(i, j)) {
                true => positive.push(cosine(i, j)),
                false => negative.push(cosine(i, j)),
            }
        }
    }
    let wins: f64 = positive
        .iter()
        .flat_map(|p| negative.iter().map(move |n| (p, n)))
        .map(|(p, n)| match p.total_cmp(n) {
            std::cmp::Ordering::Greater => 1.0,
            std::cmp::Ordering::Equal => 0.5,
            std::cmp::Ordering::Less => 0.0,
        })
        .sum();
    let all_pairs = tools.len() * (tools.len() - 1) / 2;
    println!(
        "\nG2 co-usage against the tools' own text: {} co-used cross-tool pairs among {} cross-tool pairs of one category (a graph joining them all: density {:.1}%); AUC of the tool-description cosine {:.3} (0.5 is chance)",
        positive.len(),
        positive.len() + negative.len(),
        100.0 * (positive.len() + negative.len()) as f64 / all_pairs as f64,
        wins / (positive.len() * negative.len()).max(1) as f64,
    );
    Ok(())
}

/// Flow options from `threshold=0.6,per_parameter=2,min_shared_specificity=0.7,qualified_floor=0.8`
/// over the defaults: for tuning.
fn flow_options(text: &str) -> anyhow::Result<FlowOptions> {
    let mut options = FlowOptions::default();
    for pair in text.split(',') {
        let (key, value) = pair
            .split_once('=')
            .context("--flow takes key=value pairs")?;
        match key {
            "threshold" => options.threshold = value.parse()?,
            "qualified_floor" => options.qualified_floor = value.parse()?,
            "per_parameter" => options.per_parameter = value.parse()?,
            "min_shared_specificity" => options.min_shared_specificity = value.parse()?,
            _ => bail!("unknown flow option {key}"),
        }
    }
    Ok(options)
}

/// `paper` and `flow` (with `tuned` options); with `ablate`, `flow` without each signal in turn.
fn variants(ablate: bool, tuned: &FlowOptions) -> Vec<Variant> {
    let paper = Variant {
        label: "paper".into(),
        method: GraphMethod::Paper,
        flow: FlowOptions::default(),
    };
    let flow = |label: &str, without: SignalSet| Variant {
        label: label.into(),
        method: GraphMethod::Flow,
        flow: FlowOptions {
            without,
            ..tuned.clone()
        },
    };
    let mut variants = vec![paper, flow("flow", SignalSet::default())];
    if ablate {
        let off = SignalSet::default;
        variants.extend([
            flow(
                "flow − types",
                SignalSet {
                    types: true,
                    ..off()
                },
            ),
            flow(
                "flow − names",
                SignalSet {
                    names: true,
                    ..off()
                },
            ),
            flow(
                "flow − context",
                SignalSet {
                    context: true,
                    ..off()
                },
            ),
            flow(
                "flow − qualified cosine",
                SignalSet {
                    qualified_cosine: true,
                    ..off()
                },
            ),
            flow(
                "flow − paper cosine",
                SignalSet {
                    paper_cosine: true,
                    ..off()
                },
            ),
            flow(
                "flow − specificity",
                SignalSet {
                    specificity: true,
                    ..off()
                },
            ),
            flow(
                "flow − described source",
                SignalSet {
                    described_source: true,
                    ..off()
                },
            ),
        ]);
    }
    variants
}

/// Builds one graph, returning it and the build's seconds.
fn build(
    tools: &[Tool],
    variant: &Variant,
    embedder: &mut CachedEmbedder,
) -> anyhow::Result<(ToolGraph, f64)> {
    let options = BuildOptions {
        tau: 0.82,
        model: embedder.model_id().to_string(),
        tools_hash: String::new(),
        threads: 0,
    };
    let started = Instant::now();
    let embed = |strings: &[String]| embedder.embed(strings);
    let (graph, _) = match variant.method {
        GraphMethod::Paper => build_graph(tools, &options, embed)?,
        GraphMethod::Flow => build_flow_graph(tools, &options, &variant.flow, embed)?,
    };
    Ok((graph, started.elapsed().as_secs_f64()))
}

fn read_gold(path: &Path) -> anyhow::Result<Vec<GoldLink>> {
    let lines: Vec<Value> = jsonl::read(path)?;
    lines
        .into_iter()
        .map(|line| {
            let set = line["set"].as_str().unwrap_or("").to_string();
            Ok(GoldLink {
                link: serde_json::from_value(line)?,
                set,
            })
        })
        .collect()
}

/// The G2 tools (every query's `api_list`, imported) and each query's relevant APIs as
/// (RapidAPI tool, tool name in the graph).
fn read_g2(path: &Path) -> anyhow::Result<(Vec<Tool>, Vec<Vec<(String, String)>>)> {
    let report = toolflow_import::import_paths(&[path], &Default::default())?;
    let tools = report.tools;
    let by_api: HashMap<(&str, &str), &str> = tools
        .iter()
        .filter_map(|tool| {
            let meta = |key: &str| tool.meta.get(key).and_then(Value::as_str);
            Some(((meta("tool_name")?, meta("api_name")?), tool.name.as_str()))
        })
        .collect();
    let queries: Vec<Value> = serde_json::from_slice(&std::fs::read(path)?)?;
    let sets = queries
        .iter()
        .map(|query| {
            query["relevant APIs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| {
                    let (tool, api) = (pair.get(0)?.as_str()?, pair.get(1)?.as_str()?);
                    // An API the import skipped keeps a name no node has: counted as unknown.
                    let name = by_api.get(&(tool, api)).map_or(api, |name| name);
                    Some((tool.to_string(), name.to_string()))
                })
                .collect()
        })
        .collect();
    Ok((tools, sets))
}
