//! `toolflow chat`: one prompt through the configured chat backend, the first thing to run
//! to check an endpoint. The answer goes to stdout, the usage to stderr.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use toolflow_llm::{
    CacheMode, ChatRequest, ChatResponse, Config, Endpoint, Engine, Message, ResponseCache,
};
use toolflow_local::{LocalBackend, LocalOptions};

#[derive(clap::Args)]
pub struct Args {
    /// The prompt, sent as one user message
    prompt: String,
    /// Endpoints file (TOML, see examples/endpoints.toml); without one the embedded model answers
    #[arg(long, env = "TOOLFLOW_CONFIG")]
    config: Option<PathBuf>,
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
    /// Neither read nor write the response cache
    #[arg(long, conflicts_with = "cache_only")]
    no_cache: bool,
    /// Answer only from the response cache; a miss is an error
    #[arg(long)]
    cache_only: bool,
    /// The embedded model's GGUF file, instead of the cached or downloaded one
    #[arg(long, value_name = "FILE")]
    model_path: Option<PathBuf>,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let mode = match (args.no_cache, args.cache_only) {
        (true, _) => CacheMode::Off,
        (_, true) => CacheMode::Only,
        _ => CacheMode::ReadWrite,
    };
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let mut request = ChatRequest::new(Vec::new());
    if let Some(system) = &args.system {
        request.messages.push(Message::system(system.clone()));
    }
    request.messages.push(Message::user(args.prompt.clone()));
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

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let engine = if config.endpoints.is_empty() {
        embedded_engine(&args, global, &config, mode)?
    } else {
        runtime.block_on(async { Engine::from_config(&config, &global.cache_dir(), mode) })?
    };
    let model = match &args.model {
        Some(model) => model.clone(),
        None => engine.draw_model(args.seed.unwrap_or(0)).to_owned(),
    };
    let answer = runtime.block_on(engine.complete(&model, "chat", &request))?;
    print_answer(&answer, &request, global)?;
    if !global.quiet {
        print_usage(&engine);
    }
    Ok(())
}

/// With no endpoint configured, the embedded model answers: one request at a time, with
/// time enough for two slow cores.
fn embedded_engine(
    args: &Args,
    global: &super::Global,
    config: &Config,
    mode: CacheMode,
) -> anyhow::Result<Engine> {
    let options = LocalOptions {
        model_path: args.model_path.clone(),
        cache_dir: global.cache_dir(),
        offline: false,
    };
    let backend = LocalBackend::load(&options)
        .context("no endpoint configured, so the embedded model answers")?;
    let endpoint = Endpoint {
        max_concurrency: 1,
        timeout: Duration::from_secs(600),
        ..Endpoint::new("embedded", Arc::new(backend))
    };
    let cache = ResponseCache::path_in(&global.cache_dir());
    Ok(Engine::new(
        vec![endpoint],
        config.engine.clone(),
        Some(&cache),
        mode,
    )?)
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

fn print_usage(engine: &Engine) {
    for row in engine.tallies() {
        let tally = &row.tally;
        let source = if tally.cache_hits > 0 {
            ", from the cache".to_owned()
        } else {
            format!(", {} attempt(s)", tally.attempts)
        };
        eprintln!(
            "{}: {} prompt + {} completion tokens, ${:.6}{source}",
            row.model, tally.prompt_tokens, tally.completion_tokens, tally.cost_usd
        );
    }
}
