//! Chat models for toolflow. Every agent of the pipeline talks to a model through one
//! [`ChatRequest`] value sent to the [`Engine`], which answers from its cache or from a
//! [`ChatBackend`]: an OpenAI-compatible server ([`OpenAiBackend`]) or the embedded model
//! (in `toolflow-local`). With the `standin` feature, [`standin::StandInServer`] is an
//! OpenAI-compatible server for tests that answers from a script and injects faults.

#![warn(missing_docs)]

pub mod cache;
pub mod capability;
pub mod config;
pub mod engine;
pub mod http;
pub mod limits;
pub mod request;
#[cfg(feature = "standin")]
pub mod standin;
pub mod textcalls;
pub mod validate;

pub use cache::{CacheMode, ResponseCache, cache_key};
pub use capability::{Capabilities, ProbeCheck, ProbeOutcome, ProbeReport, SchemaDialect};
pub use config::{Config, ConfigError, EndpointConfig, EngineConfig, FeatureMode};
pub use engine::{Endpoint, Engine, EngineError, FatalEndpoint, Tally, TallyRow};
pub use http::{OpenAiBackend, SetupError, http_client};
pub use request::{
    BackendError, BoxFuture, ChatBackend, ChatRequest, ChatResponse, FinishReason, Message, Role,
    ToolCallRequest, ToolChoice, ToolSpec, TransientKind,
};
pub use tokio_util::sync::CancellationToken;
