//! API-Bank APIs: each API is a Python class whose `description`, `input_parameters` and
//! `output_parameters` the released JSON dumps write as one object —
//! `{"name", "description", "input_parameters": {"p": {"type": "str", "description": …}},
//! "output_parameters": {…}}` — in a list, one per JSON Lines line, or under `{"apis": […]}`.
//!
//! Parameters use Python type names (`str`, `int`, `float`, `bool`, `list`, `dict`,
//! `list(str)`…), mapped to JSON Schema; a name with no JSON Schema type (`datetime`, `any`)
//! leaves the type out and is kept in `x-apibank-type`. API-Bank calls pass every input
//! parameter, so all are required, except one marked `"required": false` or whose
//! description starts with "optional". The output parameters become the `returns` object.

use serde_json::{Map, Value, json};

use super::{Entry, as_object, name_field, new_tool, problem, text_field};
use crate::document::{kind, pointer};
use crate::report::Issue;
use crate::report::Problem;

pub(crate) fn read(value: &Value, at: &str, out: &mut Vec<Entry>) {
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let at = pointer(at, index);
                out.push(entry(item, at));
            }
        }
        Value::Object(object) if object.contains_key("apis") => {
            super::for_each_in(
                &object["apis"],
                &pointer(at, "apis"),
                out,
                |item, at, out| out.push(entry(item, at)),
            );
        }
        _ => out.push(entry(value, at.to_string())),
    }
}

fn entry(value: &Value, at: String) -> Entry {
    match tool(value, &at) {
        Ok(tool) => Entry::ok(at, tool),
        Err(problem) => Entry::failed(at, problem),
    }
}

fn tool(value: &Value, at: &str) -> Result<toolflow_core::Tool, Problem> {
    let object = as_object(value, at, "an API-Bank API object")?;
    let name = name_field(object, "name", at)?;
    let description = text_field(object, "description", at)?;
    let (properties, required) = parameter_dict(object, "input_parameters", at, true)?;
    let parameters = json!({"type": "object", "properties": properties, "required": required});
    let (outputs, _) = parameter_dict(object, "output_parameters", at, false)?;
    let returns = (!outputs.is_empty()).then(|| json!({"type": "object", "properties": outputs}));
    Ok(new_tool(
        name,
        description,
        parameters,
        returns,
        "apibank".into(),
    ))
}

/// The properties of the parameter dict at `key`, and (for inputs) the names of the
/// required ones.
fn parameter_dict(
    object: &Map<String, Value>,
    key: &str,
    at: &str,
    inputs: bool,
) -> Result<(Map<String, Value>, Vec<Value>), Problem> {
    let at = pointer(at, key);
    let declared = match object.get(key) {
        None | Some(Value::Null) => return Ok((Map::new(), Vec::new())),
        Some(Value::Object(declared)) => declared,
        Some(other) => {
            return Err(problem(
                Issue::WrongType,
                at,
                format!(
                    "`{key}` must be an object of parameters, found {}",
                    kind(other)
                ),
            ));
        }
    };
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, parameter) in declared {
        let parameter_at = pointer(&at, name);
        let parameter = as_object(parameter, &parameter_at, "a parameter object")?;
        let description = text_field(parameter, "description", &parameter_at)?;
        let mut schema = Map::new();
        if let Some(Value::String(python_type)) = parameter.get("type") {
            schema.extend(python_type_schema(python_type));
        }
        if !description.is_empty() {
            schema.insert("description".into(), description.clone().into());
        }
        let optional = parameter.get("required") == Some(&Value::Bool(false))
            || description.to_lowercase().starts_with("optional");
        if inputs && !optional {
            required.push(Value::String(name.clone()));
        }
        properties.insert(name.clone(), Value::Object(schema));
    }
    Ok((properties, required))
}

/// `str` → `{"type": "string"}`, `list(str)` → an array of strings, an unknown name →
/// `{"x-apibank-type": name}`.
fn python_type_schema(python_type: &str) -> Map<String, Value> {
    let python_type = python_type.trim();
    let simple = |name: &str| match name.to_ascii_lowercase().as_str() {
        "str" | "string" => Some("string"),
        "int" | "integer" => Some("integer"),
        "float" | "number" => Some("number"),
        "bool" | "boolean" => Some("boolean"),
        "list" | "array" | "tuple" => Some("array"),
        "dict" | "object" => Some("object"),
        _ => None,
    };
    let mut schema = Map::new();
    if let Some(kind) = simple(python_type) {
        schema.insert("type".into(), kind.into());
    } else if let Some(item) = python_type
        .strip_prefix("list(")
        .or_else(|| python_type.strip_prefix("list["))
        .and_then(|rest| rest.strip_suffix([')', ']']))
    {
        schema.insert("type".into(), "array".into());
        schema.insert("items".into(), Value::Object(python_type_schema(item)));
    } else {
        schema.insert("x-apibank-type".into(), python_type.into());
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_types_map_to_json_schema() {
        assert_eq!(python_type_schema("str")["type"], "string");
        assert_eq!(python_type_schema("float")["type"], "number");
        assert_eq!(
            Value::Object(python_type_schema("list(str)")),
            json!({"type": "array", "items": {"type": "string"}})
        );
        assert_eq!(
            Value::Object(python_type_schema("datetime")),
            json!({"x-apibank-type": "datetime"})
        );
    }

    #[test]
    fn inputs_are_required_unless_marked_optional() {
        let value = json!({
            "name": "QueryMeeting", "description": "Query a meeting.",
            "input_parameters": {
                "token": {"type": "str", "description": "User's token."},
                "limit": {"type": "int", "description": "Optional. At most this many."},
                "day": {"type": "str", "description": "The day.", "required": false}
            },
            "output_parameters": {"meetings": {"type": "list", "description": "The meetings."}}
        });
        let tool = tool(&value, "").unwrap();
        assert_eq!(tool.required_parameters(), ["token"]);
        assert_eq!(tool.parameters["properties"]["limit"]["type"], "integer");
        assert_eq!(
            tool.returns.unwrap()["properties"]["meetings"],
            json!({"type": "array", "description": "The meetings."})
        );
        assert_eq!(tool.source, "apibank");
    }

    #[test]
    fn a_non_object_parameter_dict_is_a_problem() {
        let value = json!({"name": "X", "input_parameters": ["a"]});
        let problem = tool(&value, "/0").unwrap_err();
        assert_eq!(problem.pointer, "/0/input_parameters");
        assert_eq!(problem.issue, Issue::WrongType);
    }
}
