//! How the stages that talk to a chat model get their [`Engine`]: the configured endpoints,
//! or, with none, the embedded model.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use toolflow_llm::{CacheMode, Config, Endpoint, Engine, ResponseCache};
use toolflow_local::{LocalBackend, LocalOptions};

use crate::error::PipelineError;

/// Where the chat models come from.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// The endpoints; none means the embedded model answers.
    pub endpoints: Config,
    /// How the response cache is used.
    pub cache_mode: CacheMode,
    /// The embedded model's GGUF file, instead of the cached or downloaded one.
    pub model_path: Option<PathBuf>,
    /// toolflow's cache directory (models, responses).
    pub cache_dir: PathBuf,
    /// Never ask the Hugging Face hub for the embedded model.
    pub offline: bool,
}

impl ChatSettings {
    /// What the models are, for stage keys: a change of the endpoints' models reruns the
    /// chat stages, a change of URL or key does not.
    pub fn identity(&self) -> String {
        if self.endpoints.endpoints.is_empty() {
            return toolflow_local::MODEL_ID.to_string();
        }
        let mut models: Vec<String> = self
            .endpoints
            .endpoints
            .iter()
            .map(|endpoint| format!("{}*{}", endpoint.model, endpoint.weight))
            .collect();
        models.sort();
        models.join(",")
    }
}

/// The engine over the settings' endpoints, or over the embedded model when there are none.
/// Must be called inside a tokio runtime (the HTTP client needs one).
pub fn build_engine(settings: &ChatSettings) -> Result<Engine, PipelineError> {
    let config = &settings.endpoints;
    if !config.endpoints.is_empty() {
        return Ok(Engine::from_config(
            config,
            &settings.cache_dir,
            settings.cache_mode,
        )?);
    }
    let options = LocalOptions {
        model_path: settings.model_path.clone(),
        cache_dir: settings.cache_dir.clone(),
        offline: settings.offline,
    };
    let backend = LocalBackend::load(&options)?;
    // As many requests as the model decodes together (one forward pass per token for all of
    // them), with time enough for two slow cores.
    let endpoint = Endpoint {
        max_concurrency: toolflow_local::MAX_SEQUENCES,
        timeout: Duration::from_secs(600),
        ..Endpoint::new("embedded", Arc::new(backend))
    };
    let cache = ResponseCache::path_in(&settings.cache_dir);
    Ok(Engine::new(
        vec![endpoint],
        config.engine.clone(),
        Some(&cache),
        settings.cache_mode,
    )?)
}

/// The multi-threaded async runtime the chat stages and the engine run on.
pub fn runtime() -> Result<tokio::runtime::Runtime, PipelineError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(PipelineError::Runtime)
}

/// The chat engine, built the first time a stage needs it: a run whose chat stages are all
/// current never loads a model or opens a connection.
pub struct ChatModels<'a> {
    settings: ChatSettings,
    runtime: &'a tokio::runtime::Runtime,
    engine: Option<Arc<Engine>>,
}

impl<'a> ChatModels<'a> {
    /// Nothing is loaded until [`ChatModels::engine`] is first called.
    pub fn new(settings: ChatSettings, runtime: &'a tokio::runtime::Runtime) -> Self {
        ChatModels {
            settings,
            runtime,
            engine: None,
        }
    }

    /// The engine, built on first use.
    pub fn engine(&mut self) -> Result<Arc<Engine>, PipelineError> {
        if let Some(engine) = &self.engine {
            return Ok(engine.clone());
        }
        let settings = &self.settings;
        let engine = Arc::new(self.runtime.block_on(async { build_engine(settings) })?);
        self.engine = Some(engine.clone());
        Ok(engine)
    }

    /// The engine if a stage built it.
    pub fn built(&self) -> Option<&Arc<Engine>> {
        self.engine.as_ref()
    }

    /// See [`ChatSettings::identity`].
    pub fn identity(&self) -> String {
        self.settings.identity()
    }

    /// The runtime the chat stages run on.
    pub fn runtime(&self) -> &'a tokio::runtime::Runtime {
        self.runtime
    }
}
