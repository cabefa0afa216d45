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

#![warn(missing_docs)]

mod browser;
mod error;
mod graph;
mod html;
mod inputs;
mod metrics;
mod rejections;
mod usage;

use std::fmt::Write;

pub use error::ReportError;
pub use inputs::{
    DEFAULT_BROWSER_LIMIT, DIALOGUES_FILE, GRAPH_FILE, Input, InputPaths, KEPT_FILE, METRICS_FILE,
    REJECTED_FILE, ReportInputs, run_title,
};
pub use toolflow_core::{Reason, Rejection};

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
