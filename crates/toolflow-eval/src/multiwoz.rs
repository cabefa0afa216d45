//! Reads MultiWOZ 2.0/2.1 `data.json` files into [`Dialogue`] records, for comparisons
//! with human task-oriented dialogues (MultiWOZ 2.2 uses the SGD schema, [`crate::sgd`]).
//!
//! The file is one JSON object keyed by dialogue name (`"SNG01856.json"`, …); each value has
//! a `log`, the turns in order, alternating user and system and starting with the user,
//! each with its `text`. The belief state in a system turn's `metadata` is not an API call,
//! so the records hold text turns only and no tools.

use serde_json::Value;
use toolflow_core::{AssistantTurn, Dialogue, Turn, UserTurn};

use crate::sgd::human_dialogue;

/// Whether a parsed JSON value looks like a MultiWOZ 2.0/2.1 file: an object whose first
/// entry has a `log` of turns with `text`.
pub fn looks_like_multiwoz(value: &Value) -> bool {
    value
        .as_object()
        .and_then(|dialogues| dialogues.values().next())
        .and_then(|dialogue| dialogue["log"].as_array())
        .and_then(|log| log.first())
        .is_some_and(|turn| turn["text"].is_string())
}

/// Converts the dialogue `name` of a MultiWOZ file (the `index`-th of its file).
pub fn convert(name: &str, value: &Value, index: u64) -> Result<Dialogue, String> {
    let log = value["log"]
        .as_array()
        .ok_or("the dialogue has no `log` array")?;
    let mut turns = Vec::with_capacity(log.len());
    for (number, turn) in log.iter().enumerate() {
        let text = turn["text"]
            .as_str()
            .ok_or_else(|| format!("log/{number}: no `text`"))?
            .to_owned();
        turns.push(if number % 2 == 0 {
            Turn::User(UserTurn {
                content: text,
                plan_step: None,
                generation: None,
            })
        } else {
            Turn::Assistant(AssistantTurn {
                content: Some(text),
                tool_calls: Vec::new(),
                generation: None,
            })
        });
    }
    let id = name.strip_suffix(".json").unwrap_or(name);
    Ok(human_dialogue(
        format!("multiwoz-{id}"),
        index,
        Vec::new(),
        turns,
        "multiwoz",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_alternates_user_and_system_turns() {
        let text = include_str!("../tests/fixtures/multiwoz_two_dialogues.json");
        let file: Value = serde_json::from_str(text).unwrap();
        assert!(looks_like_multiwoz(&file));
        assert!(!looks_like_multiwoz(
            &serde_json::json!({"id": "x", "turns": []})
        ));
        let (name, value) = file.as_object().unwrap().iter().next().unwrap();
        let dialogue = convert(name, value, 0).unwrap();
        assert_eq!(dialogue.id, "multiwoz-SNG0073");
        assert_eq!(dialogue.turns.len(), 4);
        let Turn::User(first) = &dialogue.turns[0] else {
            panic!("the log starts with the user")
        };
        assert_eq!(first.content, "I need a taxi to the hotel, please.");
        let Turn::Assistant(reply) = &dialogue.turns[1] else {
            panic!("then the system")
        };
        assert_eq!(
            reply.content.as_deref(),
            Some("What time would you like to leave?")
        );
        assert!(dialogue.tools.is_empty());
        assert_eq!(dialogue.settings.models["all"], "human:multiwoz");
        let broken = serde_json::json!({"log": [{"text": "hi"}, {"metadata": {}}]});
        assert_eq!(
            convert("x.json", &broken, 0).unwrap_err(),
            "log/1: no `text`"
        );
    }
}
