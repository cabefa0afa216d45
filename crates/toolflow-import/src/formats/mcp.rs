//! MCP `tools/list` results: `{"tools": [{name, title, description, inputSchema,
//! outputSchema, annotations}]}`, bare or inside a JSON-RPC response envelope.

use serde_json::Value;

use super::{Entry, as_object, name_field, new_tool, problem, text_field};
use crate::document::pointer;
use crate::report::Issue;
use crate::report::Problem;

pub(crate) fn read(value: &Value, at: &str, out: &mut Vec<Entry>) {
    let Value::Object(object) = value else {
        return super::for_each_in(value, at, out, |item, at, out| out.push(entry(item, at)));
    };
    if let Some(error) = object
        .get("error")
        .filter(|_| object.contains_key("jsonrpc"))
    {
        out.push(Entry::failed(
            at.to_string(),
            problem(
                Issue::WrongType,
                pointer(at, "error"),
                format!("a JSON-RPC error response, not a tools/list result: {error}"),
            ),
        ));
    } else if let Some(result) = object.get("result") {
        read(result, &pointer(at, "result"), out);
    } else if let Some(tools) = object.get("tools") {
        super::for_each_in(tools, &pointer(at, "tools"), out, |item, at, out| {
            out.push(entry(item, at))
        });
    } else {
        out.push(entry(value, at.to_string()));
    }
}

fn entry(value: &Value, at: String) -> Entry {
    match tool(value, &at) {
        Ok(tool) => Entry::ok(at, tool),
        Err(problem) => Entry::failed(at, problem),
    }
}

fn tool(value: &Value, at: &str) -> Result<toolflow_core::Tool, Problem> {
    let object = as_object(value, at, "an MCP tool object")?;
    let name = name_field(object, "name", at)?;
    let description = text_field(object, "description", at)?;
    let parameters = object.get("inputSchema").cloned().unwrap_or(Value::Null);
    let returns = object
        .get("outputSchema")
        .cloned()
        .filter(|schema| !schema.is_null());
    let mut tool = new_tool(name, description, parameters, returns, "mcp".into());
    for key in ["title", "annotations"] {
        if let Some(value) = object.get(key).filter(|value| !value.is_null()) {
            tool.meta.insert(key.into(), value.clone());
        }
    }
    Ok(tool)
}
