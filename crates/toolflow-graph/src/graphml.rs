//! GraphML output, for networkx (`nx.read_graphml`) and Gephi users.
//!
//! Nodes are identified by tool name. Every edge is written directed, `a → b` as in
//! `graph.json` (for `param-param` edges the direction is only the node order), with its
//! `kind`, `score` and evidence strings as data; networkx reads a pair with both kinds of
//! edge as a multigraph.

use std::io::{self, Write};

use toolflow_core::{EdgeKind, ToolGraph};

/// Writes `graph` as a GraphML document to `out`.
pub fn write_graphml(graph: &ToolGraph, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<graphml xmlns="http://graphml.graphdrawing.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">"#
    )?;
    for (id, owner, kind) in [
        ("kind", "edge", "string"),
        ("score", "edge", "double"),
        ("evidence_a", "edge", "string"),
        ("evidence_b", "edge", "string"),
    ] {
        writeln!(
            out,
            r#"  <key id="{id}" for="{owner}" attr.name="{id}" attr.type="{kind}"/>"#
        )?;
    }
    writeln!(
        out,
        r#"  <key id="tau" for="graph" attr.name="tau" attr.type="double"/>"#
    )?;
    writeln!(
        out,
        r#"  <key id="model" for="graph" attr.name="model" attr.type="string"/>"#
    )?;
    writeln!(out, r#"  <graph id="tools" edgedefault="directed">"#)?;
    writeln!(out, r#"    <data key="tau">{}</data>"#, graph.meta.tau)?;
    writeln!(
        out,
        r#"    <data key="model">{}</data>"#,
        escape(&graph.meta.model)
    )?;
    for node in &graph.nodes {
        writeln!(out, r#"    <node id="{}"/>"#, escape(node))?;
    }
    for (number, edge) in graph.edges.iter().enumerate() {
        let kind = match edge.kind {
            EdgeKind::ParamParam => "param-param",
            EdgeKind::ReturnParam => "return-param",
        };
        writeln!(
            out,
            r#"    <edge id="e{number}" source="{}" target="{}">"#,
            escape(&edge.a),
            escape(&edge.b)
        )?;
        writeln!(out, r#"      <data key="kind">{kind}</data>"#)?;
        writeln!(out, r#"      <data key="score">{}</data>"#, edge.score)?;
        writeln!(
            out,
            r#"      <data key="evidence_a">{}</data>"#,
            escape(&edge.evidence.a)
        )?;
        writeln!(
            out,
            r#"      <data key="evidence_b">{}</data>"#,
            escape(&edge.evidence.b)
        )?;
        writeln!(out, "    </edge>")?;
    }
    writeln!(out, "  </graph>")?;
    writeln!(out, "</graphml>")
}

/// Escapes text for an XML 1.0 attribute or element. Characters XML 1.0 cannot carry at all
/// (most C0 controls, lone surrogates cannot occur in a `str`, U+FFFE/U+FFFF) become U+FFFD;
/// tab, newline and carriage return are kept as character references so attribute
/// normalisation does not turn them into spaces.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' => escaped.push_str("&#9;"),
            '\n' => escaped.push_str("&#10;"),
            '\r' => escaped.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => escaped.push('\u{fffd}'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolflow_core::{Edge, Evidence, GraphMeta};

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            escape(r#"a<b>&"c"'d'"#),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        assert_eq!(escape("x\ty\u{1}z\n"), "x&#9;y\u{fffd}z&#10;");
        assert_eq!(escape("café 東京"), "café 東京");
    }

    #[test]
    fn writes_well_formed_graphml() {
        let graph = ToolGraph {
            nodes: vec!["get<weather>".into(), "a&b".into(), "plain".into()],
            edges: vec![Edge {
                a: "a&b".into(),
                b: "get<weather>".into(),
                kind: EdgeKind::ReturnParam,
                score: 0.91,
                evidence: Evidence {
                    a: "city: the \"city\" <name>\u{7}".into(),
                    b: "town: line\nbreak".into(),
                    links: Vec::new(),
                },
            }],
            meta: GraphMeta {
                method: Default::default(),
                tau: 0.82,
                model: "m&m".into(),
                tools_hash: "h".into(),
                strings: 2,
            },
        };
        let mut out = Vec::new();
        write_graphml(&graph, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let document = roxmltree::Document::parse(&text).expect("well-formed XML");
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "graphml");
        let nodes: Vec<&str> = root
            .descendants()
            .filter(|n| n.has_tag_name("node"))
            .map(|n| n.attribute("id").unwrap())
            .collect();
        assert_eq!(nodes, ["get<weather>", "a&b", "plain"]);
        let edge = root.descendants().find(|n| n.has_tag_name("edge")).unwrap();
        assert_eq!(
            (edge.attribute("source"), edge.attribute("target")),
            (Some("a&b"), Some("get<weather>"))
        );
        let data: Vec<(&str, &str)> = edge
            .children()
            .filter(|n| n.has_tag_name("data"))
            .map(|n| (n.attribute("key").unwrap(), n.text().unwrap_or("")))
            .collect();
        assert_eq!(
            data,
            [
                ("kind", "return-param"),
                ("score", "0.91"),
                ("evidence_a", "city: the \"city\" <name>\u{fffd}"),
                ("evidence_b", "town: line\nbreak")
            ]
        );
    }
}
