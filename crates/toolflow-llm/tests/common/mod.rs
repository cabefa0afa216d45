//! Engines wired to a stand-in server, with retry delays short enough for tests.
#![allow(dead_code)] // each test file uses part of this

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toolflow_llm::standin::StandInServer;
use toolflow_llm::{
    CacheMode, ChatRequest, Endpoint, EndpointConfig, Engine, EngineConfig, Message, http_client,
};

pub const MODEL: &str = "standin-model";

pub fn fast_policy(max_attempts: u32) -> EngineConfig {
    EngineConfig {
        max_attempts,
        backoff_base_ms: 5,
        backoff_cap_ms: 40,
        max_retry_after_s: 5.0,
    }
}

pub fn endpoint_config(server: &StandInServer) -> EndpointConfig {
    EndpointConfig {
        name: Some("standin".into()),
        timeout_s: 0.5,
        max_concurrency: 64,
        ..EndpointConfig::new(server.base_url(), MODEL)
    }
}

pub fn endpoint(config: &EndpointConfig) -> Endpoint {
    Endpoint::http(config, http_client().unwrap()).unwrap()
}

pub fn engine(server: &StandInServer, max_attempts: u32) -> Engine {
    Engine::new(
        vec![endpoint(&endpoint_config(server))],
        fast_policy(max_attempts),
        None,
        CacheMode::Off,
    )
    .unwrap()
}

pub fn engine_with(
    config: EndpointConfig,
    max_attempts: u32,
    cache: Option<&Path>,
    mode: CacheMode,
) -> Engine {
    Engine::new(
        vec![endpoint(&config)],
        fast_policy(max_attempts),
        cache,
        mode,
    )
    .unwrap()
}

pub fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![Message::system("You are terse."), Message::user(text)])
}

pub fn shared(engine: Engine) -> Arc<Engine> {
    Arc::new(engine)
}

pub const SHORT: Duration = Duration::from_millis(50);
