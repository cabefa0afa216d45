//! The OpenAI-compatible backend over real sockets: what it sends, how it reads lenient
//! answers, native and prompted structured output and tools, and the pool.

mod common;

use std::collections::BTreeMap;

use common::*;
use futures_util::future::join_all;
use serde_json::json;
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_llm::{
    CacheMode, EndpointConfig, Engine, FeatureMode, FinishReason, Message, ToolCallRequest,
    ToolChoice, ToolSpec,
};

fn schema() -> serde_json::Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city", "days"]})
}

#[tokio::test]
async fn sends_the_request_fields_extra_headers_and_extra_body() {
    let server = StandInServer::queue(vec![], Reply::Echo).await.unwrap();
    let config = EndpointConfig {
        headers: BTreeMap::from([("X-Team".to_owned(), "data".to_owned())]),
        extra_body: json!({"top_k": 20, "temperature": 0.3})
            .as_object()
            .unwrap()
            .clone(),
        ..endpoint_config(&server)
    };
    let mut request = ask("hi");
    request.temperature = Some(0.9);
    request.top_p = Some(0.5);
    request.max_tokens = Some(64);
    request.stop = vec!["END".into()];
    request.seed = Some(3);
    engine_with(config, 1, None, CacheMode::Off)
        .complete(MODEL, "user", &request)
        .await
        .unwrap();
    let seen = &server.requests()[0];
    assert_eq!(seen.header("x-team"), Some("data"));
    let body = &seen.body;
    assert_eq!(body["model"], MODEL);
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}])
    );
    assert_eq!(
        (
            body["top_p"].clone(),
            body["max_tokens"].clone(),
            body["seed"].clone()
        ),
        (json!(0.5), json!(64), json!(3))
    );
    assert_eq!(body["stop"], json!(["END"]));
    assert_eq!(body["top_k"], 20);
    assert_eq!(body["temperature"], 0.3, "extra body fields win");
}

#[tokio::test]
async fn reads_lenient_answers() {
    let body = json!({
        "model": "served-name",
        "choices": [{"message": {"content": [{"type": "text", "text": "part one, "}, {"type": "text", "text": "part two"}],
                     "tool_calls": null},
                     "finish_reason": "abort"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 5}
    });
    let server = StandInServer::queue(
        vec![],
        Reply::Raw {
            status: 200,
            body: body.to_string(),
        },
    )
    .await
    .unwrap();
    let answer = engine(&server, 1)
        .complete(MODEL, "user", &ask("hi"))
        .await
        .unwrap();
    assert_eq!(answer.text.as_deref(), Some("part one, part two"));
    assert_eq!(answer.finish_reason, FinishReason::Other("abort".into()));
    assert_eq!(answer.model, "served-name");
    assert_eq!(
        (answer.usage.prompt_tokens, answer.usage.completion_tokens),
        (11, 5)
    );
}

#[tokio::test]
async fn native_structured_output_and_tools() {
    let server = StandInServer::queue(
        vec![Reply::Json(json!({"city": "Oslo", "days": 3}))],
        Reply::ToolCalls(vec![("get_weather".into(), json!({"city": "Oslo"}))]),
    )
    .await
    .unwrap();
    let engine = engine(&server, 1);
    let mut structured = ask("plan");
    structured.json_schema = Some(schema());
    let answer = engine
        .complete(MODEL, "planner", &structured)
        .await
        .unwrap();
    assert_eq!(answer.json().unwrap(), json!({"city": "Oslo", "days": 3}));

    let mut with_tools = ask("weather?");
    with_tools.tools.push(weather_tool());
    with_tools.tool_choice = ToolChoice::Required;
    let answer = engine
        .complete(MODEL, "assistant", &with_tools)
        .await
        .unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.tool_calls[0].name, "get_weather");

    let seen = server.requests();
    assert_eq!(seen[0].body["response_format"]["type"], "json_schema");
    assert_eq!(
        seen[0].body["response_format"]["json_schema"]["schema"],
        schema()
    );
    assert_eq!(seen[1].body["tools"][0]["type"], "function");
    assert_eq!(seen[1].body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(seen[1].body["tool_choice"], "required");
    assert!(seen[0].body.get("tool_choice").is_none());
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Current weather".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }
}

#[tokio::test]
async fn prompted_structured_output_gives_the_same_shape() {
    let server = StandInServer::queue(
        vec![],
        Reply::Text("Here you go:\n```json\n{\"city\": \"Oslo\", \"days\": 3}\n```".into()),
    )
    .await
    .unwrap();
    let config = EndpointConfig {
        structured_output: FeatureMode::Prompted,
        ..endpoint_config(&server)
    };
    let mut request = ask("plan");
    request.json_schema = Some(schema());
    let answer = engine_with(config, 1, None, CacheMode::Off)
        .complete(MODEL, "planner", &request)
        .await
        .unwrap();
    assert_eq!(answer.text.as_deref(), Some(r#"{"city":"Oslo","days":3}"#));
    let seen = &server.requests()[0].body;
    assert!(seen.get("response_format").is_none());
    let system = seen["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("You are terse.") && system.contains("\"required\":[\"city\",\"days\"]"),
        "{system}"
    );
}

#[tokio::test]
async fn prompted_tools_round_trip() {
    let server = StandInServer::queue(
        vec![],
        Reply::Text(
            r#"{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}"#.into(),
        ),
    )
    .await
    .unwrap();
    let config = EndpointConfig {
        tool_calling: FeatureMode::Prompted,
        ..endpoint_config(&server)
    };
    let mut request = ask("weather?");
    request.tools.push(weather_tool());
    // An earlier call and its result, which a server without tools may not accept as such.
    request.messages.push(Message {
        tool_calls: vec![ToolCallRequest {
            id: "c1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Bergen"}"#.into(),
        }],
        content: None,
        ..Message::assistant("")
    });
    request.messages.push(Message::tool("c1", "rain"));
    request.messages.push(Message::user("and in Oslo?"));
    let answer = engine_with(config, 1, None, CacheMode::Off)
        .complete(MODEL, "assistant", &request)
        .await
        .unwrap();
    assert_eq!(answer.text, None);
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        (
            answer.tool_calls[0].name.as_str(),
            answer.tool_calls[0].arguments.as_str()
        ),
        ("get_weather", r#"{"city":"Oslo"}"#)
    );
    let body = &server.requests()[0].body;
    assert!(body.get("tools").is_none());
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user", "user"]);
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("get_weather")
    );
    assert_eq!(
        body["messages"][3]["content"],
        "Result of tool call c1: rain"
    );
}

