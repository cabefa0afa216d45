//! The metrics table: one column per run of `metrics.json`, one row per measure.
//!
//! The file is read loosely, so that a report of an older or newer `metrics.json` still
//! shows what it has: an absent field or a `null` shows as "—", with the note the file gives
//! for it (`{"value": null, "note": ...}`) as a footnote.

use std::fmt::Write;

use serde_json::Value;

use crate::html::{self, escape};
use crate::{Input, absent_note};

#[derive(Clone, Copy)]
enum Format {
    Integer,
    Decimal,
    Percent,
}

/// The fixed rows: label, JSON pointer into a run, format.
const ROWS: &[(&str, &str, Format)] = &[
    ("dialogues", "/statistics/dialogues", Format::Integer),
    ("turns", "/statistics/turns", Format::Integer),
    ("user turns", "/statistics/user_turns", Format::Integer),
    (
        "assistant turns",
        "/statistics/assistant_turns",
        Format::Integer,
    ),
    ("tool turns", "/statistics/tool_turns", Format::Integer),
    ("tokens", "/statistics/tokens", Format::Integer),
    (
        "utterance tokens",
        "/statistics/utterance_tokens",
        Format::Integer,
    ),
    ("tool calls", "/statistics/tool_calls", Format::Integer),
    ("call turns", "/statistics/call_turns", Format::Integer),
    (
        "chitchat share",
        "/statistics/chitchat_share",
        Format::Percent,
    ),
    (
        "plan chitchat share",
        "/statistics/plan_chitchat_share",
        Format::Percent,
    ),
    (
        "calls per called tool",
        "/statistics/mean_calls_per_called_tool",
        Format::Decimal,
    ),
    (
        "tools per dialogue",
        "/statistics/mean_tools_per_dialogue",
        Format::Decimal,
    ),
    (
        "called tools per dialogue",
        "/statistics/mean_called_tools_per_dialogue",
        Format::Decimal,
    ),
    ("H (bits)", "/diversity/entropy_bits", Format::Decimal),
    ("Distinct-3", "/diversity/distinct_3", Format::Decimal),
];

/// What one cell shows.
enum Cell {
    Shown(String),
    /// No value; the note says why, when the file says.
    Absent(Option<String>),
}

/// Reads a measure that may be a bare value or `{"value": ..., "note": ...}`.
fn cell(value: Option<&Value>, format: Format) -> Cell {
    match value {
        None => Cell::Absent(Some("not in this metrics.json".into())),
        Some(Value::Null) => Cell::Absent(None),
        Some(Value::Number(n)) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            Cell::Shown(match format {
                Format::Integer => html::number(n),
                Format::Decimal => format!("{n:.3}"),
                Format::Percent => html::percent(n),
            })
        }
        Some(Value::Object(object)) if object.contains_key("value") => {
            let note = object.get("note").map(html::plain);
            match cell(object.get("value"), format) {
                Cell::Absent(None) => Cell::Absent(note),
                other => other,
            }
        }
        Some(other) => Cell::Shown(html::plain(other)),
    }
}

/// The rows of an object-valued measure (coherence, judge), keyed by the union of the runs'
/// keys; a run whose measure is one absent value (`{"value": null, "note": ...}`) yields a
/// single row for the measure as a whole.
fn keyed_rows<'a>(
    runs: &'a [Value],
    pointer: &str,
    label: &str,
) -> Vec<(String, Vec<Option<&'a Value>>)> {
    let inner = |run: &'a Value| -> Option<&'a serde_json::Map<String, Value>> {
        let measure = run.pointer(pointer)?;
        measure.get("value").unwrap_or(measure).as_object()
    };
    let mut keys: Vec<&str> = Vec::new();
    for run in runs {
        for key in inner(run).into_iter().flat_map(|object| object.keys()) {
            if key != "note" && !keys.contains(&key.as_str()) {
                keys.push(key);
            }
        }
    }
    if keys.is_empty() {
        return vec![(
            label.to_string(),
            runs.iter().map(|run| run.pointer(pointer)).collect(),
        )];
    }
    keys.iter()
        .map(|key| {
            let cells = runs
                .iter()
                .map(|run| match inner(run) {
                    Some(object) => object.get(*key),
                    // This run has the measure as one absent value: its note applies to every key.
                    None => run.pointer(pointer),
                })
                .collect();
            (key_label(label, key), cells)
        })
        .collect()
}

fn key_label(measure: &str, key: &str) -> String {
    match key {
        "ss" => "SS".into(),
        "enr" => "EnR".into(),
        "nat" | "coh" | "help" | "acc" => format!("{measure} {}", key.to_uppercase()),
        _ => format!("{measure} {key}"),
    }
}

