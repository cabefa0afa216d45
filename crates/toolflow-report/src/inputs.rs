//! What a report is made from: the run directory's files, each loaded, absent or not asked
//! for.

use std::path::{Path, PathBuf};

use toolflow_core::{Dialogue, MetricsDocument, Rejection, ToolGraph};

use crate::error::ReportError;

/// `toolflow eval`'s metrics, as a run directory names them.
pub const METRICS_FILE: &str = "metrics.json";
/// `toolflow graph`'s tool graph, as a run directory names it.
pub const GRAPH_FILE: &str = "graph.json";
/// `toolflow synth`'s dialogues, as a run directory names them.
pub const DIALOGUES_FILE: &str = "dialogues.jsonl";
/// Browsed when the run directory has no `dialogues.jsonl` (a filter run on its own).
pub const KEPT_FILE: &str = "kept.jsonl";
/// `toolflow filter`'s rejected dialogues with their reasons.
pub const REJECTED_FILE: &str = "rejected.jsonl";

/// How many dialogues the browser holds by default: enough for any demo or review sample,
/// while keeping a report of a large run a file a browser opens in a second or two.
pub const DEFAULT_BROWSER_LIMIT: usize = 5000;

/// One input file: loaded, looked for but absent, or not asked for.
#[derive(Debug, Clone)]
pub enum Input<T> {
    /// The file was read.
    Loaded {
        /// The file.
        path: PathBuf,
        /// What it holds.
        value: T,
    },
    /// The file was looked for but does not exist.
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// No file was named for it.
    NotGiven,
}

impl<T> Input<T> {
    /// What the file holds, when it was read.
    pub fn value(&self) -> Option<&T> {
        match self {
            Input::Loaded { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Reads `path` with `load` when it exists; `None` means not asked for.
    pub(crate) fn load(
        path: Option<&Path>,
        load: impl FnOnce(&Path) -> Result<T, ReportError>,
    ) -> Result<Self, ReportError> {
        Ok(match path {
            None => Input::NotGiven,
            Some(path) if !path.exists() => Input::Missing {
                path: path.to_path_buf(),
            },
            Some(path) => Input::Loaded {
                path: path.to_path_buf(),
                value: load(path)?,
            },
        })
    }

    /// The sentence a section shows in place of its content when this input is absent.
    pub(crate) fn absence(&self, what: &str, produced_by: &str) -> Option<String> {
        match self {
            Input::Loaded { .. } => None,
            Input::Missing { path } => Some(format!(
                "No {what}: {} does not exist ({produced_by} writes it).",
                path.display()
            )),
            Input::NotGiven => Some(format!("No {what}: no file was given.")),
        }
    }
}

/// Where each input lives; `None` leaves that section empty.
#[derive(Debug, Clone, Default)]
pub struct InputPaths {
    /// `metrics.json`.
    pub metrics: Option<PathBuf>,
    /// `graph.json`.
    pub graph: Option<PathBuf>,
    /// `dialogues.jsonl` (or `kept.jsonl`).
    pub dialogues: Option<PathBuf>,
    /// `rejected.jsonl`.
    pub rejected: Option<PathBuf>,
}

impl InputPaths {
    /// The standard files of a run directory; `kept.jsonl` stands in for `dialogues.jsonl`
    /// when only the latter is absent.
    pub fn in_run_dir(dir: &Path) -> Self {
        let dialogues = dir.join(DIALOGUES_FILE);
        let kept = dir.join(KEPT_FILE);
        let dialogues = if !dialogues.exists() && kept.exists() {
            kept
        } else {
            dialogues
        };
        InputPaths {
            metrics: Some(dir.join(METRICS_FILE)),
            graph: Some(dir.join(GRAPH_FILE)),
            dialogues: Some(dialogues),
            rejected: Some(dir.join(REJECTED_FILE)),
        }
    }
}

/// Everything a report shows, read and checked before rendering.
#[derive(Debug, Clone)]
pub struct ReportInputs {
    /// The page's heading, e.g. the run directory's name.
    pub title: String,
    /// `metrics.json` as written by `toolflow eval`.
    pub metrics: Input<MetricsDocument>,
    /// `graph.json` as written by `toolflow graph`.
    pub graph: Input<ToolGraph>,
    /// The dialogues the browser and the tool usage show.
    pub dialogues: Input<Vec<Dialogue>>,
    /// The filter's rejections with their reasons.
    pub rejected: Input<Vec<Rejection>>,
    /// The browser holds at most this many dialogues (rejected ones first); the statistics
    /// always count them all.
    pub browser_limit: usize,
}

impl ReportInputs {
    /// Reads the standard files of a run directory; absent files leave their section empty.
    pub fn from_run_dir(dir: &Path) -> Result<ReportInputs, ReportError> {
        ReportInputs::load(run_title(dir), &InputPaths::in_run_dir(dir))
    }

    /// Reads each given file; a file that exists but does not parse is an error naming it.
    pub fn load(title: String, paths: &InputPaths) -> Result<ReportInputs, ReportError> {
        let metrics = Input::load(paths.metrics.as_deref(), |path| {
            read_json(path, |path, source| ReportError::Json { path, source })
        })?;
        let graph = Input::load(paths.graph.as_deref(), |path| {
            read_json(path, |path, source| ReportError::Graph { path, source })
        })?;
        let dialogues = Input::load(paths.dialogues.as_deref(), |path| {
            Ok(toolflow_core::jsonl::read(path)?)
        })?;
        let rejected = Input::load(paths.rejected.as_deref(), |path| {
            Ok(toolflow_core::jsonl::read(path)?)
        })?;
        tracing::debug!(
            metrics = metrics.value().is_some(),
            graph = graph.value().is_some(),
            dialogues = dialogues.value().map_or(0, Vec::len),
            rejected = rejected.value().map_or(0, Vec::len),
            "report inputs read"
        );
        Ok(ReportInputs {
            title,
            metrics,
            graph,
            dialogues,
            rejected,
            browser_limit: DEFAULT_BROWSER_LIMIT,
        })
    }
}

/// The JSON file at `path`; `invalid` says what a file that does not parse is not.
fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    invalid: fn(PathBuf, serde_json::Error) -> ReportError,
) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| invalid(path.to_path_buf(), source))
}

/// A run directory's name, as the report's title.
pub fn run_title(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|dir| {
            dir.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| dir.display().to_string())
}
