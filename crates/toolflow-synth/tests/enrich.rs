//! Enrichment against the stand-in server: missing fields are filled and marked, the
//! source's own text is never replaced, documented tools cost no request, one tool's failure
//! stops nobody, and a rerun is answered from the response cache.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};
use toolflow_core::Tool;
use toolflow_llm::standin::{Reply, SeenRequest, StandInServer};
use toolflow_llm::{CacheMode, Endpoint, EndpointConfig, Engine, EngineConfig, http_client};
use toolflow_synth::Prompts;
use toolflow_synth::enrich::{EnrichOptions, enrich_tools, needs_enrichment};

const MODEL: &str = "standin-model";

fn engine(server: &StandInServer, cache: Option<&Path>) -> Engine {
    let config = EndpointConfig {
        name: Some("standin".into()),
        timeout_s: 2.0,
        max_concurrency: 64,
        ..EndpointConfig::new(server.base_url(), MODEL)
    };
    let policy = EngineConfig {
        max_attempts: 3,
        backoff_base_ms: 5,
        backoff_cap_ms: 40,
        max_retry_after_s: 1.0,
    };
    let mode = if cache.is_some() {
        CacheMode::ReadWrite
    } else {
        CacheMode::Off
    };
    Engine::new(
        vec![Endpoint::http(&config, http_client().unwrap()).unwrap()],
        policy,
        cache,
        mode,
    )
    .unwrap()
}

fn tool(name: &str, description: &str, parameters: Value, returns: Option<Value>) -> Tool {
    Tool {
        name: name.into(),
        description: description.into(),
        parameters,
        returns,
        source: "test".into(),
        meta: Map::new(),
    }
}

/// The tool a request is about: the first `"name"` of the tool JSON in the prompt.
fn tool_named_in(request: &SeenRequest) -> String {
    let text = request.last_user_text();
    let start = text
        .find("\"name\": \"")
        .expect("the prompt shows the tool")
        + "\"name\": \"".len();
    text[start..].split('"').next().unwrap().to_owned()
}

/// The answer schema a request sent (natively, as `response_format`).
fn answer_schema(request: &SeenRequest) -> &Value {
    &request.body["response_format"]["json_schema"]["schema"]
}

fn weather_returns() -> Value {
    json!({"type": "object", "properties": {
        "temperature": {"type": "number", "description": "Air temperature in degrees Celsius."},
        "conditions": {"type": "string", "description": "Short summary, e.g. \"light rain\"."}
    }})
}

/// A model that proposes text for every field it can think of, asked for or not.
fn eager_answer() -> Value {
    json!({
        "description": "Returns the current weather for a city.",
        "parameters": {
            "city": "Name of the city, e.g. \"Paris\".",
            "units": "MODEL TEXT",
            "address.street": "MODEL TEXT",
            "address.zip": "Postal code of the address.",
            "stops[].name": "Name of the stop."
        },
        "returns": weather_returns()
    })
}

#[tokio::test]
async fn missing_fields_are_filled_and_marked_as_inferred() {
    let server = StandInServer::start(|_| Reply::Json(eager_answer()))
        .await
        .unwrap();
    let parameters = json!({"type": "object", "properties": {
        "city": {"type": "string"},
        "units": {"type": "string", "description": "celsius or fahrenheit"}
    }, "required": ["city"]});
    let bare = tool("get_weather", "", parameters, None);
    assert!(needs_enrichment(&bare, false));

    let report = enrich_tools(
        &engine(&server, None),
        &Prompts::builtin().unwrap(),
        vec![bare],
        &EnrichOptions::default(),
    )
    .await;

    assert_eq!(server.request_count(), 1);
    let request = &server.requests()[0];
    let asked = answer_schema(request);
    assert_eq!(
        asked["required"],
        json!(["description", "parameters", "returns"])
    );
    assert_eq!(
        asked["properties"]["parameters"]["required"],
        json!(["city"]),
        "only the undocumented parameter"
    );
    assert!(request.last_user_text().contains("  - city"));
    assert_eq!(
        request.body["temperature"].as_f64().map(|t| t as f32),
        Some(0.2)
    );

    let enriched = &report.tools[0];
    assert_eq!(
        enriched.description,
        "Returns the current weather for a city."
    );
    assert_eq!(
        enriched.parameters["properties"]["city"]["description"],
        "Name of the city, e.g. \"Paris\"."
    );
    assert_eq!(
        enriched.parameters["properties"]["units"]["description"],
        "celsius or fahrenheit"
    );
    assert_eq!(enriched.returns, Some(weather_returns()));
    assert_eq!(
        enriched.meta["inferred"],
        json!({"fields": ["/description", "/parameters/properties/city/description", "/returns"], "model": MODEL})
    );
    assert!(!needs_enrichment(enriched, true));
    assert_eq!((report.read, report.enriched, report.unchanged), (1, 1, 0));
    assert_eq!(
        (
            report.fields.descriptions,
            report.fields.parameters,
            report.fields.returns
        ),
        (1, 1, 1)
    );
    assert!(report.failed.is_empty());
}

