//! Why dialogues were rejected: reasons counted per rule, with a few examples each, every
//! example linking to its dialogue in the browser.

use std::collections::BTreeMap;
use std::fmt::Write;

use toolflow_core::{Dialogue, Rejection};

use crate::html::{self, absent_note, escape};
use crate::inputs::Input;

/// The longest meter bar, for the rule that rejects the most dialogues.
const METER_EM: f64 = 5.0;
/// Examples listed per rule.
const EXAMPLES: usize = 3;

#[derive(Default)]
struct RuleCount<'a> {
    reasons: usize,
    /// Dialogues with at least one reason under this rule.
    dialogues: usize,
    /// Reasons by level (`reject`, `warn`).
    levels: BTreeMap<&'a str, usize>,
    /// (dialogue id, reason) for the first few.
    examples: Vec<(&'a str, &'a toolflow_core::Reason)>,
}

pub fn section(rejected: &Input<Vec<Rejection>>, dialogues: &Input<Vec<Dialogue>>) -> String {
    if let Some(note) = rejected.absence("rejections", "`toolflow filter`") {
        return absent_note(&note);
    }
    let Some(rejected) = rejected.value() else {
        unreachable!("absence covers the other cases")
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<p><b>{}</b> {} rejected",
        html::integer(rejected.len() as u64),
        if rejected.len() == 1 {
            "dialogue"
        } else {
            "dialogues"
        }
    );
    if let Input::Loaded { path, value } = dialogues {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = write!(
            out,
            " (the dialogue file, <code>{}</code>, holds {})",
            escape(&name),
            html::integer(value.len() as u64)
        );
    }
    out.push_str(".</p>\n");
    if rejected.is_empty() {
        return out;
    }
    let mut rules: BTreeMap<&str, RuleCount> = BTreeMap::new();
    for rejection in rejected {
        let mut seen: Vec<&str> = Vec::new();
        for reason in &rejection.reasons {
            let count = rules.entry(reason.rule.id()).or_default();
            count.reasons += 1;
            *count.levels.entry(reason.level.id()).or_default() += 1;
            if !seen.contains(&reason.rule.id()) {
                seen.push(reason.rule.id());
                count.dialogues += 1;
                if count.examples.len() < EXAMPLES {
                    count.examples.push((&rejection.dialogue.id, reason));
                }
            }
        }
    }
    let mut ranked: Vec<(&str, RuleCount)> = rules.into_iter().collect();
    ranked.sort_by(|a, b| b.1.dialogues.cmp(&a.1.dialogues).then(a.0.cmp(b.0)));
    let most = ranked
        .first()
        .map_or(1, |(_, count)| count.dialogues.max(1));
    out.push_str(
        "<div class=\"table-wrap\"><table class=\"rules\"><thead><tr><th>rule</th><th>dialogues</th><th>reasons</th><th>levels</th><th>examples</th></tr></thead><tbody>\n",
    );
    for (rule, count) in &ranked {
        let levels: Vec<String> = count
            .levels
            .iter()
            .map(|(level, n)| format!("{n} {level}"))
            .collect();
        let _ = write!(
            out,
            "<tr><td class=\"nowrap\"><code>{}</code></td><td class=\"num nowrap\"><span class=\"meter\" style=\"width:{:.1}em\"></span>{}</td><td class=\"num\">{}</td><td class=\"nowrap\">{}</td><td><ul class=\"examples\">",
            escape(rule),
            METER_EM * count.dialogues as f64 / most as f64,
            html::integer(count.dialogues as u64),
            html::integer(count.reasons as u64),
            escape(&levels.join(", "))
        );
        for (id, reason) in &count.examples {
            let _ = write!(
                out,
                "<li><a href=\"#dialogue={}\">{}</a>",
                escape(&url_component(id)),
                escape(id)
            );
            if let Some(pointer) = &reason.pointer {
                let _ = write!(out, " <code>{}</code>", escape(pointer));
            }
            let _ = write!(out, " {}</li>", escape(&reason.detail));
        }
        out.push_str("</ul></td></tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// Percent-encodes everything but unreserved characters, as `encodeURIComponent` would, so
/// that the browser's `decodeURIComponent` gets the id back.
pub(crate) fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolflow_core::Reason;

    fn dialogue(id: &str) -> Dialogue {
        let line = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/run/dialogues.jsonl"
        ))
        .unwrap();
        let mut dialogue: Dialogue = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        dialogue.id = id.into();
        dialogue
    }

    fn reason(rule: &str, level: &str, pointer: Option<&str>, detail: &str) -> Reason {
        Reason {
            rule: serde_json::from_value(serde_json::json!(rule)).unwrap(),
            level: serde_json::from_value(serde_json::json!(level)).unwrap(),
            turn: None,
            pointer: pointer.map(Into::into),
            detail: detail.into(),
        }
    }

    #[test]
    fn reasons_are_counted_per_rule_with_examples() {
        let rejected = vec![
            Rejection {
                reasons: vec![
                    reason(
                        "unknown-tool",
                        "reject",
                        Some("/turns/1/tool_calls/0/name"),
                        "no tool <get_forecast>",
                    ),
                    reason(
                        "unknown-tool",
                        "reject",
                        Some("/turns/3/tool_calls/0/name"),
                        "again",
                    ),
                    reason("ungrounded-argument", "warn", None, "Paris"),
                ],
                dialogue: dialogue("d 1"),
            },
            Rejection {
                reasons: vec![reason("unknown-tool", "reject", None, "x")],
                dialogue: dialogue("d2"),
            },
        ];
        let html = section(
            &Input::Loaded {
                path: "rejected.jsonl".into(),
                value: rejected,
            },
            &Input::NotGiven,
        );
        assert!(html.contains("<b>2</b> dialogues rejected."));
        // unknown-tool: 2 dialogues, 3 reasons; listed first.
        let unknown = html.find("<code>unknown-tool</code>").unwrap();
        assert!(unknown < html.find("<code>ungrounded-argument</code>").unwrap());
        assert!(html[unknown..].starts_with("<code>unknown-tool</code></td><td class=\"num nowrap\"><span class=\"meter\" style=\"width:5.0em\"></span>2</td><td class=\"num\">3</td><td class=\"nowrap\">3 reject</td>"));
        assert!(html.contains("<a href=\"#dialogue=d%201\">d 1</a> <code>/turns/1/tool_calls/0/name</code> no tool &lt;get_forecast&gt;</li>"));
        assert!(html.contains("<td class=\"nowrap\">1 warn</td>"));
    }

    #[test]
    fn missing_file_says_so() {
        let html = section(
            &Input::Missing {
                path: "r/rejected.jsonl".into(),
            },
            &Input::NotGiven,
        );
        assert!(html.contains("No rejections: r/rejected.jsonl does not exist"));
    }
}
