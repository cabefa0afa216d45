//! Replays of real servers: each fixture under `fixtures/servers/` holds the request and
//! answer bytes of one server, recorded with `scripts/record-proxy.py`, quirks included
//! (llama-cpp-python answers `json_schema` with a 500 naming the field, and
//! `tool_choice: "required"` with a 500 whose message is empty). The stand-in answers
//! each request with the recorded answer to the request of the same shape.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_llm::{ProbeOutcome, SchemaDialect};

/// What decides a recorded answer: the last user text, the structured-output form and the
/// tool choice sent.
fn shape(body: &Value) -> String {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let user = messages
        .iter()
        .rev()
        .find(|message| message["role"] == "user")
        .map(|message| message["content"].clone())
        .unwrap_or(Value::Null);
    json!([
        user,
        body["response_format"]["type"],
        body["tool_choice"],
        body.get("tools").is_some()
    ])
    .to_string()
}

async fn replay(fixture: &str) -> StandInServer {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/servers")
        .join(fixture);
    let text = std::fs::read_to_string(&path).unwrap();
    let recorded: Vec<(String, u16, String)> = text
        .lines()
        .map(|line| {
            let exchange: Value = serde_json::from_str(line).unwrap();
            let request: Value =
                serde_json::from_str(exchange["request"].as_str().unwrap()).unwrap();
            (
                shape(&request),
                exchange["status"].as_u64().unwrap() as u16,
                exchange["response"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    StandInServer::start(move |seen| {
        let wanted = shape(&seen.body);
        match recorded.iter().find(|(shape, _, _)| *shape == wanted) {
            Some((_, status, body)) => Reply::Raw {
                status: *status,
                body: body.clone(),
            },
            None => Reply::Raw {
                status: 418,
                body: format!("no recorded answer for {wanted}"),
            },
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn llama_cpp_python_probe_replayed() {
    let server = replay("llama-cpp-python-0.3.36-probe.jsonl").await;
    let engine = engine(&server, 6);
    let reports = engine.probe().await;
    let report = reports[0].1.as_ref().unwrap();
    let outcomes: Vec<(&str, ProbeOutcome)> = report
        .checks
        .iter()
        .map(|check| (check.feature.as_str(), check.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("structured_output: json_schema", ProbeOutcome::Refused),
            (
                "structured_output: json_object_schema",
                ProbeOutcome::Supported
            ),
            // SmolLM2 under chatml-function-calling answers in prose when it may.
            ("tools: tool_choice auto", ProbeOutcome::Ignored),
            ("tools: tool_choice required", ProbeOutcome::Refused),
            ("tools: tool_choice named", ProbeOutcome::Supported),
            ("tools: parallel calls", ProbeOutcome::Ignored),
        ],
        "{report:#?}"
    );
    let capabilities = &report.capabilities;
    assert_eq!(
        capabilities.structured_output,
        Some(SchemaDialect::JsonObjectSchema)
    );
    assert_eq!(capabilities.native_tools, Some(true));
    assert_eq!(capabilities.tool_choice, Some(false));
    assert_eq!(capabilities.named_tool_choice, Some(true));
}

#[tokio::test]
async fn llama_cpp_python_schema_request_without_retries() {
    let server = replay("llama-cpp-python-0.3.36-probe.jsonl").await;
    let engine = engine(&server, 6);
    let mut request = toolflow_llm::ChatRequest::new(vec![toolflow_llm::Message::user(
        "Which city is the capital of France? Answer in JSON.",
    )]);
    request.temperature = Some(0.0);
    request.max_tokens = Some(128);
    request.seed = Some(0);
    request.json_schema = Some(json!({"type": "object", "properties": {
        "city": {"type": "string", "enum": ["Paris"]}, "certain": {"type": "boolean"}},
        "required": ["city", "certain"], "additionalProperties": false}));
    let answer = engine.complete(MODEL, "planner", &request).await.unwrap();
    assert_eq!(
        answer.json().unwrap(),
        json!({"city": "Paris", "certain": false})
    );
    assert_eq!(
        server.request_count(),
        2,
        "one refusal (a capability answer, not retried), then json_object with the schema"
    );
}
