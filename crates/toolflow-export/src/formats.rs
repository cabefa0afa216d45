//! The record formats, each with a reader back into turns, so that round trips are tested.
//!
//! All formats put the system context in the system prompt as `Current time: …` and
//! `Location: …` lines (omitted when empty), and write tool results as text: a string result
//! as itself, anything else as JSON. Tool-call ids survive only in TRL; the other formats
//! have no place for them, and readers number calls `call_0`, `call_1`, … in order.

use serde_json::{Map, Value, json};
use toolflow_core::{
    AssistantTurn, Dialogue, SystemContext, Tool, ToolCall, ToolTurn, Turn, UserTurn,
};

use crate::error::ExportError;
use crate::python::{date_string, python_json};

/// The training-data formats an export writes (see the crate's documentation for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI-style `messages` and `tools`, as TRL's `SFTTrainer` takes them.
    Trl,
    /// LLaMA-Factory's ShareGPT `conversations`.
    Sharegpt,
    /// Hermes `conversations` with `<tool_call>` and `<tool_response>` text.
    Hermes,
    /// `{"text": ...}` through a model's own chat template.
    Template,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "trl" => Ok(Format::Trl),
            "sharegpt" => Ok(Format::Sharegpt),
            "hermes" => Ok(Format::Hermes),
            "template" => Ok(Format::Template),
            other => Err(format!(
                "unknown format {other:?}: expected trl, sharegpt, hermes or template"
            )),
        }
    }
}

/// The record for `dialogue` in `format` (not [`Format::Template`]), and how many assistant
/// texts the format could not hold.
pub fn to_record(format: Format, dialogue: &Dialogue) -> Result<(Value, u64), ExportError> {
    check_arguments(dialogue)?;
    match format {
        Format::Trl => Ok((to_trl(dialogue), 0)),
        Format::Sharegpt => to_sharegpt(dialogue),
        Format::Hermes => Ok((to_hermes(dialogue), 0)),
        Format::Template => unreachable!("template records are rendered by ChatTemplate"),
    }
}

fn check_arguments(dialogue: &Dialogue) -> Result<(), ExportError> {
    for (index, turn) in dialogue.turns.iter().enumerate() {
        let Turn::Assistant(assistant) = turn else {
            continue;
        };
        for call in &assistant.tool_calls {
            if call.arguments_raw.is_some() || !call.arguments.is_object() {
                return Err(ExportError::Dialogue {
                    id: dialogue.id.clone(),
                    detail: format!(
                        "turn {index}: arguments of `{}` are not a JSON object; run `toolflow filter` first",
                        call.name
                    ),
                });
            }
        }
    }
    Ok(())
}

/// `Current time: …` and `Location: …` lines, or None when the context is empty.
pub fn context_lines(context: &SystemContext) -> Option<String> {
    let mut lines = Vec::new();
    if !context.current_time.is_empty() {
        lines.push(format!("Current time: {}", context.current_time));
    }
    if !context.location.is_empty() {
        lines.push(format!("Location: {}", context.location));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Reads the context back from a system prompt written with [`context_lines`].
pub fn parse_context(system: &str) -> SystemContext {
    let mut context = SystemContext::default();
    for line in system.lines() {
        if let Some(time) = line.strip_prefix("Current time: ") {
            context.current_time = time.to_string();
        } else if let Some(location) = line.strip_prefix("Location: ") {
            context.location = location.to_string();
        }
    }
    context
}

fn result_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn result_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Tools as OpenAI function definitions: `{"type": "function", "function": {...}}`.
pub fn openai_tools(tools: &[Tool]) -> Vec<Value> {
    tools
        .iter()
        .map(|tool| json!({"type": "function", "function": function(tool)}))
        .collect()
}

/// A tool as an OpenAI function definition, with the tool's `returns` schema when it has one
/// (templates that print the definitions then show the model what a result holds).
fn function(tool: &Tool) -> Value {
    let mut function =
        json!({"name": tool.name, "description": tool.description, "parameters": tool.parameters});
    if let Some(returns) = &tool.returns {
        function["returns"] = returns.clone();
    }
    function
}

/// A Hermes `<tool_response>` body; `is_error` only on errors, as Hermes has no such field.
fn hermes_result(turn: &ToolTurn) -> Value {
    let mut result = json!({"name": turn.name, "content": turn.content});
    if turn.is_error {
        result["is_error"] = Value::Bool(true);
    }
    result
}

/// OpenAI-style messages, tool-call arguments as objects (what chat templates expect).
pub fn openai_messages(dialogue: &Dialogue) -> Vec<Value> {
    let mut messages = Vec::new();
    if let Some(system) = context_lines(&dialogue.context) {
        messages.push(json!({"role": "system", "content": system}));
    }
    for turn in &dialogue.turns {
        messages.push(match turn {
            Turn::User(user) => json!({"role": "user", "content": user.content}),
            Turn::Assistant(assistant) => {
                let mut message = json!({"role": "assistant", "content": assistant.content.clone().unwrap_or_default()});
                if !assistant.tool_calls.is_empty() {
                    let calls: Vec<Value> = assistant
                        .tool_calls
                        .iter()
                        .map(|call| {
                            json!({"id": call.id, "type": "function",
                                   "function": {"name": call.name, "arguments": call.arguments}})
                        })
                        .collect();
                    message["tool_calls"] = Value::Array(calls);
                }
                message
            }
            // `is_error` on every tool message, so that a dataset's rows share one schema.
            Turn::Tool(tool) => json!({
                "role": "tool", "tool_call_id": tool.tool_call_id, "name": tool.name,
                "content": result_text(&tool.content), "is_error": tool.is_error,
            }),
        });
    }
    messages
}

/// The TRL row: `messages`, `tools`, and `chat_template_kwargs` with the extra variables
/// a chat template reads (`date_string`, from the dialogue's date), which TRL passes to
/// `apply_chat_template`, so the text it renders equals `--format template`'s.
pub fn to_trl(dialogue: &Dialogue) -> Value {
    let mut row =
        json!({"messages": openai_messages(dialogue), "tools": openai_tools(&dialogue.tools)});
    if let Some(date) = date_string(&dialogue.context.current_time) {
        row["chat_template_kwargs"] = json!({"date_string": date});
    }
    row
}

fn parse_error(detail: impl Into<String>) -> ExportError {
    ExportError::Parse(detail.into())
}

fn str_field<'a>(value: &'a Value, field: &str) -> Result<&'a str, ExportError> {
    value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| parse_error(format!("missing string `{field}` in {value}")))
}

