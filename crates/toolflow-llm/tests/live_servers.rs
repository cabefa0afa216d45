//! Against the real servers, when they are built into the cache (scripts/build-llama-cpp.sh):
//! llama-cpp-python's server (`--chat_format chatml-function-calling`) and llama.cpp's
//! `llama-server` (`--jinja` with `examples/templates/toolflow-chatml-hermes.jinja`), both
//! over the SmolLM2-135M-Instruct GGUF toolflow-local fetches. Each test skips, saying why, when its server or the model is absent.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use toolflow_llm::{
    CacheMode, EndpointConfig, Engine, Message, ProbeOutcome, SchemaDialect, ToolChoice, ToolSpec,
    http_client,
};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cache() -> PathBuf {
    toolflow_core::default_cache_dir()
}

fn model() -> Option<PathBuf> {
    let path = cache().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    path.exists().then_some(path)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `command` and waits until the port answers HTTP, or panics after two minutes.
fn start(mut command: Command, port: u16) -> Server {
    let server = Server(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts"),
    );
    let started = Instant::now();
    // llama-server listens before its model is loaded, answering 503 until then.
    while !models_ready(port) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server did not listen"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    server
}

fn models_ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /v1/models HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

fn llama_cpp_python(port: u16, gguf: &Path) -> Option<Server> {
    let dir = cache().join("llama-cpp");
    let python = dir.join("pyenv/bin/python");
    let lib = dir.join("build/bin");
    if !python.exists() || !lib.join("libllama.so").exists() {
        eprintln!(
            "skipping: llama-cpp-python is not built in {} (run scripts/build-llama-cpp.sh)",
            dir.display()
        );
        return None;
    }
    let mut command = Command::new(python);
    command
        .env("LLAMA_CPP_LIB_PATH", lib)
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(gguf)
        .args([
            "--chat_format",
            "chatml-function-calling",
            "--n_ctx",
            "4096",
        ])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()]);
    Some(start(command, port))
}

fn llama_server(port: u16, gguf: &Path) -> Option<Server> {
    let binary = cache().join("llama-cpp/build/bin/llama-server");
    if !binary.exists() {
        eprintln!(
            "skipping: {} is not built (run scripts/build-llama-cpp.sh)",
            binary.display()
        );
        return None;
    }
    let mut command = Command::new(binary);
    command
        .arg("-m")
        .arg(gguf)
        // SmolLM2's own template has no tool section: ours shows the tools, in Hermes form.
        .args(["--jinja", "--chat-template-file"])
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/templates/toolflow-chatml-hermes.jinja"),
        )
        .args(["-c", "4096", "-t", "1", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string());
    Some(start(command, port))
}

fn weather() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "The current weather in a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }
}

/// What both servers must do: probe cleanly, answer a schema request with valid JSON in
/// the dialect the probe found, and answer a required tool call with a valid call.
async fn check(base_url: String, expected_dialect: SchemaDialect) {
    let config = EndpointConfig {
        name: Some("live".into()),
        timeout_s: 300.0,
        ..EndpointConfig::new(base_url, "smollm2")
    };
    let engine = Engine::new(
        vec![toolflow_llm::Endpoint::http(&config, http_client().unwrap()).unwrap()],
        common::fast_policy(4),
        None,
        CacheMode::Off,
    )
    .unwrap();
    let reports = engine.probe().await;
    let report = reports[0].1.as_ref().expect("an HTTP endpoint is probed");
    eprintln!("{}", serde_json::to_string_pretty(report).unwrap());
    assert!(
        report
            .checks
            .iter()
            .all(|check| check.outcome != ProbeOutcome::Failed),
        "{report:?}"
    );
    assert_eq!(
        report.capabilities.structured_output,
        Some(expected_dialect)
    );

    let mut request = common::ask("Name a city in France, as JSON.");
    request.json_schema = Some(
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    );
    request.max_tokens = Some(64);
    request.seed = Some(1);
    let answer = engine
        .complete("smollm2", "planner", &request)
        .await
        .unwrap();
    assert!(answer.json().unwrap()["city"].is_string(), "{answer:?}");

    let mut request = common::ask("What is the weather in Paris?");
    request
        .messages
        .insert(0, Message::system("Use the tools."));
    request.tools = vec![weather()];
    request.tool_choice = ToolChoice::Required;
    request.max_tokens = Some(96);
    request.seed = Some(1);
    let answer = engine
        .complete("smollm2", "assistant", &request)
        .await
        .unwrap();
    assert_eq!(answer.tool_calls[0].name, "get_weather", "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn llama_cpp_python_server() {
    let Some(gguf) = model() else {
        eprintln!("skipping: the SmolLM2 GGUF is not in the cache (run `toolflow chat hi` once)");
        return;
    };
    let port = free_port();
    let Some(_server) = llama_cpp_python(port, &gguf) else {
        return;
    };
    check(
        format!("http://127.0.0.1:{port}/v1"),
        SchemaDialect::JsonObjectSchema,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn llama_cpp_llama_server() {
    let Some(gguf) = model() else {
        eprintln!("skipping: the SmolLM2 GGUF is not in the cache (run `toolflow chat hi` once)");
        return;
    };
    let port = free_port();
    let Some(_server) = llama_server(port, &gguf) else {
        return;
    };
    check(
        format!("http://127.0.0.1:{port}/v1"),
        SchemaDialect::JsonSchema,
    )
    .await;
}
