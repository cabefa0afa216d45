//! The response cache: a rerun costs nothing, cache-only mode answers without a server,
//! `--no-cache` always asks, and answers that broke the contract are never stored.

mod common;

use common::*;
use serde_json::json;
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_llm::{CacheMode, EndpointConfig, EngineError, ToolSpec};

fn priced(server: &StandInServer) -> EndpointConfig {
    EndpointConfig {
        price_prompt_per_million: 2.0,
        price_completion_per_million: 8.0,
        ..endpoint_config(server)
    }
}

#[tokio::test]
async fn a_rerun_costs_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let cache = directory.path().join("responses.sqlite3");
    let server = StandInServer::queue(vec![], Reply::Echo).await.unwrap();
    let prompts = ["one", "two", "three"];

    let first = engine_with(priced(&server), 1, Some(&cache), CacheMode::ReadWrite);
    for prompt in prompts {
        first.complete(MODEL, "user", &ask(prompt)).await.unwrap();
    }
    let paid = first.tallies()[0].tally.clone();
    assert_eq!((paid.answers, paid.attempts, paid.cache_hits), (3, 3, 0));
    assert!(paid.cost_usd > 0.0);
    drop(first);

    let rerun = engine_with(priced(&server), 1, Some(&cache), CacheMode::ReadWrite);
    for prompt in prompts {
        assert_eq!(
            rerun
                .complete(MODEL, "user", &ask(prompt))
                .await
                .unwrap()
                .text
                .as_deref(),
            Some(prompt)
        );
    }
    assert_eq!(server.request_count(), 3, "the rerun sent nothing");
    let free = rerun.tallies()[0].tally.clone();
    assert_eq!(
        (
            free.answers,
            free.attempts,
            free.cache_hits,
            free.prompt_tokens,
            free.cost_usd
        ),
        (3, 0, 3, 0, 0.0)
    );

    // Another seed is another request.
    let mut seeded = ask("one");
    seeded.seed = Some(1);
    rerun.complete(MODEL, "user", &seeded).await.unwrap();
    assert_eq!(server.request_count(), 4);
}

#[tokio::test]
async fn cache_only_mode_never_reaches_a_server() {
    let directory = tempfile::tempdir().unwrap();
    let cache = directory.path().join("responses.sqlite3");
    let server = StandInServer::queue(vec![], Reply::Echo).await.unwrap();
    engine_with(
        endpoint_config(&server),
        1,
        Some(&cache),
        CacheMode::ReadWrite,
    )
    .complete(MODEL, "user", &ask("known"))
    .await
    .unwrap();

    let replay = engine_with(endpoint_config(&server), 1, Some(&cache), CacheMode::Only);
    assert_eq!(
        replay
            .complete(MODEL, "user", &ask("known"))
            .await
            .unwrap()
            .text
            .as_deref(),
        Some("known")
    );
    let miss = replay
        .complete(MODEL, "user", &ask("unknown"))
        .await
        .unwrap_err();
    assert!(matches!(miss, EngineError::CacheMiss { .. }), "{miss}");
    assert!(
        miss.to_string()
            .contains("cache-only mode: no cached answer"),
        "{miss}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn no_cache_mode_always_asks_and_stores_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let cache = directory.path().join("responses.sqlite3");
    let server = StandInServer::queue(vec![], Reply::Echo).await.unwrap();
    let engine = engine_with(endpoint_config(&server), 1, Some(&cache), CacheMode::Off);
    for _ in 0..3 {
        engine.complete(MODEL, "user", &ask("again")).await.unwrap();
    }
    assert_eq!(server.request_count(), 3);
    assert!(!cache.exists(), "--no-cache does not even create the cache");
}

#[tokio::test]
async fn answers_that_broke_the_contract_are_not_cached() {
    let directory = tempfile::tempdir().unwrap();
    let cache = directory.path().join("responses.sqlite3");
    let server = StandInServer::queue(
        vec![Reply::ToolCalls(vec![("nope".into(), json!({}))])],
        Reply::ToolCalls(vec![("lookup".into(), json!({"q": "x"}))]),
    )
    .await
    .unwrap();
    let mut request = ask("look it up");
    request.tools.push(ToolSpec {
        name: "lookup".into(),
        description: String::new(),
        parameters: json!({"type": "object"}),
    });
    let engine = engine_with(
        endpoint_config(&server),
        1,
        Some(&cache),
        CacheMode::ReadWrite,
    );
    assert!(engine.complete(MODEL, "assistant", &request).await.is_err());
    let answer = engine.complete(MODEL, "assistant", &request).await.unwrap();
    assert_eq!(answer.tool_calls[0].name, "lookup");
    assert_eq!(
        engine.complete(MODEL, "assistant", &request).await.unwrap(),
        answer
    );
    assert_eq!(
        server.request_count(),
        2,
        "the bad answer was not replayed from the cache"
    );
}
