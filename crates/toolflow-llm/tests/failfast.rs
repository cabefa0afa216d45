//! Fail fast: an endpoint where nothing listens, or one that refuses every request the
//! same way, is reported unusable after a few requests, and later requests fail at once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_llm::{CacheMode, EndpointConfig, Engine, EngineError};

#[tokio::test]
async fn an_endpoint_refusing_every_request_the_same_way_is_unusable_after_three() {
    let refusal = r#"{"error":{"message":"This model's maximum context length is 2048 tokens, you asked for 4100"}}"#;
    let server = StandInServer::queue(
        vec![],
        Reply::Raw {
            status: 400,
            body: refusal.into(),
        },
    )
    .await
    .unwrap();
    let engine = engine(&server, 6);
    for _ in 0..3 {
        assert!(engine.fatal().is_none());
        let error = engine.complete(MODEL, "user", &ask("x")).await.unwrap_err();
        assert!(matches!(error, EngineError::Failed { .. }), "{error}");
    }
    let fatal = engine
        .fatal()
        .expect("three identical refusals make it unusable");
    assert_eq!(fatal.endpoint, "standin");
    assert!(fatal.error.contains("maximum context length"), "{fatal}");
    let error = engine.complete(MODEL, "user", &ask("y")).await.unwrap_err();
    assert!(matches!(error, EngineError::Unusable(_)), "{error}");
    assert_eq!(
        server.request_count(),
        3,
        "not retried, and nothing sent after"
    );
}

#[tokio::test]
async fn varied_refusals_and_successes_keep_the_endpoint_usable() {
    let server = StandInServer::queue(
        vec![
            Reply::Raw {
                status: 400,
                body: "bad thing one".into(),
            },
            Reply::Echo,
            Reply::Raw {
                status: 400,
                body: "bad thing one".into(),
            },
            Reply::Raw {
                status: 400,
                body: "another problem".into(),
            },
        ],
        Reply::Echo,
    )
    .await
    .unwrap();
    let engine = engine(&server, 1);
    for _ in 0..10 {
        let _ = engine.complete(MODEL, "user", &ask("x")).await;
    }
    assert!(engine.fatal().is_none());
}

#[tokio::test]
async fn a_dead_endpoint_is_reported_within_seconds() {
    // Bind then drop a listener: a loopback port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = EndpointConfig {
        name: Some("dead".into()),
        ..EndpointConfig::new(format!("http://127.0.0.1:{port}/v1"), MODEL)
    };
    let engine = Engine::new(
        vec![endpoint(&config)],
        toolflow_llm::EngineConfig::default(),
        None,
        CacheMode::Off,
    )
    .unwrap();
    let started = Instant::now();
    let error = engine.complete(MODEL, "user", &ask("x")).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, EngineError::Unusable(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("`dead`") && message.contains("base_url"),
        "{message}"
    );
    assert!(engine.fatal().is_some());
}
