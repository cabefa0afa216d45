//! Scoring a tool graph against known data flow and co-usage: what the `chains` benchmark
//! prints.
//!
//! - **Data-flow links** (NESTFUL's gold call sequences): an output field of `producer` was
//!   passed to `parameter` of `consumer`. *Directed recall* is the share of links whose
//!   producer → consumer pair carries a `return-param` edge in that direction; *undirected
//!   recall* the share whose pair is joined by any edge; *field recall* the share whose edge
//!   also names the right field and parameter in its evidence.
//! - **Co-usage sets** (ToolBench's `relevant APIs`): tools one query needs together. The score
//!   is the share of distinct cross-group pairs joined by any edge.
//!
//! *Density* is the share of unordered tool pairs joined by any edge; *lift* is recall over
//! density (what a random graph of the same density would score is its density, so lift 1 is
//! chance). Links naming a tool the graph lacks count as misses, and are counted.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use toolflow_core::graph::UnknownNode;
use toolflow_core::{EdgeKind, ToolGraph};

/// One gold data-flow link, one line of `nestful_dependencies.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataFlowLink {
    /// The tool whose output was passed on.
    pub producer: String,
    /// Path of the output field, e.g. `location.name`, `results[0].id`.
    pub output_field: String,
    /// The tool it was passed to.
    pub consumer: String,
    /// The consumer's parameter that took it.
    pub parameter: String,
}

/// Recall figures of a graph on a set of gold links.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkScore {
    /// Gold links scored.
    pub links: usize,
    /// Links naming a tool that is not a node of the graph (counted as misses).
    pub unknown_tools: usize,
    /// Share of links whose producer → consumer pair has a `return-param` edge that way.
    pub directed_recall: f64,
    /// Share of links whose two tools are joined by any edge.
    pub undirected_recall: f64,
    /// Directed, and the edge's evidence names the gold field (leaf name) and parameter.
    pub field_recall: f64,
    /// The same figures over distinct producer → consumer pairs.
    pub pairs: usize,
    /// `directed_recall` over the distinct pairs.
    pub pair_directed_recall: f64,
    /// `undirected_recall` over the distinct pairs.
    pub pair_undirected_recall: f64,
    /// Share of unordered tool pairs joined by any edge: what chance would score.
    pub density: f64,
    /// `directed_recall` over `density`; 0 when the graph has no edge.
    pub directed_lift: f64,
    /// `undirected_recall` over `density`; 0 when the graph has no edge.
    pub undirected_lift: f64,
}

/// Co-usage figures of a graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoUsageScore {
    /// Distinct unordered pairs of known tools from different groups that occur together.
    pub pairs: usize,
    /// Members of the sets that are not nodes of the graph (left out of the pairs).
    pub unknown_tools: usize,
    /// Share of those pairs joined by any edge.
    pub joined: f64,
    /// Share of unordered tool pairs joined by any edge: what chance would score.
    pub density: f64,
    /// `joined` over `density`; 0 when the graph has no edge.
    pub lift: f64,
}

/// Joined pairs of a graph, by node index.
struct Pairs {
    index: HashMap<String, u32>,
    undirected: HashSet<(u32, u32)>,
    /// `return-param` edges (producer, consumer) with the (field, parameter) pairs they name.
    directed: HashMap<(u32, u32), Vec<(String, String)>>,
    nodes: usize,
}

impl Pairs {
    fn of(graph: &ToolGraph) -> Result<Self, UnknownNode> {
        let index: HashMap<String, u32> = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i as u32))
            .collect();
        let lookup = |name: &str| {
            index
                .get(name)
                .copied()
                .ok_or_else(|| UnknownNode(name.to_string()))
        };
        let mut undirected = HashSet::new();
        let mut directed: HashMap<(u32, u32), Vec<(String, String)>> = HashMap::new();
        for edge in &graph.edges {
            let (a, b) = (lookup(&edge.a)?, lookup(&edge.b)?);
            if a == b {
                continue;
            }
            undirected.insert((a.min(b), a.max(b)));
            if edge.kind == EdgeKind::ReturnParam {
                let named = directed.entry((a, b)).or_default();
                named.extend(
                    edge.evidence
                        .slot_pairs()
                        .into_iter()
                        .map(|(field, parameter)| (field.to_string(), parameter.to_string())),
                );
            }
        }
        Ok(Pairs {
            index,
            undirected,
            directed,
            nodes: graph.nodes.len(),
        })
    }

    fn density(&self) -> f64 {
        let possible = self.nodes * self.nodes.saturating_sub(1) / 2;
        if possible == 0 {
            0.0
        } else {
            self.undirected.len() as f64 / possible as f64
        }
    }
}

/// The last name of a field path: `results[0].id` → `id`, `restaurants[0]` → `restaurants`.
fn leaf(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

fn share(hits: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        hits as f64 / total as f64
    }
}

fn lift(recall: f64, density: f64) -> f64 {
    if density == 0.0 {
        0.0
    } else {
        recall / density
    }
}

