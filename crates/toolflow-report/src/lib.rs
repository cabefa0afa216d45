//! One self-contained HTML report of a toolflow run: the metrics of every run side by side,
//! the tool graph's degree distribution, why dialogues were rejected, which tools were
//! called, and a dialogue browser with search.
//!
//! The page needs no network: CSS and JavaScript are inline, charts are inline SVG, and the
//! dialogues travel as JSON inside the page. Every piece of dataset text is HTML-escaped, and
//! the embedded JSON escapes `<`, `>` and `&` so that no dialogue can close its script
//! element. Any input may be missing; its section then says so.
//!
//! ```no_run
//! let inputs = toolflow_report::ReportInputs::from_run_dir("toolflow-out".as_ref())?;
//! std::fs::write("toolflow-out/report.html", toolflow_report::render(&inputs)?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod browser;
mod graph;
mod html;
mod metrics;
mod rejections;
mod usage;

use std::fmt::Write;
use std::path::{Path, PathBuf};

pub use toolflow_core::{Reason, Rejection};
use toolflow_core::{Dialogue, MetricsDocument, ToolGraph};

/// The standard file names of a run directory (see the README's quick start).
pub const METRICS_FILE: &str = "metrics.json";
pub const GRAPH_FILE: &str = "graph.json";
pub const DIALOGUES_FILE: &str = "dialogues.jsonl";
/// Browsed when the run directory has no `dialogues.jsonl` (a filter run on its own).
pub const KEPT_FILE: &str = "kept.jsonl";
pub const REJECTED_FILE: &str = "rejected.jsonl";

