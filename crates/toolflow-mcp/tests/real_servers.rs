//! Against the reference MCP servers, started with `npx -y` (Node 20 and npm on the
//! machine; the first run downloads the packages). Each test skips, saying why, when `npx`
//! or the package registry is missing, or when the download does not finish in time.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use toolflow_core::Tool;
use toolflow_mcp::{Executor, McpError, ResultCache, ServerConfig, import};

/// Why these tests cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    let run = |program: &str, args: &[&str]| {
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(status) = child.try_wait().ok()? {
                return Some(status.success());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        Some(false)
    };
    if run("npx", &["--version"]) != Some(true) {
        return Some("npx is not installed".into());
    }
    if run(
        "npm",
        &["view", "@modelcontextprotocol/server-memory", "version"],
    ) != Some(true)
    {
        return Some("the npm package registry is not reachable".into());
    }
    None
}

fn npx(name: &str, package: &str, extra: &[&str]) -> ServerConfig {
    let mut args = vec!["-y", package];
    args.extend_from_slice(extra);
    let mut config = ServerConfig::stdio(name, "npx", &args);
    // The first start downloads the package.
    config.start_timeout = 300.0;
    config
}

/// The tools, or None (after saying so) when the download timed out.
async fn import_or_skip(config: &ServerConfig) -> Option<Vec<Tool>> {
    match import(config).await {
        Ok(tools) => Some(tools),
        Err(error @ McpError::Start { .. }) if error.to_string().contains("no handshake") => {
            eprintln!("skipped: {error} (the package download did not finish)");
            None
        }
        Err(error) => panic!("{error}"),
    }
}

fn check_tools(tools: &[Tool], server: &str) {
    for tool in tools {
        assert_eq!(tool.source, format!("mcp:{server}"));
        assert_eq!(tool.parameters["type"], "object", "{}", tool.name);
        jsonschema::validator_for(&tool.parameters)
            .unwrap_or_else(|e| panic!("{server}/{}: parameters: {e}", tool.name));
        if let Some(returns) = &tool.returns {
            jsonschema::validator_for(returns)
                .unwrap_or_else(|e| panic!("{server}/{}: returns: {e}", tool.name));
        }
    }
}

