//! `toolflow run` executing tool calls on real MCP servers (server-memory and
//! server-filesystem, started with `npx -y`), the dialogues written by the scripted model on
//! the stand-in chat server: tool turns carry the servers' answers, checked against each
//! dialogue's server state on disk; a run killed with SIGKILL again and again resumes to
//! the bytes of an uninterrupted one; a rerun executes nothing. Skips, saying why, without
//! `npx` or the package registry. Uses the real all-MiniLM-L6-v2 for the graph.

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

fn config(server: &StandInServer) -> String {
    format!(
        r#"
[tools]
paths = []
[sample]
count = 4
size = 2
[synth]
turns = [3, 3]
tools = "execute"
[[mcp]]
name = "memory"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-memory"]
env = {{ MEMORY_FILE_PATH = "{{workdir}}/memory.jsonl" }}
tools = ["create_entities", "read_graph"]
start_timeout = 120.0
[[mcp]]
name = "fs"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "{{workdir}}"]
tools = ["write_file", "list_allowed_directories"]
# write_file is annotated destructive: it runs only when allowed by name.
allow_destructive = ["write_file"]
start_timeout = 120.0
[[endpoint]]
base_url = "{}"
model = "scripted"
max_concurrency = 64
"#,
        server.base_url()
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

/// Every tool turn came from its server, and says what that dialogue's server holds.
fn check_against_server_state(out: &Path) {
    let mut executed = 0;
    for dialogue in dialogues(out) {
        let index = dialogue["index"].as_u64().unwrap();
        assert_eq!(dialogue["outcome"]["status"], "completed", "{dialogue}");
        let mut created = false;
        let mut written = false;
        for turn in dialogue["turns"].as_array().unwrap() {
            if turn["role"] != "tool" {
                continue;
            }
            let origin = turn["origin"].as_str().unwrap();
            if origin == "checked" {
                continue; // the scripted model's deliberately invalid call
            }
            executed += 1;
            let content = &turn["content"];
            match turn["name"].as_str().unwrap() {
                "create_entities" => {
                    assert_eq!(origin, "mcp:memory");
                    // The entity is new the first time only.
                    let new = content["entities"].as_array().unwrap().len();
                    assert_eq!(new, usize::from(!created), "{content}");
                    created = true;
                }
                "read_graph" => {
                    assert_eq!(origin, "mcp:memory");
                    // This dialogue's graph, and only its own: what it created before.
                    let names = content["entities"].as_array().unwrap().len();
                    assert_eq!(names, usize::from(created), "{content}");
                }
                "write_file" => {
                    assert_eq!(origin, "mcp:fs");
                    assert_eq!(text(content), "Successfully wrote to sample", "{content}");
                    written = true;
                }
                "list_allowed_directories" => {
                    assert_eq!(origin, "mcp:fs");
                    // This dialogue's own directory, and no other.
                    assert!(
                        text(content).ends_with(&format!("mcp/fs/{index}")),
                        "{content}"
                    );
                }
                other => panic!("unexpected tool {other}"),
            }
        }
        let memory = out.join(format!("mcp/memory/{index}/memory.jsonl"));
        assert_eq!(
            std::fs::read_to_string(&memory).is_ok_and(|text| text.contains("\"sample\"")),
            created,
            "{}",
            memory.display()
        );
        let file = out.join(format!("mcp/fs/{index}/sample"));
        assert_eq!(
            std::fs::read_to_string(&file).ok().as_deref() == Some("sample"),
            written,
            "{}",
            file.display()
        );
    }
    assert!(executed >= 4, "only {executed} executed calls");
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
    check_against_server_state(&out);
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
    check_against_server_state(&out);
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
