//! The pipeline end to end into one output directory, one file per stage, each stage
//! skipped when its output is current ([`crate::stage`]); the synthesis stage keeps every
//! finished dialogue in the run store (`run.sqlite`), so a run that crashed or was killed
//! resumes where it stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::json;
use toolflow_core::{SamplingStrategy, content_hash, jsonl};
use toolflow_embed::{CachedEmbedder, ModelOptions, Precision};
use toolflow_import::{ImportOptions, Importer};
use toolflow_llm::{CacheMode, TallyRow};
use toolflow_store::Shard;
use toolflow_synth::Prompts;
use toolflow_synth::enrich::EnrichOptions;
use toolflow_synth::judge::JudgeOptions;

use crate::build::{build_tool_graph, read_graph, sample_graph, write_graph_json};
use crate::chat::{ChatModels, ChatSettings};
use crate::config::{
    DEMO_TOOLS, DEMO_TOOLS_PATH, ExportConfig, GraphConfig, RunConfig, SampleConfig, ToolsConfig,
};
use crate::enrich::enrich;
use crate::error::PipelineError;
use crate::filter::{GateJudge, filter_dialogues};
use crate::measure::{CoherenceModels, evaluate, judge_file};
use crate::observe::{Observer, StageReport};
use crate::stage::{Runner, stage_key};
use crate::synth::{Interrupt, SynthJob, SynthSummary, synthesize};

/// Everything a run is asked to do, besides its config file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run config (see `examples/run.toml`); none runs the offline demo.
    pub config: Option<PathBuf>,
    /// The output directory.
    pub out: PathBuf,
    /// Overrides `[sample] count`.
    pub dialogues: Option<u64>,
    /// Write only this shard, and stop after synthesis.
    pub shard: Option<Shard>,
    /// Write again the dialogues that failed before.
    pub retry_failed: bool,
    /// A directory of prompt files replacing the built-in ones.
    pub prompts: Option<PathBuf>,
    /// Rerun every stage, and start the run store afresh.
    pub force: bool,
    /// Never ask the Hugging Face hub for models.
    pub offline: bool,
    /// Endpoints replacing the config's `[[endpoint]]` tables.
    pub endpoints: Option<toolflow_llm::Config>,
    /// How the response cache is used.
    pub cache_mode: CacheMode,
    /// The embedded model's GGUF file.
    pub model_path: Option<PathBuf>,
    /// toolflow's cache directory.
    pub cache_dir: PathBuf,
    /// The embedding model's matrix-product precision.
    pub embed_precision: Precision,
    /// What stops synthesis early.
    pub interrupt: Interrupt,
    /// Execute MCP tool calls anew instead of reading their recorded results.
    pub refresh_tools: bool,
}

impl RunOptions {
    /// The demo into `out`, everything else at its default.
    pub fn new(out: PathBuf, cache_dir: PathBuf) -> Self {
        RunOptions {
            config: None,
            out,
            dialogues: None,
            shard: None,
            retry_failed: false,
            prompts: None,
            force: false,
            offline: false,
            endpoints: None,
            cache_mode: CacheMode::ReadWrite,
            model_path: None,
            cache_dir,
            embed_precision: Precision::Auto,
            interrupt: Interrupt::CtrlC,
            refresh_tools: false,
        }
    }

    fn model_options(&self, model_dir: Option<PathBuf>) -> ModelOptions {
        ModelOptions {
            model_dir,
            cache_dir: self.cache_dir.clone(),
            offline: self.offline,
            precision: self.embed_precision,
        }
    }
}

/// What a run did: `toolflow run --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The output directory.
    pub out: PathBuf,
    /// Each stage, in order.
    pub stages: Vec<StageReport>,
    /// What synthesis did.
    pub synth: SynthSummary,
    /// Requests and tokens per model and role, when a chat model was used.
    pub requests: Option<Vec<TallyRow>>,
    /// The whole run's wall time.
    pub seconds: f64,
    /// The tools the run used (`tools.jsonl`, or the enriched file).
    #[serde(skip)]
    pub tools: PathBuf,
    /// The last file written.
    #[serde(skip)]
    pub last: PathBuf,
    /// The shard written.
    #[serde(skip)]
    pub shard: Shard,
}

