//! The endpoints file (TOML): which servers and models the engine may use, their limits
//! and prices. See `examples/endpoints.toml` for an annotated one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

/// An endpoints file: the engine's retry policy and the endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `[engine]` table.
    #[serde(default)]
    pub engine: EngineConfig,
    /// `[[endpoint]]` tables; the same model may be served by several.
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointConfig>,
}

/// Retry policy, shared by all endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Attempts per request, the first one included.
    pub max_attempts: u32,
    /// Backoff before retry n is drawn uniformly from [0, min(cap, base · 2^(n-1))].
    pub backoff_base_ms: u64,
    /// The longest backoff, in milliseconds.
    pub backoff_cap_ms: u64,
    /// The longest `Retry-After` the engine honours as given; longer ones are cut to this.
    pub max_retry_after_s: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_attempts: 6,
            backoff_base_ms: 500,
            backoff_cap_ms: 30_000,
            max_retry_after_s: 120.0,
        }
    }
}

/// One `[[endpoint]]` table: where a model is served, and the limits and prices it is used
/// under.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// A name for logs and errors; defaults to `model@base_url`.
    #[serde(default)]
    pub name: Option<String>,
    /// Up to and including `/v1`: requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The model id sent to the server, and the id dialogues record.
    pub model: String,
    /// The environment variable holding the API key, sent as a bearer token.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Extra HTTP headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Fields merged into every request body (vLLM's `top_k`, llama.cpp's `cache_prompt`, …);
    /// they win over the fields toolflow sets.
    #[serde(default)]
    pub extra_body: Map<String, Value>,
    /// Requests in flight at most (16 by default).
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Tokens (prompt and completion) per minute.
    #[serde(default)]
    pub tpm: Option<u64>,
    /// US dollars per million prompt tokens.
    #[serde(default)]
    pub price_prompt_per_million: f64,
    /// US dollars per million completion tokens.
    #[serde(default)]
    pub price_completion_per_million: f64,
    /// Seconds one attempt may take.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// This endpoint's share in the per-dialogue model draw; a model's weight is the sum
    /// over the endpoints that serve it.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// How JSON Schema answers are asked for.
    #[serde(default)]
    pub structured_output: FeatureMode,
    /// How tools are offered and calls read back.
    #[serde(default)]
    pub tool_calling: FeatureMode,
}

/// Whether to use a server feature (`response_format` JSON Schema, native `tools`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureMode {
    /// Native, switching to the prompted form for good when the server rejects it with 400.
    #[default]
    Auto,
    /// Always native, never switching to the prompted form.
    Native,
    /// Described in the system prompt and parsed from the answer text.
    Prompted,
}

fn default_max_concurrency() -> usize {
    16
}
fn default_timeout_s() -> f64 {
    120.0
}
fn default_weight() -> f64 {
    1.0
}

/// Why an endpoints file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        message: String,
    },
    /// An endpoint's values are out of range.
    #[error("{path}: endpoint {index} ({name}): {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The endpoint's position, from 0.
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads and checks an endpoints file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: origin.to_owned(),
            message: error.to_string(),
        })?;
        let mut names = std::collections::HashSet::new();
        for (index, endpoint) in config.endpoints.iter().enumerate() {
            let invalid = |message: String| ConfigError::Invalid {
                path: origin.to_owned(),
                index,
                name: endpoint.name(),
                message,
            };
            if !(endpoint.base_url.starts_with("http://")
                || endpoint.base_url.starts_with("https://"))
            {
                return Err(invalid(format!(
                    "base_url `{}` must start with http:// or https://",
                    endpoint.base_url
                )));
            }
            if endpoint.model.trim().is_empty() {
                return Err(invalid("model is empty".into()));
            }
            if endpoint.max_concurrency == 0 {
                return Err(invalid("max_concurrency must be at least 1".into()));
            }
            if endpoint.rpm == Some(0) || endpoint.tpm == Some(0) {
                return Err(invalid(
                    "rpm and tpm must be at least 1 (leave them out for no limit)".into(),
                ));
            }
            if !(endpoint.timeout_s > 0.0 && endpoint.timeout_s.is_finite()) {
                return Err(invalid(
                    "timeout_s must be a positive number of seconds".into(),
                ));
            }
            if !(endpoint.weight >= 0.0 && endpoint.weight.is_finite()) {
                return Err(invalid("weight must be zero or positive".into()));
            }
            if endpoint.price_prompt_per_million < 0.0
                || endpoint.price_completion_per_million < 0.0
            {
                return Err(invalid("prices cannot be negative".into()));
            }
            if !names.insert(endpoint.name()) {
                return Err(invalid("another endpoint has the same name".into()));
            }
        }
        if config.engine.max_attempts == 0 {
            return Err(ConfigError::Parse {
                path: origin.to_owned(),
                message: "engine.max_attempts must be at least 1".into(),
            });
        }
        Ok(config)
    }
}

impl EndpointConfig {
    /// An endpoint with defaults for everything but where it is and what it serves.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        EndpointConfig {
            name: None,
            base_url: base_url.into(),
            model: model.into(),
            api_key_env: None,
            headers: BTreeMap::new(),
            extra_body: Map::new(),
            max_concurrency: default_max_concurrency(),
            rpm: None,
            tpm: None,
            price_prompt_per_million: 0.0,
            price_completion_per_million: 0.0,
            timeout_s: default_timeout_s(),
            weight: default_weight(),
            structured_output: FeatureMode::Auto,
            tool_calling: FeatureMode::Auto,
        }
    }

    /// The configured name, else `model@base_url`.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}@{}", self.model, self.base_url))
    }

    /// `timeout_s` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example_and_names_bad_fields() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/endpoints.toml");
        let config = Config::load(&example).expect("the example config parses");
        assert!(config.endpoints.len() >= 2);

        let error = Config::parse(
            "[[endpoint]]\nbase_url = \"localhost\"\nmodel = \"m\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("c.toml: endpoint 0")
                && error.to_string().contains("base_url"),
            "{error}"
        );
        let error = Config::parse(
            "[[endpoint]]\nbase_url = \"http://x/v1\"\nmodel = \"m\"\nrpn = 3\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("rpn") && error.to_string().contains("line 4"),
            "{error}"
        );
    }
}
