//! `toolflow run` executing tool calls on real MCP servers (server-memory and
//! server-filesystem, started with `npx -y`), the dialogues written by the scripted model on
//! the stand-in chat server: tool turns carry the servers' answers, checked against each
//! dialogue's server state on disk; a run killed with SIGKILL again and again resumes to
//! the bytes of an uninterrupted one; a rerun executes nothing. Skips, saying why, without
//! `npx` or the package registry. Uses the real all-MiniLM-L6-v2 for the graph.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use toolflow_llm::standin::StandInServer;
use toolflow_synth::scripted::dialogue_script;

/// Why the servers cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    let ok = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !ok("npx", &["--version"]) {
        return Some("npx is not installed".into());
    }
    if !ok(
        "npm",
        &["view", "@modelcontextprotocol/server-memory", "version"],
    ) {
        return Some("the npm package registry is not reachable".into());
    }
    // Download both packages now, so that a run's start timeout is not spent on it.
    for package in ["server-memory", "server-filesystem"] {
        let mut child = Command::new("npx")
            .args(["-y", &format!("@modelcontextprotocol/{package}"), "/tmp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let waited = (0..3000).find(|_| {
            std::thread::sleep(Duration::from_millis(100));
            child.try_wait().ok().flatten().is_some()
        });
        if waited.is_none() {
            let _ = child.kill();
            return Some(format!("downloading {package} took over 5 minutes"));
        }
    }
    None
}

/// The two servers, each dialogue with its own working directory.
const SERVERS: &str = r#"
[tools]
paths = []
[[mcp]]
name = "memory"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-memory"]
env = { MEMORY_FILE_PATH = "{workdir}/memory.jsonl" }
tools = ["create_entities", "read_graph"]
start_timeout = 120.0
[[mcp]]
name = "fs"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "{workdir}"]
tools = ["write_file", "list_allowed_directories"]
# write_file is annotated destructive: it runs only when allowed by name.
allow_destructive = ["write_file"]
start_timeout = 120.0
"#;

/// The scripted model on the stand-in chat server.
fn config(server: &StandInServer) -> String {
    format!(
        r#"{SERVERS}
[sample]
count = 4
size = 2
[synth]
turns = [3, 3]
tools = "execute"
[[endpoint]]
base_url = "{}"
model = "scripted"
max_concurrency = 64
"#,
        server.base_url()
    )
}

/// The embedded SmolLM2-135M-Instruct (no endpoint) with the demo's `[synth]` settings,
/// two dialogues written together.
fn embedded_config() -> String {
    format!(
        r#"{SERVERS}
[sample]
count = 2
size = 2
[synth]
turns = [2, 2]
extra_turns = 1
tool_choice = "plan"
structured_answers = true
simulated_errors = false
turn_attempts = 3
plan_attempts = 5
concurrency = 2
max_tokens = 256
max_message_chars = 240
temperature = 0.6
tools = "execute"
[judge]
sample = 0
"#
    )
}

fn toolflow(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_toolflow"));
    command.current_dir(dir).args(args).arg("--json");
    command
}

fn run_ok(dir: &Path, args: &[&str]) -> Value {
    let output = toolflow(dir, args).output().expect("toolflow runs");
    assert!(
        output.status.success(),
        "toolflow {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON object")
}

