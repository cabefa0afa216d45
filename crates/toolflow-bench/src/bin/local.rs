//! The embedded model's speed on this machine: prompt processing and generation tokens/s,
//! free and under a JSON Schema grammar, for 1 to 8 sequences decoded together, on one
//! thread and on `--threads`; what reusing the KV cache saves on a second turn; and, in the
//! same run, llama.cpp's `llama-bench` (single stream) and `llama-batched-bench` (1 to 8
//! sequences) on the same GGUF and thread count when they are built.
//!
//! `cargo run --release -p toolflow-bench --bin local [-- --rounds N --threads T --sequences S]`
//! (`--sequences S`: only the batched figures for S sequences, the case to profile).
//! The model comes from the cache (`TOOLFLOW_CACHE_DIR` or the default), fetched when absent.
//! `llama-bench` is `LLAMA_BENCH` or `<cache>/llama-cpp/build/bin/llama-bench`, and
//! `llama-batched-bench` is `LLAMA_BATCHED_BENCH` or the same directory's
//! (`scripts/build-llama-cpp.sh` builds both).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use toolflow_llm::{ChatRequest, Message, Role};
use toolflow_local::quant::Isa;
use toolflow_local::{LocalModel, LocalOptions, ModelSource, Timings, locate_model};

fn main() -> Result<()> {
    let number = |flag: &str, default: usize| -> Result<usize> {
        match std::env::args().skip_while(|a| a != flag).nth(1) {
            Some(n) => n.parse().with_context(|| format!("{flag} takes a number")),
            None => Ok(default),
        }
    };
    let rounds = number("--rounds", 3)?;
    let threads = number("--threads", 2)?;
    // `--sequences N`: only the batched figures for N sequences (for profiling one case).
    let only = number("--sequences", 0)?;
    let options = LocalOptions::default();
    let path = locate_model(&ModelSource {
        model_path: None,
        cache_dir: options.cache_dir.clone(),
        offline: options.offline,
    })?;
    let started = Instant::now();
    let mut model = LocalModel::load_with_threads(&path, threads)?;
    println!(
        "model {} loaded in {:.2} s; kernels: {:?}; threads: {}; cores online: {}; {}",
        path.display(),
        started.elapsed().as_secs_f64(),
        Isa::detect(),
        model.threads(),
        cores(),
        load_average()
    );

    let long_text = "The quick brown fox jumps over the lazy dog while the river keeps flowing past the old mill. ".repeat(24);
    let mut prompt = request(&format!("Summarise this text in one line:\n{long_text}"));
    prompt.max_tokens = Some(1);
    let mut free = request("Write a long story about a lighthouse keeper and a storm.");
    free.max_tokens = Some(128);
    free.temperature = Some(0.8);
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

    if only > 0 {
        for (name, base) in [("free text", &free), ("JSON Schema grammar", &structured)] {
            print_batched(&mut model, name, base, only, rounds)?;
        }
        println!("{}", load_average());
        return Ok(());
    }
    if threads != 1 {
        let mut single = LocalModel::load_with_threads(&path, 1)?;
        println!("-- 1 thread");
        single_stream(&mut single, &prompt, &free, &structured, rounds)?;
    }
    println!("-- {threads} threads");
    single_stream(&mut model, &prompt, &free, &structured, rounds)?;

    println!("-- sequences decoded together ({threads} threads; aggregate tokens/s)");
    for (name, base) in [("free text", &free), ("JSON Schema grammar", &structured)] {
        for sequences in [1, 2, 4, 8] {
            print_batched(&mut model, name, base, sequences, rounds)?;
        }
    }

    second_turn(&mut model, &long_text, rounds)?;
    llama_bench(&path, &options.cache_dir, threads)?;
    llama_batched_bench(&path, &options.cache_dir, threads)?;
    // Other processes on the cores skew every figure above, llama-bench's most (it spins).
    println!("{}", load_average());
    Ok(())
}

/// Medians of `rounds` runs after an unmeasured one, as for the single stream: the ratio of
/// the 4-sequence figure to the 1-sequence one is only as good as both medians.
fn print_batched(
    model: &mut LocalModel,
    name: &str,
    base: &ChatRequest,
    sequences: usize,
    rounds: usize,
) -> Result<()> {
    batched(model, base, sequences)?;
    let runs = (0..rounds.max(1))
        .map(|_| batched(model, base, sequences))
        .collect::<Result<Vec<_>>>()?;
    let prompt_rate = median(runs.iter().map(|r| r.0).collect());
    let generation_rate = median(runs.iter().map(|r| r.1).collect());
    let per_cpu_second = median(
        runs.iter()
            .map(|r| r.2 as f64 / r.3.as_secs_f64())
            .collect(),
    );
    println!(
        "{name}, {sequences} sequences: prompt {prompt_rate:.1} tokens/s, generation {generation_rate:.1} tokens/s median of {} ({} tokens a run; {per_cpu_second:.1} per CPU second)",
        runs.len(),
        runs[0].2,
    );
    Ok(())
}

/// User and system CPU time of this process so far, all threads.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds =
        |time: libc::timeval| Duration::new(time.tv_sec as u64, time.tv_usec as u32 * 1000);
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The 1, 5 and 15 minute load averages, where the system reports them.
fn load_average() -> String {
    match std::fs::read_to_string("/proc/loadavg") {
        Ok(text) => {
            let figures: Vec<&str> = text.split_whitespace().take(3).collect();
            format!("load average {}", figures.join(" "))
        }
        Err(_) => "load average unknown".to_string(),
    }
}

