//! The synthesis stage of `toolflow run`: one dialogue per subset of this shard, written
//! concurrently, each committed to the run store as it finishes; `dialogues.jsonl` is then
//! written from the store in index order. Rerunning after a crash, a `kill -9` or Ctrl-C
//! writes only the dialogues the store does not hold.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use toolflow_core::{OutcomeStatus, Subset, Tool, content_hash, jsonl};
use toolflow_llm::Engine;
use toolflow_store::{RunStore, Shard, StoreError};
use toolflow_synth::{Prompts, SynthConfig, Synthesizer};

use super::config::SampleConfig;
use super::{ChatModels, Runner, file_hash};

pub struct Inputs<'a> {
    pub tools: &'a Path,
    pub graph: &'a Path,
    pub subsets: &'a Path,
    pub sample: &'a SampleConfig,
    pub config: &'a SynthConfig,
    pub prompts: Prompts,
    pub shard: Shard,
    pub retry_failed: bool,
}

/// What this invocation of the stage did (all zero when it was current).
#[derive(Debug, Default, Serialize)]
pub struct SynthSummary {
    /// Dialogues this shard of the run has.
    pub expected: u64,
    /// Found finished in the store, from an earlier attempt.
    pub resumed: u64,
    /// Written now.
    pub written: u64,
    pub completed: u64,
    pub turn_limit: u64,
    pub failed: u64,
    pub interrupted: bool,
}

pub fn stage(
    runner: &mut Runner,
    inputs: Inputs,
    chat: &mut ChatModels,
) -> anyhow::Result<(PathBuf, SynthSummary)> {
    // The store's key: whatever decides a dialogue's content, but not the count, so that a
    // run can be extended with more dialogues, nor the shard.
    let settings = json!({
        "synth": inputs.config,
        "sample": {"size": inputs.sample.size, "seed": inputs.sample.seed, "strategy": inputs.sample.strategy},
        "models": chat.identity(),
    });
    let run_key = content_hash(&[
        file_hash(inputs.tools)?.as_bytes(),
        file_hash(inputs.graph)?.as_bytes(),
        settings.to_string().as_bytes(),
        inputs.prompts.fingerprint().as_bytes(),
    ]);
    let stage_key = content_hash(&[
        run_key.as_bytes(),
        file_hash(inputs.subsets)?.as_bytes(),
        inputs.shard.to_string().as_bytes(),
        &[u8::from(inputs.retry_failed)],
    ]);
    let store_path = runner.out.join("run.sqlite");
    let force = runner.force;
    let show_progress = runner.global.show_progress();
    let mut summary = SynthSummary::default();
    let path = runner.stage("synth", "dialogues.jsonl", stage_key, |output| {
        let store = if force {
            RunStore::create_fresh(&store_path, &run_key, &settings)?
        } else {
            RunStore::open(&store_path, &run_key, &settings).map_err(|error| match error {
                StoreError::OtherRun { .. } => anyhow::anyhow!(
                    "{error}\nThe settings, tools, prompts or models changed since these dialogues were written: pass --force to start over, or choose another --out."
                ),
                other => other.into(),
            })?
        };
        if inputs.retry_failed {
            let forgotten = store.forget_failed()?;
            tracing::info!("{forgotten} failed dialogues will be written again");
        }
        let tools: HashMap<String, Tool> = jsonl::read::<Tool>(inputs.tools)?
            .into_iter()
            .map(|tool| (tool.name.clone(), tool))
            .collect();
        let subsets: Vec<Subset> = jsonl::read(inputs.subsets)?;
        let mine: Vec<Subset> = subsets
            .into_iter()
            .filter(|subset| inputs.shard.contains(subset.index))
            .collect();
        let finished = store.finished()?;
        summary.expected = mine.len() as u64;
        let todo: Vec<Subset> = mine
            .into_iter()
            .filter(|subset| !finished.contains(&subset.index))
            .collect();
        summary.resumed = summary.expected - todo.len() as u64;
        let mut fatal = None;
        if !todo.is_empty() {
            let engine = chat.engine()?;
            let synth = Synthesizer::new(engine.clone(), inputs.prompts, inputs.config.clone())?;
            chat.runtime
                .block_on(write_all(&synth, &engine, &store, &tools, todo, show_progress, &mut summary))?;
            fatal = engine.fatal();
        }
        if fatal.is_some() {
            // Those that failed before the endpoint was found unusable failed for the same
            // cause: the rerun after the fix writes them too.
            store.forget_failed()?;
        }
        let written = store.write_jsonl(output)?;
        if let Some(fatal) = fatal {
            anyhow::bail!(
                "{fatal}\nStopped launching dialogues; {} of {} are in {}: fix the endpoint and run the same command again to write the rest",
                written,
                summary.expected,
                store_path.display()
            );
        }
        if summary.written > 0 && summary.completed + summary.turn_limit == 0 {
            anyhow::bail!(
                "no dialogue was completed ({} failed; see the warnings above): nothing usable was written",
                summary.failed
            );
        }
        if summary.interrupted {
            anyhow::bail!(
                "interrupted: {} of {} dialogues are in {}; run the same command again to resume",
                written,
                summary.expected,
                store_path.display()
            );
        }
        let counts = store.counts()?;
        Ok(format!(
            "{written} dialogues ({} resumed): {} completed, {} at the turn limit, {} failed",
            summary.resumed, counts.completed, counts.turn_limit, counts.failed
        ))
    })?;
    Ok((path, summary))
}

