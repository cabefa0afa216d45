//! A 1,000-dialogue pipeline run against the stand-in server answering every request after
//! 200 ms with the scripted dialogue model: wall time of the synthesis stage against the
//! ideal, CPU time and peak memory of the whole run, and the run store's write cost.
//!
//! The ideal is the time the dialogues' request chains need at the configured number of
//! dialogues in flight, if every request took exactly the latency: the sum over dialogues
//! of their sequential steps (a batch of parallel tool requests is one step) × 200 ms / the
//! dialogues in flight.
//!
//! The run goes through the pipeline library (`toolflow_pipeline::run`) in this process;
//! the stand-in runs in a child process (this binary with `--serve`), so the CPU time
//! measured is toolflow's alone.
//!
//! `cargo run --release -p toolflow-bench --bin synth [-- --dialogues 1000 --in-flight 256]`

#[path = "../common.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use common::mib;
use toolflow_core::{Dialogue, Turn, jsonl};
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_llm::{CacheMode, CancellationToken};
use toolflow_pipeline::{Interrupt, RunOptions, Silent};
use toolflow_store::RunStore;

const LATENCY: Duration = Duration::from_millis(200);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return serve();
    }
    let option = |name: &str, default: u64| -> anyhow::Result<u64> {
        match args.iter().position(|arg| arg == name) {
            Some(at) => Ok(args
                .get(at + 1)
                .with_context(|| format!("{name} N"))?
                .parse()?),
            None => Ok(default),
        }
    };
    let dialogues = option("--dialogues", 1000)?;
    let in_flight = option("--in-flight", 256)?;

    let mut server = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the stand-in server process")?;
    let mut base_url = String::new();
    BufReader::new(server.stdout.take().expect("piped")).read_line(&mut base_url)?;

    let scratch = tempfile::tempdir()?;
    let config = scratch.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[sample]\ncount = {dialogues}\nsize = 3\n[synth]\nconcurrency = {in_flight}\nturns = [3, 5]\n\
             [[endpoint]]\nbase_url = \"{}\"\nmodel = \"scripted\"\nmax_concurrency = {}\ntimeout_s = 30\n",
            base_url.trim(),
            in_flight * 4
        ),
    )?;
    let out = scratch.path().join("out");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "synthesis benchmark: {dialogues} dialogues, {in_flight} in flight, stand-in answering after {} ms, {cores} cores",
        LATENCY.as_millis()
    );
    let options = RunOptions {
        config: Some(config),
        cache_mode: CacheMode::Off,
        interrupt: Interrupt::Token(CancellationToken::new()),
        ..RunOptions::new(out.clone(), scratch.path().join("cache"))
    };
    let cpu_before = cpu_time();
    let started = Instant::now();
    let summary = toolflow_pipeline::run(&options, &Silent)?;
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    drop(server.stdin.take());
    server.wait()?;

    let stage_seconds = |name: &str| {
        summary
            .stages
            .iter()
            .find(|stage| stage.stage == name)
            .and_then(|stage| stage.seconds)
            .unwrap_or(f64::NAN)
    };
    let written: Vec<Dialogue> = jsonl::read(&out.join("dialogues.jsonl"))?;
    let steps: u64 = written.iter().map(sequential_steps).sum();
    let requests: u64 = summary
        .requests
        .iter()
        .flatten()
        .map(|row| row.tally.attempts)
        .sum();
    let ideal = steps as f64 * LATENCY.as_secs_f64() / in_flight as f64;
    let synth = stage_seconds("synth");
    println!(
        "   dialogues written   {} ({} completed, {} failed)",
        written.len(),
        summary.synth.completed,
        summary.synth.failed
    );
    println!(
        "   requests            {requests} ({:.1} per dialogue, {:.1} sequential steps)",
        requests as f64 / written.len() as f64,
        steps as f64 / written.len() as f64
    );
    println!(
        "   synth stage         {synth:.2} s; ideal {ideal:.2} s → {:.1}% of ideal",
        100.0 * ideal / synth
    );
    println!(
        "   whole run           {:.2} s wall, {:.2} s CPU ({:.2} ms CPU per dialogue), peak RSS {:.0} MiB",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        1000.0 * cpu.as_secs_f64() / written.len() as f64,
        mib(peak_rss_bytes())
    );
    println!(
        "   other stages        graph {:.2} s, filter {:.2} s, eval {:.2} s",
        stage_seconds("graph"),
        stage_seconds("filter"),
        stage_seconds("eval")
    );

    // The store's write cost: the same dialogues committed again, one transaction each.
    let store = RunStore::create_fresh(
        &scratch.path().join("again.sqlite"),
        "bench",
        &serde_json::json!({}),
    )?;
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for dialogue in &written {
        let one = Instant::now();
        store.commit(dialogue)?;
        slowest = slowest.max(one.elapsed());
    }
    let total = started.elapsed();
    let bytes = std::fs::metadata(out.join("dialogues.jsonl"))?.len();
    println!(
        "   run store           {:.1} µs per commit (slowest {:.1} ms), {:.3} s in all = {:.2}% of the synth stage; {:.1} KiB per dialogue",
        1e6 * total.as_secs_f64() / written.len() as f64,
        1e3 * slowest.as_secs_f64(),
        total.as_secs_f64(),
        100.0 * total.as_secs_f64() / synth,
        bytes as f64 / 1024.0 / written.len() as f64
    );
    Ok(())
}

/// This process's user and system CPU time so far.
fn cpu_time() -> Duration {
    let usage = self_usage();
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// This process's peak resident memory.
fn peak_rss_bytes() -> u64 {
    // Linux reports ru_maxrss in KiB.
    self_usage().ru_maxrss as u64 * 1024
}

fn self_usage() -> libc::rusage {
    // SAFETY: an all-zero rusage is a valid value, and getrusage fills it for this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage
}

/// Requests that had to wait for the one before: the plan, each user turn, each assistant
/// turn, and each batch of tool results that needed the model.
fn sequential_steps(dialogue: &Dialogue) -> u64 {
    let mut steps = u64::from(dialogue.plan.is_some());
    let mut in_tool_batch = false;
    for turn in &dialogue.turns {
        match turn {
            Turn::Tool(result) => {
                if result.generation.is_some() && !in_tool_batch {
                    steps += 1;
                    in_tool_batch = true;
                }
            }
            _ => {
                steps += 1;
                in_tool_batch = false;
            }
        }
    }
    steps
}

fn serve() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = StandInServer::start(|request| {
            Reply::Slow(
                LATENCY,
                Box::new(toolflow_synth::scripted::dialogue_script(request)),
            )
        })
        .await?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", server.base_url())?;
        stdout.flush()?;
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await??;
        anyhow::Ok(())
    })
}
