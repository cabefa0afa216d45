//! The chat engine against the stand-in server, over real loopback sockets.
//!
//! The stand-in runs in a child process (this binary with `--serve`), so that the CPU time
//! measured here with getrusage is the engine's (and its HTTP client's) alone.
//!
//! 1. Overhead: requests/s and CPU per request against an instant server.
//! 2. Scaling: throughput with N requests in flight against a server that answers after
//!    200 ms, against the ideal N / 0.2 s (target at 256 in flight: ≥ 90 %).
//!
//! `cargo run --release -p toolflow-bench --bin engine [-- --requests 20000]`

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_llm::{
    CacheMode, ChatRequest, Endpoint, EndpointConfig, Engine, EngineConfig, Message, http_client,
};

const SLOW_PREFIX: &str = "slow ";
const LATENCY: Duration = Duration::from_millis(200);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return serve();
    }
    let requests: usize = match args.iter().position(|arg| arg == "--requests") {
        Some(index) => args.get(index + 1).context("--requests N")?.parse()?,
        None => 20_000,
    };

    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the stand-in server process")?;
    let mut base_url = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut base_url)?;
    let base_url = base_url.trim().to_owned();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("engine benchmark: stand-in server in a child process at {base_url}, {cores} cores");

    runtime.block_on(async {
        println!("\n1. overhead, instant server ({requests} requests, cache off)");
        for in_flight in [1, 64] {
            let engine = engine(&base_url, in_flight, None, CacheMode::Off)?;
            let count = if in_flight == 1 { requests / 4 } else { requests };
            let run = drive(&engine, in_flight, count, "").await?;
            println!(
                "   {in_flight:>3} in flight: {:>8.0} requests/s, {:>6.1} µs CPU per request (client side)",
                run.per_second(),
                run.cpu_per_request_us()
            );
        }
        let directory = tempfile::tempdir()?;
        let cache = directory.path().join("responses.sqlite3");
        let warm = engine(&base_url, 64, Some(&cache), CacheMode::ReadWrite)?;
        drive(&warm, 64, requests / 4, "").await?;
        let replay = drive(&warm, 64, requests / 4, "").await?;
        println!(
            "   cache hits:     {:>8.0} requests/s, {:>6.1} µs CPU per request",
            replay.per_second(),
            replay.cpu_per_request_us()
        );

        println!("\n2. scaling, server answers after {} ms (ideal = in flight / latency)", LATENCY.as_millis());
        println!("   in flight  requests   achieved/s   ideal/s   ratio   CPU µs/request");
        for in_flight in [1, 16, 64, 256, 512] {
            let engine = engine(&base_url, in_flight, None, CacheMode::Off)?;
            // One warm-up round opens the connections; then ten rounds are timed.
            drive(&engine, in_flight, in_flight, SLOW_PREFIX).await?;
            let count = in_flight * 10;
            let run = drive(&engine, in_flight, count, SLOW_PREFIX).await?;
            let ideal = in_flight as f64 / LATENCY.as_secs_f64();
            let ratio = run.per_second() / ideal;
            let target = if in_flight == 256 { if ratio >= 0.9 { "  (target ≥ 90 %: met)" } else { "  (target ≥ 90 %: MISSED)" } } else { "" };
            println!(
                "   {in_flight:>9}  {count:>8}   {:>10.1}   {ideal:>7.0}   {:>4.1} %   {:>8.1}{target}",
                run.per_second(),
                ratio * 100.0,
                run.cpu_per_request_us()
            );
        }
        anyhow::Ok(())
    })?;

    drop(child.stdin.take());
    child.wait()?;
    Ok(())
}

/// The stand-in, answering at once or after `LATENCY` for prompts that start with "slow ".
fn serve() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = StandInServer::start(|seen| {
            if seen.last_user_text().starts_with(SLOW_PREFIX) {
                Reply::Slow(LATENCY, Box::new(Reply::Echo))
            } else {
                Reply::Echo
            }
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

fn engine(
    base_url: &str,
    in_flight: usize,
    cache: Option<&std::path::Path>,
    mode: CacheMode,
) -> anyhow::Result<Arc<Engine>> {
    let config = EndpointConfig {
        max_concurrency: in_flight,
        timeout_s: 30.0,
        ..EndpointConfig::new(base_url, "bench-model")
    };
    let endpoint = Endpoint::http(&config, http_client()?)?;
    let policy = EngineConfig {
        max_attempts: 1,
        ..EngineConfig::default()
    };
    Ok(Arc::new(Engine::new(vec![endpoint], policy, cache, mode)?))
}

struct Run {
    requests: usize,
    wall: Duration,
    cpu: Duration,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    fn cpu_per_request_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests as f64
    }
}

/// `count` requests, `in_flight` at a time, each with its own prompt; every answer is checked.
async fn drive(
    engine: &Arc<Engine>,
    in_flight: usize,
    count: usize,
    prefix: &str,
) -> anyhow::Result<Run> {
    let cpu_before = cpu_time();
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|worker| {
            let engine = engine.clone();
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                for index in (worker..count).step_by(in_flight) {
                    let prompt = format!("{prefix}request {index}");
                    let request = ChatRequest::new(vec![Message::user(prompt.clone())]);
                    let answer = engine.complete("bench-model", "bench", &request).await?;
                    anyhow::ensure!(
                        answer.text.as_deref() == Some(prompt.as_str()),
                        "wrong answer to {prompt}"
                    );
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(Run {
        requests: count,
        wall: started.elapsed(),
        cpu: cpu_time() - cpu_before,
    })
}

/// User and system CPU time of this process, all threads.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds =
        |time: libc::timeval| Duration::new(time.tv_sec as u64, time.tv_usec as u32 * 1000);
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