fn single_stream(
    model: &mut LocalModel,
    prompt: &ChatRequest,
    free: &ChatRequest,
    structured: &ChatRequest,
    rounds: usize,
) -> Result<()> {
    let runs = measure(model, prompt, rounds)?;
    report("prompt processing", &runs, |t| {
        (t.prompt_tokens_processed, t.prompt)
    });
    let runs = measure(model, free, rounds)?;
    report("generation, free text", &runs, |t| {
        (t.generated_tokens, t.generation)
    });
    let runs = measure(model, structured, rounds)?;
    report("generation, JSON Schema grammar", &runs, |t| {
        (t.generated_tokens, t.generation)
    });
    Ok(())
}

/// `sequences` copies of `base` (seeds 0, 1, …) started together and decoded together from
/// empty caches: aggregate prompt and generation tokens/s, the tokens generated, and the CPU
/// time their generation took (which other processes on the cores barely change, unlike the
/// tokens/s).
fn batched(
    model: &mut LocalModel,
    base: &ChatRequest,
    sequences: usize,
) -> Result<(f64, f64, usize, Duration)> {
    model.clear_cache();
    let requests: Vec<ChatRequest> = (0..sequences)
        .map(|seed| {
            let mut request = base.clone();
            request.seed = Some(seed as u64);
            request
        })
        .collect();
    let started = Instant::now();
    for begun in model.begin(&requests) {
        begun?;
    }
    let prompt_time = started.elapsed();
    let started = Instant::now();
    let cpu_started = cpu_time();
    let mut answers = Vec::new();
    while answers.len() < sequences {
        for (_, answer) in model.step() {
            answers.push(answer?.1);
        }
    }
    let generation_time = started.elapsed();
    let cpu = cpu_time() - cpu_started;
    let prompt_tokens: usize = answers.iter().map(|t| t.prompt_tokens_processed).sum();
    let generated: usize = answers.iter().map(|t| t.generated_tokens).sum();
    Ok((
        prompt_tokens as f64 / prompt_time.as_secs_f64(),
        generated as f64 / generation_time.as_secs_f64(),
        generated,
        cpu,
    ))
}

fn second_turn(model: &mut LocalModel, long_text: &str, rounds: usize) -> Result<()> {
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
        let (warm_answer, warm_timings) = model.complete(&second)?;
        warm.push(warm_timings);
        model.clear_cache();
        let (cold_answer, cold_timings) = model.complete(&second)?;
        cold.push(cold_timings);
        if warm_answer.text != cold_answer.text {
            bail!("the answer with a reused KV cache differs from the one without");
        }
    }
    let median_ms =
        |runs: &[Timings]| median(runs.iter().map(|t| t.prompt.as_secs_f64() * 1e3).collect());
    println!(
        "second turn prompt: {} tokens; KV cache reused {} of them: {:.1} ms against {:.1} ms from scratch (median of {rounds}; same answer)",
        cold[0].prompt_tokens_processed,
        warm[0].prompt_tokens_reused,
        median_ms(&warm),
        median_ms(&cold),
    );
    Ok(())
}

/// llama.cpp's own single-stream figures on the same file and thread count, when
/// `llama-bench` is built.
fn llama_bench(model: &Path, cache_dir: &Path, threads: usize) -> Result<()> {
    let threads = threads.to_string();
    run_llama_tool(
        "llama-bench",
        "LLAMA_BENCH",
        cache_dir,
        &[
            "-m",
            &model.to_string_lossy(),
            "-t",
            &threads,
            "-p",
            "512",
            "-n",
            "128",
        ],
    )
}

/// llama.cpp's batched decoding on the same file and thread count, when
/// `llama-batched-bench` is built: 1, 2, 4 and 8 sequences of a 32-token prompt and 128
/// generated tokens each, aggregate tokens/s (`S_TG`), as the batched figures above.
fn llama_batched_bench(model: &Path, cache_dir: &Path, threads: usize) -> Result<()> {
    let threads = threads.to_string();
    run_llama_tool(
        "llama-batched-bench",
        "LLAMA_BATCHED_BENCH",
        cache_dir,
        &[
            "-m",
            &model.to_string_lossy(),
            "-t",
            &threads,
            "-c",
            "4096",
            "-npp",
            "32",
            "-ntg",
            "128",
            "-npl",
            "1,2,4,8",
        ],
    )
}

/// Runs one of llama.cpp's tools (`$variable`, else `<cache>/llama-cpp/build/bin/<name>`)
/// and prints its table; says so when it is not built.
fn run_llama_tool(name: &str, variable: &str, cache_dir: &Path, args: &[&str]) -> Result<()> {
    let binary = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir.join("llama-cpp/build/bin").join(name));
    if !binary.is_file() {
        println!("{name}: not built ({} is absent)", binary.display());
        return Ok(());
    }
    let output = std::process::Command::new(&binary)
        .args(args)
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    // The model's path is the one printed first; the rest says what was measured.
    let shown: Vec<&str> = args
        .iter()
        .enumerate()
        .filter(|&(at, arg)| *arg != "-m" && (at == 0 || args[at - 1] != "-m"))
        .map(|(_, arg)| *arg)
        .collect();
    println!("-- {name} {} (same run)", shown.join(" "));
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if line.starts_with('|') {
            println!("{line}");
        }
    }
    if !output.status.success() {
        println!(
            "{name} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
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
    model.clear_cache();
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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
