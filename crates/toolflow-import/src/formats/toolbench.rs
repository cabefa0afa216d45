//! ToolBench API lists: query files (a list of queries, each with an `api_list`), tool files
//! (`{tool_name, api_list}`), or bare lists of API entries. Each API entry has
//! `required_parameters` / `optional_parameters` (`{name, type, description, default}`, with
//! RapidAPI type names) and maybe a `template_response`, an example-shaped return value
//! (`{"id": "int", "items": [{"name": "str", "_list_length": 3}]}`), which becomes the
//! `returns` schema.
//!
//! Names, parameter names and `meta` follow ToolBench and the shared corpus
//! `tools_toolbench.jsonl`: `{api}_for_{tool}` standardized (last 64 characters), Python
//! keywords prefixed with `is_`, RapidAPI types kept in `x-rapidapi-type`, defaults as
//! `examples`. `meta.returns_from` says whether `returns` came from a `template_response`,
//! from one that was cut short and repaired (`truncated_string_repaired`), or is `absent`.

use serde_json::{Map, Value, json};

use super::{Entry, as_object, list_field, name_field, new_tool, problem, text_field};
use crate::document::{kind, pointer};
use crate::names::{toolbench_change_name, toolbench_function_name, toolbench_standardize};
use crate::report::Issue;
use crate::report::Problem;

pub(crate) fn read(value: &Value, at: &str, out: &mut Vec<Entry>) {
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                read_item(item, &pointer(at, index), None, out);
            }
        }
        _ => read_item(value, at, None, out),
    }
}

/// A query or tool (anything with an `api_list`), or one API entry.
fn read_item(value: &Value, at: &str, parent: Option<&Map<String, Value>>, out: &mut Vec<Entry>) {
    match value.get("api_list") {
        Some(Value::Array(apis)) => {
            let parent = value.as_object();
            for (index, api) in apis.iter().enumerate() {
                let at = pointer(&pointer(at, "api_list"), index);
                read_item(api, &at, parent, out);
            }
        }
        Some(other) => {
            let at = pointer(at, "api_list");
            let message = format!("`api_list` must be a list, found {}", kind(other));
            out.push(Entry::failed(
                at.clone(),
                problem(Issue::WrongType, at, message),
            ));
        }
        None => out.push(match tool(value, at, parent) {
            Ok(tool) => Entry::ok(at.to_string(), tool),
            Err(problem) => Entry::failed(at.to_string(), problem),
        }),
    }
}

fn tool(
    value: &Value,
    at: &str,
    parent: Option<&Map<String, Value>>,
) -> Result<toolflow_core::Tool, Problem> {
    let api = as_object(value, at, "a ToolBench API entry (an object)")?;
    // ToolBench's tool files call it `name`; query files `api_name`.
    let api_key = if api.contains_key("name") && !api.contains_key("api_name") {
        "name"
    } else {
        "api_name"
    };
    let api_name = name_field(api, api_key, at)?;
    let tool_name = match (api.get("tool_name"), parent) {
        (Some(_), _) | (None, None) => name_field(api, "tool_name", at)?,
        (None, Some(parent)) => name_field(parent, "tool_name", at)?,
    };
    let description_key = if api.contains_key("api_description") {
        "api_description"
    } else {
        "description"
    };
    let description = text_field(api, description_key, at)?;

    let mut properties = Map::new();
    let mut required = Vec::new();
    for (key, is_required) in [
        ("required_parameters", true),
        ("optional_parameters", false),
    ] {
        let list_at = pointer(at, key);
        for (index, parameter) in list_field(api, key, at)?.iter().enumerate() {
            let at = pointer(&list_at, index);
            let parameter = as_object(parameter, &at, "a parameter object")?;
            let name =
                toolbench_change_name(toolbench_standardize(&name_field(parameter, "name", &at)?));
            if is_required {
                required.push(Value::String(name.clone()));
            }
            properties.insert(name, parameter_schema(parameter));
        }
    }
    let parameters = json!({"type": "object", "properties": properties, "required": required});

    let (returns, returns_from) = match api.get("template_response") {
        None | Some(Value::Null) => (None, "absent"),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(template) => (Some(template_schema(&template)), "template_response"),
            Err(_) => match repair_truncated(text) {
                Some(template) => (
                    Some(template_schema(&template)),
                    "truncated_string_repaired",
                ),
                None => (None, "unparseable"),
            },
        },
        Some(template) => (Some(template_schema(template)), "template_response"),
    };

    let name = toolbench_function_name(&api_name, &tool_name);
    let mut tool = new_tool(name, description, parameters, returns, "toolbench".into());
    let category = api
        .get("category_name")
        .or_else(|| parent.and_then(|parent| parent.get("category_name")));
    if let Some(category) = category.filter(|category| category.is_string()) {
        tool.meta.insert("category".into(), category.clone());
    }
    tool.meta.insert("tool_name".into(), tool_name.into());
    tool.meta.insert("api_name".into(), api_name.into());
    if let Some(method) = api.get("method").filter(|method| method.is_string()) {
        tool.meta.insert("method".into(), method.clone());
    }
    tool.meta.insert("returns_from".into(), returns_from.into());
    Ok(tool)
}