fn user(content: &str) -> Turn {
    Turn::User(UserTurn {
        content: content.to_string(),
        plan_step: None,
        generation: None,
    })
}

fn assistant(content: Option<String>, tool_calls: Vec<ToolCall>) -> Turn {
    Turn::Assistant(AssistantTurn {
        content: content.filter(|c| !c.is_empty()),
        tool_calls,
        generation: None,
    })
}

fn tool_turn(id: &str, name: &str, content: Value, is_error: bool) -> Turn {
    Turn::Tool(ToolTurn {
        tool_call_id: id.to_string(),
        name: name.to_string(),
        content,
        is_error,
        origin: toolflow_core::SIMULATED.into(),
        generation: None,
    })
}

/// Reads a TRL record back: the context and the turns.
pub fn from_trl(record: &Value) -> Result<(SystemContext, Vec<Turn>), ExportError> {
    let messages = record["messages"]
        .as_array()
        .ok_or_else(|| parse_error("no `messages` array"))?;
    let mut context = SystemContext::default();
    let mut turns = Vec::new();
    for message in messages {
        match str_field(message, "role")? {
            "system" => context = parse_context(str_field(message, "content")?),
            "user" => turns.push(user(str_field(message, "content")?)),
            "assistant" => {
                let content = message["content"].as_str().map(String::from);
                let mut calls = Vec::new();
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    calls.push(ToolCall {
                        id: str_field(call, "id")?.to_string(),
                        name: str_field(&call["function"], "name")?.to_string(),
                        arguments: call["function"]["arguments"].clone(),
                        arguments_raw: None,
                    });
                }
                turns.push(assistant(content, calls));
            }
            "tool" => turns.push(tool_turn(
                str_field(message, "tool_call_id")?,
                str_field(message, "name")?,
                result_value(str_field(message, "content")?),
                message["is_error"].as_bool().unwrap_or(false),
            )),
            other => return Err(parse_error(format!("unknown role {other:?}"))),
        }
    }
    Ok((context, turns))
}

fn call_object(call: &ToolCall) -> Value {
    json!({"name": call.name, "arguments": call.arguments})
}

/// ShareGPT for LLaMA-Factory. One call is `{"name", "arguments"}`; parallel calls are a
/// JSON array of those. Turns must alternate as LLaMA-Factory requires (`human` or
/// `observation` at even positions, `gpt` or `function_call` at odd ones), so parallel
/// results share one observation: their texts in call order, joined by
/// [`PARALLEL_RESULTS_SEPARATOR`] as LLaMA-Factory's own OpenAI-format converter joins
/// consecutive tool messages. Its templates wrap an observation in one
/// `<tool_response>…</tool_response>`, so the joined value renders as one block per result,
/// which is what the models' own templates render.
/// What joins parallel results in one ShareGPT observation (LLaMA-Factory's
/// `OpenAIDatasetConverter` joins consecutive tool messages with it).
pub const PARALLEL_RESULTS_SEPARATOR: &str = "\n</tool_response>\n<tool_response>\n";

