//! `toolflow run`: the pipeline end to end, one file per stage in the output directory, each
//! stage skipped when its output is current.
//!
//! A stage is current when `run-state.json` records the same input key (a hash of the
//! stage's input files and settings) and the output file still has the recorded content
//! hash. Any change upstream changes the key downstream, so edits propagate; deleting or
//! editing an output file reruns the stage that writes it. The synthesis stage also keeps
//! every finished dialogue in the run store (`run.sqlite`), so a run that crashed or was
//! killed resumes where it stopped.

mod config;
mod synth;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolflow_core::{Subset, ToolGraph, content_hash, jsonl};
use toolflow_import::{ImportOptions, Importer};
use toolflow_llm::Engine;
use toolflow_store::Shard;

use self::config::{GraphConfig, RunConfig, SampleConfig, ToolsConfig};
use super::engine::EngineArgs;

/// The demo tool set, built into the binary so `toolflow run` works from any directory.
const DEMO_TOOLS: &str = include_str!("../../../../../examples/tools/demo.jsonl");

#[derive(clap::Args)]
pub struct Args {
    /// Run configuration (TOML, see examples/run.toml); without one, the offline demo on the
    /// bundled tool set and the embedded model
    config: Option<PathBuf>,
    /// Where each stage writes its file, and where the run state lives
    #[arg(long, default_value = "toolflow-out")]
    out: PathBuf,
    /// Dialogues to write (overrides `[sample] count`)
    #[arg(long)]
    dialogues: Option<u64>,
    /// Write only shard i of N (0-based, e.g. `$SLURM_ARRAY_TASK_ID/8`); join the shards'
    /// dialogues with `toolflow merge`. Stops after synthesis.
    #[arg(long, value_name = "i/N")]
    shard: Option<Shard>,
    /// Write again the dialogues that failed in an earlier attempt of this run
    #[arg(long)]
    retry_failed: bool,
    /// A directory of prompt files (planner.txt, user.txt, assistant.txt, tool.txt,
    /// enrich.txt) replacing the built-in ones
    #[arg(long, value_name = "DIR")]
    prompts: Option<PathBuf>,
    /// Rerun every stage even when its output is current, and start the run store afresh
    #[arg(long)]
    force: bool,
    /// Never ask the Hugging Face hub for models
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    engine: EngineArgs,
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
    let (mut config, config_dir) = RunConfig::load(args.config.as_deref())?;
    if let Some(count) = args.dialogues {
        config.sample.count = count;
    }
    let origin = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("(demo)"));
    let llm = match &args.engine.endpoints {
        Some(_) => args.engine.config()?,
        None => config.llm(&origin)?,
    };
    let prompts = match &args.prompts {
        Some(dir) => toolflow_synth::Prompts::from_dir(dir)?,
        None => toolflow_synth::Prompts::builtin()?,
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut runner = Runner {
        out: args.out.clone(),
        state,
        force: args.force,
        global,
        report: Vec::new(),
    };
    let mut chat = ChatModels {
        llm,
        args: &args.engine,
        global,
        offline: args.offline,
        runtime: &runtime,
        engine: None,
    };

    let imported = import_stage(&mut runner, &config.tools, &config_dir)?;
    let tools_path = match &config.enrich {
        Some(options) => enrich_stage(&mut runner, &imported, options, &prompts, &mut chat)?,
        None => imported,
    };
    let graph_path = graph_stage(
        &mut runner,
        &tools_path,
        &config.graph,
        &config_dir,
        args.offline,
    )?;
    let subsets_path = sample_stage(&mut runner, &graph_path, &config.sample)?;
    let shard = args.shard.unwrap_or(Shard::ALL);
    let synth_inputs = synth::Inputs {
        tools: &tools_path,
        graph: &graph_path,
        subsets: &subsets_path,
        sample: &config.sample,
        config: &config.synth,
        prompts: prompts.clone(),
        shard,
        retry_failed: args.retry_failed,
    };
    let (dialogues_path, synth_summary) = synth::stage(&mut runner, synth_inputs, &mut chat)?;
    let mut last = dialogues_path.clone();
    if shard.is_all() {
        let kept = filter_stage(&mut runner, &dialogues_path, &config.filter)?;
        let judge = config.judge.as_ref().map(|options| (options, &prompts));
        let metrics = eval_stage(&mut runner, &kept, judge, &mut chat)?;
        export_stages(&mut runner, &kept, &config.export, &config_dir)?;
        last = report_stage(&mut runner, &metrics, &graph_path, &dialogues_path)?;
    } else if !global.quiet && !global.json {
        eprintln!(
            "shard {shard}: done; join the shards with `toolflow merge <each shard's out>/dialogues.jsonl -o dialogues.jsonl`"
        );
    }

    let tallies = chat.engine.as_ref().map(|engine| engine.tallies());
    if global.json {
        println!(
            "{}",
            json!({
                "out": args.out,
                "stages": runner.report,
                "synth": synth_summary,
                "requests": tallies,
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
    } else if !global.quiet {
        eprintln!(
            "done in {:.2}s: {} → … → {}",
            started.elapsed().as_secs_f64(),
            tools_path.display(),
            last.display()
        );
    }
    Ok(())
}

/// The chat engine, built the first time a stage needs it: a run whose chat stages are all
/// current never loads a model or opens a connection.
pub struct ChatModels<'a> {
    llm: toolflow_llm::Config,
    args: &'a EngineArgs,
    global: &'a super::Global,
    offline: bool,
    runtime: &'a tokio::runtime::Runtime,
    engine: Option<Arc<Engine>>,
}

impl ChatModels<'_> {
    fn engine(&mut self) -> anyhow::Result<Arc<Engine>> {
        if let Some(engine) = &self.engine {
            return Ok(engine.clone());
        }
        let engine = Arc::new(self.runtime.block_on(async {
            super::engine::build(&self.llm, self.args, self.global, self.offline)
        })?);
        self.engine = Some(engine.clone());
        Ok(engine)
    }

    /// What the models are, for stage keys: a change of endpoints' models reruns the chat
    /// stages, a change of URL or key does not.
    fn identity(&self) -> String {
        if self.llm.endpoints.is_empty() {
            return toolflow_local::MODEL_ID.to_string();
        }
        let mut models: Vec<String> = self
            .llm
            .endpoints
            .iter()
            .map(|endpoint| format!("{}*{}", endpoint.model, endpoint.weight))
            .collect();
        models.sort();
        models.join(",")
    }
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
    let global = runner.global;
    // The embedding precision decides the vectors, so a graph built at another one is stale.
    let embed_model = global.embed_precision.effective()?.model_id();
    let key = content_hash(&[
        file_hash(tools_path)?.as_bytes(),
        &config.tau.to_le_bytes(),
        embed_model.as_bytes(),
    ]);
    let model_dir = config.model_dir.as_ref().map(|dir| config_dir.join(dir));
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

fn enrich_stage(
    runner: &mut Runner,
    tools_path: &Path,
    options: &toolflow_synth::enrich::EnrichOptions,
    prompts: &toolflow_synth::Prompts,
    chat: &mut ChatModels,
) -> anyhow::Result<PathBuf> {
    let key = content_hash(&[
        file_hash(tools_path)?.as_bytes(),
        serde_json::to_string(options)?.as_bytes(),
        prompts.fingerprint().as_bytes(),
        chat.identity().as_bytes(),
    ]);
    runner.stage("enrich", "tools.enriched.jsonl", key, |output| {
        let tools = jsonl::read(tools_path)?;
        let engine = chat.engine()?;
        let report = chat.runtime.block_on(toolflow_synth::enrich::enrich_tools(
            &engine, prompts, tools, options,
        ));
        for failure in &report.failed {
            tracing::warn!("enrich: `{}`: {}", failure.tool, failure.error);
        }
        jsonl::write(output, &report.tools)?;
        Ok(format!(
            "{} of {} tools enriched, {} failed",
            report.enriched,
            report.read,
            report.failed.len()
        ))
    })
}

fn filter_stage(
    runner: &mut Runner,
    dialogues: &Path,
    config: &toolflow_eval::FilterConfig,
) -> anyhow::Result<PathBuf> {
    let key = content_hash(&[
        file_hash(dialogues)?.as_bytes(),
        format!("{config:?}").as_bytes(),
    ]);
    let rejected = runner.out.join("rejected.jsonl");
    runner.stage("filter", "kept.jsonl", key, |kept| {
        let summary = toolflow_eval::filter_file(dialogues, kept, &rejected, config.clone())?;
        Ok(format!(
            "{} of {} dialogues kept, {} rejected",
            summary.kept, summary.dialogues, summary.rejected
        ))
    })
}

/// Measures the kept dialogues into `metrics.json`; with `judge`, the LLM judge scores a
/// sample of them through the run's chat models.
fn eval_stage(
    runner: &mut Runner,
    kept: &Path,
    judge: Option<(
        &toolflow_synth::judge::JudgeOptions,
        &toolflow_synth::Prompts,
    )>,
    chat: &mut ChatModels,
) -> anyhow::Result<PathBuf> {
    // Coherence models as `toolflow eval` finds them (the hub is skipped under
    // TOOLFLOW_OFFLINE / HF_HUB_OFFLINE); which ones measured is part of the stage's key.
    let nli_model = std::env::var_os("TOOLFLOW_NLI_MODEL").map(PathBuf::from);
    let mut models = super::eval::CoherenceModels::open(None, nli_model, false, runner.global)?;
    let mut key_parts = vec![file_hash(kept)?, models.fingerprint()];
    if let Some((options, prompts)) = judge {
        key_parts.push(serde_json::to_string(options)?);
        key_parts.push(prompts.fingerprint());
        key_parts.push(chat.identity());
    }
    let key = content_hash(&key_parts.iter().map(String::as_bytes).collect::<Vec<_>>());
    runner.stage("eval", "metrics.json", key, |output| {
        let mut run = super::eval::evaluate(kept, Some(&mut models))?;
        let ss = run.coherence["ss"]["value"].as_f64();
        let mut summary = format!(
            "{} dialogues, {} turns, H {:.2} bits, Distinct-3 {:.4}, SS {}",
            run.statistics.dialogues,
            run.statistics.turns,
            run.diversity.entropy_bits,
            run.diversity.distinct_3,
            ss.map_or("-".to_string(), |ss| format!("{:.2}", 100.0 * ss))
        );
        if let Some((options, prompts)) = judge {
            let engine = chat.engine()?;
            run.judge = super::eval::judge_file(kept, &engine, prompts, options, chat.runtime)?;
            let means = &run.judge["value"];
            summary.push_str(&if means.is_null() {
                format!(", judge: no usable verdict of {}", run.judge["sampled"])
            } else {
                format!(
                    ", judge NAT {:.2} COH {:.2} HELP {:.2} ACC {:.2} over {}",
                    means["nat"].as_f64().unwrap_or_default(),
                    means["coh"].as_f64().unwrap_or_default(),
                    means["help"].as_f64().unwrap_or_default(),
                    means["acc"].as_f64().unwrap_or_default(),
                    run.judge["judged"],
                )
            });
        }
        let document = toolflow_eval::metrics_document(&[run]);
        let text = serde_json::to_string_pretty(&document)?;
        jsonl::write_atomically(output, |out| {
            std::io::Write::write_all(out, format!("{text}\n").as_bytes())
        })?;
        Ok(summary)
    })
}

/// `report.html`: the run's metrics, graph, rejections, tool usage and dialogues on one page.
fn report_stage(
    runner: &mut Runner,
    metrics: &Path,
    graph: &Path,
    dialogues: &Path,
) -> anyhow::Result<PathBuf> {
    let rejected = runner.out.join(toolflow_report::REJECTED_FILE);
    let key = content_hash(&[
        file_hash(metrics)?.as_bytes(),
        file_hash(graph)?.as_bytes(),
        file_hash(dialogues)?.as_bytes(),
        file_hash(&rejected)?.as_bytes(),
    ]);
    let dir = runner.out.clone();
    runner.stage("report", "report.html", key, |output| {
        let inputs = toolflow_report::ReportInputs::from_run_dir(&dir)?;
        let page = toolflow_report::render(&inputs)?;
        jsonl::write_atomically(output, |out| {
            std::io::Write::write_all(out, page.as_bytes())
        })?;
        Ok(format!("{} KiB", page.len().div_ceil(1024)))
    })
}

/// One stage per format, each writing `exports/<format>/train.jsonl` and `validation.jsonl`.
fn export_stages(
    runner: &mut Runner,
    kept: &Path,
    config: &config::ExportConfig,
    config_dir: &Path,
) -> anyhow::Result<()> {
    let template_path = config
        .chat_template
        .as_ref()
        .map(|path| config_dir.join(path));
    for name in &config.formats {
        let format: toolflow_export::Format = name
            .parse()
            .map_err(anyhow::Error::msg)
            .context("[export] formats")?;
        let template = match (&template_path, format) {
            (Some(path), toolflow_export::Format::Template) => {
                Some(toolflow_export::ChatTemplate::from_tokenizer_config(path)?)
            }
            (None, toolflow_export::Format::Template) => {
                anyhow::bail!("[export] format `template` needs `chat_template`")
            }
            _ => None,
        };
        let mut key_parts = vec![
            file_hash(kept)?,
            name.clone(),
            config.val_fraction.to_string(),
            config.seed.to_string(),
        ];
        if let (Some(path), Some(_)) = (&template_path, &template) {
            key_parts.push(file_hash(path)?);
        }
        let key = content_hash(&key_parts.iter().map(String::as_bytes).collect::<Vec<_>>());
        let dir = runner.out.join("exports").join(name);
        runner.stage(
            &format!("export {name}"),
            &format!("exports/{name}/train.jsonl"),
            key,
            |_| {
                let summary = toolflow_export::export_file(
                    kept,
                    format,
                    &dir,
                    config.val_fraction,
                    config.seed,
                    template.as_ref(),
                )?;
                Ok(format!(
                    "{} train, {} validation",
                    summary.train, summary.validation
                ))
            },
        )?;
    }
    Ok(())
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
