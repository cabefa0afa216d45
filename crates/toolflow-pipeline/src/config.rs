//! The run configuration file (see `examples/run.toml`, annotated in full). Every table and
//! key is optional: an empty file is a valid config.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use toolflow_core::SamplingStrategy;
use toolflow_eval::FilterConfig;
use toolflow_synth::SynthConfig;
use toolflow_synth::enrich::EnrichOptions;
use toolflow_synth::judge::JudgeOptions;

/// The offline demo `toolflow run` runs without a config: the bundled tools, a few short
/// dialogues written by the embedded model.
const DEMO_CONFIG: &str = include_str!("../../../../../examples/demo.toml");

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub tools: ToolsConfig,
    /// Present: the chat model fills missing descriptions and return schemas before the graph.
    pub enrich: Option<EnrichOptions>,
    pub graph: GraphConfig,
    pub sample: SampleConfig,
    pub synth: SynthConfig,
    pub filter: FilterConfig,
    /// Present: the LLM judge scores a seeded sample of the kept dialogues in the eval stage.
    pub judge: Option<JudgeOptions>,
    pub export: ExportConfig,
    /// `[engine]` and `[[endpoint]]`, as in an endpoints file; no endpoint means the
    /// embedded model.
    pub engine: toml::Table,
    pub endpoint: Vec<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    /// Tool files or directories, relative to the config file; empty means the demo set.
    pub paths: Vec<PathBuf>,
    /// Force one import format for every file (`openai`, `toolbench`, …).
    pub format: Option<String>,
    /// Fail on the first malformed entry instead of skipping it.
    pub strict: bool,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    pub tau: f32,
    pub model_dir: Option<PathBuf>,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            tau: 0.82,
            model_dir: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    pub size: usize,
    /// Subsets, and so dialogues (`--dialogues` overrides it).
    pub count: u64,
    pub seed: u64,
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

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Any of `trl`, `sharegpt`, `hermes`, `template` (which needs `chat_template`).
    pub formats: Vec<String>,
    pub val_fraction: f64,
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
    /// The config at `path` and the directory its paths are relative to; without a path,
    /// the demo.
    pub fn load(path: Option<&Path>) -> anyhow::Result<(RunConfig, PathBuf)> {
        let Some(path) = path else {
            let config = toml::from_str(DEMO_CONFIG).expect("the demo config is valid");
            return Ok((config, PathBuf::new()));
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: RunConfig =
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        config
            .synth
            .check()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((config, dir))
    }

    /// The `[engine]` and `[[endpoint]]` tables, checked as an endpoints file is.
    pub fn llm(&self, origin: &Path) -> anyhow::Result<toolflow_llm::Config> {
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
        Ok(toolflow_llm::Config::parse(
            &toml::to_string(&tables)?,
            origin,
        )?)
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
                include_str!("../../../../../examples/run.toml"),
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
            toml::from_str(include_str!("../../../../../examples/run.toml")).unwrap();
        // The example shows the defaults.
        assert_eq!(example.synth, SynthConfig::default());
        assert_eq!(example.sample.count, SampleConfig::default().count);
    }
}
