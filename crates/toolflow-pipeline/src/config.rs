//! The run configuration file (see `examples/run.toml`, annotated in full). Every table and
//! key is optional: an empty file is a valid config.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toolflow_core::{GraphMethod, SamplingStrategy};
use toolflow_eval::FilterConfig;
use toolflow_synth::SynthConfig;
use toolflow_synth::enrich::EnrichOptions;
use toolflow_synth::judge::JudgeOptions;

/// The offline demo `toolflow run` runs without a config: the bundled tools, a few short
/// dialogues written by the embedded model.
pub const DEMO_CONFIG: &str = include_str!("../../../examples/demo.toml");

/// The demo tool set, built in so that `toolflow run` works from any directory.
pub const DEMO_TOOLS: &str = include_str!("../../../examples/tools/demo.jsonl");

/// Where the demo tools are said to come from, in diagnostics.
pub const DEMO_TOOLS_PATH: &str = "examples/tools/demo.jsonl";

/// How `toolflow graph` and the run's graph stage find edges unless told otherwise.
pub const DEFAULT_GRAPH_METHOD: GraphMethod = GraphMethod::Paper;

/// A run config that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The file is not a valid run config (TOML syntax, unknown key, wrong type).
    #[error("{path}: {source}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What TOML decoding said, with the line.
        source: toml::de::Error,
    },
    /// A value is out of its range (for example `[synth] turns`).
    #[error("{path}: {detail}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Which key, and why.
        detail: String,
    },
    /// The `[engine]` and `[[endpoint]]` tables do not make a valid endpoints config.
    #[error(transparent)]
    Endpoints(#[from] toolflow_llm::ConfigError),
}

/// A whole run config: one table per stage.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// `[tools]`: what the import stage reads.
    pub tools: ToolsConfig,
    /// Present: the chat model fills missing descriptions and return schemas before the graph.
    pub enrich: Option<EnrichOptions>,
    /// `[graph]`: how the tool graph is built.
    pub graph: GraphConfig,
    /// `[sample]`: how tool subsets are drawn, and how many.
    pub sample: SampleConfig,
    /// `[synth]`: how dialogues are written.
    pub synth: SynthConfig,
    /// `[filter]`: the rule levels.
    pub filter: FilterConfig,
    /// Present: the LLM judge scores a seeded sample of the kept dialogues in the eval stage.
    pub judge: Option<JudgeOptions>,
    /// `[export]`: the SFT formats written.
    pub export: ExportConfig,
    /// `[engine]` and `[[endpoint]]`, as in an endpoints file; no endpoint means the
    /// embedded model.
    pub engine: toml::Table,
    /// `[[endpoint]]` tables, as in an endpoints file.
    pub endpoint: Vec<toml::Table>,
    /// `[[mcp]]` tables: MCP servers whose tools the import stage lists and whose calls
    /// synthesis executes (`[synth] tools`).
    pub mcp: Vec<toolflow_mcp::ServerConfig>,
}

/// `[tools]`: the tool files the import stage reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    /// Tool files or directories, relative to the config file; empty means the demo set.
    pub paths: Vec<PathBuf>,
    /// Force one import format for every file (`openai`, `toolbench`, …).
    pub format: Option<String>,
    /// Fail on the first malformed entry instead of skipping it.
    pub strict: bool,
    /// The `[[mcp]]` servers whose tools are imported too, by name; absent means every
    /// server of the config.
    pub mcp: Option<Vec<String>>,
}

/// `[graph]`: how edges are found, the similarity threshold and the embedding model.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    /// `flow` (data flow, the default) or `paper` (the paper's method, exact).
    pub method: GraphMethod,
    /// An edge needs a cosine strictly above τ (paper: 0.82).
    pub tau: f32,
    /// An all-MiniLM-L6-v2 directory, relative to the config file, instead of the cache.
    pub model_dir: Option<PathBuf>,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            method: DEFAULT_GRAPH_METHOD,
            tau: 0.82,
            model_dir: None,
        }
    }
}

/// `[sample]`: tool subsets, one per dialogue.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// Tools per subset.
    pub size: usize,
    /// Subsets, and so dialogues (`--dialogues` overrides it).
    pub count: u64,
    /// The run seed: subsets, and every request's seed, derive from it.
    pub seed: u64,
    /// Random walk on the graph, or uniform (the ablation).
    pub strategy: SamplingStrategy,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            size: 3,
            count: 8,
            seed: 0,
            strategy: SamplingStrategy::Graph,
        }
    }
}

/// `[export]`: SFT files, one directory per format.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Any of `trl`, `sharegpt`, `hermes`, `template` (which needs `chat_template`).
    pub formats: Vec<String>,
    /// The share of dialogues in `validation.jsonl`.
    pub val_fraction: f64,
    /// Seeds the train/validation split.
    pub seed: u64,
    /// A model's `tokenizer_config.json`, relative to the config file.
    pub chat_template: Option<PathBuf>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            formats: vec!["trl".into(), "sharegpt".into()],
            val_fraction: 0.05,
            seed: 0,
            chat_template: None,
        }
    }
}

impl RunConfig {
    /// The `[[mcp]]` table named `name`, if there is one.
    pub fn mcp_server(&self, name: &str) -> Option<&toolflow_mcp::ServerConfig> {
        self.mcp.iter().find(|server| server.name == name)
    }

    /// The config at `path` and the directory its paths are relative to; without a path,
    /// the demo.
    pub fn load(path: Option<&Path>) -> Result<(RunConfig, PathBuf), ConfigError> {
        let Some(path) = path else {
            let config = toml::from_str(DEMO_CONFIG).expect("the demo config is valid");
            return Ok((config, PathBuf::new()));
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: RunConfig = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let filter = |detail| format!("[filter] {detail}");
        config
            .synth
            .check()
            .map_err(|error| error.to_string())
            .and_then(|()| config.filter.check().map_err(filter))
            .and_then(|()| {
                config
                    .mcp
                    .iter()
                    .try_for_each(|server| server.check().map_err(|error| error.to_string()))
            })
            .map_err(|detail| ConfigError::Invalid {
                path: path.to_path_buf(),
                detail,
            })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((config, dir))
    }

    /// The `[engine]` and `[[endpoint]]` tables, checked as an endpoints file is.
    pub fn llm(&self, origin: &Path) -> Result<toolflow_llm::Config, ConfigError> {
        let mut tables = toml::Table::new();
        tables.insert("engine".into(), toml::Value::Table(self.engine.clone()));
        tables.insert(
            "endpoint".into(),
            toml::Value::Array(
                self.endpoint
                    .iter()
                    .cloned()
                    .map(toml::Value::Table)
                    .collect(),
            ),
        );
        let text = toml::to_string(&tables).expect("TOML tables serialise");
        Ok(toolflow_llm::Config::parse(&text, origin)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotated_example_and_the_demo_parse_and_check() {
        for (name, text) in [
            (
                "examples/run.toml",
                include_str!("../../../examples/run.toml"),
            ),
            ("examples/demo.toml", DEMO_CONFIG),
        ] {
            let config: RunConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            config
                .synth
                .check()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            config
                .llm(Path::new(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let example: RunConfig =
            toml::from_str(include_str!("../../../examples/run.toml")).unwrap();
        // The example shows the defaults.
        assert_eq!(example.synth, SynthConfig::default());
        assert_eq!(example.sample.count, SampleConfig::default().count);
    }
}
