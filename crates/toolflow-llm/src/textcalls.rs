//! Tool calls a model wrote as text, because the server has no tool parser for it (or
//! the tools were described in the prompt): Hermes `<tool_call>` blocks, Mistral
//! `[TOOL_CALLS]`, Llama's `<|python_tag|>`, and bare JSON objects. Parsed only when the
//! request offered tools.

use serde_json::Value;

use crate::request::{ToolCallRequest, ToolSpec};

/// Calls found in an answer's text, and the prose around them.
#[derive(Debug, Clone, PartialEq)]
pub struct TextCalls {
    /// The calls, in the order the text has them.
    pub calls: Vec<ToolCallRequest>,
    /// What is left of the text once the calls are taken out; `None` when nothing is.
    pub prose: Option<String>,
}

/// The calls in `text`, if it holds any in a known form. Bare JSON counts only when every
/// name it calls is one of `tools`, so that a JSON answer about something else stays text.
pub fn parse_text_calls(text: &str, tools: &[ToolSpec]) -> Option<TextCalls> {
    hermes(text)
        .or_else(|| mistral(text))
        .or_else(|| python_tag(text))
        .or_else(|| bare_json(text, tools))
}

/// `<tool_call>{"name": …, "arguments": …}</tool_call>`, any number of times; the last
/// closing tag may be missing when generation stopped on it.
fn hermes(text: &str) -> Option<TextCalls> {
    const OPEN: &str = "<tool_call>";
    const CLOSE: &str = "</tool_call>";
    let first = text.find(OPEN)?;
    let mut prose = text[..first].to_owned();
    let mut values = Vec::new();
    let mut rest = &text[first..];
    while let Some(start) = rest.find(OPEN) {
        prose.push_str(&rest[..start]);
        let inner = &rest[start + OPEN.len()..];
        let (block, after) = match inner.find(CLOSE) {
            Some(end) => (&inner[..end], &inner[end + CLOSE.len()..]),
            None => (inner, ""),
        };
        values.push(first_json(block)?);
        rest = after;
    }
    prose.push_str(rest);
    calls_from(values, prose)
}

/// `[TOOL_CALLS] [{"name": …, "arguments": …}, …]`, or the newer
/// `[TOOL_CALLS]name[ARGS]{…}` form, once per call.
fn mistral(text: &str) -> Option<TextCalls> {
    const TAG: &str = "[TOOL_CALLS]";
    let start = text.find(TAG)?;
    let prose = text[..start].to_owned();
    let after = &text[start + TAG.len()..];
    if after.contains("[ARGS]") {
        let mut values = Vec::new();
        for part in after.split(TAG) {
            let (name, arguments) = part.split_once("[ARGS]")?;
            let arguments = first_json(arguments)?;
            values.push(serde_json::json!({"name": name.trim(), "arguments": arguments}));
        }
        return calls_from(values, prose);
    }
    let (value, consumed) = json_prefix(after)?;
    let values = match value {
        Value::Array(values) => values,
        object => vec![object],
    };
    calls_from(values, prose + &after[consumed..])
}

/// `<|python_tag|>{"name": …, "parameters": …}`, several joined by `;`.
fn python_tag(text: &str) -> Option<TextCalls> {
    const TAG: &str = "<|python_tag|>";
    let start = text.find(TAG)?;
    let prose = text[..start].to_owned();
    let mut rest = text[start + TAG.len()..].trim_start();
    let mut values = Vec::new();
    while let Some((value, consumed)) = json_prefix(rest) {
        values.push(value);
        rest = rest[consumed..].trim_start();
        rest = rest.strip_prefix(';').unwrap_or(rest).trim_start();
    }
    let end = rest
        .trim_end_matches("<|eom_id|>")
        .trim_end_matches("<|eot_id|>");
    calls_from(values, prose + end)
}

/// A bare JSON call, a list of them, or `{"tool_calls": [...]}` (the form toolflow's own
/// prompt asks for), anywhere in the text.
fn bare_json(text: &str, tools: &[ToolSpec]) -> Option<TextCalls> {
    let trimmed = text.trim();
    let start = trimmed.find(['{', '['])?;
    let (value, consumed) = json_prefix(&trimmed[start..])?;
    let values = match value {
        Value::Object(mut object) if object.contains_key("tool_calls") => {
            match object.remove("tool_calls")? {
                Value::Array(values) => values,
                _ => return None,
            }
        }
        Value::Array(values) => values,
        object => vec![object],
    };
    let prose = format!("{}{}", &trimmed[..start], &trimmed[start + consumed..]);
    let prose = strip_fences(&prose);
    let found = calls_from(values, prose)?;
    found
        .calls
        .iter()
        .all(|call| tools.iter().any(|tool| tool.name == call.name))
        .then_some(found)
}

fn strip_fences(text: &str) -> String {
    text.replace("```json", "").replace("```", "")
}

