//! The metrics table: one column per run of `metrics.json`, one row per measure. A measure
//! without a value shows as "—", with the note the file gives for it as a footnote.

use std::fmt::Write;

use toolflow_core::MetricsDocument;
use toolflow_core::metrics::RunMetrics;

use crate::html::{self, absent_note, escape};
use crate::inputs::Input;

#[derive(Clone, Copy)]
enum Format {
    Integer,
    Decimal,
    Percent,
}

/// One cell's content: a value, or why there is none.
struct Measure {
    value: Option<f64>,
    note: Option<String>,
}

impl Measure {
    fn of(value: f64) -> Measure {
        Measure {
            value: Some(value),
            note: None,
        }
    }

    fn maybe(value: Option<f64>, note: &Option<String>) -> Measure {
        Measure {
            value,
            note: note.clone(),
        }
    }
}

type Row = (&'static str, fn(&RunMetrics) -> Measure, Format);

/// Every row: label, what it reads, format.
fn rows() -> Vec<Row> {
    vec![
        (
            "dialogues",
            |r| Measure::of(r.statistics.dialogues as f64),
            Format::Integer,
        ),
        (
            "turns",
            |r| Measure::of(r.statistics.turns as f64),
            Format::Integer,
        ),
        (
            "user turns",
            |r| Measure::of(r.statistics.user_turns as f64),
            Format::Integer,
        ),
        (
            "assistant turns",
            |r| Measure::of(r.statistics.assistant_turns as f64),
            Format::Integer,
        ),
        (
            "tool turns",
            |r| Measure::of(r.statistics.tool_turns as f64),
            Format::Integer,
        ),
        (
            "tokens",
            |r| Measure::of(r.statistics.tokens as f64),
            Format::Integer,
        ),
        (
            "utterance tokens",
            |r| Measure::of(r.statistics.utterance_tokens as f64),
            Format::Integer,
        ),
        (
            "tool calls",
            |r| Measure::of(r.statistics.tool_calls as f64),
            Format::Integer,
        ),
        (
            "call turns",
            |r| Measure::of(r.statistics.call_turns as f64),
            Format::Integer,
        ),
        (
            "chitchat share",
            |r| Measure::of(r.statistics.chitchat_share),
            Format::Percent,
        ),
        (
            "plan chitchat share",
            |r| Measure::maybe(r.statistics.plan_chitchat_share, &None),
            Format::Percent,
        ),
        (
            "chained calls",
            |r| Measure::of(r.statistics.chained_call_share),
            Format::Percent,
        ),
        (
            "links realised",
            |r| Measure::maybe(r.statistics.links_realised_share, &None),
            Format::Percent,
        ),
        (
            "calls per called tool",
            |r| Measure::of(r.statistics.mean_calls_per_called_tool),
            Format::Decimal,
        ),
        (
            "tools per dialogue",
            |r| Measure::of(r.statistics.mean_tools_per_dialogue),
            Format::Decimal,
        ),
        (
            "called tools per dialogue",
            |r| Measure::of(r.statistics.mean_called_tools_per_dialogue),
            Format::Decimal,
        ),
        (
            "H (bits)",
            |r| Measure::of(r.diversity.entropy_bits),
            Format::Decimal,
        ),
        (
            "Distinct-3",
            |r| Measure::of(r.diversity.distinct_3),
            Format::Decimal,
        ),
        (
            "SS",
            |r| Measure::maybe(r.coherence.ss.value, &r.coherence.ss.note),
            Format::Decimal,
        ),
        (
            "EnR",
            |r| Measure::maybe(r.coherence.enr.value, &r.coherence.enr.note),
            Format::Decimal,
        ),
        (
            "judge NAT",
            |r| Measure::maybe(r.judge.value.map(|m| m.nat), &r.judge.note),
            Format::Decimal,
        ),
        (
            "judge COH",
            |r| Measure::maybe(r.judge.value.map(|m| m.coh), &r.judge.note),
            Format::Decimal,
        ),
        (
            "judge HELP",
            |r| Measure::maybe(r.judge.value.map(|m| m.help), &r.judge.note),
            Format::Decimal,
        ),
        (
            "judge ACC",
            |r| Measure::maybe(r.judge.value.map(|m| m.acc), &r.judge.note),
            Format::Decimal,
        ),
    ]
}

fn shown(value: f64, format: Format) -> String {
    match format {
        Format::Integer => html::number(value),
        Format::Decimal => format!("{value:.3}"),
        Format::Percent => html::percent(value),
    }
}

pub fn section(metrics: &Input<MetricsDocument>) -> String {
    if let Some(note) = metrics.absence("metrics", "`toolflow eval`") {
        return absent_note(&note);
    }
    let Some(document) = metrics.value() else {
        unreachable!("absence covers the other cases")
    };
    let runs = &document.runs;
    if runs.is_empty() {
        return absent_note("metrics.json lists no runs.");
    }
    let mut notes: Vec<String> = Vec::new();
    let mut out = String::from(
        "<div class=\"table-wrap\"><table class=\"metrics\">\n<thead><tr><th>measure</th>",
    );
    for run in runs {
        let format = serde_json::to_value(run.format).expect("a format serialises");
        let _ = write!(
            out,
            "<th title=\"{}\">{}<small>{}</small></th>",
            escape(&run.path.display().to_string()),
            escape(&run.name),
            escape(format.as_str().unwrap_or_default())
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (label, read, format) in rows() {
        let _ = write!(out, "<tr><th>{}</th>", escape(label));
        for run in runs {
            let measure = read(run);
            match (measure.value, measure.note) {
                (Some(value), _) => {
                    let _ = write!(out, "<td>{}</td>", escape(&shown(value, format)));
                }
                (None, None) => out.push_str("<td class=\"absent\">—</td>"),
                (None, Some(note)) => {
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
fn definitions(document: &MetricsDocument) -> String {
    let (tokenizer, definitions) = (&document.tokenizer, &document.definitions);
    let entries = [
        ("words", format!("{}: {}", tokenizer.name, tokenizer.rule)),
        ("tokens", definitions.tokens.clone()),
        ("diversity", definitions.diversity.clone()),
        ("chitchat_share", definitions.chitchat_share.clone()),
        ("chained_calls", definitions.chained_calls.clone()),
        ("links_realised", definitions.links_realised.clone()),
    ];
    let mut out =
        String::from("<details class=\"definitions\"><summary>How these are counted</summary><dl>");
    // Files written before a measure was defined hold no definition for it.
    for (term, definition) in entries
        .into_iter()
        .filter(|(_, definition)| !definition.is_empty())
    {
        let _ = write!(
            out,
            "<dt>{}</dt><dd>{}</dd>",
            escape(term),
            escape(&definition)
        );
    }
    out.push_str("</dl></details>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture run's metrics, one run per name, with `edit` applied to each.
    fn document(names: &[&str], edit: impl Fn(usize, &mut RunMetrics)) -> MetricsDocument {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/run/metrics.json"
        ))
        .unwrap();
        let mut document: MetricsDocument = serde_json::from_str(&text).unwrap();
        let template = document.runs[0].clone();
        document.runs = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut run = template.clone();
                run.name = name.to_string();
                edit(i, &mut run);
                run
            })
            .collect();
        document
    }

    fn loaded(value: MetricsDocument) -> Input<MetricsDocument> {
        Input::Loaded {
            path: "metrics.json".into(),
            value,
        }
    }

    #[test]
    fn runs_sit_side_by_side_and_absent_values_show_their_note() {
        let document = document(&["toolflow", "sgd"], |i, run| {
            run.statistics.dialogues = [1200, 200][i];
            run.statistics.chitchat_share = 0.25;
            run.statistics.plan_chitchat_share = None;
            run.statistics.chained_call_share = 0.5;
            run.statistics.links_realised_share = [Some(0.75), None][i];
            run.coherence.ss.value = Some([0.81234, 0.7][i]);
            run.coherence.enr =
                toolflow_core::metrics::EnrMeasure::unavailable("unavailable: needs a model");
            if i == 0 {
                run.judge = toolflow_core::metrics::JudgeMetrics::unavailable(
                    "unavailable: not computed yet",
                );
            } else {
                run.judge.value = Some(toolflow_core::metrics::JudgeMeans {
                    nat: 4.5,
                    coh: 4.25,
                    help: 4.0,
                    acc: 3.0,
                });
                run.judge.note = None;
            }
        });
        let html = section(&loaded(document));
        assert!(html.contains("toolflow<small>toolflow-jsonl</small></th><th title="));
        assert!(html.contains("<tr><th>dialogues</th><td>1,200</td><td>200</td></tr>"));
        assert!(html.contains(
            "<tr><th>plan chitchat share</th><td class=\"absent\">—</td><td class=\"absent\">—</td></tr>"
        ));
        assert!(html.contains("<tr><th>SS</th><td>0.812</td><td>0.700</td></tr>"));
        // Human data has no planned links: its cell is empty, not 0%.
        assert!(html.contains(
            "<tr><th>links realised</th><td>75.0 %</td><td class=\"absent\">—</td></tr>"
        ));
        assert!(html.contains("<tr><th>chained calls</th><td>50.0 %</td><td>50.0 %</td></tr>"));
        assert!(html.contains("title=\"unavailable: needs a model\">—<sup>1</sup>"));
        // A measure that happens to be whole keeps its decimals, so the column lines up.
        assert!(html.contains("<th>judge HELP</th><td class=\"absent\" title=\"unavailable: not computed yet\">—<sup>2</sup></td><td>4.000</td>"));
        assert!(html.contains("<td>4.500</td>"));
        assert!(html.contains("<li>unavailable: needs a model</li>"));
        assert!(html.contains("<dt>words</dt><dd>words-v1: "));
    }

    #[test]
    fn run_text_is_escaped() {
        let html = section(&loaded(document(&["<b>&\"x\""], |_, run| {
            run.path = "a\"b".into();
        })));
        assert!(html.contains("<th title=\"a&quot;b\">&lt;b&gt;&amp;&quot;x&quot;"));
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn missing_file_and_empty_runs_say_so() {
        let missing = section(&Input::Missing {
            path: "out/metrics.json".into(),
        });
        assert!(missing.contains("No metrics: out/metrics.json does not exist"));
        assert!(section(&loaded(document(&[], |_, _| {}))).contains("lists no runs"));
    }
}
