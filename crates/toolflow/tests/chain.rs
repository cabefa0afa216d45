//! Data flow end to end through the binary, on the stand-in chat server with the scripted
//! model: `toolflow sample --strategy chain` draws a subset along the graph's one
//! `return-param` edge, `toolflow synth` writes a dialogue whose call for films takes the id
//! the search returned and records the link as realised, `toolflow filter` keeps it without
//! an `unrealised-link` warning, and `toolflow eval` counts the link and the chained call;
//! that test's graph is written by hand, so it needs no embedding model. The last test does
//! the same in one `toolflow run` with `[graph] method = "flow"` and `[sample] strategy =
//! "chain"`, with the real all-MiniLM-L6-v2 (fetched into the cache on first use).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use toolflow_llm::standin::StandInServer;
use toolflow_synth::scripted::dialogue_script;

fn toolflow(dir: &Path, args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .current_dir(dir)
        .args(args)
        .arg("--json")
        .output()
        .expect("toolflow runs");
    assert!(
        output.status.success(),
        "toolflow {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON object")
}

/// A producer of person ids (from 4711 on, far from the scripted model's sample integer 1)
/// and a consumer of one; no result holds a string, so no call looks chained by chance.
const TOOLS: &str = r#"{"name": "search_person", "description": "Find people by name.", "source": "test", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}, "returns": {"type": "object", "properties": {"results": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer", "minimum": 4711}}}}}}}
{"name": "person_films", "description": "Films a person played in.", "source": "test", "parameters": {"type": "object", "properties": {"person_id": {"type": "integer"}}, "required": ["person_id"]}, "returns": {"type": "object", "properties": {"film_count": {"type": "integer", "minimum": 12}}}}
"#;