fn to_sharegpt(dialogue: &Dialogue) -> Result<(Value, u64), ExportError> {
    let mut conversations: Vec<Value> = Vec::new();
    let mut dropped = 0;
    let mut turns = dialogue.turns.iter().peekable();
    while let Some(turn) = turns.next() {
        match turn {
            Turn::User(u) => conversations.push(json!({"from": "human", "value": u.content})),
            Turn::Assistant(a) if a.tool_calls.is_empty() => conversations
                .push(json!({"from": "gpt", "value": a.content.clone().unwrap_or_default()})),
            Turn::Assistant(a) => {
                if a.content.as_deref().is_some_and(|c| !c.trim().is_empty()) {
                    dropped += 1;
                }
                let value = if a.tool_calls.len() == 1 {
                    call_object(&a.tool_calls[0])
                } else {
                    Value::Array(a.tool_calls.iter().map(call_object).collect())
                };
                conversations.push(json!({"from": "function_call", "value": value.to_string()}));
                let mut results: Vec<String> = Vec::new();
                while let Some(Turn::Tool(t)) = turns.peek() {
                    results.push(result_text(&t.content));
                    turns.next();
                }
                if results.len() != a.tool_calls.len() {
                    return Err(ExportError::Dialogue {
                        id: dialogue.id.clone(),
                        detail: format!(
                            "{} calls answered by {} results",
                            a.tool_calls.len(),
                            results.len()
                        ),
                    });
                }
                let observation = results.join(PARALLEL_RESULTS_SEPARATOR);
                conversations.push(json!({"from": "observation", "value": observation}));
            }
            Turn::Tool(t) => {
                return Err(ExportError::Dialogue {
                    id: dialogue.id.clone(),
                    detail: format!("a result of `{}` follows no call", t.name),
                });
            }
        }
    }
    for (position, message) in conversations.iter().enumerate() {
        let from = message["from"].as_str().unwrap_or_default();
        let expected: &[&str] = if position % 2 == 0 {
            &["human", "observation"]
        } else {
            &["gpt", "function_call"]
        };
        if !expected.contains(&from) {
            return Err(ExportError::Dialogue {
                id: dialogue.id.clone(),
                detail: format!(
                    "ShareGPT needs alternating turns: `{from}` at position {position}, where {} belongs",
                    expected.join(" or ")
                ),
            });
        }
    }
    let tools: Vec<Value> = dialogue.tools.iter().map(function).collect();
    let record = json!({
        "conversations": conversations,
        "system": context_lines(&dialogue.context).unwrap_or_default(),
        "tools": Value::from(tools).to_string(),
    });
    Ok((record, dropped))
}

fn parse_call(value: &Value, number: usize) -> Result<ToolCall, ExportError> {
    Ok(ToolCall {
        id: format!("call_{number}"),
        name: str_field(value, "name")?.to_string(),
        arguments: value
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
        arguments_raw: None,
    })
}

/// Reads a ShareGPT record back.
pub fn from_sharegpt(record: &Value) -> Result<(SystemContext, Vec<Turn>), ExportError> {
    let context = parse_context(record["system"].as_str().unwrap_or_default());
    let mut turns = Vec::new();
    let mut pending: Vec<ToolCall> = Vec::new();
    let mut calls = 0;
    for message in record["conversations"]
        .as_array()
        .ok_or_else(|| parse_error("no `conversations`"))?
    {
        let value = str_field(message, "value")?;
        match str_field(message, "from")? {
            "human" => turns.push(user(value)),
            "gpt" => turns.push(assistant(Some(value.to_string()), Vec::new())),
            "function_call" => {
                let parsed: Value =
                    serde_json::from_str(value).map_err(|e| parse_error(e.to_string()))?;
                let list = match parsed {
                    Value::Array(items) => items,
                    single => vec![single],
                };
                pending = Vec::new();
                for item in &list {
                    pending.push(parse_call(item, calls)?);
                    calls += 1;
                }
                turns.push(assistant(None, pending.clone()));
            }
            "observation" => {
                let results: Vec<Value> = if pending.len() == 1 {
                    vec![result_value(value)]
                } else {
                    value
                        .split(PARALLEL_RESULTS_SEPARATOR)
                        .map(result_value)
                        .collect()
                };
                if results.len() != pending.len() {
                    return Err(parse_error("observation does not match its function_call"));
                }
                for (call, result) in pending.iter().zip(results) {
                    // ShareGPT has no slot for it: an error is only in the result's text.
                    turns.push(tool_turn(&call.id, &call.name, result, false));
                }
            }
            other => return Err(parse_error(format!("unknown `from` {other:?}"))),
        }
    }
    Ok((context, turns))
}

