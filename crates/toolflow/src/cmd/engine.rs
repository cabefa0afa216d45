//! How every subcommand that talks to a chat model gets its [`Engine`]: the endpoints of a
//! config file, or, with none configured, the embedded model.

use std::path::PathBuf;

use toolflow_llm::{CacheMode, Config};
use toolflow_pipeline::ChatSettings;

/// The chat-model options shared by `chat`, `enrich` and `run`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct EngineArgs {
    /// Endpoints file (TOML, see examples/endpoints.toml); without one the embedded model answers
    #[arg(long = "endpoints", env = "TOOLFLOW_ENDPOINTS", value_name = "FILE")]
    pub endpoints: Option<PathBuf>,
    /// Neither read nor write the response cache
    #[arg(long, conflicts_with = "cache_only")]
    pub no_cache: bool,
    /// Answer only from the response cache; a miss is an error
    #[arg(long)]
    pub cache_only: bool,
    /// The embedded model's GGUF file, instead of the cached or downloaded one
    #[arg(long, value_name = "FILE")]
    pub model_path: Option<PathBuf>,
}

impl EngineArgs {
    pub fn cache_mode(&self) -> CacheMode {
        match (self.no_cache, self.cache_only) {
            (true, _) => CacheMode::Off,
            (_, true) => CacheMode::Only,
            _ => CacheMode::ReadWrite,
        }
    }

    /// Where the chat models come from: `config`'s endpoints, or the embedded model.
    pub fn settings(&self, config: &Config, global: &super::Global, offline: bool) -> ChatSettings {
        ChatSettings {
            endpoints: config.clone(),
            cache_mode: self.cache_mode(),
            model_path: self.model_path.clone(),
            cache_dir: global.cache_dir(),
            offline,
        }
    }

    /// [`EngineArgs::settings`] over the endpoints file named on the command line.
    pub fn chat_settings(
        &self,
        global: &super::Global,
        offline: bool,
    ) -> anyhow::Result<ChatSettings> {
        Ok(self.settings(&self.config()?, global, offline))
    }

    /// The endpoints file named on the command line, or no endpoints.
    pub fn config(&self) -> anyhow::Result<Config> {
        match &self.endpoints {
            Some(path) => Ok(Config::load(path)?),
            None => Ok(Config::default()),
        }
    }
}