fn graph() -> Value {
    json!({
        "nodes": ["search_person", "person_films"],
        "edges": [{"a": "search_person", "b": "person_films", "kind": "return-param", "score": 0.9,
                   "evidence": {"a": "results[].id: the person's id", "b": "person_id: a person's id"}}],
        "meta": {"tau": 0.82, "model": "test", "tools_hash": "test", "strings": 2}
    })
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The scripted model on a stand-in server (kept running while the runtime lives), and a
/// directory holding [`TOOLS`] and a `run.toml` of `settings` followed by that endpoint.
fn scripted_run(settings: &str) -> (tokio::runtime::Runtime, StandInServer, tempfile::TempDir) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(StandInServer::start(dialogue_script))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tools.jsonl"), TOOLS).unwrap();
    std::fs::write(
        dir.path().join("run.toml"),
        format!(
            "{settings}[[endpoint]]\nbase_url = \"{}\"\nmodel = \"scripted\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    (runtime, server, dir)
}

#[test]
fn a_chain_subset_becomes_a_dialogue_that_realises_its_link() {
    let (_runtime, _server, dir) = scripted_run("[synth]\nturns = [4, 4]\n\n");
    let path = dir.path();
    std::fs::write(path.join("graph.json"), graph().to_string()).unwrap();

    toolflow(
        path,
        &[
            "sample",
            "graph.json",
            "--strategy",
            "chain",
            "--size",
            "2",
            "--count",
            "2",
            "-o",
            "subsets.jsonl",
        ],
    );
    let subsets = lines(&path.join("subsets.jsonl"));
    assert_eq!(subsets.len(), 2);
    for subset in &subsets {
        assert_eq!(subset["tools"], json!(["search_person", "person_films"]));
        assert_eq!(
            subset["links"],
            json!([{"producer": "search_person", "field": "results[].id",
                    "consumer": "person_films", "parameter": "person_id"}])
        );
    }

    let synth = toolflow(
        path,
        &[
            "synth",
            "subsets.jsonl",
            "--tools",
            "tools.jsonl",
            "-o",
            "dialogues.jsonl",
            "--config",
            "run.toml",
        ],
    );
    let dialogues = lines(&path.join("dialogues.jsonl"));
    assert_eq!(dialogues.len(), 2, "{synth}");
    for dialogue in &dialogues {
        assert_eq!(dialogue["outcome"]["status"], "completed", "{dialogue}");
        // The first call searches; the first call for films, after the search's result,
        // passes the id that result holds.
        let turns = dialogue["turns"].as_array().unwrap();
        let calls: Vec<(usize, &Value)> = turns
            .iter()
            .enumerate()
            .flat_map(|(at, turn)| {
                turn["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |call| (at, call))
            })
            .collect();
        assert_eq!(calls[0].1["name"], "search_person");
        let searched = turns
            .iter()
            .position(|turn| turn["role"] == "tool" && turn["name"] == "search_person")
            .unwrap();
        assert_eq!(turns[searched]["content"]["results"][0]["id"], 4711);
        let (at, films) = calls
            .iter()
            .find(|(_, call)| call["name"] == "person_films")
            .unwrap();
        assert!(*at > searched);
        assert_eq!(films["arguments"], json!({"person_id": 4711}));
        assert_eq!(
            dialogue["links"],
            json!([{"producer": "search_person", "field": "results[].id",
                    "consumer": "person_films", "parameter": "person_id", "realised": true}])
        );
    }

    toolflow(
        path,
        &[
            "filter",
            "dialogues.jsonl",
            "--kept",
            "kept.jsonl",
            "--rejected",
            "rejected.jsonl",
            "--offline",
        ],
    );
    let rejected = std::fs::read_to_string(path.join("rejected.jsonl")).unwrap();
    assert!(!rejected.contains("unrealised-link"), "{rejected}");

    toolflow(
        path,
        &[
            "eval",
            "dialogues.jsonl",
            "-o",
            "metrics.json",
            "--no-coherence",
        ],
    );
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(path.join("metrics.json")).unwrap()).unwrap();
    let statistics = &metrics["runs"][0]["statistics"];
    assert_eq!(statistics["links_planned"], 2);
    assert_eq!(statistics["links_realised"], 2);
    assert_eq!(statistics["links_realised_share"], 1.0);
    let chained = statistics["chained_calls"].as_u64().unwrap();
    assert!(chained >= 2, "{statistics}");
    println!(
        "toolflow sample --strategy chain → synth → eval: links planned {}, realised {}; \
         tool calls {}, chained calls {chained} ({:.1}%)",
        statistics["links_planned"],
        statistics["links_realised"],
        statistics["tool_calls"],
        100.0 * statistics["chained_call_share"].as_f64().unwrap()
    );
}

#[test]
fn a_chain_run_realises_its_links() {
    let (_runtime, _server, dir) = scripted_run(
        "[tools]\npaths = [\"tools.jsonl\"]\n\n[graph]\nmethod = \"flow\"\n\n\
         [sample]\nsize = 2\ncount = 3\nstrategy = \"chain\"\n\n[synth]\nturns = [4, 4]\n\n",
    );
    let path = dir.path();
    let summary = toolflow(path, &["run", "run.toml", "--no-cache"]);
    let out = path.join("toolflow-out");
    // The flow graph reads `results[].id` of search_person as `person id`: person_films'
    // `person_id`.
    let subsets = lines(&out.join("subsets.jsonl"));
    assert_eq!(subsets.len(), 3);
    for subset in &subsets {
        assert_eq!(subset["links"][0]["field"], "results[].id", "{subset}");
        assert_eq!(subset["links"][0]["parameter"], "person_id", "{subset}");
    }
    assert_eq!(summary["synth"]["completed"], 3, "{}", summary["synth"]);
    // Every dialogue written realised its link.
    let links: Vec<Value> = lines(&out.join("dialogues.jsonl"))
        .iter()
        .flat_map(|dialogue| dialogue["links"].as_array().cloned().unwrap_or_default())
        .collect();
    let realised = links.iter().filter(|link| link["realised"] == true).count();
    assert_eq!((links.len(), realised), (3, 3), "{links:?}");
    // The eval stage measures the kept ones.
    let kept = lines(&out.join("kept.jsonl")).len();
    assert!(kept >= 1);
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    let statistics = &metrics["runs"][0]["statistics"];
    assert_eq!(statistics["links_planned"], kept, "{statistics}");
    assert_eq!(statistics["links_realised"], kept, "{statistics}");
    assert!(
        statistics["chained_calls"].as_u64().unwrap() >= kept as u64,
        "{statistics}"
    );
    let rejected = std::fs::read_to_string(out.join("rejected.jsonl")).unwrap();
    assert!(!rejected.contains("unrealised-link"), "{rejected}");
    println!(
        "toolflow run, [sample] strategy = \"chain\": links planned {}, realised {realised} over \
         the 3 dialogues; kept {kept}: links planned {}, realised {}, tool calls {}, \
         chained calls {} ({:.1}%)",
        links.len(),
        statistics["links_planned"],
        statistics["links_realised"],
        statistics["tool_calls"],
        statistics["chained_calls"],
        100.0 * statistics["chained_call_share"].as_f64().unwrap()
    );
}
