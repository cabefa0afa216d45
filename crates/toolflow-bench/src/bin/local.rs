//! The embedded model's speed on this machine: prompt processing and generation tokens/s,
//! free and under a JSON Schema grammar, and what reusing the KV cache saves on a second turn.
//!
//! `cargo run --release -p toolflow-bench --bin local [-- --rounds N]`
//! The model comes from the cache (`TOOLFLOW_CACHE_DIR` or the default), fetched when absent.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use toolflow_llm::{ChatRequest, Message, Role};
use toolflow_local::{LocalModel, LocalOptions, ModelSource, Timings, locate_model};

fn main() -> Result<()> {
    let rounds: usize = match std::env::args().skip_while(|a| a != "--rounds").nth(1) {
        Some(n) => n.parse().context("--rounds takes a number")?,
        None => 3,
    };
    let options = LocalOptions::default();
    let path = locate_model(&ModelSource {
        model_path: None,
        cache_dir: options.cache_dir,
        offline: options.offline,
    })?;
    let started = std::time::Instant::now();
    let mut model = LocalModel::load(&path)?;
    println!(
        "model {} loaded in {:.2} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "threads: {} (candle/rayon), cores online: {}",
        candle_threads(),
        cores()
    );

    let long_text = "The quick brown fox jumps over the lazy dog while the river keeps flowing past the old mill. ".repeat(24);
    let mut prompt = request(&format!("Summarise this text in one line:\n{long_text}"));
    prompt.max_tokens = Some(1);
    let runs = measure(&mut model, &prompt, rounds)?;
    report("prompt processing", &runs, |t| {
        (t.prompt_tokens_processed, t.prompt)
    });

    let mut free = request("Write a long story about a lighthouse keeper and a storm.");
    free.max_tokens = Some(128);
    free.temperature = Some(0.8);
    let runs = measure(&mut model, &free, rounds)?;
    report("generation, free text", &runs, |t| {
        (t.generated_tokens, t.generation)
    });

    let mut structured = request("List four people with a name, an age and a city.");
    structured.max_tokens = Some(128);
    structured.temperature = Some(0.8);
    structured.json_schema = Some(json!({
        "type": "object",
        "properties": {"people": {"type": "array", "minItems": 4, "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}, "city": {"type": "string"}},
            "required": ["name", "age", "city"], "additionalProperties": false
        }}},
        "required": ["people"], "additionalProperties": false
    }));
    let runs = measure(&mut model, &structured, rounds)?;
    report("generation, JSON Schema grammar", &runs, |t| {
        (t.generated_tokens, t.generation)
    });

    // A second turn: the first turn's prompt and answer, then a new question.
    let mut first = request(&format!("Here is a text:\n{long_text}\nWhat animal jumps?"));
    first.max_tokens = Some(24);
    first.temperature = Some(0.0);
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..rounds {
        model.clear_cache();
        let (answer, _) = model.complete(&first)?;
        let mut second = first.clone();
        second.messages.push(Message::new(
            Role::Assistant,
            answer.text.unwrap_or_default(),
        ));
        second
            .messages
            .push(Message::new(Role::User, "And what does the river do?"));
        warm.push(model.complete(&second)?.1);
        model.clear_cache();
        cold.push(model.complete(&second)?.1);
    }
    let median_ms =
        |runs: &[Timings]| median(runs.iter().map(|t| t.prompt.as_secs_f64() * 1e3).collect());
    println!(
        "second turn prompt: {} tokens; KV cache reused {} of them: {:.1} ms against {:.1} ms from scratch (median of {rounds})",
        cold[0].prompt_tokens_processed,
        warm[0].prompt_tokens_reused,
        median_ms(&warm),
        median_ms(&cold),
    );
    Ok(())
}

fn request(prompt: &str) -> ChatRequest {
    let mut request = ChatRequest::new(vec![Message::new(Role::User, prompt)]);
    request.seed = Some(7);
    request
}

/// Runs `request` `rounds` times with different seeds, each from an empty KV cache.
fn measure(model: &mut LocalModel, request: &ChatRequest, rounds: usize) -> Result<Vec<Timings>> {
    // One unmeasured run warms the allocator and the grammar's caches.
    model.complete(request)?;
    (0..rounds)
        .map(|round| {
            model.clear_cache();
            let mut request = request.clone();
            request.seed = Some(round as u64);
            Ok(model.complete(&request)?.1)
        })
        .collect()
}

fn report(what: &str, runs: &[Timings], pick: impl Fn(&Timings) -> (usize, Duration)) {
    let rates: Vec<f64> = runs
        .iter()
        .map(|t| pick(t))
        .map(|(n, d)| n as f64 / d.as_secs_f64())
        .collect();
    let tokens: Vec<usize> = runs.iter().map(|t| pick(t).0).collect();
    println!(
        "{what}: {:.1} tokens/s median (min {:.1}, max {:.1}; tokens per run {tokens:?})",
        median(rates.clone()),
        rates.iter().cloned().fold(f64::INFINITY, f64::min),
        rates.iter().cloned().fold(0.0, f64::max),
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn candle_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(cores)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
