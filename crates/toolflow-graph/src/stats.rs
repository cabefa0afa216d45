//! Summary figures of a tool graph: what `toolflow graph --stats` prints.

use serde::Serialize;
use toolflow_core::graph::UnknownNode;
use toolflow_core::{EdgeKind, ToolGraph};

/// Size, density, connectivity and degrees of a tool graph. A node's degree is its number
/// of distinct neighbours, over edges of every kind and direction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphStats {
    /// Tools.
    pub nodes: usize,
    /// Edges of both kinds.
    pub edges: usize,
    /// `param-param` edges.
    pub param_param_edges: usize,
    /// `return-param` edges.
    pub return_param_edges: usize,
    /// Pairs of tools joined by at least one edge of any kind or direction.
    pub undirected_pairs: usize,
    /// Joined pairs over all unordered pairs of tools.
    pub density: f64,
    /// Tools with no edge.
    pub isolated_nodes: usize,
    /// Connected components, isolated tools included.
    pub components: usize,
    /// Sizes of the largest connected components, largest first (at most [`LARGEST_SHOWN`]).
    pub largest_components: Vec<usize>,
    /// The highest degree.
    pub max_degree: usize,
    /// The mean degree over all tools.
    pub mean_degree: f64,
    /// Undirected degree histogram in power-of-two buckets: `0`, `1`, `2-3`, `4-7`, ...
    pub degree_histogram: Vec<DegreeBucket>,
}

/// One bar of [`GraphStats::degree_histogram`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DegreeBucket {
    /// Smallest degree of the bucket.
    pub from: usize,
    /// Largest degree of the bucket.
    pub to: usize,
    /// Tools whose degree lies in it.
    pub nodes: usize,
}

/// How many component sizes [`GraphStats::largest_components`] keeps.
pub const LARGEST_SHOWN: usize = 5;

impl GraphStats {
    /// The figures of `graph`; an error when an edge names a tool that is not a node.
    pub fn of(graph: &ToolGraph) -> Result<Self, UnknownNode> {
        let adjacency = graph.adjacency()?;
        let degrees: Vec<usize> = adjacency.iter().map(Vec::len).collect();
        let count_kind = |kind| graph.edges.iter().filter(|edge| edge.kind == kind).count();

        let mut component_sizes = connected_component_sizes(&adjacency);
        component_sizes.sort_unstable_by(|a, b| b.cmp(a));

        let max_degree = degrees.iter().copied().max().unwrap_or(0);
        let mut degree_histogram = vec![DegreeBucket {
            from: 0,
            to: 0,
            nodes: 0,
        }];
        let mut from = 1;
        while from <= max_degree {
            degree_histogram.push(DegreeBucket {
                from,
                to: 2 * from - 1,
                nodes: 0,
            });
            from *= 2;
        }
        for &degree in &degrees {
            // Bucket k ≥ 1 holds degrees in [2^(k-1), 2^k).
            let bucket = if degree == 0 {
                0
            } else {
                (usize::BITS - degree.leading_zeros()) as usize
            };
            degree_histogram[bucket].nodes += 1;
        }

        let total_degree: usize = degrees.iter().sum();
        Ok(GraphStats {
            nodes: graph.nodes.len(),
            edges: graph.edges.len(),
            param_param_edges: count_kind(EdgeKind::ParamParam),
            return_param_edges: count_kind(EdgeKind::ReturnParam),
            undirected_pairs: total_degree / 2,
            density: {
                let possible = graph.nodes.len() * graph.nodes.len().saturating_sub(1) / 2;
                if possible == 0 {
                    0.0
                } else {
                    (total_degree / 2) as f64 / possible as f64
                }
            },
            isolated_nodes: degrees.iter().filter(|&&d| d == 0).count(),
            components: component_sizes.len(),
            largest_components: component_sizes.into_iter().take(LARGEST_SHOWN).collect(),
            max_degree,
            mean_degree: if degrees.is_empty() {
                0.0
            } else {
                total_degree as f64 / degrees.len() as f64
            },
            degree_histogram,
        })
    }
}

/// Sizes of the connected components, by an iterative depth-first search.
pub fn connected_component_sizes(adjacency: &[Vec<u32>]) -> Vec<usize> {
    let mut seen = vec![false; adjacency.len()];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..adjacency.len() {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start as u32);
        let mut size = 0;
        while let Some(node) = stack.pop() {
            size += 1;
            for &next in &adjacency[node as usize] {
                if !std::mem::replace(&mut seen[next as usize], true) {
                    stack.push(next);
                }
            }
        }
        sizes.push(size);
    }
    sizes
}

