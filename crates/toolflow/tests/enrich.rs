//! `toolflow enrich` end to end against the stand-in chat server: missing fields are filled
//! and marked, a rerun is answered from the response cache, a file that needs nothing needs
//! no endpoint, and a bad line is reported with its file and line.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use toolflow_llm::standin::{Reply, SeenRequest, StandInServer};

fn toolflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .current_dir(dir)
        .args(args)
        .args(["--cache-dir", "cache"])
        .output()
        .expect("toolflow runs")
}

fn summary(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "toolflow failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON object")
}

/// A model that answers exactly what the request's answer schema asks for.
fn answer(request: &SeenRequest) -> Reply {
    let asked = &request.body["response_format"]["json_schema"]["schema"];
    let mut answer = json!({});
    for field in asked["required"].as_array().unwrap() {
        match field.as_str().unwrap() {
            "description" => answer["description"] = json!("Looks something up."),
            "parameters" => {
                let labels = asked["properties"]["parameters"]["required"]
                    .as_array()
                    .unwrap();
                let described: serde_json::Map<String, Value> = labels
                    .iter()
                    .map(|label| {
                        (
                            label.as_str().unwrap().to_owned(),
                            json!(format!("The {}.", label.as_str().unwrap())),
                        )
                    })
                    .collect();
                answer["parameters"] = Value::Object(described);
            }
            "returns" => {
                answer["returns"] = json!({"type": "object", "properties": {
                    "result": {"type": "string", "description": "What was found."}
                }})
            }
            other => panic!("unexpected field {other}"),
        }
    }
    Reply::Json(answer)
}

fn write_endpoints(dir: &Path, server: &StandInServer) {
    let endpoints = format!(
        "[engine]\nmax_attempts = 2\nbackoff_base_ms = 5\nbackoff_cap_ms = 10\n\n\
         [[endpoint]]\nname = \"standin\"\nbase_url = \"{}\"\nmodel = \"standin-model\"\ntimeout_s = 5\n",
        server.base_url()
    );
    std::fs::write(dir.join("endpoints.toml"), endpoints).unwrap();
}

#[test]
fn enrich_fills_and_marks_missing_fields_and_reruns_from_the_cache() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(StandInServer::start(answer)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_endpoints(dir.path(), &server);
    let tools = [
        json!({"name": "lookup", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}),
        json!({"name": "documented", "description": "Does it.", "parameters": {"type": "object", "properties": {}},
               "returns": {"type": "object"}}),
        json!({"name": "no_returns", "description": "Has words.", "parameters": {"type": "object", "properties": {}}}),
    ];
    let lines: Vec<String> = tools.iter().map(Value::to_string).collect();
    std::fs::write(dir.path().join("tools.jsonl"), lines.join("\n") + "\n").unwrap();

    let args = [
        "enrich",
        "tools.jsonl",
        "-o",
        "enriched.jsonl",
        "--endpoints",
        "endpoints.toml",
        "--json",
    ];
    let first = summary(&toolflow(dir.path(), &args));
    assert_eq!(first["report"]["read"], 3);
    assert_eq!(first["report"]["enriched"], 2);
    assert_eq!(first["report"]["unchanged"], 1);
    assert_eq!(
        first["report"]["fields"],
        json!({"descriptions": 1, "parameters": 1, "returns": 2})
    );
    assert_eq!(first["usage"][0]["role"], "enrich");
    assert_eq!(
        server.request_count(),
        2,
        "the documented tool costs nothing"
    );

    let enriched: Vec<Value> = std::fs::read_to_string(dir.path().join("enriched.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<&str> = enriched
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lookup", "documented", "no_returns"]);
    assert_eq!(enriched[0]["description"], "Looks something up.");
    assert_eq!(
        enriched[0]["parameters"]["properties"]["query"]["description"],
        "The query."
    );
    assert_eq!(
        enriched[0]["meta"]["inferred"],
        json!({"fields": ["/description", "/parameters/properties/query/description", "/returns"],
               "model": "standin-model"})
    );
    assert_eq!(enriched[1]["description"], "Does it.");
    assert!(
        enriched[1].get("meta").is_none(),
        "a tool that needed nothing gets no marks"
    );
    assert_eq!(enriched[2]["description"], "Has words.");
    assert_eq!(
        enriched[2]["meta"]["inferred"]["fields"],
        json!(["/returns"])
    );

    let rerun = summary(&toolflow(dir.path(), &args));
    assert_eq!(
        server.request_count(),
        2,
        "the rerun was answered from the cache"
    );
    assert_eq!(rerun["usage"][0]["cache_hits"], 2);
    assert_eq!(rerun["report"], first["report"]);

    // Without return schemas only `lookup` needs anything, and asking for fewer fields is
    // another question: one new request.
    let no_returns = [
        "enrich",
        "tools.jsonl",
        "-o",
        "descriptions.jsonl",
        "--endpoints",
        "endpoints.toml",
        "--json",
        "--no-returns",
    ];
    let descriptions = summary(&toolflow(dir.path(), &no_returns));
    assert_eq!(descriptions["report"]["enriched"], 1);
    assert_eq!(descriptions["report"]["unchanged"], 2);
    assert_eq!(server.request_count(), 3);
}

#[test]
fn a_file_that_needs_nothing_needs_no_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let tool = json!({"name": "documented", "description": "Does it.",
                      "parameters": {"type": "object", "properties": {}}, "returns": {"type": "object"}});
    std::fs::write(dir.path().join("tools.jsonl"), format!("{tool}\n")).unwrap();
    // No endpoints file: with work to do, the embedded model would be loaded.
    let output = toolflow(
        dir.path(),
        &["enrich", "tools.jsonl", "-o", "out.jsonl", "--offline"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("enriched 0 of 1 tools"), "{stderr}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap())
            .unwrap();
    assert_eq!(written["description"], "Does it.");
}

#[test]
fn a_bad_line_is_reported_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tools.jsonl"),
        "{\"name\": \"ok\"}\n{\"name\": 5}\n",
    )
    .unwrap();
    let output = toolflow(dir.path(), &["enrich", "tools.jsonl", "-o", "out.jsonl"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tools.jsonl:2:"), "{stderr}");
    assert!(!dir.path().join("out.jsonl").exists());
}
