//! The synthesis stage: one dialogue per subset of this shard, written concurrently, each
//! committed to the run store as it finishes; `dialogues.jsonl` is then written from the
//! store in index order. Rerunning after a crash, a `kill -9` or a cancellation writes only
//! the dialogues the store does not hold.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use toolflow_core::{OutcomeStatus, Subset, Tool, jsonl};
use toolflow_llm::{CancellationToken, Engine};
use toolflow_store::{RunStore, Shard, StoreCounts, StoreError};
use toolflow_synth::{Prompts, SynthConfig, Synthesizer};

use crate::chat::ChatSettings;
use crate::error::PipelineError;
use crate::observe::{Observer, SynthProgress};
use crate::stage::stage_key;

/// What stops the synthesis loop early: what finished is kept, what was in flight is
/// dropped (and written again by the next run).
#[derive(Debug, Clone, Default)]
pub enum Interrupt {
    /// Ctrl-C (SIGINT), listened for only while the loop runs.
    #[default]
    CtrlC,
    /// The caller cancels the token.
    Token(CancellationToken),
}

impl Interrupt {
    async fn wait(&self) {
        match self {
            Interrupt::CtrlC => {
                if tokio::signal::ctrl_c().await.is_err() {
                    // No signal handler: never interrupted.
                    std::future::pending::<()>().await;
                }
            }
            Interrupt::Token(token) => token.cancelled().await,
        }
    }
}

/// What the synthesis of one store did (all zero when its stage was current).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct SynthSummary {
    /// Dialogues this shard of the run has.
    pub expected: u64,
    /// Found finished in the store, from an earlier attempt.
    pub resumed: u64,
    /// Written now.
    pub written: u64,
    /// Of those written now, completed.
    pub completed: u64,
    /// Of those written now, stopped at the turn limit.
    pub turn_limit: u64,
    /// Of those written now, failed (kept with their reason).
    pub failed: u64,
    /// Stopped by an [`Interrupt`].
    pub interrupted: bool,
}

/// What a finished synthesis left: this invocation's counts and the store's.
#[derive(Debug, Clone)]
pub struct Synthesized {
    /// What this invocation did.
    pub summary: SynthSummary,
    /// Every dialogue the store holds, by outcome.
    pub in_store: StoreCounts,
    /// Dialogues written to the output file.
    pub dialogues: u64,
}

/// One store's worth of synthesis: the subsets to write and everything that decides them.
pub struct SynthJob<'a> {
    /// The tools the subsets name.
    pub tools: &'a Path,
    /// The subsets; only this shard's are written.
    pub subsets: &'a Path,
    /// Which subsets this invocation writes.
    pub shard: Shard,
    /// How the dialogues are written.
    pub config: &'a SynthConfig,
    /// The prompts.
    pub prompts: Prompts,
    /// The store (`run.sqlite`).
    pub store: &'a Path,
    /// What the store must have been made for; a store of another run is refused.
    pub run_key: &'a str,
    /// Stored with the key, for people reading the store.
    pub settings: &'a serde_json::Value,
    /// Start the store afresh.
    pub fresh: bool,
    /// Write again the dialogues that failed before.
    pub retry_failed: bool,
    /// Runs the tool calls `[synth] tools` executes (see [`crate::mcp::executor`]).
    pub executor: Option<Arc<dyn toolflow_synth::ToolExecutor>>,
}

/// What decides the dialogues of a synthesis outside a run (`toolflow synth`), and its key
/// over the tools file: a store made for other settings is refused.
pub fn standalone_key(
    config: &SynthConfig,
    chat: &ChatSettings,
    prompts: &Prompts,
    tools: &Path,
    servers: &[toolflow_mcp::ServerConfig],
) -> Result<(serde_json::Value, String), PipelineError> {
    let mut settings = serde_json::json!({
        "synth": config,
        "models": chat.identity(),
        "prompts": prompts.fingerprint(),
    });
    // As in a run: executing servers decide results; simulating keeps the old key.
    if !config.tools.is_simulate() && !servers.is_empty() {
        let servers: Vec<String> = servers.iter().map(|server| server.identity()).collect();
        settings["mcp"] = serde_json::json!(servers);
    }
    let key = stage_key(&settings, &[tools])?;
    Ok((settings, key))
}