impl std::fmt::Display for GraphStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "nodes:            {}", self.nodes)?;
        writeln!(
            f,
            "edges:            {} ({} param-param, {} return-param)",
            self.edges, self.param_param_edges, self.return_param_edges
        )?;
        writeln!(
            f,
            "undirected pairs: {} (density {:.2}%)",
            self.undirected_pairs,
            self.density * 100.0
        )?;
        writeln!(f, "isolated nodes:   {}", self.isolated_nodes)?;
        let largest: Vec<String> = self
            .largest_components
            .iter()
            .map(usize::to_string)
            .collect();
        writeln!(
            f,
            "components:       {} (largest: {})",
            self.components,
            largest.join(", ")
        )?;
        writeln!(
            f,
            "degree:           mean {:.2}, max {}",
            self.mean_degree, self.max_degree
        )?;
        writeln!(f, "degree histogram:")?;
        let widest = self
            .degree_histogram
            .iter()
            .map(|b| b.nodes)
            .max()
            .unwrap_or(0)
            .max(1);
        for bucket in &self.degree_histogram {
            let range = if bucket.from == bucket.to {
                bucket.from.to_string()
            } else {
                format!("{}-{}", bucket.from, bucket.to)
            };
            let bar = "#".repeat((bucket.nodes * 40).div_ceil(widest));
            writeln!(f, "  {range:>11} {:>7} {bar}", bucket.nodes)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolflow_core::{Edge, Evidence, GraphMeta};

    fn edge(a: &str, b: &str, kind: EdgeKind) -> Edge {
        Edge {
            a: a.into(),
            b: b.into(),
            kind,
            score: 0.9,
            evidence: Evidence {
                a: "x: ".into(),
                b: "y: ".into(),
                links: Vec::new(),
            },
        }
    }

    #[test]
    fn counts_components_degrees_and_kinds() {
        // p—q—r (q—r twice: both kinds), s—t, u alone.
        let graph = ToolGraph {
            nodes: ["p", "q", "r", "s", "t", "u"].map(String::from).to_vec(),
            edges: vec![
                edge("p", "q", EdgeKind::ParamParam),
                edge("q", "r", EdgeKind::ParamParam),
                edge("r", "q", EdgeKind::ReturnParam),
                edge("s", "t", EdgeKind::ReturnParam),
            ],
            meta: GraphMeta {
                method: Default::default(),
                tau: 0.82,
                model: "m".into(),
                tools_hash: "h".into(),
                strings: 0,
            },
        };
        let stats = GraphStats::of(&graph).unwrap();
        assert_eq!(stats.nodes, 6);
        assert_eq!(
            (
                stats.edges,
                stats.param_param_edges,
                stats.return_param_edges
            ),
            (4, 2, 2)
        );
        assert_eq!(stats.undirected_pairs, 3);
        assert_eq!(stats.isolated_nodes, 1);
        assert_eq!(stats.components, 3);
        assert_eq!(stats.largest_components, [3, 2, 1]);
        assert_eq!(stats.max_degree, 2);
        let histogram: Vec<(usize, usize, usize)> = stats
            .degree_histogram
            .iter()
            .map(|b| (b.from, b.to, b.nodes))
            .collect();
        assert_eq!(histogram, [(0, 0, 1), (1, 1, 4), (2, 3, 1)]);
        assert!((stats.mean_degree - 1.0).abs() < 1e-12);
        let text = stats.to_string();
        assert!(
            text.contains("components:       3 (largest: 3, 2, 1)"),
            "{text}"
        );
    }

    #[test]
    fn empty_graph() {
        let graph = ToolGraph {
            nodes: vec![],
            edges: vec![],
            meta: GraphMeta {
                method: Default::default(),
                tau: 0.82,
                model: "m".into(),
                tools_hash: "h".into(),
                strings: 0,
            },
        };
        let stats = GraphStats::of(&graph).unwrap();
        assert_eq!((stats.nodes, stats.components, stats.max_degree), (0, 0, 0));
        assert_eq!(stats.degree_histogram.len(), 1);
    }
}
