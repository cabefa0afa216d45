//! The §7 contamination check over files: the training tools (a tools file, a dialogues
//! file, or anything `toolflow import` reads) against test sets, into `overlap.json`.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;
use toolflow_core::Tool;
use toolflow_core::overlap::{OverlapDocument, TrainTools};
use toolflow_embed::{CachedEmbedder, ModelOptions};
use toolflow_eval::overlap::{OverlapOptions, TestSet, overlap};
use toolflow_import::{ImportOptions, Importer};

use crate::error::PipelineError;

/// Measures the tools of `train` against each test set in `against`, with the embedding
/// model `model` for the cosines.
pub fn measure_overlap(
    train: &Path,
    against: &[PathBuf],
    options: &OverlapOptions,
    model: ModelOptions,
) -> Result<OverlapDocument, PipelineError> {
    let train_tools = read_train(train)?;
    if train_tools.is_empty() {
        return Err(PipelineError::NoToolsIn(train.to_path_buf()));
    }
    let mut tests = Vec::with_capacity(against.len());
    for path in against {
        let tools = import_tools(path)?;
        if tools.is_empty() {
            return Err(PipelineError::NoToolsIn(path.clone()));
        }
        tests.push(TestSet {
            name: set_name(path),
            path: path.clone(),
            tools,
        });
    }
    let mut embedder = CachedEmbedder::open(model)?;
    let mut embed = |texts: &[String]| embedder.embed(texts).map_err(|error| error.to_string());
    let report = overlap(&train_tools, &tests, options, &mut embed)?;
    let stats = embedder.stats();
    tracing::info!(
        cache_hits = stats.cache_hits,
        computed = stats.computed,
        "overlap measured"
    );
    Ok(OverlapDocument {
        model: embedder.model_id().to_string(),
        train: TrainTools {
            path: train.to_path_buf(),
            tools: report.train_tools,
        },
        report,
    })
}

/// A dialogues file gives the tools of its records; anything else goes through import.
fn read_train(path: &Path) -> Result<Vec<Tool>, PipelineError> {
    if !is_dialogues(path)? {
        return import_tools(path);
    }
    let mut tools = Vec::new();
    let mut seen = HashSet::new();
    toolflow_eval::input::for_each_dialogue(path, |dialogue, _| {
        for tool in dialogue.tools {
            if seen.insert(tool.name.clone()) {
                tools.push(tool);
            }
        }
        Ok(())
    })?;
    Ok(tools)
}

/// Whether the first non-empty line of a file is a dialogue record (an object with `turns`
/// and `tools`).
fn is_dialogues(path: &Path) -> Result<bool, PipelineError> {
    if path.is_dir() {
        return Ok(false);
    }
    let file = std::fs::File::open(path).map_err(PipelineError::io(path))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(PipelineError::io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let first: Option<Value> = serde_json::from_str(&line).ok();
        return Ok(first.is_some_and(|value| {
            value.get("turns").is_some() && value.get("tools").is_some_and(Value::is_array)
        }));
    }
    Ok(false)
}

fn import_tools(path: &Path) -> Result<Vec<Tool>, PipelineError> {
    let mut importer = Importer::new(ImportOptions::default());
    importer.add_path(path)?;
    let report = importer.finish();
    let summary = report.summary();
    if !report.diagnostics.is_empty() {
        tracing::warn!(
            path = %path.display(),
            skipped_or_repaired = report.diagnostics.len(),
            "read with problems (see `toolflow import` for the list)"
        );
    }
    tracing::info!(path = %path.display(), tools = report.tools.len(), ?summary, "tools read");
    Ok(report.tools)
}

/// `data/BFCL_v4_simple.json` → `BFCL_v4_simple`; a directory keeps its name.
fn set_name(path: &Path) -> String {
    let name = if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem()
    };
    name.map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
