//! What the synthesis tests share: an engine on the stand-in server.

use std::path::Path;
use std::sync::Arc;

use toolflow_llm::standin::StandInServer;
use toolflow_llm::{CacheMode, Endpoint, EndpointConfig, Engine, EngineConfig, http_client};

/// The model name the stand-in server's scripted model answers to.
pub const MODEL: &str = "scripted";

/// An engine on `server`'s [`MODEL`] with quick retries, caching answers in `cache` when
/// given.
pub fn engine(server: &StandInServer, cache: Option<&Path>) -> Arc<Engine> {
    let config = EndpointConfig {
        max_concurrency: 64,
        ..EndpointConfig::new(server.base_url(), MODEL)
    };
    let endpoint = Endpoint::http(&config, http_client().unwrap()).unwrap();
    let policy = EngineConfig {
        max_attempts: 3,
        backoff_base_ms: 5,
        backoff_cap_ms: 20,
        max_retry_after_s: 1.0,
    };
    let mode = if cache.is_some() {
        CacheMode::ReadWrite
    } else {
        CacheMode::Off
    };
    Arc::new(Engine::new(vec![endpoint], policy, cache, mode).unwrap())
}
