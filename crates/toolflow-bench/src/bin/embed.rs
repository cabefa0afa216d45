//! Embedding throughput on a real tool set: every distinct `"{name}: {description}"` slot
//! string (parameters and return fields), embedded cold (empty embedding cache) and warm.
//!
//! cargo run --release -p toolflow-bench --bin embed [-- TOOLS.jsonl]
//!
//! Defaults to ../shared/data/tools/tools_toolbench.jsonl beside the repository. Thread
//! count follows RAYON_NUM_THREADS (whole batches run in parallel on rayon's pool); the
//! precision of the matrix products follows TOOLFLOW_EMBED_PRECISION (auto, f32, bf16).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use toolflow_core::Tool;
use toolflow_embed::{CachedEmbedder, ModelOptions, Precision, SentenceEmbedder, resolve_model};

/// MiniLM's compute limit on this project's 2-core machines: about 5 s per 90k tokens.
const LIMIT_TOKENS_PER_SECOND: f64 = 90_000.0 / 5.0;

fn main() -> anyhow::Result<()> {
    let tools_path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/tools/tools_toolbench.jsonl")
        });
    if !tools_path.exists() {
        println!("skipped: {} is absent", tools_path.display());
        return Ok(());
    }
    let tools: Vec<Tool> = toolflow_core::jsonl::read(&tools_path)?;
    let mut seen = HashSet::new();
    let texts: Vec<String> = tools
        .iter()
        .flat_map(|tool| {
            tool.parameter_slots()
                .into_iter()
                .chain(tool.return_slots())
        })
        .map(|slot| slot.text())
        .filter(|text| seen.insert(text.clone()))
        .collect();
    println!(
        "{}: {} tools, {} distinct slot strings",
        tools_path.display(),
        tools.len(),
        texts.len()
    );

    let started = Instant::now();
    let model_dir = resolve_model(&ModelOptions::with_cache_dir(
        toolflow_core::default_cache_dir(),
    ))?;
    let precision: Precision = match std::env::var("TOOLFLOW_EMBED_PRECISION") {
        Ok(text) => text.parse().map_err(anyhow::Error::msg)?,
        Err(_) => Precision::Auto,
    };
    let load_started = Instant::now();
    let model = SentenceEmbedder::load(&model_dir, precision)?;
    println!(
        "model: {} at {} (resolve {:.2} s, load {:.2} s)",
        model_dir.display(),
        model.model_id(),
        load_started.duration_since(started).as_secs_f64(),
        load_started.elapsed().as_secs_f64()
    );
    println!(
        "threads: RAYON_NUM_THREADS={}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or("unset".into())
    );

    let cache = tempfile::tempdir().context("temporary cache directory")?;
    let options = ModelOptions {
        model_dir: Some(model_dir),
        cache_dir: cache.path().to_path_buf(),
        offline: true,
        precision,
    };

    let mut cold = CachedEmbedder::open(options.clone())?;
    let started = Instant::now();
    cold.embed(&texts)?;
    let cold_seconds = started.elapsed().as_secs_f64();
    let stats = cold.stats();
    let embed_seconds = stats.embed_seconds;
    let tokens = stats.tokens as f64;
    println!(
        "cold: {} strings, {} tokens, {:.2} s total ({:.2} s model load, {:.2} s embedding), \
         {:.0} strings/s, {:.0} tokens/s (embedding only)",
        texts.len(),
        stats.tokens,
        cold_seconds,
        stats.load_seconds,
        embed_seconds,
        texts.len() as f64 / embed_seconds,
        tokens / embed_seconds
    );
    let limit_seconds = tokens / LIMIT_TOKENS_PER_SECOND;
    println!(
        "limit: 5 s per 90k tokens is {limit_seconds:.2} s for these {} tokens; \
         embedding took {:.2}x that ({:+.2} s)",
        stats.tokens,
        embed_seconds / limit_seconds,
        embed_seconds - limit_seconds
    );
    drop(cold);

    let mut warm = CachedEmbedder::open(options)?;
    let started = Instant::now();
    warm.embed(&texts)?;
    let warm_seconds = started.elapsed().as_secs_f64();
    let stats = warm.stats();
    anyhow::ensure!(!stats.model_loaded, "the warm run loaded the model");
    println!(
        "warm: {} strings, {} cache hits, {:.3} s, {:.0} strings/s, model loaded: {}; {:.0}x faster than cold",
        texts.len(),
        stats.cache_hits,
        warm_seconds,
        texts.len() as f64 / warm_seconds,
        stats.model_loaded,
        cold_seconds / warm_seconds
    );
    Ok(())
}
