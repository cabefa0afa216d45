//! `toolflow run`: the pipeline end to end, one file per stage in the output directory, each
//! stage skipped when its output is current.
//!
//! A stage is current when `run-state.json` records the same input key (a hash of the
//! stage's input files and settings) and the output file still has the recorded content
//! hash. Any change upstream changes the key downstream, so edits propagate; deleting or
//! editing an output file reruns the stage that writes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolflow_core::{SamplingStrategy, Subset, ToolGraph, content_hash, jsonl};
use toolflow_import::{ImportOptions, Importer};

/// The demo tool set, built into the binary so `toolflow run` works from any directory.
const DEMO_TOOLS: &str = include_str!("../../../../examples/tools/demo.jsonl");

#[derive(clap::Args)]
pub struct Args {
    /// Run configuration (TOML, see examples/run.toml); without one, the offline demo on the
    /// bundled tool set
    config: Option<PathBuf>,
    /// Where each stage writes its file, and where the run state lives
    #[arg(long, default_value = "toolflow-out")]
    out: PathBuf,
    /// Rerun every stage even when its output is current
    #[arg(long)]
    force: bool,
    /// Never ask the Hugging Face hub for models
    #[arg(long)]
    offline: bool,
}

/// The run configuration. Every field has a default, so an empty file is a valid config.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub tools: ToolsConfig,
    pub graph: GraphConfig,
    pub sample: SampleConfig,
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

/// `run-state.json`: per stage, the input key and output hash of its last completed run.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RunState {
    stages: BTreeMap<String, StageRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StageRecord {
    key: String,
    output_hash: String,
}

struct Runner<'a> {
    out: PathBuf,
    state: RunState,
    force: bool,
    global: &'a super::Global,
    report: Vec<serde_json::Value>,
}

impl Runner<'_> {
    fn state_path(&self) -> PathBuf {
        self.out.join("run-state.json")
    }

    /// Runs `stage` unless its output is current for `key`; `produce` writes the file.
    fn stage(
        &mut self,
        name: &str,
        output: &str,
        key: String,
        produce: impl FnOnce(&Path) -> anyhow::Result<String>,
    ) -> anyhow::Result<PathBuf> {
        let path = self.out.join(output);
        let recorded = self.state.stages.get(name).cloned();
        let current = !self.force
            && recorded.as_ref().is_some_and(|record| {
                record.key == key
                    && file_hash(&path).ok().as_deref() == Some(record.output_hash.as_str())
            });
        if current {
            tracing::info!("{name}: {} is current", path.display());
            self.report
                .push(json!({"stage": name, "output": path, "skipped": true}));
            return Ok(path);
        }
        let started = Instant::now();
        let summary = produce(&path).with_context(|| format!("stage `{name}`"))?;
        let seconds = started.elapsed().as_secs_f64();
        if !self.global.quiet && !self.global.json {
            eprintln!("{name:>7}: {summary} ({seconds:.2}s)");
        }
        self.report.push(json!({"stage": name, "output": path, "skipped": false, "seconds": seconds, "summary": summary}));
        self.state.stages.insert(
            name.to_string(),
            StageRecord {
                key,
                output_hash: file_hash(&path)?,
            },
        );
        // Saved after every stage, so a crash later keeps the stages already done.
        let state = serde_json::to_vec_pretty(&self.state)?;
        jsonl::write_atomically(&self.state_path(), |out| {
            std::io::Write::write_all(out, &state)
        })?;
        Ok(path)
    }
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let started = Instant::now();
    let (config, config_dir) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let config: RunConfig =
                toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
            (
                config,
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
            )
        }
        None => (RunConfig::default(), PathBuf::new()),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let state_path = args.out.join("run-state.json");
    let state = match std::fs::read(&state_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            tracing::warn!(
                "{}: unreadable ({error}); every stage reruns",
                state_path.display()
            );
            RunState::default()
        }),
        Err(_) => RunState::default(),
    };
    let mut runner = Runner {
        out: args.out.clone(),
        state,
        force: args.force,
        global,
        report: Vec::new(),
    };

    let tools_path = import_stage(&mut runner, &config.tools, &config_dir)?;
    let graph_path = graph_stage(
        &mut runner,
        &tools_path,
        &config.graph,
        &config_dir,
        args.offline,
    )?;
    let subsets_path = sample_stage(&mut runner, &graph_path, &config.sample)?;

    if global.json {
        println!(
            "{}",
            json!({"out": args.out, "stages": runner.report, "seconds": started.elapsed().as_secs_f64()})
        );
    } else if !global.quiet {
        eprintln!(
            "done in {:.2}s: {} → {} → {}",
            started.elapsed().as_secs_f64(),
            tools_path.display(),
            graph_path.display(),
            subsets_path.display()
        );
    }
    Ok(())
}

