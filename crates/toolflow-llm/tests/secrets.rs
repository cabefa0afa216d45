//! The API key reaches the server and nothing else: not the cache file, not the logs
//! (captured at trace level), not errors, even when the server echoes it back.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_llm::{CacheMode, EndpointConfig};

const KEY: &str = "sk-canary-7f3a9c1e5b";
const VARIABLE: &str = "TOOLFLOW_TEST_SECRET_KEY";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread, so that the thread-local subscriber sees every event of the engine.
#[tokio::test(flavor = "current_thread")]
async fn the_key_never_leaves_the_request() {
    // SAFETY: this test binary has one test, so nothing reads the environment concurrently.
    unsafe { std::env::set_var(VARIABLE, KEY) };
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = StandInServer::start(|seen| {
        let authorization = seen.header("authorization").unwrap_or_default().to_owned();
        match seen.last_user_text() {
            // Some servers quote the key they refused.
            "refused" => Reply::Raw {
                status: 401,
                body: format!("{{\"error\": \"invalid key {authorization}\"}}"),
            },
            "overloaded" => Reply::Raw {
                status: 503,
                body: format!("busy, {authorization}"),
            },
            "limited" => Reply::RateLimited {
                retry_after: Some("0".into()),
            },
            _ => Reply::Echo,
        }
    })
    .await
    .unwrap();
    let directory = tempfile::tempdir().unwrap();
    let cache = directory.path().join("responses.sqlite3");
    let config = EndpointConfig {
        api_key_env: Some(VARIABLE.into()),
        ..endpoint_config(&server)
    };
    let engine = engine_with(config, 2, Some(&cache), CacheMode::ReadWrite);

    let mut errors = Vec::new();
    for prompt in ["hello", "refused", "overloaded", "limited", "hello"] {
        if let Err(error) = engine.complete(MODEL, "user", &ask(prompt)).await {
            errors.push(format!("{error} {error:?}"));
        }
    }
    assert_eq!(errors.len(), 3);
    assert!(
        server
            .requests()
            .iter()
            .all(|seen| seen.header("authorization") == Some(&format!("Bearer {KEY}"))),
        "the key was sent"
    );
    drop(engine);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("answered"), "debug logging was captured");
    assert!(!logs.contains(KEY), "the key is in the logs");
    for error in &errors {
        assert!(!error.contains(KEY), "the key is in an error: {error}");
    }
    assert!(errors.iter().any(|error| error.contains("[redacted]")));
    for entry in std::fs::read_dir(directory.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(KEY.len())
                .any(|window| window == KEY.as_bytes()),
            "the key is in {}",
            path.display()
        );
    }
}