/// Scores `graph` on gold data-flow links.
pub fn score_links(graph: &ToolGraph, links: &[DataFlowLink]) -> Result<LinkScore, UnknownNode> {
    let pairs = Pairs::of(graph)?;
    let (mut unknown, mut directed, mut undirected, mut field) = (0, 0, 0, 0);
    let mut distinct: HashMap<(u32, u32), bool> = HashMap::new();
    for link in links {
        let (Some(&p), Some(&c)) = (
            pairs.index.get(&link.producer),
            pairs.index.get(&link.consumer),
        ) else {
            unknown += 1;
            continue;
        };
        let named = pairs.directed.get(&(p, c));
        directed += usize::from(named.is_some());
        let joined = pairs.undirected.contains(&(p.min(c), p.max(c)));
        undirected += usize::from(joined);
        distinct.insert((p, c), joined);
        let names_it = named.is_some_and(|named| {
            named
                .iter()
                .any(|(f, q)| leaf(f) == leaf(&link.output_field) && q == &link.parameter)
        });
        field += usize::from(names_it);
    }
    // Pairs of unknown tools count as distinct misses too.
    let unknown_pairs: HashSet<(&str, &str)> = links
        .iter()
        .filter(|l| {
            !pairs.index.contains_key(&l.producer) || !pairs.index.contains_key(&l.consumer)
        })
        .map(|l| (l.producer.as_str(), l.consumer.as_str()))
        .collect();
    let pair_count = distinct.len() + unknown_pairs.len();
    let pair_directed = distinct
        .keys()
        .filter(|key| pairs.directed.contains_key(key))
        .count();
    let pair_undirected = distinct.values().filter(|&&joined| joined).count();
    let density = pairs.density();
    let directed_recall = share(directed, links.len());
    let undirected_recall = share(undirected, links.len());
    Ok(LinkScore {
        links: links.len(),
        unknown_tools: unknown,
        directed_recall,
        undirected_recall,
        field_recall: share(field, links.len()),
        pairs: pair_count,
        pair_directed_recall: share(pair_directed, pair_count),
        pair_undirected_recall: share(pair_undirected, pair_count),
        density,
        directed_lift: lift(directed_recall, density),
        undirected_lift: lift(undirected_recall, density),
    })
}

/// Scores `graph` on co-usage sets: each set lists `(group, tool)` members, and only pairs
/// from different groups count (ToolBench: APIs of different RapidAPI tools, since APIs of one
/// tool are trivially related).
pub fn score_co_usage(
    graph: &ToolGraph,
    sets: &[Vec<(String, String)>],
) -> Result<CoUsageScore, UnknownNode> {
    let pairs = Pairs::of(graph)?;
    let mut wanted: HashSet<(u32, u32)> = HashSet::new();
    let mut unknown = 0;
    for set in sets {
        let known: Vec<(&str, u32)> = set
            .iter()
            .filter_map(|(group, tool)| {
                let node = pairs.index.get(tool).copied();
                unknown += usize::from(node.is_none());
                node.map(|node| (group.as_str(), node))
            })
            .collect();
        for (i, &(group_a, a)) in known.iter().enumerate() {
            for &(group_b, b) in &known[i + 1..] {
                if group_a != group_b && a != b {
                    wanted.insert((a.min(b), a.max(b)));
                }
            }
        }
    }
    let joined = share(
        wanted
            .iter()
            .filter(|pair| pairs.undirected.contains(pair))
            .count(),
        wanted.len(),
    );
    let density = pairs.density();
    Ok(CoUsageScore {
        pairs: wanted.len(),
        unknown_tools: unknown,
        joined,
        density,
        lift: lift(joined, density),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolflow_core::{Edge, Evidence, GraphMeta};

    fn edge(a: &str, b: &str, kind: EdgeKind, from: &str, to: &str) -> Edge {
        Edge {
            a: a.into(),
            b: b.into(),
            kind,
            score: 0.9,
            evidence: Evidence {
                a: format!("{from}: x"),
                b: format!("{to}: y"),
                links: Vec::new(),
            },
        }
    }

    fn link(producer: &str, field: &str, consumer: &str, parameter: &str) -> DataFlowLink {
        DataFlowLink {
            producer: producer.into(),
            output_field: field.into(),
            consumer: consumer.into(),
            parameter: parameter.into(),
        }
    }

    #[test]
    fn recall_needs_the_direction_and_density_counts_pairs() {
        let graph = ToolGraph {
            nodes: ["p", "q", "r", "s"].map(String::from).to_vec(),
            edges: vec![
                edge("p", "q", EdgeKind::ReturnParam, "id", "person_id"),
                edge("q", "r", EdgeKind::ReturnParam, "x", "y"),
                edge("q", "r", EdgeKind::ParamParam, "a", "b"),
            ],
            meta: GraphMeta {
                method: Default::default(),
                tau: 0.82,
                model: "m".into(),
                tools_hash: "h".into(),
                strings: 0,
            },
        };
        let links = [
            link("p", "results[0].id", "q", "person_id"), // directed, field named
            link("r", "x", "q", "y"),                     // joined, wrong direction
            link("p", "id", "s", "id"),                   // not joined
            link("ghost", "id", "s", "id"),               // unknown tool
        ];
        let score = score_links(&graph, &links).unwrap();
        assert_eq!((score.links, score.unknown_tools, score.pairs), (4, 1, 4));
        assert_eq!(score.directed_recall, 0.25);
        assert_eq!(score.undirected_recall, 0.5);
        assert_eq!(score.field_recall, 0.25);
        assert_eq!(score.density, 2.0 / 6.0);
        assert!((score.directed_lift - 0.75).abs() < 1e-12);

        // Co-usage: pairs within one group do not count; unknown members are left out.
        let sets = vec![vec![
            ("A".to_string(), "p".to_string()),
            ("A".to_string(), "r".to_string()),
            ("B".to_string(), "q".to_string()),
            ("B".to_string(), "nowhere".to_string()),
        ]];
        let co = score_co_usage(&graph, &sets).unwrap();
        assert_eq!((co.pairs, co.unknown_tools), (2, 1));
        assert_eq!(co.joined, 1.0);
    }
}