/// Runs the pipeline.
pub fn run(options: &RunOptions, observer: &dyn Observer) -> Result<RunSummary, PipelineError> {
    let started = Instant::now();
    let (mut config, config_dir) = RunConfig::load(options.config.as_deref())?;
    if let Some(count) = options.dialogues {
        config.sample.count = count;
    }
    let origin = options
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("(demo)"));
    let endpoints = match &options.endpoints {
        Some(endpoints) => endpoints.clone(),
        None => config.llm(&origin)?,
    };
    let prompts = Prompts::load(options.prompts.as_deref())?;
    let runtime = crate::chat::runtime()?;
    let mut runner = Runner::open(&options.out, options.force, observer)?;
    let mut chat = ChatModels::new(
        ChatSettings {
            endpoints,
            cache_mode: options.cache_mode,
            model_path: options.model_path.clone(),
            cache_dir: options.cache_dir.clone(),
            offline: options.offline,
        },
        &runtime,
    );

    let servers = mcp_servers(&config)?;
    let imported = import_stage(&mut runner, &config.tools, &config_dir, &servers, &runtime)?;
    let executor = crate::mcp::executor(
        &config.mcp,
        config.synth.tools,
        &options.out.join("tool-results.sqlite"),
        &options.out.join("mcp"),
        options.refresh_tools,
    )?;
    let tools = match &config.enrich {
        Some(enrich) => enrich_stage(
            &mut runner,
            &imported,
            enrich,
            &prompts,
            &mut chat,
            observer,
        )?,
        None => imported,
    };
    let model = options.model_options(config.graph.model_dir.as_ref().map(|d| config_dir.join(d)));
    let graph = graph_stage(&mut runner, &tools, &config.graph, model, observer)?;
    let subsets = sample_stage(&mut runner, &graph, &config.sample)?;
    let shard = options.shard.unwrap_or(Shard::ALL);
    let (dialogues, synth) = synth_stage(
        &mut runner,
        SynthInputs {
            tools: &tools,
            graph: &graph,
            subsets: &subsets,
            sample: &config.sample,
            config: &config.synth,
            prompts: prompts.clone(),
            shard,
            retry_failed: options.retry_failed,
            mcp: &config.mcp,
            executor,
        },
        &mut chat,
        &options.interrupt,
        observer,
    )?;
    let mut last = dialogues.clone();
    if shard.is_all() {
        let coherence = options.model_options(None);
        let filter = FilterInputs {
            config: &config.filter,
            embed: coherence.clone(),
            judge: config.judge.clone().unwrap_or_default(),
            prompts: &prompts,
        };
        let kept = filter_stage(&mut runner, &dialogues, filter, &mut chat)?;
        let judge = config.judge.as_ref().map(|judge| (judge, &prompts));
        let metrics = eval_stage(&mut runner, &kept, coherence, judge, &mut chat)?;
        export_stages(&mut runner, &kept, &config.export, &config_dir)?;
        last = report_stage(&mut runner, &metrics, &graph, &dialogues)?;
    }
    Ok(RunSummary {
        out: options.out.clone(),
        requests: chat.built().map(|engine| engine.tallies()),
        stages: runner.into_reports(),
        synth,
        seconds: started.elapsed().as_secs_f64(),
        tools,
        last,
        shard,
    })
}

/// The `[[mcp]]` servers whose tools the import stage lists (`[tools] mcp`, or all).
fn mcp_servers(config: &RunConfig) -> Result<Vec<toolflow_mcp::ServerConfig>, PipelineError> {
    let Some(names) = &config.tools.mcp else {
        return Ok(config.mcp.clone());
    };
    names
        .iter()
        .map(|name| {
            config.mcp_server(name).cloned().ok_or_else(|| {
                PipelineError::ConfigValue(format!(
                    "[tools] mcp: no [[mcp]] table is named `{name}`"
                ))
            })
        })
        .collect()
}