#[tokio::test]
async fn a_documented_tool_sends_no_request_and_comes_back_byte_identical() {
    let server = StandInServer::start(|_| Reply::Json(eager_answer()))
        .await
        .unwrap();
    let mut documented = tool(
        "get_weather",
        "Returns the current weather for a city.",
        json!({"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}}),
        Some(weather_returns()),
    );
    documented
        .meta
        .insert("origin".into(), json!("weather.json"));
    let before = serde_json::to_string(&documented).unwrap();

    let report = enrich_tools(
        &engine(&server, None),
        &Prompts::builtin().unwrap(),
        vec![documented],
        &EnrichOptions::default(),
    )
    .await;

    assert_eq!(server.request_count(), 0);
    assert_eq!(serde_json::to_string(&report.tools[0]).unwrap(), before);
    assert_eq!((report.read, report.enriched, report.unchanged), (1, 0, 1));
}

#[tokio::test]
async fn an_unusable_return_schema_fails_only_its_own_tool() {
    let server = StandInServer::start(|request| {
        let mut answer = eager_answer();
        match tool_named_in(request).as_str() {
            // Breaks the answer schema: the engine resamples, then gives up.
            "broken" => answer["returns"] = json!({"type": 5}),
            // Passes the answer schema but does not compile as a JSON Schema.
            "subtly_broken" => {
                answer["returns"] =
                    json!({"type": "object", "properties": {"x": {"type": "string", "description": "X", "minLength": -1}}})
            }
            _ => {}
        }
        Reply::Json(answer)
    })
    .await
    .unwrap();
    let city = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let tools = vec![
        tool("broken", "", city.clone(), None),
        tool("fine", "", city.clone(), None),
        tool("subtly_broken", "", city, None),
    ];
    let originals = tools.clone();

    let report = enrich_tools(
        &engine(&server, None),
        &Prompts::builtin().unwrap(),
        tools,
        &EnrichOptions::default(),
    )
    .await;

    let requests = server.requests();
    let sent_for = |name: &str| {
        requests
            .iter()
            .filter(|request| tool_named_in(request) == name)
            .count()
    };
    assert_eq!(sent_for("broken"), 3, "the engine's three attempts");
    assert_eq!(
        sent_for("subtly_broken"),
        3,
        "three draws, each a valid answer to the engine"
    );
    assert_eq!(sent_for("fine"), 1);

    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(names, ["broken", "fine", "subtly_broken"], "input order");
    assert_eq!(
        report.tools[0], originals[0],
        "a failed tool is kept as it was"
    );
    assert_eq!(report.tools[2], originals[2]);
    assert_eq!(report.tools[1].returns, Some(weather_returns()));
    assert_eq!((report.read, report.enriched, report.unchanged), (3, 1, 0));

    let failed: Vec<&str> = report
        .failed
        .iter()
        .map(|failure| failure.tool.as_str())
        .collect();
    assert_eq!(failed, ["broken", "subtly_broken"]);
    assert!(
        report.failed[0].error.contains("gave up after 3 attempts"),
        "{}",
        report.failed[0].error
    );
    assert!(
        report.failed[1].error.contains("return schema is unusable"),
        "{}",
        report.failed[1].error
    );
}

#[tokio::test]
async fn the_sources_own_descriptions_are_never_overwritten() {
    let server = StandInServer::start(|_| Reply::Json(eager_answer()))
        .await
        .unwrap();
    let parameters = json!({"type": "object", "properties": {
        "units": {"type": "string", "description": "celsius or fahrenheit"},
        "address": {"type": "object", "description": "Where to look", "properties": {
            "street": {"type": "string", "description": "Street and number"},
            "zip": {"type": "string", "description": "  "}
        }},
        "stops": {"type": "array", "description": "Stops on the way", "items": {
            "type": "object", "properties": {"name": {"type": "string"}}
        }}
    }});
    let source = tool(
        "get_weather",
        "The source's own words.",
        parameters,
        Some(json!({"type": "object"})),
    );

    let report = enrich_tools(
        &engine(&server, None),
        &Prompts::builtin().unwrap(),
        vec![source],
        &EnrichOptions::default(),
    )
    .await;

    let asked = answer_schema(&server.requests()[0]).clone();
    assert_eq!(asked["required"], json!(["parameters"]));
    assert_eq!(
        asked["properties"]["parameters"]["required"],
        json!(["address.zip", "stops[].name"])
    );
    let enriched = &report.tools[0];
    assert_eq!(enriched.description, "The source's own words.");
    assert_eq!(enriched.returns, Some(json!({"type": "object"})));
    let properties = &enriched.parameters["properties"];
    assert_eq!(properties["units"]["description"], "celsius or fahrenheit");
    assert_eq!(
        properties["address"]["properties"]["street"]["description"],
        "Street and number"
    );
    assert_eq!(
        properties["address"]["properties"]["zip"]["description"],
        "Postal code of the address."
    );
    assert_eq!(
        properties["stops"]["items"]["properties"]["name"]["description"],
        "Name of the stop."
    );
    assert_eq!(
        enriched.meta["inferred"]["fields"],
        json!([
            "/parameters/properties/address/properties/zip/description",
            "/parameters/properties/stops/items/properties/name/description"
        ])
    );
    assert_eq!(report.fields.parameters, 2);
}

#[tokio::test]
async fn a_rerun_with_the_same_cache_sends_nothing() {
    // Answers arrive out of order; the output keeps the input's.
    let server = StandInServer::start(|request| {
        let delay = if tool_named_in(request) == "first" {
            100
        } else {
            0
        };
        Reply::Slow(
            Duration::from_millis(delay),
            Box::new(Reply::Json(eager_answer())),
        )
    })
    .await
    .unwrap();
    let directory = tempfile::tempdir().unwrap();
    let cache = directory.path().join("responses.sqlite3");
    let city = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let tools: Vec<Tool> = ["first", "second", "third"]
        .iter()
        .map(|name| tool(name, "", city.clone(), None))
        .collect();
    let prompts = Prompts::builtin().unwrap();
    let options = EnrichOptions {
        seed: 7,
        ..EnrichOptions::default()
    };

    let first = enrich_tools(
        &engine(&server, Some(&cache)),
        &prompts,
        tools.clone(),
        &options,
    )
    .await;
    assert_eq!(server.request_count(), 3);
    let names: Vec<&str> = first.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "third"]);
    let seeds: Vec<u64> = server
        .requests()
        .iter()
        .map(|request| request.body["seed"].as_u64().unwrap())
        .collect();
    assert!(
        seeds[0] != seeds[1] && seeds[1] != seeds[2],
        "each tool its own seed: {seeds:?}"
    );

    let rerun = engine(&server, Some(&cache));
    let second = enrich_tools(&rerun, &prompts, tools, &options).await;
    assert_eq!(
        server.request_count(),
        3,
        "the rerun was answered from the cache"
    );
    assert_eq!(second.tools, first.tools);
    assert_eq!(rerun.tallies()[0].tally.cache_hits, 3);
    assert_eq!(rerun.tallies()[0].role, "enrich");
}
