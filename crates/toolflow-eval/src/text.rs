//! Which text of a dialogue each measure reads.
//!
//! *Utterances* are what people read: user turns and the assistant's text. Diversity (H,
//! Distinct-3) is measured on utterances only, so that synthetic records compare with human
//! datasets whose service calls are annotations rather than text. *All text* adds what a
//! model is trained on besides: each tool call as its name and compact JSON arguments, and
//! each tool result as compact JSON (a string result as itself). Token counts (Table 1) and
//! duplicate detection read all text.

use std::borrow::Cow;

use serde_json::Value;
use toolflow_core::{Dialogue, ToolCall, Turn};

/// User and assistant text, in order, skipping assistant turns that only call tools.
pub fn utterances(dialogue: &Dialogue) -> impl Iterator<Item = &str> {
    dialogue.turns.iter().filter_map(|turn| match turn {
        Turn::User(user) => Some(user.content.as_str()),
        Turn::Assistant(assistant) => assistant.content.as_deref(),
        Turn::Tool(_) => None,
    })
}

/// Every piece of text of one turn: its content, then each call it makes.
pub fn turn_texts(turn: &Turn) -> Vec<Cow<'_, str>> {
    match turn {
        Turn::User(user) => vec![Cow::Borrowed(user.content.as_str())],
        Turn::Assistant(assistant) => {
            let mut texts: Vec<Cow<str>> = assistant
                .content
                .as_deref()
                .map(Cow::Borrowed)
                .into_iter()
                .collect();
            texts.extend(
                assistant
                    .tool_calls
                    .iter()
                    .map(|call| Cow::Owned(call_text(call))),
            );
            texts
        }
        Turn::Tool(tool) => vec![json_text(&tool.content)],
    }
}

/// A call as `name {arguments}`; arguments that did not parse as their raw text.
pub fn call_text(call: &ToolCall) -> String {
    match &call.arguments_raw {
        Some(raw) => format!("{} {raw}", call.name),
        None => format!("{} {}", call.name, call.arguments),
    }
}

/// Compact JSON, except that a string stands for itself.
pub fn json_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text),
        other => Cow::Owned(other.to_string()),
    }
}