/// The Hermes system prompt: the tools inside `<tools>`, how to call them, the context.
pub fn hermes_system_prompt(dialogue: &Dialogue) -> String {
    let tools: Vec<String> = openai_tools(&dialogue.tools)
        .iter()
        .map(python_json)
        .collect();
    let mut prompt = format!(
        "You are a function-calling assistant. The functions you may call are listed as JSON \
         inside <tools></tools>:\n<tools>\n{}\n</tools>\nTo call functions, write one \
         <tool_call></tool_call> block per call, each holding a JSON object with the function's \
         name and its arguments:\n<tool_call>\n{{\"name\": <function name>, \"arguments\": \
         <arguments object>}}\n</tool_call>\nResults come back in <tool_response></tool_response> blocks.",
        tools.join("\n")
    );
    if let Some(context) = context_lines(&dialogue.context) {
        prompt.push('\n');
        prompt.push_str(&context);
    }
    prompt
}

fn to_hermes(dialogue: &Dialogue) -> Value {
    let mut conversations =
        vec![json!({"from": "system", "value": hermes_system_prompt(dialogue)})];
    for turn in &dialogue.turns {
        match turn {
            Turn::User(u) => conversations.push(json!({"from": "human", "value": u.content})),
            Turn::Assistant(a) => {
                let mut parts: Vec<String> = a
                    .content
                    .iter()
                    .filter(|c| !c.is_empty())
                    .cloned()
                    .collect();
                for call in &a.tool_calls {
                    parts.push(format!(
                        "<tool_call>\n{}\n</tool_call>",
                        hermes_json(&call_object(call))
                    ));
                }
                conversations.push(json!({"from": "gpt", "value": parts.join("\n")}));
            }
            Turn::Tool(t) => {
                let block = format!(
                    "<tool_response>\n{}\n</tool_response>",
                    hermes_json(&hermes_result(t))
                );
                // Results of parallel calls share one tool message.
                match conversations.last_mut() {
                    Some(last) if last["from"] == "tool" => {
                        let joined =
                            format!("{}\n{block}", last["value"].as_str().unwrap_or_default());
                        last["value"] = Value::String(joined);
                    }
                    _ => conversations.push(json!({"from": "tool", "value": block})),
                }
            }
        }
    }
    json!({"conversations": conversations})
}

/// JSON inside a Hermes tag, with `<`, `>` and `&` written as `\u003c`, `\u003e` and
/// `\u0026`: an argument such as `<https://…>` would otherwise read as markup to the
/// Hermes parser, while any JSON parser reads the escapes back as the characters. They
/// can only occur inside strings, so replacing them everywhere is safe.
fn hermes_json(value: &Value) -> String {
    python_json(value)
        .replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
}

/// The contents of every `<tag>…</tag>` block of `text`, trimmed, and the text before the first.
fn blocks<'a>(text: &'a str, tag: &str) -> (&'a str, Vec<&'a str>) {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let before = text.find(&open).map_or(text, |at| &text[..at]);
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(after[..end].trim());
        rest = &after[end + close.len()..];
    }
    (before, found)
}

/// Reads a Hermes record back.
pub fn from_hermes(record: &Value) -> Result<(SystemContext, Vec<Turn>), ExportError> {
    let mut context = SystemContext::default();
    let mut turns = Vec::new();
    let mut pending: Vec<ToolCall> = Vec::new();
    let mut calls = 0;
    for message in record["conversations"]
        .as_array()
        .ok_or_else(|| parse_error("no `conversations`"))?
    {
        let value = str_field(message, "value")?;
        match str_field(message, "from")? {
            "system" => {
                context = parse_context(value.rsplit("</tools>").next().unwrap_or_default())
            }
            "human" => turns.push(user(value)),
            "gpt" => {
                let (text, found) = blocks(value, "tool_call");
                pending = Vec::new();
                for block in found {
                    let parsed: Value =
                        serde_json::from_str(block).map_err(|e| parse_error(e.to_string()))?;
                    pending.push(parse_call(&parsed, calls)?);
                    calls += 1;
                }
                turns.push(assistant(
                    Some(text.trim_end().to_string()),
                    pending.clone(),
                ));
            }
            "tool" => {
                let (_, found) = blocks(value, "tool_response");
                for (index, block) in found.into_iter().enumerate() {
                    let parsed: Value =
                        serde_json::from_str(block).map_err(|e| parse_error(e.to_string()))?;
                    let name = str_field(&parsed, "name")?;
                    let id = pending
                        .get(index)
                        .map_or_else(|| format!("call_{index}"), |call| call.id.clone());
                    let is_error = parsed["is_error"].as_bool().unwrap_or(false);
                    turns.push(tool_turn(&id, name, parsed["content"].clone(), is_error));
                }
            }
            other => return Err(parse_error(format!("unknown `from` {other:?}"))),
        }
    }
    Ok((context, turns))
}
