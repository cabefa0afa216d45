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

/// Two tools that can be used together, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Edge {
    /// For `param-param`: the tool earlier in `nodes`. For `return-param`: the producer,
    /// whose return value can feed `b`.
    pub a: String,
    /// For `param-param`: the later tool. For `return-param`: the consumer.
    pub b: String,
    /// Which slots of the two tools are alike.
    pub kind: EdgeKind,
    /// Cosine similarity of the evidence pair; always above the graph's τ.
    pub score: f32,
    /// The slots the score was measured on.
    pub evidence: Evidence,
}

/// Which slots an edge joins: two parameters, or a return value and a parameter.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// A parameter of `a` is similar to a parameter of `b`.
    ParamParam,
    /// A return value of `a` is similar to a parameter of `b`.
    ReturnParam,
}

/// What joins the two tools of an edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// The string on `a`'s side (a parameter, or for `return-param` a return field): for the
    /// paper's method the best `"{name}: {description}"` string, for `flow` the best link's
    /// qualified string.
    pub a: String,
    /// The string on `b`'s side (always a parameter).
    pub b: String,
    /// `flow` graphs: every slot pair that joins the two tools, best first. Absent from
    /// graphs built by the paper's method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<SlotLink>,
}

impl Evidence {
    /// `(a's slot, b's parameter)` of each link, best first; for a paper graph, the names
    /// before `": "` of its one string pair.
    pub fn slot_pairs(&self) -> Vec<(&str, &str)> {
        if self.links.is_empty() {
            let before = |text: &str| {
                text.split_once(": ")
                    .map_or(text.len(), |(name, _)| name.len())
            };
            return vec![(&self.a[..before(&self.a)], &self.b[..before(&self.b)])];
        }
        self.links
            .iter()
            .map(|link| (link.from.as_str(), link.to.as_str()))
            .collect()
    }
}

/// One slot pair behind a `flow` edge, with how it was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlotLink {
    /// `a`'s slot: for `return-param` the path of the return field (`results[].id`,
    /// `location.name`), for `param-param` a parameter name.
    pub from: String,
    /// `b`'s parameter.
    pub to: String,
    /// The combined score the threshold was applied to.
    pub score: f32,
    /// The rule that admitted the link.
    pub rule: LinkRule,
    /// Each signal's score.
    pub signals: Signals,
}

/// The rule that admitted a `flow` link (the README's scoring section says each one's test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LinkRule {
    /// The qualified names are the same tokens (`results[].id` of `/search/person` and
    /// `person_id`; `skyId` and `skyId`).
    SameName,
    /// The parameter's name ends with the field's qualified name (`skyId` → `originSkyId`).
    NameSuffix,
    /// Names share their specific tokens and the embeddings agree.
    SharedTokens,
    /// The embedding signals alone, above their threshold, with compatible types.
    Embedding,
    /// The parameter's description names the producer ("obtained from the Search Airport
    /// API").
    DescribedSource,
    /// `param-param`: two tools take the same specific slot.
    SharedSlot,
}

/// The signals of one `flow` link, each in [0, 1] (cosines may be negative).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Signals {
    /// Type compatibility: 1 same or interchangeable, 0.5 unknown or loosely convertible.
    pub types: f32,
    /// Overlap of the qualified name tokens, weighted by each token's specificity.
    pub names: f32,
    /// Cosine of the qualified strings' embeddings.
    pub qualified_cosine: f32,
    /// Cosine of the paper's `"{name}: {description}"` strings.
    pub paper_cosine: f32,
    /// How specific the consumer's slot is: its IDF over the tool set divided by ln(tools).
    pub specificity: f32,
}

/// How a graph was built: method, threshold, model and input, for staleness checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GraphMeta {
    /// How the edges were found; absent means the paper's method.
    #[serde(default, skip_serializing_if = "GraphMethod::is_paper")]
    pub method: GraphMethod,
    /// The similarity threshold τ: for the paper's method an edge needs a cosine strictly
    /// above it (`flow` records it and uses it for its paper-cosine signal).
    pub tau: f32,
    /// The sentence-embedding model, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
    pub model: String,
    /// Content hash of the tools file the graph was built from.
    pub tools_hash: String,
    /// Distinct strings embedded.
    pub strings: usize,
}

/// How a graph's edges are found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GraphMethod {
    /// The paper's method (§3.1.1): one cosine of `"{name}: {description}"` strings above τ.
    #[default]
    Paper,
    /// Data flow: return → parameter links from several signals, and parameter–parameter
    /// links weighted by how specific the slot is, each with its evidence.
    Flow,
}

impl GraphMethod {
    /// For serde's `skip_serializing_if`: paper graphs keep the bytes they had before there
    /// was a choice.
    pub fn is_paper(&self) -> bool {
        *self == GraphMethod::Paper
    }
}

impl ToolGraph {
    /// The node indices of each edge's two ends (`a`, `b`), in edge order.
    pub fn edge_ends(&self) -> Result<Vec<(u32, u32)>, UnknownNode> {
        let index: std::collections::HashMap<&str, u32> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u32))
            .collect();
        let lookup = |name: &str| {
            index
                .get(name)
                .copied()
                .ok_or_else(|| UnknownNode(name.to_string()))
        };
        self.edges
            .iter()
            .map(|edge| Ok((lookup(&edge.a)?, lookup(&edge.b)?)))
            .collect()
    }

    /// Neighbours of every node, by node index, sorted and without repeats; edges of every
    /// kind and direction count (the walk of Algorithm 1 is undirected).
    pub fn adjacency(&self) -> Result<Vec<Vec<u32>>, UnknownNode> {
        let mut adjacency = vec![Vec::new(); self.nodes.len()];
        for (a, b) in self.edge_ends()? {
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

/// An edge names a tool the graph's nodes lack (a graph file edited or cut by hand).
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
            evidence: Evidence {
                a: "x: ".into(),
                b: "y: ".into(),
                links: Vec::new(),
            },
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
            meta: GraphMeta {
                method: GraphMethod::Paper,
                tau: 0.82,
                model: "m".into(),
                tools_hash: "h".into(),
                strings: 0,
            },
        };
        assert_eq!(
            graph.adjacency().unwrap(),
            vec![vec![1], vec![0, 2], vec![1]]
        );
        let json = serde_json::to_value(&graph.edges[1]).unwrap();
        assert_eq!(json["kind"], "return-param");
    }

    #[test]
    fn adjacency_rejects_unknown_nodes() {
        let graph = ToolGraph {
            nodes: vec!["p".into()],
            edges: vec![edge("p", "ghost", EdgeKind::ParamParam)],
            meta: GraphMeta {
                method: GraphMethod::Paper,
                tau: 0.82,
                model: "m".into(),
                tools_hash: "h".into(),
                strings: 0,
            },
        };
        assert!(graph.adjacency().unwrap_err().to_string().contains("ghost"));
    }
}
