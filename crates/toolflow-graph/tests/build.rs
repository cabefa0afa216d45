//! Graph construction on a hand-made tool set with a fake embedder whose similarities are
//! chosen by hand: each string maps to a fixed unit vector.

use std::collections::HashMap;

use serde_json::json;
use toolflow_core::{EdgeKind, Tool};
use toolflow_graph::{BuildOptions, GraphError, build_graph};

fn tool(name: &str, parameters: &[(&str, &str)], returns: Option<serde_json::Value>) -> Tool {
    let properties: serde_json::Map<String, serde_json::Value> = parameters
        .iter()
        .map(|(name, description)| {
            (
                name.to_string(),
                json!({"type": "string", "description": description}),
            )
        })
        .collect();
    serde_json::from_value(json!({
        "name": name,
        "parameters": {"type": "object", "properties": properties},
        "returns": returns,
    }))
    .unwrap()
}

/// Unit vectors in 4 dimensions, chosen so that the similarities are known by hand.
fn fake_vectors() -> HashMap<&'static str, Vec<f32>> {
    let angle = |cos: f32| vec![cos, (1.0 - cos * cos).sqrt(), 0.0, 0.0];
    HashMap::from([
        ("city: City name", vec![1.0, 0.0, 0.0, 0.0]),
        ("town: Town name", angle(0.95)), // 0.95 to city
        ("location: Where", angle(0.90)), // 0.90 to city, 0.99 to town
        // Exactly τ against `city` (0.82 · 1 summed with zeros), far from the rest: no edge.
        (
            "near: Nearly",
            vec![0.82, 0.0, 0.0, (1.0f32 - 0.82 * 0.82).sqrt()],
        ),
        ("date: Day", vec![0.0, 0.0, 1.0, 0.0]),
        (
            "day: When",
            vec![0.0, 0.0, 0.99, (1.0f32 - 0.99 * 0.99).sqrt()],
        ),
        ("id: ", vec![0.0, 0.0, 0.0, 1.0]),
    ])
}

fn options() -> BuildOptions {
    BuildOptions {
        tau: 0.82,
        model: "fake".into(),
        tools_hash: "hash".into(),
        threads: 1,
    }
}

fn tools() -> Vec<Tool> {
    vec![
        // 0: takes a city.
        tool("weather", &[("city", "City name"), ("date", "Day")], None),
        // 1: takes a town; returns a location (array of items) and an id.
        tool(
            "hotels",
            &[("town", "Town name")],
            Some(
                json!({"type": "array", "items": {"type": "object", "properties": {
                "location": {"description": "Where"}, "id": {"type": "string"}}}}),
            ),
        ),
        // 2: returns a day; takes an id.
        tool(
            "calendar",
            &[("id", "")],
            Some(json!({"type": "object", "properties": {"day": {"description": "When"}}})),
        ),
        // 3: exactly τ from `city`: isolated.
        tool("nearly", &[("near", "Nearly")], None),
        // 4: the same parameter strings as tools 0 and 1.
        tool(
            "forecast",
            &[("city", "City name"), ("town", "Town name")],
            None,
        ),
    ]
}

fn fake_embed(strings: &[String]) -> Result<Vec<Vec<f32>>, std::io::Error> {
    let vectors = fake_vectors();
    Ok(strings
        .iter()
        .map(|s| vectors[s.as_str()].clone())
        .collect())
}

