//! The tool graph: its size, connectivity and degree distribution (edges of every kind and
//! direction count once per pair of tools, as the sampler's walk sees them).

use std::fmt::Write;

use toolflow_core::{EdgeKind, ToolGraph};

use crate::html::{self, absent_note, escape};
use crate::inputs::Input;

/// Bars in the chart at most; wider degree ranges are binned.
const MAX_BARS: usize = 40;
/// The best-connected tools listed.
const TOP_NODES: usize = 10;

/// What the section reports about a graph.
#[derive(Debug, PartialEq)]
pub(crate) struct GraphSummary {
    pub degrees: Vec<usize>,
    pub isolated: usize,
    /// Connected components, isolated nodes included.
    pub components: usize,
    pub largest_component: usize,
}

pub(crate) fn summarize(
    graph: &ToolGraph,
) -> Result<GraphSummary, toolflow_core::graph::UnknownNode> {
    let adjacency = graph.adjacency()?;
    let degrees: Vec<usize> = adjacency.iter().map(Vec::len).collect();
    let mut component_of = vec![usize::MAX; adjacency.len()];
    let mut sizes = Vec::new();
    for start in 0..adjacency.len() {
        if component_of[start] != usize::MAX {
            continue;
        }
        let component = sizes.len();
        let mut size = 0;
        let mut stack = vec![start];
        component_of[start] = component;
        while let Some(node) = stack.pop() {
            size += 1;
            for &next in &adjacency[node] {
                if component_of[next as usize] == usize::MAX {
                    component_of[next as usize] = component;
                    stack.push(next as usize);
                }
            }
        }
        sizes.push(size);
    }
    Ok(GraphSummary {
        isolated: degrees.iter().filter(|&&d| d == 0).count(),
        components: sizes.len(),
        largest_component: sizes.iter().copied().max().unwrap_or(0),
        degrees,
    })
}