fn import_stage(
    runner: &mut Runner,
    config: &ToolsConfig,
    config_dir: &Path,
    servers: &[toolflow_mcp::ServerConfig],
    runtime: &tokio::runtime::Runtime,
) -> Result<PathBuf, PipelineError> {
    let paths: Vec<PathBuf> = config.paths.iter().map(|p| config_dir.join(p)).collect();
    let format = config
        .format
        .as_deref()
        .map(|name| {
            name.parse()
                .map_err(|detail| PipelineError::ConfigValue(format!("[tools] format: {detail}")))
        })
        .transpose()?;
    let options = ImportOptions {
        format,
        strict: config.strict,
    };
    // The inputs' contents, and their names, decide the tools.
    let mut settings = json!({
        "format": config.format,
        "strict": config.strict,
        "paths": paths,
        "demo": (paths.is_empty() && servers.is_empty()).then(|| content_hash(&[DEMO_TOOLS.as_bytes()])),
    });
    // Without servers the key is what it was before they existed.
    if !servers.is_empty() {
        settings["mcp"] = json!(servers);
    }
    let inputs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let key = stage_key(&settings, &inputs)?;
    runner.stage("import", "tools.jsonl", key, |output| {
        let mut importer = Importer::new(options.clone());
        if paths.is_empty() && servers.is_empty() {
            importer.add_text(Path::new(DEMO_TOOLS_PATH), DEMO_TOOLS)?;
        }
        for path in &paths {
            importer.add_path(path)?;
        }
        let mut report = importer.finish();
        for diagnostic in &report.diagnostics {
            tracing::warn!("{diagnostic}");
        }
        let mut taken: Vec<String> = report.tools.iter().map(|tool| tool.name.clone()).collect();
        let served = crate::mcp::import_servers(servers, &mut taken, runtime)?;
        let from_servers = served.len();
        report.tools.extend(served);
        if report.tools.is_empty() {
            return Err(PipelineError::NoTools);
        }
        jsonl::write(output, &report.tools)?;
        Ok(format!(
            "{} tools ({from_servers} from MCP servers)",
            report.tools.len()
        ))
    })
}

