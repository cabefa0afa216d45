//! Faults, injected with a stand-in MCP server (`tests/fixtures/standin-server.sh`, a
//! shell script, not a real server): each makes the call fail with a reason naming it,
//! and the next session starts a working instance.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use toolflow_mcp::{Executor, ResultCache, ServerConfig, import};

fn standin(mode: &str) -> ServerConfig {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/standin-server.sh"
    );
    let mut config = ServerConfig::stdio("standin", "sh", &[script, "{workdir}"]);
    config.env.insert("STANDIN_MODE".into(), "ok".into());
    config.env.insert("STANDIN_MODE_1".into(), mode.into());
    config.timeout = 2.0;
    config.start_timeout = 10.0;
    config
}

/// The reason dialogue 1's call fails with under `mode`, after checking that dialogue 0
/// and dialogue 2 (a fresh instance after the fault) get the server's answer.
async fn fault(mode: &str) -> String {
    let config = standin(mode);
    let tools = import(&config).await.unwrap();
    assert_eq!(tools.len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let cache = ResultCache::open(&dir.path().join("results.sqlite")).unwrap();
    let executor =
        Arc::new(Executor::new(vec![config], cache, dir.path().to_path_buf(), false).unwrap());
    let arguments = json!({"what": "it"});
    let mut reasons = Vec::new();
    for index in 0..3 {
        let mut session = executor.session(index);
        let first = session.call(&tools[0], &arguments).await;
        match (index, first) {
            (1, Err(error)) => reasons.push(error.to_string()),
            (1, Ok(result)) => panic!("{mode}: dialogue 1 got {result:?}"),
            (_, Ok(result)) => {
                assert_eq!(result.content, json!({"poked": 1}), "{mode}");
                assert_eq!(result.origin, "mcp:standin");
            }
            (_, Err(error)) => panic!("{mode}: dialogue {index}: {error}"),
        }
        session.close().await;
    }
    reasons.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_fails_the_call_and_the_next_dialogue_gets_a_fresh_server() {
    let reason = fault("crash").await;
    assert!(
        reason.starts_with("mcp:standin: `tools/call poke` failed"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hang_fails_at_the_timeout() {
    let started = Instant::now();
    let reason = fault("hang").await;
    assert_eq!(
        reason,
        "mcp:standin: `tools/call poke` got no answer within 2 s"
    );
    assert!(started.elapsed().as_secs_f64() < 8.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_answer_fails_the_call() {
    let reason = fault("malformed").await;
    assert!(
        reason.starts_with("mcp:standin: `tools/call poke`"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_result_is_an_error_turn_not_a_failure() {
    let config = standin("error");
    let tools = import(&config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = ResultCache::open(&dir.path().join("results.sqlite")).unwrap();
    let executor =
        Arc::new(Executor::new(vec![config], cache, dir.path().to_path_buf(), false).unwrap());
    let mut session = executor.session(1);
    let result = session.call(&tools[0], &json!({})).await.unwrap();
    session.close().await;
    assert!(result.is_error);
    assert_eq!(result.content, json!({"error": "nothing to poke"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_does_not_start_is_named() {
    let mut config = standin("ok");
    config.command = Some("/nonexistent/mcp-server".into());
    let error = import(&config).await.unwrap_err().to_string();
    assert!(
        error.starts_with("mcp:standin: the server did not start: `/nonexistent/mcp-server`"),
        "{error}"
    );
}
