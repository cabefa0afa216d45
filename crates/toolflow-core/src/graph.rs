//! The tool graph (paper §3.1.1): tools are nodes; an edge joins two tools whose
//! parameters, or one's return value and the other's parameter, mean nearly the same.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `graph.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolGraph {
    /// Tool names, in the order of `tools.jsonl`.
    pub nodes: Vec<String>,
    /// Each relation found, at most one per (unordered pair, kind, direction): a pair of
    /// tools may carry a `param-param` edge and a `return-param` edge each way.
    pub edges: Vec<Edge>,
    /// How the graph was built, so a later run can tell whether it is still current.
    pub meta: GraphMeta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Edge {
    /// For `param-param`: the tool earlier in `nodes`. For `return-param`: the producer,
    /// whose return value can feed `b`.
    pub a: String,
    /// For `param-param`: the later tool. For `return-param`: the consumer.
    pub b: String,
    pub kind: EdgeKind,
    /// Cosine similarity of the evidence pair; always above the graph's τ.
    pub score: f32,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// A parameter of `a` is similar to a parameter of `b`.
    ParamParam,
    /// A return value of `a` is similar to a parameter of `b`.
    ReturnParam,
}

/// The most similar pair of `"{name}: {description}"` strings behind an edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// The string on `a`'s side (a parameter, or for `return-param` a return field).
    pub a: String,
    /// The string on `b`'s side (always a parameter).
    pub b: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GraphMeta {
    /// The similarity threshold τ: an edge needs a cosine strictly above it.
    pub tau: f32,
    /// The sentence-embedding model, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
    pub model: String,
    /// Content hash of the tools file the graph was built from.
    pub tools_hash: String,
    /// Distinct strings embedded.
    pub strings: usize,
}

impl ToolGraph {
    /// Neighbours of every node, by node index, sorted and without repeats; edges of every
    /// kind and direction count (the walk of Algorithm 1 is undirected).
    pub fn adjacency(&self) -> Result<Vec<Vec<u32>>, UnknownNode> {
        let index: std::collections::HashMap<&str, u32> =
            self.nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
        let lookup = |name: &str| index.get(name).copied().ok_or_else(|| UnknownNode(name.to_string()));
        let mut adjacency = vec![Vec::new(); self.nodes.len()];
        for edge in &self.edges {
            let (a, b) = (lookup(&edge.a)?, lookup(&edge.b)?);
            if a != b {
                adjacency[a as usize].push(b);
                adjacency[b as usize].push(a);
            }
        }
        for neighbours in &mut adjacency {
            neighbours.sort_unstable();
            neighbours.dedup();
        }
        Ok(adjacency)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("edge names tool `{0}`, which is not among the graph's nodes")]
pub struct UnknownNode(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(a: &str, b: &str, kind: EdgeKind) -> Edge {
        Edge {
            a: a.into(),
            b: b.into(),
            kind,
            score: 0.9,
            evidence: Evidence { a: "x: ".into(), b: "y: ".into() },
        }
    }

    #[test]
    fn adjacency_is_undirected_and_deduplicated() {
        let graph = ToolGraph {
            nodes: vec!["p".into(), "q".into(), "r".into()],
            edges: vec![
                edge("p", "q", EdgeKind::ParamParam),
                edge("q", "p", EdgeKind::ReturnParam),
                edge("r", "q", EdgeKind::ReturnParam),
            ],
            meta: GraphMeta { tau: 0.82, model: "m".into(), tools_hash: "h".into(), strings: 0 },
        };
        assert_eq!(graph.adjacency().unwrap(), vec![vec![1], vec![0, 2], vec![1]]);
        let json = serde_json::to_value(&graph.edges[1]).unwrap();
        assert_eq!(json["kind"], "return-param");
    }

    #[test]
    fn adjacency_rejects_unknown_nodes() {
        let graph = ToolGraph {
            nodes: vec!["p".into()],
            edges: vec![edge("p", "ghost", EdgeKind::ParamParam)],
            meta: GraphMeta { tau: 0.82, model: "m".into(), tools_hash: "h".into(), strings: 0 },
        };
        assert!(graph.adjacency().unwrap_err().to_string().contains("ghost"));
    }
}
