//! OpenAI function tools — a list, `{"tools": [...]}`, or one tool per JSON Lines line, each
//! with or without the `{"type": "function", "function": {...}}` wrapper — and toolflow's own
//! `tools.jsonl` lines (`name, description, parameters, returns, source, meta`), which are
//! the same shape plus `returns`, `source` and `meta`.

use serde_json::Value;

use super::{Entry, as_object, name_field, new_tool, problem, text_field};
use crate::document::{kind, pointer};
use crate::format::Format;
use crate::report::Issue;
use crate::report::Problem;

pub(crate) fn read(format: Format, value: &Value, at: &str, out: &mut Vec<Entry>) {
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let at = pointer(at, index);
                out.push(entry(format, item, at));
            }
        }
        Value::Object(object) if object.contains_key("tools") => {
            super::for_each_in(
                &object["tools"],
                &pointer(at, "tools"),
                out,
                |item, at, out| out.push(entry(format, item, at)),
            );
        }
        _ => out.push(entry(format, value, at.to_string())),
    }
}

fn entry(format: Format, value: &Value, at: String) -> Entry {
    match tool(format, value, &at) {
        Ok(tool) => Entry::ok(at, tool),
        Err(problem) => Entry::failed(at, problem),
    }
}

fn tool(format: Format, value: &Value, at: &str) -> Result<toolflow_core::Tool, Problem> {
    let object = as_object(value, at, "a tool object")?;
    let declared_type = object.get("type").and_then(Value::as_str);
    let (definition, at) = match object.get("function") {
        Some(function) => {
            if declared_type.is_some_and(|kind| kind != "function") {
                return Err(not_a_function(declared_type, at));
            }
            let at = pointer(at, "function");
            (
                as_object(function, &at, "the function definition (an object)")?,
                at,
            )
        }
        None if declared_type.is_some_and(|kind| kind != "function")
            && !object.contains_key("parameters") =>
        {
            return Err(not_a_function(declared_type, at));
        }
        None => (object, at.to_string()),
    };
    let name = name_field(definition, "name", &at)?;
    let description = text_field(definition, "description", &at)?;
    let parameters = definition.get("parameters").cloned().unwrap_or(Value::Null);
    let returns = definition
        .get("returns")
        .cloned()
        .filter(|returns| !returns.is_null());
    let source = match definition.get("source") {
        Some(Value::String(source)) if !source.is_empty() => source.clone(),
        _ => format.name().to_string(),
    };
    let mut tool = new_tool(name, description, parameters, returns, source);
    match definition.get("meta") {
        None | Some(Value::Null) => {}
        Some(Value::Object(meta)) => tool.meta = meta.clone(),
        Some(other) => {
            return Err(problem(
                Issue::WrongType,
                pointer(&at, "meta"),
                format!("`meta` must be an object, found {}", kind(other)),
            ));
        }
    }
    if let Some(strict) = definition
        .get("strict")
        .filter(|strict| strict.is_boolean())
    {
        tool.meta.insert("strict".into(), strict.clone());
    }
    Ok(tool)
}

fn not_a_function(declared_type: Option<&str>, at: &str) -> Problem {
    problem(
        Issue::NotAFunction,
        at.to_string(),
        format!(
            "a tool of type `{}` is not a function",
            declared_type.unwrap_or_default()
        ),
    )
}