/// Writes the `todo` dialogues, `config.concurrency` at a time, committing each as it
/// finishes. Ctrl-C stops it: what finished is kept, what was in flight is dropped.
async fn write_all(
    synth: &Synthesizer,
    engine: &Engine,
    store: &RunStore,
    tools: &HashMap<String, Tool>,
    todo: Vec<Subset>,
    show_progress: bool,
    summary: &mut SynthSummary,
) -> anyhow::Result<()> {
    let mut jobs = Vec::with_capacity(todo.len());
    for subset in todo {
        let chosen = subset
            .tools
            .iter()
            .map(|name| {
                tools.get(name).cloned().with_context(|| {
                    format!(
                        "subset {} names `{name}`, which tools.jsonl lacks",
                        subset.index
                    )
                })
            })
            .collect::<anyhow::Result<Vec<Tool>>>()?;
        jobs.push((subset, chosen));
    }
    let bar = progress_bar(jobs.len() as u64, show_progress);
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
                Some(synth.write(subset.index, subset.strategy, chosen).await)
            }
        })
        .buffer_unordered(synth.config().concurrency);
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            _ = &mut interrupt => {
                summary.interrupted = true;
                break;
            }
            _ = ticker.tick() => describe(&bar, engine, summary, started.load(Ordering::Relaxed)),
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
                bar.inc(1);
                describe(&bar, engine, summary, started.load(Ordering::Relaxed));
            }
        }
    }
    bar.finish_and_clear();
    Ok(())
}

fn progress_bar(length: u64, visible: bool) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(length);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "  synth {wide_bar} {pos}/{len} dialogues ({per_sec}, ETA {eta})\n  {msg}",
        )
        .expect("a valid progress template"),
    );
    bar
}

/// The line under the bar: failures, work in flight, requests, tokens and cost so far.
fn describe(bar: &indicatif::ProgressBar, engine: &Engine, summary: &SynthSummary, started: u64) {
    let (mut requests, mut tokens, mut cost) = (0, 0, 0.0);
    for row in engine.tallies() {
        requests += row.tally.attempts;
        tokens += row.tally.prompt_tokens + row.tally.completion_tokens;
        cost += row.tally.cost_usd;
    }
    bar.set_message(format!(
        "{} failed · {} in flight · {requests} requests · {tokens} tokens · ${cost:.4}",
        summary.failed,
        started - summary.written,
    ));
}
