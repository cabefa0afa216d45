//! Which tools the dialogues called, how often, and how often the call failed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use toolflow_core::MetricsDocument;
use toolflow_core::{Dialogue, ToolGraph, Turn};

use crate::html::{self, absent_note, escape};
use crate::inputs::Input;

/// The longest bar, for the most-called tool.
const BAR_EM: f64 = 16.0;
/// Tools shown with a bar; the rest are summed in one line.
const TOP_TOOLS: usize = 25;

#[derive(Debug, Default, PartialEq)]
pub(crate) struct ToolUsage {
    pub calls: u64,
    /// Tool results marked `is_error`.
    pub errors: u64,
    /// Dialogues that offered the tool.
    pub offered: u64,
    /// Dialogues that called it at least once.
    pub called_in: u64,
}

pub(crate) fn count(dialogues: &[Dialogue]) -> BTreeMap<&str, ToolUsage> {
    let mut usage: BTreeMap<&str, ToolUsage> = BTreeMap::new();
    for dialogue in dialogues {
        for tool in &dialogue.tools {
            usage.entry(&tool.name).or_default().offered += 1;
        }
        let mut called = BTreeSet::new();
        for turn in &dialogue.turns {
            match turn {
                Turn::Assistant(turn) => {
                    for call in &turn.tool_calls {
                        usage.entry(&call.name).or_default().calls += 1;
                        called.insert(call.name.as_str());
                    }
                }
                Turn::Tool(turn) if turn.is_error => {
                    usage.entry(&turn.name).or_default().errors += 1
                }
                _ => {}
            }
        }
        for name in called {
            usage.entry(name).or_default().called_in += 1;
        }
    }
    usage
}

pub fn section(
    dialogues: &Input<Vec<Dialogue>>,
    metrics: &Input<MetricsDocument>,
    graph: &Input<ToolGraph>,
) -> String {
    let Some(dialogues) = dialogues.value() else {
        return from_metrics(metrics).unwrap_or_else(|| {
            absent_note(
                &dialogues
                    .absence("tool usage", "`toolflow run` or `toolflow synth`")
                    .unwrap_or_default(),
            )
        });
    };
    let usage = count(dialogues);
    let mut ranked: Vec<(&str, &ToolUsage)> =
        usage.iter().map(|(name, usage)| (*name, usage)).collect();
    ranked.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(b.0)));
    let total: u64 = ranked.iter().map(|(_, u)| u.calls).sum();
    let called = ranked.iter().filter(|(_, u)| u.calls > 0).count();
    let mut out = format!(
        "<p><b>{}</b> calls to <b>{}</b> distinct tools in {} dialogues",
        html::integer(total),
        html::integer(called as u64),
        html::integer(dialogues.len() as u64)
    );
    if let Some(graph) = graph.value() {
        let never: Vec<&String> = graph
            .nodes
            .iter()
            .filter(|n| usage.get(n.as_str()).is_none_or(|u| u.calls == 0))
            .collect();
        let _ = write!(
            out,
            "; {} of the graph's {} tools were never called",
            html::integer(never.len() as u64),
            html::integer(graph.nodes.len() as u64)
        );
    }
    out.push_str(".</p>\n");
    if total == 0 {
        return out;
    }
    let most = ranked[0].1.calls.max(1);
    out.push_str("<div class=\"table-wrap\"><table class=\"usage\"><thead><tr><th>tool</th><th class=\"bar-col\">calls</th><th>errors</th><th>called in / offered to</th></tr></thead><tbody>\n");
    for (name, usage) in ranked.iter().filter(|(_, u)| u.calls > 0).take(TOP_TOOLS) {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"bar-col\"><span class=\"bar-h\" style=\"width:{:.1}em\"></span><span class=\"bar-n\">{}</span></td><td class=\"num{}\">{}</td><td class=\"num\">{} / {}</td></tr>",
            escape(name),
            BAR_EM * usage.calls as f64 / most as f64,
            html::integer(usage.calls),
            if usage.errors > 0 { " error" } else { "" },
            html::integer(usage.errors),
            html::integer(usage.called_in),
            html::integer(usage.offered)
        );
    }
    out.push_str("</tbody></table></div>\n");
    if called > TOP_TOOLS {
        let rest: u64 = ranked
            .iter()
            .filter(|(_, u)| u.calls > 0)
            .skip(TOP_TOOLS)
            .map(|(_, u)| u.calls)
            .sum();
        let _ = writeln!(
            out,
            "<p class=\"muted\">{} more tools: {} calls.</p>",
            html::integer((called - TOP_TOOLS) as u64),
            html::integer(rest)
        );
    }
    out
}

/// Without dialogues, the first run's `calls_per_tool` from `metrics.json`, if present.
fn from_metrics(metrics: &Input<MetricsDocument>) -> Option<String> {
    let run = metrics.value()?.runs.first()?;
    let mut ranked: Vec<(&String, u64)> = run
        .statistics
        .calls_per_tool
        .iter()
        .map(|(name, n)| (name, *n))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let most = ranked.first().map_or(1, |(_, n)| (*n).max(1));
    let mut out = format!(
        "<p class=\"absent\">No dialogue file; calls per tool of run <b>{}</b> from metrics.json.</p>\n",
        escape(&run.name)
    );
    out.push_str("<div class=\"table-wrap\"><table class=\"usage\"><thead><tr><th>tool</th><th class=\"bar-col\">calls</th></tr></thead><tbody>\n");
    for (name, calls) in ranked.iter().take(TOP_TOOLS) {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"bar-col\"><span class=\"bar-h\" style=\"width:{:.1}em\"></span><span class=\"bar-n\">{}</span></td></tr>",
            escape(name),
            BAR_EM * *calls as f64 / most as f64,
            html::integer(*calls)
        );
    }
    out.push_str("</tbody></table></div>\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_dialogues() -> Vec<Dialogue> {
        toolflow_core::jsonl::read(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/run/dialogues.jsonl"
            )
            .as_ref(),
        )
        .unwrap()
    }

    #[test]
    fn calls_errors_and_offers_are_counted() {
        let dialogues = fixture_dialogues();
        let usage = count(&dialogues);
        let weather = &usage["get_weather_forecast"];
        assert_eq!(
            (weather.calls, weather.errors, weather.called_in),
            (3, 1, 2)
        );
        assert!(weather.offered >= 2);
        let html = section(
            &Input::Loaded {
                path: "d.jsonl".into(),
                value: dialogues,
            },
            &Input::NotGiven,
            &Input::NotGiven,
        );
        assert!(html.contains("<code>get_weather_forecast</code>"));
        assert!(html.contains("<td class=\"num error\">1</td>"));
    }

    #[test]
    fn falls_back_to_metrics_then_says_missing() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/run/metrics.json"
        ))
        .unwrap();
        let mut document: MetricsDocument = serde_json::from_str(&text).unwrap();
        document.runs[0].statistics.calls_per_tool =
            [("a".to_string(), 4), ("b".to_string(), 2)].into();
        let metrics = Input::Loaded {
            path: "m.json".into(),
            value: document,
        };
        let html = section(
            &Input::Missing {
                path: "x/dialogues.jsonl".into(),
            },
            &metrics,
            &Input::NotGiven,
        );
        assert!(html.contains("from metrics.json"));
        assert!(html.contains("width:8.0em"));
        let html = section(
            &Input::Missing {
                path: "x/dialogues.jsonl".into(),
            },
            &Input::NotGiven,
            &Input::NotGiven,
        );
        assert!(html.contains("No tool usage: x/dialogues.jsonl does not exist"));
    }
}
