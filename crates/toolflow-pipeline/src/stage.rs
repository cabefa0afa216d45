//! Stages and their keys. A stage is current when `run-state.json` records the same key
//! and its output file still has the recorded content hash; any change upstream changes
//! the keys downstream, so edits propagate.
//!
//! Every key comes from one recipe ([`stage_key`]): the hash of the stage's settings,
//! serialised as JSON, and of its input files' contents.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use toolflow_core::{RunState, StageRecord, content_hash, jsonl};

use crate::error::PipelineError;
use crate::observe::{Observer, StageReport};

/// The file in the output directory that records each stage's last run.
pub const RUN_STATE_FILE: &str = "run-state.json";

/// The key of a stage run with `settings` over `inputs` (files or directories, whose
/// contents are hashed, names included for a directory's entries).
pub fn stage_key(settings: &impl Serialize, inputs: &[&Path]) -> Result<String, PipelineError> {
    let settings = serde_json::to_vec(settings).expect("stage settings serialise");
    let mut parts = vec![settings];
    for input in inputs {
        parts.push(tree_hash(input)?.into_bytes());
    }
    Ok(content_hash(
        &parts.iter().map(Vec::as_slice).collect::<Vec<_>>(),
    ))
}

/// The content hash of the file at `path`.
pub fn file_hash(path: &Path) -> Result<String, PipelineError> {
    let bytes = std::fs::read(path).map_err(PipelineError::io(path))?;
    Ok(content_hash(&[&bytes]))
}

/// The hash of a file, or of every file under a directory (names and contents, in order).
fn tree_hash(path: &Path) -> Result<String, PipelineError> {
    if !path.is_dir() {
        return file_hash(path);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(PipelineError::io(path))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(PipelineError::io(path))?;
    entries.sort();
    let mut parts = Vec::new();
    for entry in entries {
        parts.push(entry.display().to_string());
        parts.push(tree_hash(&entry)?);
    }
    Ok(content_hash(
        &parts.iter().map(String::as_bytes).collect::<Vec<_>>(),
    ))
}

/// Runs the stages of one output directory, skipping those that are current and saving
/// `run-state.json` after each one that ran.
pub struct Runner<'a> {
    out: PathBuf,
    state: RunState,
    force: bool,
    observer: &'a dyn Observer,
    reports: Vec<StageReport>,
}

impl<'a> Runner<'a> {
    /// A runner over `out` (created if absent), with the state its last run left; `force`
    /// reruns every stage.
    pub fn open(
        out: &Path,
        force: bool,
        observer: &'a dyn Observer,
    ) -> Result<Self, PipelineError> {
        std::fs::create_dir_all(out).map_err(PipelineError::io(out))?;
        let state_path = out.join(RUN_STATE_FILE);
        let state = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(
                    "{}: unreadable ({error}); every stage reruns",
                    state_path.display()
                );
                RunState::default()
            }),
            Err(_) => RunState::default(),
        };
        Ok(Runner {
            out: out.to_path_buf(),
            state,
            force,
            observer,
            reports: Vec::new(),
        })
    }

    /// The output directory.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Whether every stage reruns.
    pub fn force(&self) -> bool {
        self.force
    }

    /// What each stage did so far, in order.
    pub fn into_reports(self) -> Vec<StageReport> {
        self.reports
    }

    /// Runs stage `name` unless `output` (relative to the output directory) is current
    /// for `key`; `produce` writes the file and says in one line what it wrote.
    pub fn stage(
        &mut self,
        name: &str,
        output: &str,
        key: String,
        produce: impl FnOnce(&Path) -> Result<String, PipelineError>,
    ) -> Result<PathBuf, PipelineError> {
        let path = self.out.join(output);
        let recorded = self.state.stages.get(name);
        let current = !self.force
            && recorded.is_some_and(|record| {
                record.key == key
                    && file_hash(&path).ok().as_deref() == Some(record.output_hash.as_str())
            });
        if current {
            tracing::info!("{name}: {} is current", path.display());
            self.report(StageReport {
                stage: name.to_string(),
                output: path.clone(),
                skipped: true,
                seconds: None,
                summary: None,
            });
            return Ok(path);
        }
        let started = Instant::now();
        let summary = produce(&path).map_err(|error| error.in_stage(name))?;
        self.state.stages.insert(
            name.to_string(),
            StageRecord {
                key,
                output_hash: file_hash(&path)?,
            },
        );
        // Saved after every stage, so a crash later keeps the stages already done.
        let state = serde_json::to_vec_pretty(&self.state).expect("the run state serialises");
        jsonl::write_atomically(&self.out.join(RUN_STATE_FILE), |out| {
            std::io::Write::write_all(out, &state)
        })?;
        self.report(StageReport {
            stage: name.to_string(),
            output: path.clone(),
            skipped: false,
            seconds: Some(started.elapsed().as_secs_f64()),
            summary: Some(summary),
        });
        Ok(path)
    }

    fn report(&mut self, report: StageReport) {
        self.observer.stage_finished(&report);
        self.reports.push(report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Silent;

    #[test]
    fn keys_change_with_settings_and_input_contents_only() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("tools.jsonl");
        std::fs::write(&input, "a").unwrap();
        let key = stage_key(&serde_json::json!({"tau": 0.82}), &[&input]).unwrap();
        assert_eq!(
            key,
            stage_key(&serde_json::json!({"tau": 0.82}), &[&input]).unwrap()
        );
        assert_ne!(
            key,
            stage_key(&serde_json::json!({"tau": 0.8}), &[&input]).unwrap()
        );
        std::fs::write(&input, "b").unwrap();
        assert_ne!(
            key,
            stage_key(&serde_json::json!({"tau": 0.82}), &[&input]).unwrap()
        );
        let missing = stage_key(&(), &[&dir.path().join("absent")]).unwrap_err();
        assert!(missing.to_string().contains("absent"), "{missing}");
    }

    #[test]
    fn a_stage_reruns_when_its_key_or_output_changes() {
        let dir = tempfile::tempdir().unwrap();
        let runs = std::cell::Cell::new(0);
        let produce_in = |key: &str| {
            let mut runner = Runner::open(dir.path(), false, &Silent).unwrap();
            runner
                .stage("s", "out.txt", key.to_string(), |path| {
                    runs.set(runs.get() + 1);
                    std::fs::write(path, "x").map_err(PipelineError::io(path))?;
                    Ok("wrote".into())
                })
                .unwrap();
            runner.into_reports()
        };
        assert!(!produce_in("k1")[0].skipped);
        assert!(produce_in("k1")[0].skipped);
        assert!(!produce_in("k2")[0].skipped);
        std::fs::write(dir.path().join("out.txt"), "edited").unwrap();
        assert!(!produce_in("k2")[0].skipped);
        assert_eq!(runs.get(), 3);
        let state: RunState =
            serde_json::from_slice(&std::fs::read(dir.path().join(RUN_STATE_FILE)).unwrap())
                .unwrap();
        assert_eq!(state.stages["s"].key, "k2");
    }
}