fn import_stage(
    runner: &mut Runner,
    config: &ToolsConfig,
    config_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let paths: Vec<PathBuf> = config.paths.iter().map(|p| config_dir.join(p)).collect();
    let format = config
        .format
        .as_deref()
        .map(|name| name.parse().map_err(anyhow::Error::msg))
        .transpose()?;
    let options = ImportOptions {
        format,
        strict: config.strict,
    };
    // The key covers the inputs' contents, not just their names.
    let mut key_parts = vec![
        format!("{:?}", options.format).into_bytes(),
        vec![u8::from(options.strict)],
    ];
    if paths.is_empty() {
        key_parts.push(DEMO_TOOLS.as_bytes().to_vec());
    }
    for path in &paths {
        key_parts.push(path.display().to_string().into_bytes());
        key_parts.push(tree_hash(path)?.into_bytes());
    }
    let key = content_hash(&key_parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
    runner.stage("import", "tools.jsonl", key, |output| {
        let mut importer = Importer::new(options.clone());
        if paths.is_empty() {
            importer.add_text(Path::new("examples/tools/demo.jsonl"), DEMO_TOOLS)?;
        }
        for path in &paths {
            importer.add_path(path)?;
        }
        let report = importer.finish();
        for diagnostic in &report.diagnostics {
            tracing::warn!("{diagnostic}");
        }
        anyhow::ensure!(!report.tools.is_empty(), "no tools were imported");
        jsonl::write(output, &report.tools)?;
        Ok(format!("{} tools", report.tools.len()))
    })
}

fn graph_stage(
    runner: &mut Runner,
    tools_path: &Path,
    config: &GraphConfig,
    config_dir: &Path,
    offline: bool,
) -> anyhow::Result<PathBuf> {
    let key = content_hash(&[file_hash(tools_path)?.as_bytes(), &config.tau.to_le_bytes()]);
    let model_dir = config.model_dir.as_ref().map(|dir| config_dir.join(dir));
    let global = runner.global;
    runner.stage("graph", "graph.json", key, |output| {
        let built = super::graph::build(tools_path, config.tau, model_dir, offline, 0, global)?;
        super::graph::write_json(&built.graph, output)?;
        Ok(format!(
            "{} tools, {} edges",
            built.graph.nodes.len(),
            built.graph.edges.len()
        ))
    })
}

fn sample_stage(
    runner: &mut Runner,
    graph_path: &Path,
    config: &SampleConfig,
) -> anyhow::Result<PathBuf> {
    let key = content_hash(&[
        file_hash(graph_path)?.as_bytes(),
        &(config.size as u64).to_le_bytes(),
        &config.count.to_le_bytes(),
        &config.seed.to_le_bytes(),
        format!("{:?}", config.strategy).as_bytes(),
    ]);
    runner.stage("sample", "subsets.jsonl", key, |output| {
        let graph: ToolGraph = serde_json::from_slice(&std::fs::read(graph_path)?)
            .with_context(|| format!("{}: not a tool graph", graph_path.display()))?;
        let subsets: Vec<Subset> = super::sample::sample(
            &graph,
            config.strategy,
            config.size,
            config.count,
            config.seed,
            0,
        )?;
        jsonl::write(output, &subsets)?;
        let short = subsets.iter().filter(|s| s.short).count();
        Ok(format!(
            "{} subsets of {} tools, {short} short",
            subsets.len(),
            config.size
        ))
    })
}

fn file_hash(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(content_hash(&[&bytes]))
}

/// The hash of a file, or of every file under a directory (names and contents, in order).
fn tree_hash(path: &Path) -> anyhow::Result<String> {
    if !path.is_dir() {
        return file_hash(path);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    let mut parts = Vec::new();
    for entry in entries {
        parts.push(entry.display().to_string());
        parts.push(tree_hash(&entry)?);
    }
    Ok(content_hash(
        &parts.iter().map(String::as_bytes).collect::<Vec<_>>(),
    ))
}