fn dialogues(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("dialogues.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Executed results recorded in the run.
fn results(out: &Path) -> u64 {
    let cache = toolflow_mcp::ResultCache::open(&out.join("tool-results.sqlite")).unwrap();
    cache.len().unwrap()
}

/// The text of a filesystem-server result (its structured `content`).
fn text(content: &Value) -> &str {
    content["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {content}"))
}

/// The entity names in a memory-server result or memory file line.
fn entity_names(entities: &Value) -> BTreeSet<String> {
    entities
        .as_array()
        .unwrap_or_else(|| panic!("no entity list in {entities}"))
        .iter()
        .map(|entity| entity["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every executed tool turn says what its own dialogue's server holds, whatever the calls
/// were: created entities are new to the dialogue and end up in its memory file, a graph
/// read shows exactly what the dialogue created before it, a written file holds what was
/// last written to it, and the allowed directory is the dialogue's own. Returns the number
/// of calls a server answered, and of those it refused (`isError`).
fn check_against_server_state(out: &Path) -> (usize, usize) {
    let mut executed = 0;
    let mut refused = 0;
    for dialogue in dialogues(out) {
        let index = dialogue["index"].as_u64().unwrap();
        let workdir = |server: &str| out.join(format!("mcp/{server}/{index}"));
        let turns = dialogue["turns"].as_array().unwrap();
        let calls: HashMap<&str, &Value> = turns
            .iter()
            .filter_map(|turn| turn["tool_calls"].as_array())
            .flatten()
            .map(|call| (call["id"].as_str().unwrap(), &call["arguments"]))
            .collect();
        let mut created = BTreeSet::new();
        let mut written = BTreeMap::new();
        for turn in turns.iter().filter(|turn| turn["role"] == "tool") {
            let origin = turn["origin"].as_str().unwrap();
            let name = turn["name"].as_str().unwrap();
            if origin == "checked" {
                continue; // refused before any server saw it
            }
            let expected_origin = match name {
                "create_entities" | "read_graph" => "mcp:memory",
                _ => "mcp:fs",
            };
            assert_eq!(origin, expected_origin, "{turn}");
            if turn["is_error"] == true {
                refused += 1; // the server's refusal changes nothing it holds
                continue;
            }
            executed += 1;
            let content = &turn["content"];
            let arguments = calls[turn["tool_call_id"].as_str().unwrap()];
            match name {
                "create_entities" => {
                    let new = entity_names(&content["entities"]);
                    assert!(new.is_disjoint(&created), "{content} after {created:?}");
                    assert!(new.is_subset(&entity_names(&arguments["entities"])));
                    created.extend(new);
                }
                "read_graph" => {
                    // This dialogue's graph, and only its own.
                    assert_eq!(entity_names(&content["entities"]), created, "{content}");
                }
                "write_file" => {
                    let path = arguments["path"].as_str().unwrap();
                    assert_eq!(text(content), format!("Successfully wrote to {path}"));
                    let file = workdir("fs").join(path);
                    written.insert(file, arguments["content"].as_str().unwrap().to_string());
                }
                "list_allowed_directories" => {
                    let own = format!("mcp/fs/{index}");
                    assert!(text(content).ends_with(&own), "{content}");
                }
                other => panic!("unexpected tool {other}"),
            }
        }
        let memory = workdir("memory").join("memory.jsonl");
        let stored: BTreeSet<String> = std::fs::read_to_string(&memory)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| line["type"] == "entity")
            .map(|entity| entity["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(stored, created, "{}", memory.display());
        for (file, content) in written {
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                content,
                "{}",
                file.display()
            );
        }
    }
    (executed, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_executes_on_real_servers_and_resumes_to_the_same_bytes() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run.toml"), config(&server)).unwrap();
    let out = dir.path().join("toolflow-out");

    // Uninterrupted.
    let first = run_ok(dir.path(), &["run", "run.toml", "--no-cache"]);
    assert_eq!(first["synth"]["completed"], 4, "{}", first["synth"]);
    let tools = std::fs::read_to_string(out.join("tools.jsonl")).unwrap();
    assert_eq!(tools.lines().count(), 4);
    // The scripted model's valid calls all succeed.
    let (executed, refused) = check_against_server_state(&out);
    assert!(executed >= 4, "only {executed} executed calls");
    assert_eq!(refused, 0);
    let expected = std::fs::read(out.join("dialogues.jsonl")).unwrap();
    let recorded = results(&out);

    // Killed with SIGKILL during synthesis, again and again, from scratch.
    std::fs::remove_dir_all(&out).unwrap();
    let mut kills = 0;
    for delay in [3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000] {
        let mut child = toolflow(dir.path(), &["run", "run.toml", "--no-cache"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if out.join("run.sqlite").exists() && !out.join("dialogues.jsonl").exists() {
            kills += 1;
        }
    }
    let resumed = run_ok(dir.path(), &["run", "run.toml", "--no-cache"]);
    println!(
        "{kills} kills landed in synthesis; then {}",
        resumed["synth"]
    );
    assert!(kills >= 1, "no kill landed in synthesis");
    assert_eq!(
        std::fs::read(out.join("dialogues.jsonl")).unwrap(),
        expected
    );
    assert_eq!(check_against_server_state(&out), (executed, 0));
    assert_eq!(results(&out), recorded);

    // A rerun from the records starts no server: the working directories stay gone.
    std::fs::remove_dir_all(out.join("mcp")).unwrap();
    let again = run_ok(dir.path(), &["run", "run.toml", "--no-cache", "--force"]);
    assert_eq!(again["synth"]["written"], 4, "{}", again["synth"]);
    assert_eq!(
        std::fs::read(out.join("dialogues.jsonl")).unwrap(),
        expected
    );
    assert!(!out.join("mcp").exists(), "a server was started");
}

/// A run whose only tool is the stand-in MCP server's `poke` (toolflow-mcp's
/// `tests/fixtures/standin-server.sh`, a shell script, not a real server), answering
/// normally except in dialogue 1, where it behaves as `mode` says.
fn faulty_config(server: &StandInServer, mode: &str) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../toolflow-mcp/tests/fixtures/standin-server.sh"
    );
    format!(
        r#"
[tools]
paths = []
[sample]
count = 4
size = 1
[synth]
turns = [2, 2]
tools = "execute"
[[mcp]]
name = "standin"
command = "sh"
args = ["{script}", "{{workdir}}"]
env = {{ STANDIN_MODE = "ok", STANDIN_MODE_1 = "{mode}" }}
timeout = 2.0
start_timeout = 20.0
[[endpoint]]
base_url = "{}"
model = "scripted"
max_concurrency = 64
"#,
        server.base_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_fault_fails_its_dialogue_and_the_run_goes_on() {
    let server = StandInServer::start(dialogue_script).await.unwrap();
    for mode in ["crash", "hang", "malformed"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.toml"), faulty_config(&server, mode)).unwrap();
        let summary = run_ok(dir.path(), &["run", "run.toml", "--no-cache"]);
        let out = dir.path().join("toolflow-out");
        let dialogues = dialogues(&out);
        assert_eq!(dialogues.len(), 4, "{mode}: {}", summary["synth"]);
        for dialogue in &dialogues {
            let index = dialogue["index"].as_u64().unwrap();
            let outcome = &dialogue["outcome"];
            let executed = dialogue["turns"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|turn| turn["origin"] == "mcp:standin")
                .count();
            if index == 1 {
                assert_eq!(outcome["status"], "failed", "{mode}: {dialogue}");
                let reason = outcome["reason"].as_str().unwrap();
                assert!(reason.contains("standin"), "{mode}: {reason}");
                assert_eq!(executed, 0, "{mode}: {dialogue}");
            } else {
                // Before and after the fault, the server answers: the next dialogue got a
                // working instance.
                assert_eq!(outcome["status"], "completed", "{mode}: {dialogue}");
                assert!(executed >= 1, "{mode}: {dialogue}");
            }
        }
        println!("{mode}: {}", summary["synth"]);
    }
}

/// The embedded model, not a script, calls the real servers: its calls are whatever a
/// 135M model writes, so the check is the servers' state, not expected values. A run
/// killed with SIGKILL mid-synthesis then resumed writes the uninterrupted run's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_model_executes_on_real_servers_and_resumes_to_the_same_bytes() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run.toml"), embedded_config()).unwrap();
    let out = dir.path().join("toolflow-out");

    let started = std::time::Instant::now();
    let first = run_ok(dir.path(), &["run", "run.toml", "--no-cache"]);
    let wall = started.elapsed();
    let (executed, refused) = check_against_server_state(&out);
    println!(
        "uninterrupted: {} in {:.0} s, {executed} executed calls, {refused} refused by a server",
        first["synth"],
        wall.as_secs_f64()
    );
    assert!(executed >= 1, "no call was executed: {}", first["synth"]);
    for dialogue in dialogues(&out) {
        let tool_turns: Vec<String> = dialogue["turns"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|turn| turn["role"] == "tool")
            .map(|turn| {
                format!(
                    "{} {} error={}",
                    turn["name"], turn["origin"], turn["is_error"]
                )
            })
            .collect();
        println!("dialogue {}: {tool_turns:?}", dialogue["index"]);
    }
    let expected = std::fs::read(out.join("dialogues.jsonl")).unwrap();
    let recorded = results(&out);

    // Killed with SIGKILL once synthesis has executed a call, then resumed.
    std::fs::remove_dir_all(&out).unwrap();
    let mut child = toolflow(dir.path(), &["run", "run.toml", "--no-cache"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let results_file = out.join("tool-results.sqlite");
    let mut killed_in_synthesis = false;
    while child.try_wait().unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if results_file.exists() && results(&out) >= 1 {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            killed_in_synthesis = !out.join("dialogues.jsonl").exists();
            break;
        }
    }
    assert!(killed_in_synthesis, "the run ended before a kill landed");
    let resumed = run_ok(dir.path(), &["run", "run.toml", "--no-cache"]);
    println!("resumed: {}", resumed["synth"]);
    assert_eq!(
        std::fs::read(out.join("dialogues.jsonl")).unwrap(),
        expected
    );
    assert_eq!(check_against_server_state(&out), (executed, refused));
    assert_eq!(results(&out), recorded);
}
