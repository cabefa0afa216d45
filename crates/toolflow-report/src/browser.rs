//! The dialogue browser: the page's script builds a searchable list and a detail view from
//! the dialogues embedded as JSON. The script only ever sets `textContent`, so dialogue text
//! never becomes markup; the JSON itself is escaped so that it cannot end its element.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use serde_json::{Value, json};
use toolflow_core::{Dialogue, Reason};

use crate::html::{self, absent_note};
use crate::inputs::ReportInputs;

/// The browser's record of one dialogue: the dialogue minus the tools' schemas (names and
/// descriptions are enough to read it), plus the filter's reasons when it was rejected.
fn record(dialogue: &Dialogue, reasons: Option<&[Reason]>) -> Value {
    let tools: Vec<Value> = dialogue
        .tools
        .iter()
        .map(|tool| json!({"name": tool.name, "description": tool.description}))
        .collect();
    let reasons = reasons.map(|reasons| {
        reasons
            .iter()
            .map(|r| json!({"rule": r.rule, "level": r.level, "turn": r.turn, "pointer": r.pointer, "detail": r.detail}))
            .collect::<Vec<_>>()
    });
    json!({
        "id": dialogue.id,
        "index": dialogue.index,
        "tools": tools,
        "plan": dialogue.plan,
        "context": dialogue.context,
        "turns": dialogue.turns,
        "settings": dialogue.settings,
        "outcome": dialogue.outcome,
        "usage": dialogue.usage,
        "rejected": reasons,
    })
}

/// The dialogues the browser holds, in file order: those of the dialogue file, then the
/// rejected ones it lacks (when it is `kept.jsonl`), at most `browser_limit` in all.
fn records(inputs: &ReportInputs) -> (Vec<Value>, usize) {
    let rejected = inputs.rejected.value().map_or(&[][..], Vec::as_slice);
    let reasons: HashMap<&str, &[Reason]> = rejected
        .iter()
        .map(|r| (r.dialogue.id.as_str(), r.reasons.as_slice()))
        .collect();
    let dialogues = inputs.dialogues.value().map_or(&[][..], Vec::as_slice);
    let listed: HashSet<&str> = dialogues.iter().map(|d| d.id.as_str()).collect();
    let all = dialogues.iter().chain(
        rejected
            .iter()
            .map(|r| &r.dialogue)
            .filter(|d| !listed.contains(d.id.as_str())),
    );
    let total = dialogues.len()
        + rejected
            .iter()
            .filter(|r| !listed.contains(r.dialogue.id.as_str()))
            .count();
    let records = all
        .take(inputs.browser_limit)
        .map(|dialogue| record(dialogue, reasons.get(dialogue.id.as_str()).copied()))
        .collect();
    (records, total)
}

pub fn section(inputs: &ReportInputs) -> String {
    let (records, total) = records(inputs);
    if total == 0 {
        let note = inputs
            .dialogues
            .absence("dialogues", "`toolflow run` or `toolflow synth`")
            .unwrap_or_else(|| "The dialogue file holds no dialogues.".into());
        return absent_note(&note);
    }
    let mut out = String::new();
    if records.len() < total {
        let _ = writeln!(
            out,
            "<p class=\"muted\">The browser holds the first {} of {} dialogues.</p>",
            html::integer(records.len() as u64),
            html::integer(total as u64)
        );
    }
    out.push_str(
        "<div class=\"browser\">\n<div class=\"browser-list\">\n\
         <input id=\"search\" type=\"search\" placeholder=\"Search text, tools, ids…\" aria-label=\"Search dialogues\" autocomplete=\"off\">\n\
         <p id=\"match-count\" class=\"muted\"></p>\n<ol id=\"dialogue-list\"></ol>\n</div>\n\
         <article id=\"dialogue-detail\" aria-live=\"polite\"><p class=\"muted\">The dialogue browser needs JavaScript.</p></article>\n</div>\n",
    );
    let _ = writeln!(
        out,
        "<script type=\"application/json\" id=\"dialogue-data\">{}</script>",
        html::json_for_script(&Value::Array(records))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::{Input, InputPaths};

    fn fixture_inputs() -> ReportInputs {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/run");
        ReportInputs::from_run_dir(dir.as_ref()).unwrap()
    }

    fn embedded(html: &str) -> Vec<Value> {
        let start = html.find("id=\"dialogue-data\">").unwrap() + "id=\"dialogue-data\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        serde_json::from_str(&html[start..end]).unwrap()
    }

    #[test]
    fn embedded_json_reads_back_and_holds_rejection_reasons() {
        let inputs = fixture_inputs();
        let html = section(&inputs);
        let records = embedded(&html);
        assert_eq!(records.len(), inputs.dialogues.value().unwrap().len());
        let rejected: Vec<&Value> = records
            .iter()
            .filter(|r| !r["rejected"].is_null())
            .collect();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0]["rejected"][0]["rule"], "unknown-tool");
        // The hostile text survives the round trip unchanged, and never appears raw.
        assert!(records.iter().any(|r| {
            r.to_string()
                .contains("</script><img src=x onerror=alert(1)>")
        }));
        assert!(!html.contains("<img"));
        assert_eq!(html.matches("</script>").count(), 1);
    }

    #[test]
    fn kept_file_is_completed_by_the_rejected_dialogues() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/run"));
        let paths = InputPaths {
            dialogues: Some(dir.join("kept.jsonl")),
            rejected: Some(dir.join("rejected.jsonl")),
            ..InputPaths::default()
        };
        let inputs = ReportInputs::load("t".into(), &paths).unwrap();
        let records = embedded(&section(&inputs));
        let kept = inputs.dialogues.value().unwrap().len();
        assert_eq!(records.len(), kept + 1);
        assert!(!records[kept]["rejected"].is_null());
    }

    #[test]
    fn limit_caps_the_browser_and_says_so() {
        let mut inputs = fixture_inputs();
        inputs.browser_limit = 1;
        let html = section(&inputs);
        assert_eq!(embedded(&html).len(), 1);
        assert!(html.contains("The browser holds the first 1 of"));
    }

    #[test]
    fn no_dialogues_says_so() {
        let mut inputs = fixture_inputs();
        inputs.dialogues = Input::Missing {
            path: "x/dialogues.jsonl".into(),
        };
        inputs.rejected = Input::NotGiven;
        assert!(section(&inputs).contains("No dialogues: x/dialogues.jsonl does not exist"));
    }
}