pub fn section(graph: &Input<ToolGraph>) -> String {
    if let Some(note) = graph.absence("tool graph", "`toolflow graph`") {
        return absent_note(&note);
    }
    let Some(graph) = graph.value() else {
        unreachable!("absence covers the other cases")
    };
    let summary = match summarize(graph) {
        Ok(summary) => summary,
        Err(error) => return absent_note(&format!("graph.json is inconsistent: {error}.")),
    };
    let nodes = graph.nodes.len();
    let mean_degree = if nodes == 0 {
        0.0
    } else {
        summary.degrees.iter().sum::<usize>() as f64 / nodes as f64
    };
    let max_degree = summary.degrees.iter().copied().max().unwrap_or(0);
    // Each joined pair is in both nodes' neighbour lists.
    let joined_pairs = summary.degrees.iter().sum::<usize>() / 2;
    let possible_pairs = nodes * nodes.saturating_sub(1) / 2;
    let param_param = graph
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::ParamParam)
        .count();
    let facts = [
        ("nodes", html::integer(nodes as u64)),
        (
            "edges",
            format!(
                "{} ({} param–param, {} return–param)",
                html::integer(graph.edges.len() as u64),
                html::integer(param_param as u64),
                html::integer((graph.edges.len() - param_param) as u64)
            ),
        ),
        (
            "density",
            format!(
                "{:.2}% ({} of {} tool pairs joined)",
                if possible_pairs == 0 {
                    0.0
                } else {
                    100.0 * joined_pairs as f64 / possible_pairs as f64
                },
                html::integer(joined_pairs as u64),
                html::integer(possible_pairs as u64)
            ),
        ),
        ("isolated nodes", html::integer(summary.isolated as u64)),
        (
            "components",
            format!(
                "{} (largest: {} nodes)",
                html::integer(summary.components as u64),
                html::integer(summary.largest_component as u64)
            ),
        ),
        ("degree", format!("mean {mean_degree:.2}, max {max_degree}")),
        ("τ", format!("{}", graph.meta.tau)),
        ("embedding model", graph.meta.model.clone()),
    ];
    let mut out = String::from("<div class=\"split\"><dl class=\"facts\">");
    for (term, value) in facts {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(term), escape(&value));
    }
    out.push_str("</dl>\n<figure>");
    out.push_str(&degree_chart(&summary.degrees));
    out.push_str(
        "<figcaption>Nodes by degree (distinct neighbouring tools).</figcaption></figure>\n",
    );

    let mut ranked: Vec<(usize, &str)> = summary
        .degrees
        .iter()
        .zip(&graph.nodes)
        .map(|(&d, name)| (d, name.as_str()))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    ranked.retain(|(degree, _)| *degree > 0);
    if !ranked.is_empty() {
        out.push_str("<table class=\"compact\"><thead><tr><th>best-connected tool</th><th>degree</th></tr></thead><tbody>");
        for (degree, name) in ranked.iter().take(TOP_NODES) {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{degree}</td></tr>",
                escape(name)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</div>\n");
    out
}

/// An SVG bar chart of how many nodes have each degree; degree 0 (isolated) in its own colour.
fn degree_chart(degrees: &[usize]) -> String {
    let max_degree = degrees.iter().copied().max().unwrap_or(0);
    let bin_width = (max_degree + 1).div_ceil(MAX_BARS).max(1);
    let bins = max_degree / bin_width + 1;
    let mut counts = vec![0usize; bins];
    for &degree in degrees {
        counts[degree / bin_width] += 1;
    }
    let tallest = counts.iter().copied().max().unwrap_or(0).max(1);
    let (height, left, right, bottom, top) = (220.0, 44.0, 8.0, 28.0, 12.0);
    // A few degrees make a narrow chart rather than a few very wide bars.
    let slot = (512.0 / bins as f64).min(48.0);
    let width = left + slot * bins as f64 + right;
    let plot_height = height - bottom - top;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"degree distribution\">"
    );
    let baseline = top + plot_height;
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{baseline}\" x2=\"{}\" y2=\"{baseline}\"/>\
         <text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{tallest}</text>\
         <text class=\"tick\" x=\"{}\" y=\"{baseline}\" text-anchor=\"end\">0</text>",
        width - right,
        left - 6.0,
        top + 4.0,
        left - 6.0
    );
    let label_every = bins.div_ceil(10);
    for (bin, &count) in counts.iter().enumerate() {
        let x = left + bin as f64 * slot;
        let bar_height = plot_height * count as f64 / tallest as f64;
        let low = bin * bin_width;
        let range = if bin_width == 1 {
            format!("{low}")
        } else {
            format!("{low}–{}", low + bin_width - 1)
        };
        let class = if low == 0 { "bar isolated" } else { "bar" };
        let _ = write!(
            svg,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar_height:.1}\"><title>degree {range}: {count} nodes</title></rect>",
            x + slot * 0.1,
            baseline - bar_height,
            slot * 0.8
        );
        if bin % label_every == 0 {
            let _ = write!(
                svg,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{low}</text>",
                x + slot / 2.0,
                baseline + 16.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolflow_core::{Edge, Evidence, GraphMeta};

    fn graph(nodes: &[&str], edges: &[(&str, &str)]) -> ToolGraph {
        ToolGraph {
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            edges: edges
                .iter()
                .map(|(a, b)| Edge {
                    a: a.to_string(),
                    b: b.to_string(),
                    kind: EdgeKind::ParamParam,
                    score: 0.9,
                    evidence: Evidence {
                        a: "x".into(),
                        b: "y".into(),
                        links: Vec::new(),
                    },
                })
                .collect(),
            meta: GraphMeta {
                method: Default::default(),
                tau: 0.82,
                model: "m".into(),
                tools_hash: "h".into(),
                strings: 0,
            },
        }
    }

    #[test]
    fn summary_counts_isolated_nodes_and_components() {
        let g = graph(
            &["a", "b", "c", "d", "e"],
            &[("a", "b"), ("b", "c"), ("c", "a")],
        );
        let summary = summarize(&g).unwrap();
        assert_eq!(summary.degrees, vec![2, 2, 2, 0, 0]);
        assert_eq!(summary.isolated, 2);
        assert_eq!(summary.components, 3);
        assert_eq!(summary.largest_component, 3);
    }

    #[test]
    fn section_shows_facts_chart_and_escaped_names() {
        let g = graph(&["<evil>", "b", "lonely"], &[("<evil>", "b")]);
        let html = section(&Input::Loaded {
            path: "graph.json".into(),
            value: g,
        });
        assert!(html.contains("<dt>isolated nodes</dt><dd>1</dd>"));
        // 1 pair of the 3 possible joined.
        assert!(html.contains("<dt>density</dt><dd>33.33% (1 of 3 tool pairs joined)</dd>"));
        assert!(html.contains("(1 param–param, 0 return–param)"));
        assert!(html.contains("<dt>components</dt><dd>2 (largest: 2 nodes)</dd>"));
        assert!(html.contains("<title>degree 0: 1 nodes</title>"));
        assert!(html.contains("<title>degree 1: 2 nodes</title>"));
        assert!(html.contains("<code>&lt;evil&gt;</code>"));
        assert!(!html.contains("<evil>"));
    }

    #[test]
    fn wide_degree_ranges_are_binned() {
        let degrees: Vec<usize> = (0..200).collect();
        let svg = degree_chart(&degrees);
        assert_eq!(svg.matches("<rect").count(), 40);
        assert!(svg.contains("<title>degree 0–4: 5 nodes</title>"));
    }

    #[test]
    fn unknown_edge_endpoint_is_reported_not_panicked() {
        let g = graph(&["a"], &[("a", "ghost")]);
        let html = section(&Input::Loaded {
            path: "graph.json".into(),
            value: g,
        });
        assert!(html.contains("inconsistent") && html.contains("ghost"));
    }
}