pub fn section(metrics: &Input<Value>) -> String {
    if let Some(note) = metrics.absence("metrics", "`toolflow eval`") {
        return absent_note(&note);
    }
    let Some(document) = metrics.value() else {
        unreachable!("absence covers the other cases")
    };
    let runs: &[Value] = document
        .get("runs")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if runs.is_empty() {
        return absent_note("metrics.json lists no runs.");
    }
    let mut rows: Vec<(String, Vec<Option<&Value>>, Format)> = ROWS
        .iter()
        .map(|(label, pointer, format)| {
            (
                label.to_string(),
                runs.iter().map(|run| run.pointer(pointer)).collect(),
                *format,
            )
        })
        .collect();
    for (label, cells) in keyed_rows(runs, "/coherence", "coherence") {
        rows.push((label, cells, Format::Decimal));
    }
    for (label, cells) in keyed_rows(runs, "/judge", "judge") {
        rows.push((label, cells, Format::Decimal));
    }

    let mut notes: Vec<String> = Vec::new();
    let mut out = String::from(
        "<div class=\"table-wrap\"><table class=\"metrics\">\n<thead><tr><th>measure</th>",
    );
    for run in runs {
        let name = run
            .get("name")
            .map(html::plain)
            .unwrap_or_else(|| "run".into());
        let path = run.get("path").map(html::plain).unwrap_or_default();
        let format = run.get("format").map(html::plain).unwrap_or_default();
        let _ = write!(
            out,
            "<th title=\"{}\">{}<small>{}</small></th>",
            escape(&path),
            escape(&name),
            escape(&format)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (label, cells, format) in &rows {
        let _ = write!(out, "<tr><th>{}</th>", escape(label));
        for value in cells {
            match cell(*value, *format) {
                Cell::Shown(text) => {
                    let _ = write!(out, "<td>{}</td>", escape(&text));
                }
                Cell::Absent(None) => out.push_str("<td class=\"absent\">—</td>"),
                Cell::Absent(Some(note)) => {
                    let number = match notes.iter().position(|n| *n == note) {
                        Some(i) => i + 1,
                        None => {
                            notes.push(note.clone());
                            notes.len()
                        }
                    };
                    let _ = write!(
                        out,
                        "<td class=\"absent\" title=\"{}\">—<sup>{number}</sup></td>",
                        escape(&note)
                    );
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    if !notes.is_empty() {
        out.push_str("<ol class=\"notes\">");
        for note in &notes {
            let _ = write!(out, "<li>{}</li>", escape(note));
        }
        out.push_str("</ol>\n");
    }
    out.push_str(&definitions(document));
    out
}

/// How `toolflow eval` counted, as the file states it.
fn definitions(document: &Value) -> String {
    let mut entries: Vec<(String, String)> = Vec::new();
    if let Some(tokenizer) = document.get("tokenizer") {
        let name = tokenizer.get("name").map(html::plain).unwrap_or_default();
        let rule = tokenizer.get("rule").map(html::plain).unwrap_or_default();
        entries.push(("words".into(), format!("{name}: {rule}")));
    }
    if let Some(definitions) = document.get("definitions").and_then(Value::as_object) {
        entries.extend(
            definitions
                .iter()
                .map(|(key, value)| (key.clone(), html::plain(value))),
        );
    }
    if entries.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("<details class=\"definitions\"><summary>How these are counted</summary><dl>");
    for (term, definition) in entries {
        let _ = write!(
            out,
            "<dt>{}</dt><dd>{}</dd>",
            escape(&term),
            escape(&definition)
        );
    }
    out.push_str("</dl></details>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn loaded(value: Value) -> Input<Value> {
        Input::Loaded {
            path: "metrics.json".into(),
            value,
        }
    }

    #[test]
    fn runs_sit_side_by_side_and_absent_values_show_their_note() {
        let document = json!({"runs": [
            {"name": "toolflow", "statistics": {"dialogues": 1200, "chitchat_share": 0.25},
             "diversity": {"entropy_bits": 9.75, "distinct_3": 0.5},
             "coherence": {"ss": {"value": 0.81234, "note": "all-MiniLM-L6-v2"},
                           "enr": {"value": null, "note": "unavailable: needs a model"}},
             "judge": {"value": null, "note": "unavailable: not computed yet"}},
            {"name": "sgd", "statistics": {"dialogues": 200, "chitchat_share": null},
             "diversity": {"entropy_bits": 8.3},
             "coherence": {"ss": 0.7, "enr": 1.5},
             "judge": {"nat": 4.5, "coh": {"value": 4.25}, "help": 4}}
        ]});
        let html = section(&loaded(document));
        assert!(html.contains("<th title=\"\">toolflow<small></small></th><th title=\"\">sgd"));
        assert!(html.contains("<tr><th>dialogues</th><td>1,200</td><td>200</td></tr>"));
        assert!(html.contains(
            "<tr><th>chitchat share</th><td>25.0 %</td><td class=\"absent\">—</td></tr>"
        ));
        assert!(html.contains("<tr><th>SS</th><td>0.812</td><td>0.700</td></tr>"));
        assert!(html.contains("title=\"unavailable: needs a model\">—<sup>"));
        assert!(html.contains("<td>1.500</td>"));
        // A measure that happens to be whole keeps its decimals, so the column lines up.
        assert!(html.contains("<th>judge HELP</th><td class=\"absent\" title=\"unavailable: not computed yet\">—<sup>3</sup></td><td>4.000</td>"));
        // The judge's keys from the second run, with the first run's note on each.
        assert!(html.contains(
            "<th>judge NAT</th><td class=\"absent\" title=\"unavailable: not computed yet\">"
        ));
        assert!(html.contains("<td>4.500</td>"));
        assert!(html.contains("<th>judge COH</th>"));
        // Distinct-3 is absent from the second run altogether.
        assert!(html.contains("not in this metrics.json"));
        assert!(html.contains("<li>unavailable: needs a model</li>"));
    }

    #[test]
    fn run_text_is_escaped() {
        let html = section(&loaded(
            json!({"runs": [{"name": "<b>&\"x\"", "path": "a\"b"}]}),
        ));
        assert!(html.contains("<th title=\"a&quot;b\">&lt;b&gt;&amp;&quot;x&quot;"));
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn missing_file_and_empty_runs_say_so() {
        let missing = section(&Input::Missing {
            path: "out/metrics.json".into(),
        });
        assert!(missing.contains("No metrics: out/metrics.json does not exist"));
        assert!(section(&loaded(json!({}))).contains("lists no runs"));
    }
}
