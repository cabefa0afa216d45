//! A chain subset end to end on the stand-in server: the subset is drawn along a
//! `return-param` edge as `toolflow sample --strategy chain` draws it, the planner and the
//! user agent are told its link, the scripted model passes the producer's id to the
//! consumer, and the dialogue records the link as realised.

use serde_json::{Value, json};
use toolflow_core::links::chained_calls;
use toolflow_core::{OutcomeStatus, SamplingStrategy, Tool, ToolGraph, Turn};
use toolflow_graph::{forward_steps, sample_subsets};
use toolflow_llm::standin::StandInServer;
use toolflow_synth::scripted::dialogue_script;
use toolflow_synth::{Prompts, SynthConfig, Synthesizer};

mod support;
use support::engine;

/// A producer whose results hold ids (from 4711 on, so that a copied id cannot be mistaken
/// for the scripted model's sample integer, 1) and a consumer that takes one. No result
/// holds a string, so the scripted model's sample string cannot make a call look chained.
fn tools() -> Vec<Tool> {
    let tool = |value: Value| serde_json::from_value::<Tool>(value).unwrap();
    vec![
        tool(json!({
            "name": "search_person", "description": "Find people by name.", "source": "test",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
            "returns": {"type": "object", "properties": {"results": {"type": "array", "items": {
                "type": "object", "properties": {"id": {"type": "integer", "minimum": 4711}}}}}}
        })),
        tool(json!({
            "name": "person_films", "description": "Films a person played in.", "source": "test",
            "parameters": {"type": "object", "properties": {"person_id": {"type": "integer"}}, "required": ["person_id"]},
            "returns": {"type": "object", "properties": {"film_count": {"type": "integer", "minimum": 12}}}
        })),
    ]
}

/// The one `return-param` edge a graph of these tools has: `results[].id` → `person_id`.
fn graph() -> ToolGraph {
    serde_json::from_value(json!({
        "nodes": ["search_person", "person_films"],
        "edges": [{"a": "search_person", "b": "person_films", "kind": "return-param", "score": 0.9,
                   "evidence": {"a": "results[].id: the person's id", "b": "person_id: a person's id"}}],
        "meta": {"tau": 0.82, "model": "test", "tools_hash": "test", "strings": 2}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_chain_subset_yields_a_dialogue_that_realises_its_link() {
    let graph = graph();
    let adjacency = graph.adjacency().unwrap();
    let forward = forward_steps(&graph).unwrap();
    let subset = sample_subsets(&adjacency, &forward, SamplingStrategy::Chain, 2, 1, 7, 1)
        .remove(0)
        .into_subset(&graph.nodes, &forward);
    assert_eq!(subset.tools, ["search_person", "person_films"]);
    assert_eq!(subset.links.len(), 1, "{subset:?}");
    assert_eq!(
        (
            subset.links[0].field.as_str(),
            subset.links[0].parameter.as_str()
        ),
        ("results[].id", "person_id")
    );

    let server = StandInServer::start(dialogue_script).await.unwrap();
    let config = SynthConfig {
        turns: [4, 4],
        seed: 3,
        ..SynthConfig::default()
    };
    let synth =
        Synthesizer::new(engine(&server, None), Prompts::builtin().unwrap(), config).unwrap();
    let dialogue = synth
        .write_with_links(subset.index, subset.strategy, tools(), subset.links.clone())
        .await;
    assert_eq!(
        dialogue.outcome.status,
        OutcomeStatus::Completed,
        "{:?}",
        dialogue.outcome
    );

    // The planner was shown the link, and the user agent told to leave its value alone.
    let prompts: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|request| {
            request.body["messages"][0]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    let planner = prompts
        .iter()
        .find(|prompt| prompt.starts_with("You design the outline"))
        .unwrap();
    assert!(
        planner.contains(
            "- search_person returns `results[].id`, which person_films takes as `person_id`"
        ),
        "{planner}"
    );
    assert!(prompts.iter().any(|prompt| prompt.starts_with("You play the user")
        && prompt.contains("never state a value yourself that the assistant should take from what a tool returned")
        && prompt.contains("`person_id` of person_films (from what search_person returns)")));

    // The first call finds the person; the first call for films, after its result, passes
    // the id that result holds.
    let calls: Vec<(usize, &toolflow_core::ToolCall)> = dialogue
        .turns
        .iter()
        .enumerate()
        .filter_map(|(at, turn)| match turn {
            Turn::Assistant(assistant) => {
                Some(assistant.tool_calls.iter().map(move |call| (at, call)))
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(calls[0].1.name, "search_person");
    let first_result = dialogue
        .turns
        .iter()
        .position(|turn| matches!(turn, Turn::Tool(result) if result.name == "search_person"))
        .unwrap();
    let Turn::Tool(found) = &dialogue.turns[first_result] else {
        unreachable!()
    };
    assert_eq!(found.content["results"][0]["id"], 4711);
    let (at, films) = calls
        .iter()
        .find(|(_, call)| call.name == "person_films")
        .unwrap();
    assert!(*at > first_result);
    assert_eq!(films.arguments, json!({"person_id": 4711}));

    assert_eq!(dialogue.links.len(), 1);
    let link = &dialogue.links[0];
    assert_eq!(
        (
            link.producer.as_str(),
            link.field.as_str(),
            link.consumer.as_str(),
            link.parameter.as_str()
        ),
        ("search_person", "results[].id", "person_films", "person_id")
    );
    assert!(link.realised);
    let record = serde_json::to_value(&dialogue).unwrap();
    assert_eq!(record["links"][0]["realised"], true);

    let realised = dialogue.links.iter().filter(|link| link.realised).count();
    let chained = chained_calls(&dialogue);
    assert!(chained >= 1);
    println!(
        "chain e2e: links planned {}, realised {realised}; tool calls {}, chained calls {chained}",
        dialogue.links.len(),
        calls.len()
    );
}

#[tokio::test]
async fn a_subset_without_links_records_none() {
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let synth = Synthesizer::new(
        engine(&server, None),
        Prompts::builtin().unwrap(),
        SynthConfig::default(),
    )
    .unwrap();
    let dialogue = synth.write(0, SamplingStrategy::Graph, tools()).await;
    assert!(dialogue.links.is_empty());
    assert!(
        serde_json::to_value(&dialogue)
            .unwrap()
            .get("links")
            .is_none()
    );
    let planner = server.requests()[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !planner.contains("can take what another one returns"),
        "{planner}"
    );
}