#[tokio::test]
async fn a_server_that_refuses_response_format_is_walked_down_the_dialects_once() {
    // llama-cpp-python's own refusal: HTTP 500 with a validation error naming the field.
    let refusal = r#"{"error":{"message":"[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]","type":"internal_server_error"}}"#;
    let server = StandInServer::start(move |seen| {
        if seen.body.get("response_format").is_some() {
            Reply::Raw {
                status: 500,
                body: refusal.into(),
            }
        } else {
            Reply::Text(json!({"city": "Oslo", "days": 1}).to_string())
        }
    })
    .await
    .unwrap();
    // One attempt per request: the refusals must not count as transient failures.
    let engine = engine(&server, 1);
    for prompt in ["first", "second"] {
        let mut request = ask(prompt);
        request.json_schema = Some(schema());
        let answer = engine.complete(MODEL, "planner", &request).await.unwrap();
        assert_eq!(answer.json().unwrap()["city"], "Oslo");
    }
    let fields: Vec<Vec<&str>> = server
        .requests()
        .iter()
        .map(|seen| {
            ["response_format", "guided_json", "json_schema", "format"]
                .into_iter()
                .filter(|field| seen.body.get(*field).is_some())
                .collect()
        })
        .collect();
    assert_eq!(
        fields,
        [
            vec!["response_format"],
            vec!["response_format"],
            vec!["guided_json"],
            vec!["guided_json"]
        ],
        "json_schema and json_object refused once, guided_json kept for good"
    );
    assert_eq!(
        server.requests()[1].body["response_format"]["type"],
        "json_object"
    );
}

#[tokio::test]
async fn a_plain_server_error_is_still_transient() {
    let server = StandInServer::queue(
        vec![Reply::Status(500)],
        Reply::Text(json!({"city": "Oslo", "days": 1}).to_string()),
    )
    .await
    .unwrap();
    let mut request = ask("x");
    request.json_schema = Some(schema());
    engine(&server, 2)
        .complete(MODEL, "planner", &request)
        .await
        .unwrap();
    let formats: Vec<bool> = server
        .requests()
        .iter()
        .map(|seen| seen.body["response_format"]["type"] == "json_schema")
        .collect();
    assert_eq!(
        formats,
        [true, true],
        "a 500 naming nothing is retried as it was"
    );
}