/// How many dialogues the browser holds by default: enough for any demo or review sample,
/// while keeping a report of a large run a file a browser opens in a second or two.
pub const DEFAULT_BROWSER_LIMIT: usize = 5000;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: not a tool graph: {source}")]
    Graph {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A JSON Lines file with a line that is not the expected record.
    #[error(transparent)]
    Jsonl(#[from] toolflow_core::jsonl::JsonlError),
}

/// One input file: loaded, looked for but absent, or not asked for.
#[derive(Debug, Clone)]
pub enum Input<T> {
    Loaded { path: PathBuf, value: T },
    Missing { path: PathBuf },
    NotGiven,
}

impl<T> Input<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Input::Loaded { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Reads `path` with `load` when it exists; `None` means not asked for.
    fn load(
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
    fn absence(&self, what: &str, produced_by: &str) -> Option<String> {
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
    pub metrics: Option<PathBuf>,
    pub graph: Option<PathBuf>,
    pub dialogues: Option<PathBuf>,
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
    pub graph: Input<ToolGraph>,
    pub dialogues: Input<Vec<Dialogue>>,
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
            let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|source| ReportError::Json {
                path: path.to_path_buf(),
                source,
            })
        })?;
        let graph = Input::load(paths.graph.as_deref(), |path| {
            let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|source| ReportError::Graph {
                path: path.to_path_buf(),
                source,
            })
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

const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("browser.js");

/// The whole report as one HTML document.
pub fn render(inputs: &ReportInputs) -> Result<String, ReportError> {
    let sections = [
        ("metrics", "Metrics", metrics::section(&inputs.metrics)),
        ("graph", "Tool graph", graph::section(&inputs.graph)),
        (
            "rejections",
            "Rejections",
            rejections::section(&inputs.rejected, &inputs.dialogues),
        ),
        (
            "usage",
            "Tool usage",
            usage::section(&inputs.dialogues, &inputs.metrics, &inputs.graph),
        ),
        ("browser", "Dialogues", browser::section(inputs)),
    ];
    let title = html::escape(&inputs.title);
    let mut page = String::with_capacity(64 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>toolflow report: {title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <header class=\"page-header\"><h1>toolflow report <span class=\"title\">{title}</span></h1>\n<nav>"
    );
    for (id, heading, _) in &sections {
        let _ = write!(page, "<a href=\"#{id}\">{heading}</a>");
    }
    page.push_str("</nav>\n");
    page.push_str(&inputs_list(inputs));
    page.push_str("</header>\n<main>\n");
    for (id, heading, body) in &sections {
        let _ = write!(
            page,
            "<section id=\"{id}\">\n<h2>{heading}</h2>\n{body}</section>\n"
        );
    }
    let _ = write!(
        page,
        "</main>\n<script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    );
    Ok(page)
}

/// The files the report was made from, so a reader can tell which run it shows.
fn inputs_list(inputs: &ReportInputs) -> String {
    fn item<T>(out: &mut String, label: &str, input: &Input<T>) {
        let (state, path) = match input {
            Input::Loaded { path, .. } => ("loaded", Some(path)),
            Input::Missing { path } => ("missing", Some(path)),
            Input::NotGiven => ("not given", None),
        };
        let path = path
            .map(|p| html::escape(&p.display().to_string()))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<li class=\"{}\"><b>{label}</b> <code>{path}</code> <span>{state}</span></li>",
            state.replace(' ', "-")
        );
    }
    let mut out = String::from("<ul class=\"inputs\">");
    item(&mut out, "metrics", &inputs.metrics);
    item(&mut out, "graph", &inputs.graph);
    item(&mut out, "dialogues", &inputs.dialogues);
    item(&mut out, "rejected", &inputs.rejected);
    out.push_str("</ul>\n");
    out
}

/// A paragraph standing in for a section whose input is absent.
fn absent_note(text: &str) -> String {
    format!("<p class=\"absent\">{}</p>\n", html::escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/run");

    #[test]
    fn fixture_report_is_self_contained_and_escaped() {
        let inputs = ReportInputs::from_run_dir(FIXTURES.as_ref()).unwrap();
        assert_eq!(inputs.title, "run");
        let page = render(&inputs).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        for id in ["metrics", "graph", "rejections", "usage", "browser"] {
            assert!(
                page.contains(&format!("<section id=\"{id}\">")),
                "no section {id}"
            );
        }
        // Nothing is fetched: no URL, no element that loads a resource, links stay in the page.
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(!page.contains("src=\"") && !page.contains("<link") && !page.contains("<img"));
        assert!(
            page.split("href=\"")
                .skip(1)
                .all(|rest| rest.starts_with('#'))
        );
        // One inline script for the data and one for the code; dataset text never closes one.
        assert_eq!(page.matches("<script").count(), 2);
        assert_eq!(page.matches("</script>").count(), 2);
        assert!(page.contains("\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e"));
        // Server-side text (a rejection's detail) is HTML-escaped.
        assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    }

    #[test]
    fn every_section_says_when_its_input_is_missing() {
        let empty = tempfile::tempdir().unwrap();
        let inputs = ReportInputs::from_run_dir(empty.path()).unwrap();
        let page = render(&inputs).unwrap();
        for (what, file) in [
            ("metrics", METRICS_FILE),
            ("tool graph", GRAPH_FILE),
            ("rejections", REJECTED_FILE),
            ("tool usage", DIALOGUES_FILE),
            ("dialogues", DIALOGUES_FILE),
        ] {
            let note = format!(
                "No {what}: {}",
                html::escape(&empty.path().join(file).display().to_string())
            );
            assert!(page.contains(&note), "missing note: {note}");
        }
        let nothing = ReportInputs::load("x".into(), &InputPaths::default()).unwrap();
        assert!(
            render(&nothing)
                .unwrap()
                .contains("No metrics: no file was given.")
        );
    }

    #[test]
    fn bad_input_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DIALOGUES_FILE), "{\"id\": \"d\"}\n").unwrap();
        let error = ReportInputs::from_run_dir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("dialogues.jsonl:1:"), "{error}");
        std::fs::write(dir.path().join(DIALOGUES_FILE), "").unwrap();
        std::fs::write(dir.path().join(GRAPH_FILE), "{\"nodes\": []}").unwrap();
        let error = ReportInputs::from_run_dir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("graph.json: not a tool graph"), "{error}");
    }
}