#[test]
fn edges_evidence_and_direction() {
    let mut calls = 0;
    let (graph, report) = build_graph(&tools(), &options(), |strings: &[String]| {
        calls += 1;
        let mut distinct = strings.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            strings.len(),
            "each distinct string is embedded once"
        );
        fake_embed(strings)
    })
    .unwrap();
    assert_eq!(calls, 1);
    assert_eq!(report.strings, 7);
    assert_eq!((report.parameter_slots, report.return_slots), (7, 3));
    assert_eq!((report.parameter_strings, report.return_strings), (5, 3));
    assert_eq!(
        graph.nodes,
        ["weather", "hotels", "calendar", "nearly", "forecast"]
    );
    assert_eq!(graph.meta.strings, 7);
    assert_eq!(
        (
            graph.meta.tau,
            graph.meta.model.as_str(),
            graph.meta.tools_hash.as_str()
        ),
        (0.82, "fake", "hash")
    );

    let edges: Vec<(&str, &str, EdgeKind, &str, &str)> = graph
        .edges
        .iter()
        .map(|e| {
            (
                e.a.as_str(),
                e.b.as_str(),
                e.kind,
                e.evidence.a.as_str(),
                e.evidence.b.as_str(),
            )
        })
        .collect();
    use EdgeKind::*;
    let expected = [
        // weather–hotels: city ~ town; hotels' returned location feeds weather's city.
        (
            "weather",
            "hotels",
            ParamParam,
            "city: City name",
            "town: Town name",
        ),
        (
            "hotels",
            "weather",
            ReturnParam,
            "location: Where",
            "city: City name",
        ),
        // calendar's returned day feeds weather's date.
        ("calendar", "weather", ReturnParam, "day: When", "date: Day"),
        // weather–forecast: the identical string beats city ~ town.
        (
            "weather",
            "forecast",
            ParamParam,
            "city: City name",
            "city: City name",
        ),
        // hotels' returned id (also a return of an array's items) feeds calendar's id.
        ("hotels", "calendar", ReturnParam, "id: ", "id: "),
        // hotels–forecast: town = town beats town ~ city; location feeds town (0.99) best.
        (
            "hotels",
            "forecast",
            ParamParam,
            "town: Town name",
            "town: Town name",
        ),
        (
            "hotels",
            "forecast",
            ReturnParam,
            "location: Where",
            "town: Town name",
        ),
    ];
    assert_eq!(edges, expected);
    for edge in &graph.edges {
        assert!(edge.score > 0.82, "{edge:?}");
    }
    let score = |a: &str, b: &str, kind| {
        graph
            .edges
            .iter()
            .find(|e| e.a == a && e.b == b && e.kind == kind)
            .unwrap()
            .score
    };
    assert!((score("weather", "hotels", ParamParam) - 0.95).abs() < 1e-6);
    assert!(
        (score("hotels", "forecast", ReturnParam)
            - (0.95 * 0.9 + (1.0f32 - 0.9025).sqrt() * 0.19f32.sqrt()))
        .abs()
            < 1e-5
    );
    assert_eq!(score("weather", "forecast", ParamParam), 1.0);
}

#[test]
fn output_is_deterministic_across_threads() {
    let build = |threads| {
        build_graph(
            &tools(),
            &BuildOptions {
                threads,
                ..options()
            },
            fake_embed,
        )
        .unwrap()
        .0
    };
    assert_eq!(build(1), build(4));
}

#[test]
fn tools_without_slots_embed_nothing() {
    let tools = vec![tool("a", &[], None), tool("b", &[], None)];
    let (graph, report) = build_graph(
        &tools,
        &options(),
        |_: &[String]| -> Result<Vec<Vec<f32>>, std::io::Error> { panic!("nothing to embed") },
    )
    .unwrap();
    assert_eq!(
        (graph.nodes.len(), graph.edges.len(), report.strings),
        (2, 0, 0)
    );
}

#[test]
fn bad_inputs_are_errors() {
    let duplicate = vec![
        tool("a", &[], None),
        tool("b", &[], None),
        tool("a", &[], None),
    ];
    let error = build_graph(&duplicate, &options(), fake_embed).unwrap_err();
    assert!(
        matches!(
            error,
            GraphError::DuplicateName {
                first: 1,
                second: 3,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("`a`"));

    let error = build_graph(&tools(), &options(), |_: &[String]| {
        Ok::<_, std::io::Error>(vec![vec![1.0]])
    })
    .unwrap_err();
    assert!(
        matches!(
            error,
            GraphError::EmbeddingCount {
                expected: 7,
                got: 1
            }
        ),
        "{error}"
    );

    let error = build_graph(&tools(), &options(), |s: &[String]| {
        Ok::<_, std::io::Error>(
            (0..s.len())
                .map(|i| vec![1.0; 2 + usize::from(i == 3)])
                .collect(),
        )
    })
    .unwrap_err();
    assert!(
        matches!(
            error,
            GraphError::EmbeddingDimension {
                index: 3,
                expected: 2,
                got: 3
            }
        ),
        "{error}"
    );

    let error = build_graph(&tools(), &options(), |_: &[String]| {
        Err(std::io::Error::other("model missing"))
    })
    .unwrap_err();
    assert!(matches!(error, GraphError::Embed(_)));

    let error = build_graph(
        &tools(),
        &BuildOptions {
            tau: 1.5,
            ..options()
        },
        fake_embed,
    )
    .unwrap_err();
    assert!(matches!(error, GraphError::InvalidTau(_)));
}