#[tokio::test]
async fn the_pool_draws_models_by_weight_and_spreads_load() {
    let fast = StandInServer::queue(vec![], Reply::Slow(SHORT, Box::new(Reply::Echo)))
        .await
        .unwrap();
    let replica = StandInServer::queue(vec![], Reply::Slow(SHORT, Box::new(Reply::Echo)))
        .await
        .unwrap();
    let other = StandInServer::queue(vec![], Reply::Echo).await.unwrap();
    let configs = [
        EndpointConfig {
            name: Some("a".into()),
            weight: 1.0,
            max_concurrency: 4,
            ..EndpointConfig::new(fast.base_url(), "m1")
        },
        EndpointConfig {
            name: Some("b".into()),
            weight: 1.0,
            max_concurrency: 4,
            ..EndpointConfig::new(replica.base_url(), "m1")
        },
        EndpointConfig {
            name: Some("c".into()),
            weight: 2.0,
            ..EndpointConfig::new(other.base_url(), "m2")
        },
    ];
    let engine = Engine::new(
        configs.iter().map(endpoint).collect(),
        fast_policy(1),
        None,
        CacheMode::Off,
    )
    .unwrap();
    assert_eq!(engine.models().collect::<Vec<_>>(), ["m1", "m2"]);
    let draws: Vec<&str> = (0..4000).map(|seed| engine.draw_model(seed)).collect();
    let m1 = draws.iter().filter(|&&model| model == "m1").count();
    assert!(
        (1800..2200).contains(&m1),
        "m1 and m2 each weigh 2: {m1} of 4000"
    );
    assert_eq!(engine.draw_model(17), engine.draw_model(17));

    let requests: Vec<_> = (0..16).map(|index| ask(&format!("{index}"))).collect();
    let answers = join_all(
        requests
            .iter()
            .map(|request| engine.complete("m1", "user", request)),
    )
    .await;
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(
        (fast.request_count(), replica.request_count()),
        (8, 8),
        "load spread evenly across replicas"
    );
    let unknown = engine
        .complete("m3", "user", &ask("x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("no endpoint serves model `m3` (configured: m1, m2)"),
        "{unknown}"
    );
}

/// llama-server takes `tool_choice: "required"` but its grammar lets text come first, and a
/// small model writes text until its limit: the answer has no call. The engine then stops
/// relying on `"required"` and forces the call through the schema dialect it knows, which
/// the grammar does constrain, on the next attempt of the same request.
#[tokio::test]
async fn required_answered_in_prose_is_forced_through_the_schema_dialect() {
    let server = StandInServer::start(|seen| {
        let schema = &seen.body["response_format"]["json_schema"]["schema"];
        if seen.body.get("tools").is_some() {
            Reply::Text("The weather in Oslo is usually mild.".into())
        } else if schema["properties"].get("tool_calls").is_some() {
            Reply::Json(
                json!({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}),
            )
        } else {
            Reply::Json(json!({"city": "Oslo", "days": 3}))
        }
    })
    .await
    .unwrap();
    let engine = engine(&server, 1);
    // The planner's schema request teaches the engine the server's dialect.
    let mut structured = ask("plan");
    structured.json_schema = Some(schema());
    engine
        .complete(MODEL, "planner", &structured)
        .await
        .unwrap();

    let mut with_tools = ask("weather?");
    with_tools.tools.push(weather_tool());
    with_tools.tool_choice = ToolChoice::Required;
    for _ in 0..2 {
        let answer = engine
            .complete(MODEL, "assistant", &with_tools)
            .await
            .unwrap();
        assert_eq!(answer.tool_calls[0].name, "get_weather", "{answer:?}");
        assert_eq!(answer.tool_calls[0].arguments, r#"{"city":"Oslo"}"#);
    }
    let seen = server.requests();
    assert_eq!(seen[1].body["tool_choice"], "required");
    assert!(seen[2].body.get("tool_choice").is_none());
    // Learned once: the second request goes straight to the forced form.
    assert_eq!(seen.len(), 4);
    assert!(seen[3].body.get("tool_choice").is_none());
}

/// The probe counts a `"required"` answered without a call as not obeyed, as the engine
/// does (so `chat --probe` shows what a run will do).
#[tokio::test]
async fn the_probe_counts_required_answered_in_prose_as_not_obeyed() {
    let server = StandInServer::start(|_| Reply::Text("It is mild in Paris.".into()))
        .await
        .unwrap();
    let reports = engine(&server, 1).probe().await;
    let report = reports[0].1.as_ref().unwrap();
    assert_eq!(report.capabilities.native_tools, Some(true), "{report:?}");
    assert_eq!(report.capabilities.tool_choice, Some(false), "{report:?}");
}
