//! `toolflow chat`: one prompt through the configured chat backend, the first thing to run
//! to check an endpoint. The answer goes to stdout, the usage to stderr.

use std::path::PathBuf;

use anyhow::Context;
use toolflow_llm::{ChatRequest, ChatResponse, Config, Message, ProbeReport};
use toolflow_pipeline::tables::{probe_table, usage_lines};

use super::engine::EngineArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The prompt, sent as one user message
    #[arg(required_unless_present = "probe")]
    prompt: Option<String>,
    /// Ask each configured endpoint what it supports (native tools, tool_choice auto /
    /// required / named, parallel calls, the structured-output dialect) and print it
    #[arg(long, conflicts_with = "json_schema")]
    probe: bool,
    #[command(flatten)]
    engine: EngineArgs,
    /// Answer with one JSON value valid against this JSON Schema; only that value is printed
    #[arg(long, value_name = "FILE")]
    json_schema: Option<PathBuf>,
    /// Sampling seed; without --model it also draws the model from the configured pool
    #[arg(long)]
    seed: Option<u64>,
    /// The model to ask, by the id in the config (default: drawn from the pool)
    #[arg(long)]
    model: Option<String>,
    /// A system message to send before the prompt
    #[arg(long)]
    system: Option<String>,
    #[arg(long)]
    temperature: Option<f32>,
    #[arg(long)]
    max_tokens: Option<u32>,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let config = args.engine.config()?;
    if args.probe {
        return probe(&config, &args, global);
    }
    let mut request = ChatRequest::new(Vec::new());
    if let Some(system) = &args.system {
        request.messages.push(Message::system(system.clone()));
    }
    request
        .messages
        .push(Message::user(args.prompt.clone().unwrap_or_default()));
    request.seed = args.seed;
    request.temperature = args.temperature;
    request.max_tokens = args.max_tokens;
    if let Some(path) = &args.json_schema {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let schema: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        request.json_schema = Some(schema);
    }

    let runtime = toolflow_pipeline::chat::runtime()?;
    let settings = args.engine.settings(&config, global, false);
    let engine = runtime.block_on(async { toolflow_pipeline::build_engine(&settings) })?;
    let model = match &args.model {
        Some(model) => model.clone(),
        None => engine.draw_model(args.seed.unwrap_or(0)).to_owned(),
    };
    let answer = runtime.block_on(engine.complete(&model, "chat", &request))?;
    print_answer(&answer, &request, global)?;
    if !global.quiet {
        for line in usage_lines(&engine.tallies()) {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// `--probe`: every endpoint's checks, one line each, and the capabilities found.
fn probe(config: &Config, args: &Args, global: &super::Global) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.endpoints.is_empty(),
        "--probe asks HTTP endpoints what they support: pass --endpoints FILE (the embedded model needs no probe)"
    );
    let runtime = toolflow_pipeline::chat::runtime()?;
    let settings = args.engine.settings(config, global, false);
    let engine = runtime.block_on(async { toolflow_pipeline::build_engine(&settings) })?;
    let reports: Vec<ProbeReport> = runtime
        .block_on(engine.probe())
        .into_iter()
        .filter_map(|(_, report)| report)
        .collect();
    if global.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    print!("{}", probe_table(&reports));
    Ok(())
}

fn print_answer(
    answer: &ChatResponse,
    request: &ChatRequest,
    global: &super::Global,
) -> anyhow::Result<()> {
    if global.json {
        println!("{}", serde_json::to_string_pretty(answer)?);
    } else if request.json_schema.is_some() && answer.tool_calls.is_empty() {
        println!("{}", answer.json().context("the answer is not JSON")?);
    } else {
        if let Some(text) = &answer.text {
            println!("{text}");
        }
        for call in &answer.tool_calls {
            println!("{}({})", call.name, call.arguments);
        }
    }
    Ok(())
}