fn names(tools: &[Tool]) -> Vec<&str> {
    tools.iter().map(|tool| tool.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_servers_tools_import_with_valid_schemas() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let everything = npx("everything", "@modelcontextprotocol/server-everything", &[]);
    let memory = npx("memory", "@modelcontextprotocol/server-memory", &[]);
    let filesystem = npx(
        "fs",
        "@modelcontextprotocol/server-filesystem",
        &[dir.path().to_str().unwrap()],
    );
    let mut counts = Vec::new();
    for config in [&everything, &memory, &filesystem] {
        let Some(tools) = import_or_skip(config).await else {
            return;
        };
        check_tools(&tools, &config.name);
        counts.push((config.name.clone(), tools.len()));
        let names = names(&tools);
        match config.name.as_str() {
            "everything" => {
                assert!(names.contains(&"echo"), "{names:?}");
                // It shows the newer fields: output schemas and annotations.
                assert!(tools.iter().any(|tool| tool.returns.is_some()), "{names:?}");
                assert!(
                    tools
                        .iter()
                        .any(|tool| tool.meta.contains_key("annotations"))
                );
            }
            "memory" => {
                for expected in [
                    "create_entities",
                    "create_relations",
                    "read_graph",
                    "search_nodes",
                ] {
                    assert!(names.contains(&expected), "{names:?}");
                }
            }
            _ => {
                for expected in ["read_text_file", "write_file", "list_directory"] {
                    assert!(names.contains(&expected), "{names:?}");
                }
            }
        }
    }
    eprintln!("tools per server: {counts:?}");
    // The allow-list keeps only the tools it names.
    let mut only = memory.clone();
    only.tools = Some(vec!["read_graph".into(), "search_nodes".into()]);
    let tools = import_or_skip(&only).await.unwrap();
    assert_eq!(names(&tools), ["read_graph", "search_nodes"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_calls_run_per_dialogue_and_replay_from_the_record() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut memory = npx("memory", "@modelcontextprotocol/server-memory", &[]);
    // Each dialogue's graph lives in its own working directory.
    memory
        .env
        .insert("MEMORY_FILE_PATH".into(), "{workdir}/memory.jsonl".into());
    let Some(tools) = import_or_skip(&memory).await else {
        return;
    };
    let tool = |name: &str| tools.iter().find(|tool| tool.name == name).unwrap().clone();
    let (create, read) = (tool("create_entities"), tool("read_graph"));
    let entity = json!({"entities": [{"name": "Ada", "entityType": "person", "observations": ["writes programs"]}]});
    let executor = |refresh| {
        let cache = ResultCache::open(&dir.path().join("tool-results.sqlite")).unwrap();
        Arc::new(
            Executor::new(
                vec![memory.clone()],
                cache,
                dir.path().join("work"),
                refresh,
            )
            .unwrap(),
        )
    };

    let first = executor(false);
    let mut session = first.session(0);
    let created = session.call(&create, &entity).await.unwrap();
    assert_eq!(created.origin, "mcp:memory");
    assert!(!created.is_error, "{:?}", created.content);
    let graph = session.call(&read, &json!({})).await.unwrap();
    session.close().await;
    let entities = graph_entities(&graph.content);
    assert_eq!(entities, ["Ada"], "{}", graph.content);
    // The server's own file holds what the result says.
    let file = std::fs::read_to_string(dir.path().join("work/memory/0/memory.jsonl")).unwrap();
    assert!(file.contains("\"Ada\""), "{file}");
    // Another dialogue starts from an empty graph.
    let mut other = first.session(1);
    let empty = other.call(&read, &json!({})).await.unwrap();
    other.close().await;
    assert!(
        graph_entities(&empty.content).is_empty(),
        "{}",
        empty.content
    );
    assert_eq!(first.executed(), 3);

    // A rerun reads every result back and executes nothing.
    let again = executor(false);
    let mut session = again.session(0);
    assert_eq!(session.call(&create, &entity).await.unwrap(), created);
    assert_eq!(session.call(&read, &json!({})).await.unwrap(), graph);
    // A call not recorded yet replays the earlier ones on a fresh server first, so it
    // sees their state.
    let search = session
        .call(&tool("search_nodes"), &json!({"query": "Ada"}))
        .await
        .unwrap();
    session.close().await;
    assert_eq!(
        graph_entities(&search.content),
        ["Ada"],
        "{}",
        search.content
    );
    assert_eq!((again.executed(), again.replayed()), (1, 2));

    // --refresh-tools executes anew.
    let fresh = executor(true);
    let mut session = fresh.session(0);
    session.call(&create, &entity).await.unwrap();
    session.close().await;
    assert_eq!(fresh.executed(), 1);
}

/// The entity names of a memory-server graph result.
fn graph_entities(result: &Value) -> Vec<String> {
    result["entities"]
        .as_array()
        .unwrap_or_else(|| panic!("no entities in {result}"))
        .iter()
        .map(|entity| entity["name"].as_str().unwrap().to_owned())
        .collect()
}

/// server-everything in its Streamable HTTP mode, on a free loopback port; killed on drop
/// with its whole process group (killing `npx` alone leaves the node server running).
struct HttpServer {
    child: std::process::Child,
    url: String,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        // SAFETY: killpg takes plain integers; a group that is gone gives ESRCH.
        unsafe { libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The server once it says it listens, or None (after saying why) when it never does.
fn start_http_everything() -> Option<HttpServer> {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new("npx")
        .args([
            "-y",
            "@modelcontextprotocol/server-everything",
            "streamableHttp",
        ])
        .env("PORT", port.to_string())
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    // It announces itself on stdout or stderr, depending on the version.
    let (said, heard) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let said = said.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = said.send(());
                }
            }
        });
    }
    let server = HttpServer {
        child,
        url: format!("http://127.0.0.1:{port}/mcp"),
    };
    // The first start downloads the package.
    match heard.recv_timeout(Duration::from_secs(300)) {
        Ok(()) => Some(server),
        Err(_) => {
            eprintln!("skipped: server-everything did not start listening in 5 minutes");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamable_http_server_imports_and_executes() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let Some(server) = start_http_everything() else {
        return;
    };
    let mut config = ServerConfig::stdio("web", "unused", &[]);
    config.command = None;
    config.url = Some(server.url.clone());
    config.check().unwrap();
    let tools = import(&config).await.unwrap();
    check_tools(&tools, "web");
    let names = names(&tools);
    assert!(
        names.contains(&"echo") && names.contains(&"get-sum"),
        "{names:?}"
    );
    let tool = |name: &str| tools.iter().find(|tool| tool.name == name).unwrap().clone();

    let dir = tempfile::tempdir().unwrap();
    let cache = ResultCache::open(&dir.path().join("tool-results.sqlite")).unwrap();
    let executor =
        Arc::new(Executor::new(vec![config], cache, dir.path().join("work"), false).unwrap());
    let mut session = executor.session(0);
    let echoed = session
        .call(&tool("echo"), &json!({"message": "over http"}))
        .await
        .unwrap();
    let sum = session
        .call(&tool("get-sum"), &json!({"a": 19, "b": 23}))
        .await
        .unwrap();
    session.close().await;
    assert_eq!(echoed.origin, "mcp:web");
    assert!(
        echoed.content.to_string().contains("over http"),
        "{}",
        echoed.content
    );
    assert!(
        !sum.is_error && sum.content.to_string().contains("42"),
        "{}",
        sum.content
    );
    assert_eq!(executor.executed(), 2);
}
