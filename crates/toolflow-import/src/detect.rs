//! Telling the formats apart by shape, from the first record of a file.

use serde_json::{Map, Value};

use crate::format::Format;

/// The format `value` is in, or `None` when it looks like none of them.
pub(crate) fn detect(value: &Value) -> Option<Format> {
    match value {
        Value::Array(items) => items
            .iter()
            .find(|item| item.is_object())
            .and_then(detect_item),
        Value::Object(_) => detect_item(value),
        _ => None,
    }
}

fn detect_item(value: &Value) -> Option<Format> {
    let object = value.as_object()?;
    if object.contains_key("openapi") || object.contains_key("swagger") {
        return Some(Format::Openapi);
    }
    if object.contains_key("jsonrpc") {
        return Some(Format::Mcp);
    }
    if object.contains_key("api_list")
        || (object.contains_key("api_name") && object.contains_key("tool_name"))
    {
        return Some(Format::Toolbench);
    }
    if object.contains_key("input_parameters") || object.contains_key("output_parameters") {
        return Some(Format::Apibank);
    }
    if object
        .get("apis")
        .and_then(first_object)
        .is_some_and(|api| {
            api.contains_key("input_parameters") || api.contains_key("output_parameters")
        })
    {
        return Some(Format::Apibank);
    }
    if let Some(tools) = object.get("tools") {
        return first_object(tools).map_or(Some(Format::Openai), |tool| Some(detect_tool(tool)));
    }
    if let Some(functions) = object
        .get("function")
        .filter(|_| !object.contains_key("type"))
    {
        return match functions {
            Value::Array(_) | Value::Object(_) => Some(Format::Bfcl),
            _ => None,
        };
    }
    if object.contains_key("name") || object.contains_key("function") {
        return Some(detect_tool(object));
    }
    None
}

/// Which kind of single tool definition `tool` is.
fn detect_tool(tool: &Map<String, Value>) -> Format {
    if tool.contains_key("inputSchema") {
        Format::Mcp
    } else if tool.contains_key("source")
        || tool.contains_key("returns")
        || tool.contains_key("meta")
    {
        Format::Toolflow
    } else if tool
        .get("parameters")
        .and_then(|parameters| parameters.get("type"))
        .is_some_and(|kind| kind == "dict")
    {
        Format::Bfcl
    } else {
        Format::Openai
    }
}

fn first_object(list: &Value) -> Option<&Map<String, Value>> {
    list.as_array()?.iter().find_map(Value::as_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_are_told_apart() {
        let cases = [
            (
                json!({"openapi": "3.1.0", "paths": {}}),
                Some(Format::Openapi),
            ),
            (json!({"swagger": "2.0"}), Some(Format::Openapi)),
            (
                json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}}),
                Some(Format::Mcp),
            ),
            (
                json!({"tools": [{"name": "a", "inputSchema": {}}]}),
                Some(Format::Mcp),
            ),
            (
                json!({"tools": [{"type": "function", "function": {"name": "a"}}]}),
                Some(Format::Openai),
            ),
            (
                json!([{"name": "a", "parameters": {}}]),
                Some(Format::Openai),
            ),
            (
                json!({"name": "a", "parameters": {}, "returns": null, "source": "x"}),
                Some(Format::Toolflow),
            ),
            (
                json!([{"query": "q", "api_list": []}]),
                Some(Format::Toolbench),
            ),
            (
                json!({"id": "simple_0", "question": [], "function": [{"name": "f"}]}),
                Some(Format::Bfcl),
            ),
            (
                json!([{"name": "f", "parameters": {"type": "dict"}}]),
                Some(Format::Bfcl),
            ),
            (
                json!([{"name": "AddAgenda", "input_parameters": {}, "output_parameters": {}}]),
                Some(Format::Apibank),
            ),
            (
                json!({"apis": [{"name": "AddAgenda", "input_parameters": {}}]}),
                Some(Format::Apibank),
            ),
            (json!({"id": "simple_0", "ground_truth": []}), None),
            (json!([1, 2]), None),
        ];
        for (value, expected) in cases {
            assert_eq!(detect(&value), expected, "{value}");
        }
    }
}