/// Writes the job's dialogues that the store lacks, then `output` from the store. The
/// engine is asked for only when there is something to write. Returns the counts; an
/// interrupted run is an error ([`PipelineError::Interrupted`]) after `output` holds what
/// finished.
pub fn synthesize(
    job: SynthJob<'_>,
    output: &Path,
    engine: impl FnOnce() -> Result<Arc<Engine>, PipelineError>,
    runtime: &tokio::runtime::Runtime,
    interrupt: &Interrupt,
    observer: &dyn Observer,
) -> Result<Synthesized, PipelineError> {
    let store = if job.fresh {
        RunStore::create_fresh(job.store, job.run_key, job.settings)?
    } else {
        RunStore::open(job.store, job.run_key, job.settings).map_err(|error| match error {
            StoreError::OtherRun { .. } => PipelineError::OtherRun(error),
            other => other.into(),
        })?
    };
    if job.retry_failed {
        let forgotten = store.forget_failed()?;
        tracing::info!("{forgotten} failed dialogues will be written again");
    }
    let tools: HashMap<String, Tool> = jsonl::read::<Tool>(job.tools)?
        .into_iter()
        .map(|tool| (tool.name.clone(), tool))
        .collect();
    let subsets: Vec<Subset> = jsonl::read(job.subsets)?;
    let mine: Vec<Subset> = subsets
        .into_iter()
        .filter(|subset| job.shard.contains(subset.index))
        .collect();
    let finished = store.finished()?;
    let mut summary = SynthSummary {
        expected: mine.len() as u64,
        ..SynthSummary::default()
    };
    let todo: Vec<Subset> = mine
        .into_iter()
        .filter(|subset| !finished.contains(&subset.index))
        .collect();
    summary.resumed = summary.expected - todo.len() as u64;
    let mut fatal = None;
    if !todo.is_empty() {
        let jobs = with_tools(todo, &tools)?;
        let engine = engine()?;
        let mut synth = Synthesizer::new(engine.clone(), job.prompts, job.config.clone())?;
        if let Some(executor) = job.executor {
            synth = synth.with_executor(executor);
        }
        observer.synth_started(jobs.len() as u64);
        let written = runtime.block_on(write_all(
            &synth,
            &engine,
            &store,
            jobs,
            interrupt,
            observer,
            &mut summary,
        ));
        observer.synth_finished();
        written?;
        fatal = engine.fatal();
    }
    if fatal.is_some() {
        // Those that failed before the endpoint was found unusable failed for the same
        // cause: the rerun after the fix writes them too.
        store.forget_failed()?;
    }
    let dialogues = store.write_jsonl(output)? as u64;
    if let Some(fatal) = fatal {
        return Err(PipelineError::EndpointUnusable {
            why: fatal.to_string(),
            written: dialogues,
            expected: summary.expected,
            store: job.store.to_path_buf(),
        });
    }
    if summary.written > 0 && summary.completed + summary.turn_limit == 0 {
        return Err(PipelineError::NothingCompleted {
            failed: summary.failed,
        });
    }
    if summary.interrupted {
        return Err(PipelineError::Interrupted {
            written: dialogues,
            expected: summary.expected,
            store: job.store.to_path_buf(),
        });
    }
    Ok(Synthesized {
        summary,
        in_store: store.counts()?,
        dialogues,
    })
}

/// Each subset with the definitions of its tools.
fn with_tools(
    todo: Vec<Subset>,
    tools: &HashMap<String, Tool>,
) -> Result<Vec<(Subset, Vec<Tool>)>, PipelineError> {
    todo.into_iter()
        .map(|subset| {
            let chosen = subset
                .tools
                .iter()
                .map(|name| {
                    tools
                        .get(name)
                        .cloned()
                        .ok_or_else(|| PipelineError::UnknownTool {
                            index: subset.index,
                            tool: name.clone(),
                        })
                })
                .collect::<Result<Vec<Tool>, _>>()?;
            Ok((subset, chosen))
        })
        .collect()
}

/// Writes the dialogues, `concurrency` at a time, committing each as it finishes, until all
/// are written or the interrupt comes.
async fn write_all(
    synth: &Synthesizer,
    engine: &Engine,
    store: &RunStore,
    jobs: Vec<(Subset, Vec<Tool>)>,
    interrupt: &Interrupt,
    observer: &dyn Observer,
    summary: &mut SynthSummary,
) -> Result<(), PipelineError> {
    let started = Arc::new(AtomicU64::new(0));
    let mut dialogues = futures_util::stream::iter(jobs)
        .map(|(subset, chosen)| {
            let started = started.clone();
            async move {
                // Fail fast: once an endpoint is unusable, no new dialogue starts.
                if engine.fatal().is_some() {
                    return None;
                }
                started.fetch_add(1, Ordering::Relaxed);
                Some(
                    synth
                        .write_with_links(subset.index, subset.strategy, chosen, subset.links)
                        .await,
                )
            }
        })
        .buffer_unordered(synth.config().concurrency);
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let interrupted = interrupt.wait();
    tokio::pin!(interrupted);
    let progress = |summary: &SynthSummary| {
        observer.synth_progress(&progress_of(
            engine,
            summary,
            started.load(Ordering::Relaxed),
        ))
    };
    loop {
        tokio::select! {
            _ = &mut interrupted => {
                summary.interrupted = true;
                break;
            }
            _ = ticker.tick() => progress(summary),
            next = dialogues.next() => {
                let Some(dialogue) = next else { break };
                let Some(dialogue) = dialogue else { continue };
                if dialogue.outcome.status == OutcomeStatus::Failed && engine.fatal().is_some() {
                    // Failed because the endpoint is unusable: left out of the store, so
                    // that the rerun after the fix writes it without --retry-failed.
                    continue;
                }
                store.commit(&dialogue)?;
                summary.written += 1;
                match dialogue.outcome.status {
                    OutcomeStatus::Completed => summary.completed += 1,
                    OutcomeStatus::TurnLimit => summary.turn_limit += 1,
                    OutcomeStatus::Failed => {
                        summary.failed += 1;
                        tracing::warn!(
                            "dialogue {} failed: {}",
                            dialogue.id,
                            dialogue.outcome.reason.as_deref().unwrap_or("no reason given")
                        );
                    }
                }
                progress(summary);
            }
        }
    }
    Ok(())
}

/// Failures, work in flight, requests, tokens and cost so far.
fn progress_of(engine: &Engine, summary: &SynthSummary, started: u64) -> SynthProgress {
    let mut progress = SynthProgress {
        written: summary.written,
        failed: summary.failed,
        in_flight: started - summary.written,
        ..SynthProgress::default()
    };
    for row in engine.tallies() {
        progress.requests += row.tally.attempts;
        progress.tokens += row.tally.prompt_tokens + row.tally.completion_tokens;
        progress.cost_usd += row.tally.cost_usd;
    }
    progress
}

/// The store next to a dialogues file `toolflow synth` writes: `dialogues.sqlite` beside
/// `dialogues.jsonl`.
pub fn default_store_path(output: &Path) -> PathBuf {
    output.with_extension("sqlite")
}