/// One RapidAPI parameter as a property schema.
fn parameter_schema(parameter: &Map<String, Value>) -> Value {
    let rapidapi_type = parameter.get("type").and_then(Value::as_str);
    let json_type = match rapidapi_type.unwrap_or("") {
        "NUMBER" => "number",
        "INTEGER" => "integer",
        "BOOLEAN" => "boolean",
        "OBJECT" => "object",
        "ARRAY" => "array",
        _ => "string",
    };
    let mut schema = Map::new();
    schema.insert("type".into(), json_type.into());
    let description = parameter
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    schema.insert("description".into(), description.into());
    if rapidapi_type.is_some_and(|kind| kind.starts_with("DATE")) {
        schema.insert("format".into(), "date".into());
    }
    match parameter.get("default") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) if text.is_empty() => {}
        Some(default) => {
            schema.insert("examples".into(), Value::Array(vec![default.clone()]));
        }
    }
    if let Some(kind) = rapidapi_type {
        schema.insert("x-rapidapi-type".into(), kind.into());
    }
    Value::Object(schema)
}

/// The schema of a `template_response`: objects by their keys (`_list_length` dropped), lists
/// by their first element, and the type words ToolBench writes at the leaves.
fn template_schema(template: &Value) -> Value {
    match template {
        Value::Object(fields) => {
            let properties: Map<String, Value> = fields
                .iter()
                .filter(|(key, _)| *key != "_list_length")
                .map(|(key, value)| (key.clone(), template_schema(value)))
                .collect();
            json!({"type": "object", "properties": properties})
        }
        Value::Array(items) => match items.first() {
            None => json!({"type": "array"}),
            Some(first) => json!({"type": "array", "items": template_schema(first)}),
        },
        Value::String(word) => leaf_schema(word),
        _ => json!({}),
    }
}

/// `str`, `int`, `float`, `bool`, `NoneType`, `empty list` and `list of X with length N`.
fn leaf_schema(word: &str) -> Value {
    let json_type = match word {
        "str" => "string",
        "int" => "integer",
        "float" => "number",
        "bool" => "boolean",
        "NoneType" => "null",
        "empty list" => "array",
        _ => {
            let element = word
                .strip_prefix("list of ")
                .and_then(|rest| rest.split_once(" with length "));
            return match element {
                Some(("list", _)) => json!({"type": "array", "items": {"type": "array"}}),
                Some((element, _)) => json!({"type": "array", "items": leaf_schema(element)}),
                None => json!({}),
            };
        }
    };
    json!({"type": json_type})
}

/// A `template_response` that ToolBench stored as a string cut off mid-JSON: everything after
/// the last comma outside a string is dropped and the open brackets are closed, which keeps
/// every member that was complete. `None` when that still does not parse.
fn repair_truncated(text: &str) -> Option<Value> {
    let mut open: Vec<u8> = Vec::new();
    let mut last_comma: Option<usize> = None;
    let mut closers_at_comma: Vec<u8> = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for (index, byte) in text.bytes().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' => open.push(b'}'),
            b'[' => open.push(b']'),
            b'}' | b']' => {
                open.pop();
            }
            b',' => {
                last_comma = Some(index);
                closers_at_comma.clone_from(&open);
            }
            _ => {}
        }
    }
    let cut = last_comma?;
    let mut repaired = text[..cut].to_string();
    repaired.extend(closers_at_comma.iter().rev().map(|&closer| closer as char));
    serde_json::from_str(&repaired).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_responses_become_schemas() {
        let template = json!({"id": "int", "tags": ["list of str with length 3"], "items": [{"name": "str", "_list_length": 2}], "none": "NoneType", "empty": "empty list"});
        assert_eq!(
            template_schema(&template),
            json!({"type": "object", "properties": {
                "id": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "none": {"type": "null"},
                "empty": {"type": "array"}
            }})
        );
    }

    #[test]
    fn truncated_templates_keep_complete_members() {
        let repaired =
            repair_truncated(r#"{"a": "str", "b": {"c": "int", "d": [{"e": "str, with comma"#)
                .unwrap();
        assert_eq!(repaired, json!({"a": "str", "b": {"c": "int"}}));
        assert_eq!(repair_truncated(r#"{"a": "#), None);
    }
}
