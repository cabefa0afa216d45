//! Reads Schema-Guided Dialogue (SGD, DSTC8) files into [`Dialogue`] records, so that human
//! dialogues are measured exactly like synthetic ones.
//!
//! An SGD file is a JSON array of `{dialogue_id, services, turns}`; each turn has a
//! `speaker` (`USER` or `SYSTEM`), an `utterance` and `frames`. A system frame may carry the
//! annotated `service_call` (`{method, parameters}`) and its `service_results`. Mapping:
//! - a USER turn is a user turn;
//! - for a SYSTEM turn, each frame's service call becomes an assistant turn that only calls
//!   the tool `{service}_{method}` with the annotated parameters, followed by a tool turn whose
//!   content is the array of `service_results`; then the utterance is an assistant turn.
//!
//! Tools are built from the calls seen in the dialogue: every parameter a string (SGD slot
//! values are strings), none required (the file does not say). Human data has no plan and
//! no generation settings: `plan` is null, the context empty, and `settings` neutral.
//!
//! MultiWOZ 2.2 is published in this same schema (frames without service calls), so it
//! reads as SGD; MultiWOZ 2.0/2.1 `data.json` files have their own reader, [`crate::multiwoz`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use toolflow_core::{
    AssistantTurn, Dialogue, DialogueSettings, Outcome, OutcomeStatus, SamplingStrategy,
    SystemContext, Tool, ToolCall, ToolTurn, Turn, Usage, UserTurn,
};

#[derive(Deserialize)]
struct SgdDialogue {
    dialogue_id: String,
    turns: Vec<SgdTurn>,
}

#[derive(Deserialize)]
struct SgdTurn {
    speaker: String,
    utterance: String,
    #[serde(default)]
    frames: Vec<SgdFrame>,
}

#[derive(Deserialize)]
struct SgdFrame {
    service: String,
    #[serde(default)]
    service_call: Option<SgdCall>,
    #[serde(default)]
    service_results: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct SgdCall {
    method: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

/// Whether a parsed JSON value looks like one SGD dialogue.
pub fn looks_like_sgd(value: &Value) -> bool {
    value.get("dialogue_id").is_some()
        && value["turns"]
            .as_array()
            .and_then(|turns| turns.first())
            .is_some_and(|turn| turn.get("speaker").is_some() && turn.get("utterance").is_some())
}

/// Converts one SGD dialogue (the `index`-th of its file).
pub fn convert(value: Value, index: u64) -> Result<Dialogue, String> {
    let sgd: SgdDialogue = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let mut turns = Vec::new();
    let mut tools: BTreeMap<String, Tool> = BTreeMap::new();
    let mut calls = 0usize;
    for (number, turn) in sgd.turns.into_iter().enumerate() {
        match turn.speaker.as_str() {
            "USER" => turns.push(Turn::User(UserTurn {
                content: turn.utterance,
                plan_step: None,
                generation: None,
            })),
            "SYSTEM" => {
                for frame in turn.frames {
                    let Some(call) = frame.service_call else {
                        continue;
                    };
                    let name = format!("{}_{}", frame.service, call.method);
                    let tool = tools.entry(name.clone()).or_insert_with(|| Tool {
                        name: name.clone(),
                        description: format!(
                            "SGD service {}, intent {}",
                            frame.service, call.method
                        ),
                        parameters: json!({"type": "object", "properties": {}}),
                        returns: None,
                        source: "sgd".into(),
                        meta: Map::new(),
                    });
                    for parameter in call.parameters.keys() {
                        tool.parameters["properties"][parameter] = json!({"type": "string"});
                    }
                    let id = format!("call_{calls}");
                    calls += 1;
                    turns.push(Turn::Assistant(AssistantTurn {
                        content: None,
                        tool_calls: vec![ToolCall {
                            id: id.clone(),
                            name: name.clone(),
                            arguments: Value::Object(call.parameters),
                            arguments_raw: None,
                        }],
                        generation: None,
                    }));
                    turns.push(Turn::Tool(ToolTurn {
                        tool_call_id: id,
                        name,
                        content: Value::Array(frame.service_results.unwrap_or_default()),
                        is_error: false,
                        origin: "sgd".into(),
                        generation: None,
                    }));
                }
                turns.push(Turn::Assistant(AssistantTurn {
                    content: Some(turn.utterance),
                    tool_calls: Vec::new(),
                    generation: None,
                }));
            }
            other => return Err(format!("turn {number}: unknown speaker {other:?}")),
        }
    }
    Ok(human_dialogue(
        format!("sgd-{}", sgd.dialogue_id),
        index,
        tools.into_values().collect(),
        turns,
        "sgd",
    ))
}

/// A dialogue record for human data from `corpus`: no plan, an empty context, neutral
/// settings, nobody's generation.
pub(crate) fn human_dialogue(
    id: String,
    index: u64,
    tools: Vec<Tool>,
    turns: Vec<Turn>,
    corpus: &str,
) -> Dialogue {
    Dialogue {
        id,
        index,
        tools,
        plan: None,
        links: Vec::new(),
        context: SystemContext::default(),
        turns,
        settings: DialogueSettings {
            // The record needs a sampler; human data was sampled by nobody.
            sampler: SamplingStrategy::Random,
            plan: false,
            target_turns: 0,
            max_turns: 0,
            user_style: "human".into(),
            seed: 0,
            models: BTreeMap::from([("all".to_string(), format!("human:{corpus}"))]),
            temperature: 0.0,
        },
        outcome: Outcome {
            status: OutcomeStatus::Completed,
            reason: None,
            steps_done: 0,
        },
        usage: Usage::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_calls_become_tool_calls_and_results() {
        let text = include_str!("../tests/fixtures/sgd_two_dialogues.json");
        let values: Vec<Value> = serde_json::from_str(text).unwrap();
        assert!(looks_like_sgd(&values[0]));
        let dialogue = convert(values[0].clone(), 0).unwrap();
        assert_eq!(dialogue.id, "sgd-1_00000");
        let roles: Vec<&str> = dialogue
            .turns
            .iter()
            .map(|t| match t {
                Turn::User(_) => "user",
                Turn::Assistant(a) if a.tool_calls.is_empty() => "assistant",
                Turn::Assistant(_) => "call",
                Turn::Tool(_) => "tool",
            })
            .collect();
        assert_eq!(
            roles,
            ["user", "assistant", "user", "call", "tool", "assistant"]
        );
        let Turn::Assistant(call) = &dialogue.turns[3] else {
            panic!()
        };
        assert_eq!(call.tool_calls[0].name, "Restaurants_1_FindRestaurants");
        assert_eq!(
            call.tool_calls[0].arguments,
            json!({"city": "San Jose", "cuisine": "Italian"})
        );
        let Turn::Tool(result) = &dialogue.turns[4] else {
            panic!()
        };
        assert_eq!(result.content[0]["restaurant_name"], "Pasta Nostra");
        assert_eq!(dialogue.tools.len(), 1);
        assert_eq!(
            dialogue.tools[0].parameters["properties"]["city"]["type"],
            "string"
        );
    }
}