fn enrich_stage(
    runner: &mut Runner,
    tools: &Path,
    options: &EnrichOptions,
    prompts: &Prompts,
    chat: &mut ChatModels,
    observer: &dyn Observer,
) -> Result<PathBuf, PipelineError> {
    let settings = json!({
        "enrich": options,
        "prompts": prompts.fingerprint(),
        "models": chat.identity(),
    });
    let key = stage_key(&settings, &[tools])?;
    runner.stage("enrich", "tools.enriched.jsonl", key, |output| {
        let report = enrich(jsonl::read(tools)?, options, prompts, chat, observer)?;
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

fn graph_stage(
    runner: &mut Runner,
    tools: &Path,
    config: &GraphConfig,
    model: ModelOptions,
    observer: &dyn Observer,
) -> Result<PathBuf, PipelineError> {
    // The embedding precision decides the vectors, so a graph built at another one is stale.
    let settings = json!({
        "method": config.method,
        "tau": config.tau,
        "embed_model": model.precision.effective()?.model_id(),
    });
    let key = stage_key(&settings, &[tools])?;
    runner.stage("graph", "graph.json", key, |output| {
        let built = build_tool_graph(tools, config.method, config.tau, model, 0, observer)?;
        write_graph_json(&built.graph, output)?;
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
) -> Result<PathBuf, PipelineError> {
    let key = stage_key(config, &[graph_path])?;
    runner.stage("sample", "subsets.jsonl", key, |output| {
        let graph = read_graph(graph_path)?;
        let subsets = sample_graph(
            &graph,
            graph_path,
            config.strategy,
            config.size,
            config.count,
            config.seed,
            0,
        )?;
        jsonl::write(output, &subsets)?;
        let short = subsets.iter().filter(|s| s.short).count();
        let chained = if config.strategy == SamplingStrategy::Chain {
            let links: usize = subsets.iter().map(|s| s.links.len()).sum();
            let fallbacks: u64 = subsets.iter().map(|s| u64::from(s.fallbacks)).sum();
            format!(", {links} links, {fallbacks} graph steps where a chain could not grow")
        } else {
            String::new()
        };
        Ok(format!(
            "{} subsets of {} tools, {short} short{chained}",
            subsets.len(),
            config.size
        ))
    })
}

struct SynthInputs<'a> {
    tools: &'a Path,
    graph: &'a Path,
    subsets: &'a Path,
    sample: &'a SampleConfig,
    config: &'a toolflow_synth::SynthConfig,
    prompts: Prompts,
    shard: Shard,
    retry_failed: bool,
    mcp: &'a [toolflow_mcp::ServerConfig],
    executor: Option<std::sync::Arc<dyn toolflow_synth::ToolExecutor>>,
}

fn synth_stage(
    runner: &mut Runner,
    inputs: SynthInputs,
    chat: &mut ChatModels,
    interrupt: &Interrupt,
    observer: &dyn Observer,
) -> Result<(PathBuf, SynthSummary), PipelineError> {
    // The store's key: whatever decides a dialogue's content, but not the count, so that a
    // run can be extended with more dialogues, nor the shard.
    let mut settings = json!({
        "synth": inputs.config,
        "sample": {"size": inputs.sample.size, "seed": inputs.sample.seed, "strategy": inputs.sample.strategy},
        "models": chat.identity(),
        "prompts": inputs.prompts.fingerprint(),
    });
    // The servers decide executed results; a run that simulates keeps its old key.
    if inputs.executor.is_some() {
        let servers: Vec<String> = inputs.mcp.iter().map(|server| server.identity()).collect();
        settings["mcp"] = json!(servers);
    }
    let run_key = stage_key(&settings, &[inputs.tools, inputs.graph])?;
    let stage_settings = json!({
        "run": run_key,
        "shard": inputs.shard.to_string(),
        "retry_failed": inputs.retry_failed,
    });
    let key = stage_key(&stage_settings, &[inputs.subsets])?;
    let store = runner.out().join("run.sqlite");
    let fresh = runner.force();
    let mut summary = SynthSummary::default();
    let runtime = chat.runtime();
    let path = runner.stage("synth", "dialogues.jsonl", key, |output| {
        let job = SynthJob {
            tools: inputs.tools,
            subsets: inputs.subsets,
            shard: inputs.shard,
            config: inputs.config,
            prompts: inputs.prompts,
            store: &store,
            run_key: &run_key,
            settings: &settings,
            fresh,
            retry_failed: inputs.retry_failed,
            executor: inputs.executor.clone(),
        };
        let done = synthesize(job, output, || chat.engine(), runtime, interrupt, observer)?;
        summary = done.summary;
        let counts = done.in_store;
        Ok(format!(
            "{} dialogues ({} resumed): {} completed, {} at the turn limit, {} failed",
            done.dialogues, summary.resumed, counts.completed, counts.turn_limit, counts.failed
        ))
    })?;
    Ok((path, summary))
}

/// What the filter stage reads besides the dialogues.
struct FilterInputs<'a> {
    config: &'a toolflow_eval::FilterConfig,
    /// The sentence embedder for the off-plan rule.
    embed: ModelOptions,
    /// The judge gate's settings (`[judge]`, or its defaults), used when `judge-min` is set.
    judge: JudgeOptions,
    prompts: &'a Prompts,
}

fn filter_stage(
    runner: &mut Runner,
    dialogues: &Path,
    inputs: FilterInputs,
    chat: &mut ChatModels,
) -> Result<PathBuf, PipelineError> {
    let config = inputs.config;
    let mut embedder = CachedEmbedder::open(inputs.embed)?;
    let gated = config.judge_min.is_some();
    let settings = json!({
        "filter": format!("{config:?}"),
        "embed": embedder.model_id(),
        "judge": gated.then(|| json!({
            "options": inputs.judge,
            "prompts": inputs.prompts.fingerprint(),
            "models": chat.identity(),
        })),
    });
    let key = stage_key(&settings, &[dialogues])?;
    let rejected = runner.out().join(toolflow_report::REJECTED_FILE);
    runner.stage("filter", "kept.jsonl", key, |kept| {
        let engine = if gated { Some(chat.engine()?) } else { None };
        let judge = engine.as_deref().map(|engine| GateJudge {
            engine,
            prompts: inputs.prompts,
            options: inputs.judge.clone(),
            runtime: chat.runtime(),
        });
        let summary = filter_dialogues(
            dialogues,
            kept,
            &rejected,
            config,
            Some(&mut embedder),
            judge,
        )?;
        Ok(filter_report(&summary))
    })
}

/// The filter stage's line: how many dialogues were kept, and why the rest were not.
fn filter_report(summary: &toolflow_eval::FilterSummary) -> String {
    let mut line = format!(
        "{} of {} dialogues kept, {} rejected",
        summary.kept, summary.dialogues, summary.rejected
    );
    let reasons: Vec<String> = summary
        .rules
        .iter()
        .filter(|count| count.level == toolflow_eval::Level::Reject && count.dialogues > 0)
        .map(|count| format!("{} {}", count.rule.id(), count.dialogues))
        .collect();
    if !reasons.is_empty() {
        line.push_str(&format!(" ({})", reasons.join(", ")));
    }
    line
}

/// Measures the kept dialogues into `metrics.json`; with `judge`, the LLM judge scores a
/// sample of them through the run's chat models.
fn eval_stage(
    runner: &mut Runner,
    kept: &Path,
    embed: ModelOptions,
    judge: Option<(&JudgeOptions, &Prompts)>,
    chat: &mut ChatModels,
) -> Result<PathBuf, PipelineError> {
    // Coherence models as `toolflow eval` finds them (the hub is skipped under
    // TOOLFLOW_OFFLINE / HF_HUB_OFFLINE); which ones measured is part of the stage's key.
    let nli_model = std::env::var_os("TOOLFLOW_NLI_MODEL").map(PathBuf::from);
    let mut models = CoherenceModels::open(
        ModelOptions {
            offline: false,
            ..embed
        },
        nli_model,
    )?;
    let settings = json!({
        "coherence": models.fingerprint(),
        "judge": judge.map(|(options, prompts)| json!({
            "options": options,
            "prompts": prompts.fingerprint(),
            "models": chat.identity(),
        })),
    });
    let key = stage_key(&settings, &[kept])?;
    runner.stage("eval", "metrics.json", key, |output| {
        let mut run = evaluate(kept, Some(&mut models))?;
        let ss = run.coherence.ss.value;
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
            run.judge = judge_file(kept, &engine, prompts, options, chat.runtime())?;
            let judge = &run.judge;
            summary.push_str(&match judge.value {
                None => format!(
                    ", judge: no usable verdict of {}",
                    judge.sampled.unwrap_or_default()
                ),
                Some(means) => format!(
                    ", judge NAT {:.2} COH {:.2} HELP {:.2} ACC {:.2} over {}",
                    means.nat,
                    means.coh,
                    means.help,
                    means.acc,
                    judge.judged.unwrap_or_default(),
                ),
            });
        }
        let document = toolflow_eval::metrics_document(vec![run]);
        let text = serde_json::to_string_pretty(&document).expect("metrics serialise");
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
) -> Result<PathBuf, PipelineError> {
    let rejected = runner.out().join(toolflow_report::REJECTED_FILE);
    let key = stage_key(&(), &[metrics, graph, dialogues, &rejected])?;
    let dir = runner.out().to_path_buf();
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
    config: &ExportConfig,
    config_dir: &Path,
) -> Result<(), PipelineError> {
    let template_path = config
        .chat_template
        .as_ref()
        .map(|path| config_dir.join(path));
    for name in &config.formats {
        let format: toolflow_export::Format = name
            .parse()
            .map_err(|detail| PipelineError::ConfigValue(format!("[export] formats: {detail}")))?;
        let template = match (&template_path, format) {
            (Some(path), toolflow_export::Format::Template) => {
                Some(toolflow_export::ChatTemplate::from_tokenizer_config(path)?)
            }
            (None, toolflow_export::Format::Template) => {
                return Err(PipelineError::ConfigValue(
                    "[export] format `template` needs `chat_template`".into(),
                ));
            }
            _ => None,
        };
        let settings = json!({
            "format": name,
            "val_fraction": config.val_fraction,
            "seed": config.seed,
        });
        let mut inputs = vec![kept];
        if let (Some(path), Some(_)) = (&template_path, &template) {
            inputs.push(path);
        }
        let key = stage_key(&settings, &inputs)?;
        let dir = runner.out().join("exports").join(name);
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