fn calls_from(values: Vec<Value>, prose: String) -> Option<TextCalls> {
    if values.is_empty() {
        return None;
    }
    let calls = values
        .iter()
        .enumerate()
        .map(|(index, value)| call_from(index, value))
        .collect::<Option<Vec<_>>>()?;
    let prose = prose.trim();
    Some(TextCalls {
        calls,
        prose: (!prose.is_empty()).then(|| prose.to_owned()),
    })
}

/// `{"name", "arguments" | "parameters"}`, or the OpenAI `{"function": {...}}` wrapper.
fn call_from(index: usize, value: &Value) -> Option<ToolCallRequest> {
    let value = value
        .get("function")
        .filter(|f| f.is_object())
        .unwrap_or(value);
    let name = value.get("name")?.as_str()?.trim().to_owned();
    if name.is_empty() {
        return None;
    }
    let arguments = match value.get("arguments").or_else(|| value.get("parameters")) {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => "{}".into(),
        Some(other) => other.to_string(),
    };
    Some(ToolCallRequest {
        id: call_id(index, &name, &arguments),
        name,
        arguments,
    })
}

/// The first JSON value in `text` (after whatever precedes its first `{` or `[`).
fn first_json(text: &str) -> Option<Value> {
    let start = text.find(['{', '['])?;
    json_prefix(&text[start..]).map(|(value, _)| value)
}

/// The JSON value `text` starts with (after white space), and how many bytes it took.
fn json_prefix(text: &str) -> Option<(Value, usize)> {
    let skipped = text.len() - text.trim_start().len();
    let mut values = serde_json::Deserializer::from_str(&text[skipped..]).into_iter::<Value>();
    let value = values.next()?.ok()?;
    Some((value, skipped + values.byte_offset()))
}

/// Ids for calls that came without one: stable, so that cached answers replay alike.
pub(crate) fn call_id(index: usize, name: &str, arguments: &str) -> String {
    let hash =
        toolflow_core::content_hash(&[&index.to_le_bytes(), name.as_bytes(), arguments.as_bytes()]);
    format!("call_{}", &hash[..16])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tools() -> Vec<ToolSpec> {
        ["get_weather", "get_time"]
            .into_iter()
            .map(|name| ToolSpec {
                name: name.into(),
                description: String::new(),
                parameters: json!({"type": "object"}),
            })
            .collect()
    }

    fn names_and_arguments(found: &TextCalls) -> Vec<(&str, Value)> {
        found
            .calls
            .iter()
            .map(|call| {
                (
                    call.name.as_str(),
                    serde_json::from_str(&call.arguments).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn hermes_blocks_with_and_without_the_last_closing_tag() {
        let text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}";
        let found = parse_text_calls(text, &tools()).unwrap();
        assert_eq!(
            names_and_arguments(&found),
            [
                ("get_weather", json!({"city": "Paris"})),
                ("get_time", json!({"tz": "CET"}))
            ]
        );
        assert_eq!(found.prose.as_deref(), Some("Let me check."));
    }

    #[test]
    fn mistral_both_forms() {
        let old = r#"[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Lyon"}}, {"name": "get_time", "arguments": {}}]"#;
        let found = parse_text_calls(old, &tools()).unwrap();
        assert_eq!(
            names_and_arguments(&found),
            [
                ("get_weather", json!({"city": "Lyon"})),
                ("get_time", json!({}))
            ]
        );
        assert_eq!(found.prose, None);
        let new = r#"[TOOL_CALLS]get_weather[ARGS]{"city": "Lyon"}[TOOL_CALLS]get_time[ARGS]{}"#;
        let found = parse_text_calls(new, &tools()).unwrap();
        assert_eq!(
            names_and_arguments(&found),
            [
                ("get_weather", json!({"city": "Lyon"})),
                ("get_time", json!({}))
            ]
        );
    }

    #[test]
    fn llama_python_tag_with_parameters() {
        let text = r#"<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}; {"name": "get_time", "parameters": {}}<|eom_id|>"#;
        let found = parse_text_calls(text, &tools()).unwrap();
        assert_eq!(
            names_and_arguments(&found),
            [
                ("get_weather", json!({"city": "Oslo"})),
                ("get_time", json!({}))
            ]
        );
        assert_eq!(found.prose, None);
    }

    #[test]
    fn bare_json_only_when_it_calls_offered_tools() {
        let found = parse_text_calls(
            "```json\n{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Rome\\\"}\"}\n```",
            &tools(),
        )
        .unwrap();
        assert_eq!(
            names_and_arguments(&found),
            [("get_weather", json!({"city": "Rome"}))]
        );
        assert_eq!(found.prose, None);
        let ours = r#"{"tool_calls": [{"name": "get_time", "arguments": {"tz": "UTC"}}]}"#;
        assert_eq!(
            names_and_arguments(&parse_text_calls(ours, &tools()).unwrap()),
            [("get_time", json!({"tz": "UTC"}))]
        );
        // JSON that calls nothing offered is an answer, not a call.
        assert_eq!(
            parse_text_calls(r#"{"name": "Alice", "age": 3}"#, &tools()),
            None
        );
        assert_eq!(parse_text_calls("It is sunny in Rome.", &tools()), None);
    }
}
