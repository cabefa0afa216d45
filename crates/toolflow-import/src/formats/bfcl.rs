//! BFCL function docs: JSON Lines of questions, each with a `function` list (or one
//! function) whose parameter schemas use Python type names. `dict` becomes `object`,
//! `float` `number`, `tuple` `array` and `any` no type at all, recursively; the BFCL name
//! is kept in `x-bfcl-type`. The source is `bfcl:{category}` from a `BFCL_v*_{category}.json`
//! file name, and `meta` records the question the function was first seen in and its
//! language, as the shared corpus does.

use serde_json::{Map, Value};

use super::{Context, Entry, as_object, name_field, new_tool, problem, text_field};
use crate::document::{kind, pointer};
use crate::report::Issue;
use crate::report::Problem;
use crate::schema::visit_subschemas;

pub(crate) fn read(value: &Value, at: &str, context: &Context, out: &mut Vec<Entry>) {
    let category = category(context.path);
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                read_one(item, &pointer(at, index), category.as_deref(), out);
            }
        }
        _ => read_one(value, at, category.as_deref(), out),
    }
}

/// A question (with `function`) or a bare function definition.
fn read_one(value: &Value, at: &str, category: Option<&str>, out: &mut Vec<Entry>) {
    let question_id = value.get("id").and_then(Value::as_str);
    match value.get("function") {
        Some(Value::Array(functions)) => {
            for (index, function) in functions.iter().enumerate() {
                let at = pointer(&pointer(at, "function"), index);
                out.push(entry(function, at, category, question_id));
            }
        }
        Some(function @ Value::Object(_)) => out.push(entry(
            function,
            pointer(at, "function"),
            category,
            question_id,
        )),
        Some(other) => {
            let at = pointer(at, "function");
            let message = format!(
                "`function` must be a list of functions, found {}",
                kind(other)
            );
            out.push(Entry::failed(
                at.clone(),
                problem(Issue::WrongType, at, message),
            ));
        }
        None => out.push(entry(value, at.to_string(), category, None)),
    }
}

fn entry(value: &Value, at: String, category: Option<&str>, question_id: Option<&str>) -> Entry {
    match tool(value, &at, category, question_id) {
        Ok(tool) => Entry::ok(at, tool),
        Err(problem) => Entry::failed(at, problem),
    }
}

fn tool(
    value: &Value,
    at: &str,
    category: Option<&str>,
    question_id: Option<&str>,
) -> Result<toolflow_core::Tool, Problem> {
    let object = as_object(value, at, "a BFCL function object")?;
    let name = name_field(object, "name", at)?;
    let description = text_field(object, "description", at)?;
    let mut parameters = object.get("parameters").cloned().unwrap_or(Value::Null);
    visit_subschemas(&mut parameters, &mut map_bfcl_type);
    let mut returns = object
        .get("returns")
        .or_else(|| object.get("response"))
        .cloned()
        .filter(|r| r.is_object());
    if let Some(returns) = &mut returns {
        visit_subschemas(returns, &mut map_bfcl_type);
    }
    let source = category.map_or_else(|| "bfcl".to_string(), |category| format!("bfcl:{category}"));
    let mut tool = new_tool(name, description, parameters, returns, source);
    if let Some(id) = question_id {
        tool.meta.insert("first_seen_in".into(), id.into());
    }
    tool.meta
        .insert("language".into(), language(category).into());
    Ok(tool)
}

/// BFCL's Python type names to JSON Schema, keeping the original next to `type`.
fn map_bfcl_type(schema: &mut Map<String, Value>) {
    let Some(Value::String(name)) = schema.get("type") else {
        return;
    };
    let mapped = match name.as_str() {
        "dict" => Some("object"),
        "float" => Some("number"),
        "tuple" => Some("array"),
        "any" => None,
        _ => return,
    };
    let original = name.clone();
    let mut rebuilt = Map::with_capacity(schema.len() + 1);
    for (key, value) in std::mem::take(schema) {
        if key == "type" {
            if let Some(mapped) = mapped {
                rebuilt.insert("type".into(), mapped.into());
            }
            // `dict` and `float` are plain spellings; `tuple` and `any` lose meaning, so say so.
            if matches!(original.as_str(), "tuple" | "any") {
                rebuilt.insert("x-bfcl-type".into(), original.clone().into());
            }
        } else {
            rebuilt.insert(key, value);
        }
    }
    *schema = rebuilt;
}

/// `BFCL_v4_simple_python.json` → `simple_python`.
fn category(path: &std::path::Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    let rest = stem.strip_prefix("BFCL_v")?;
    let (_version, category) = rest.split_once('_')?;
    Some(category.to_string()).filter(|category| !category.is_empty())
}

fn language(category: Option<&str>) -> &'static str {
    match category {
        Some(category) if category.contains("javascript") => "javascript",
        Some(category) if category.contains("java") => "java",
        _ => "python",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_types_map_to_json_schema() {
        let mut schema = json!({"type": "dict", "properties": {
            "x": {"type": "float"},
            "pair": {"type": "tuple", "items": {"type": "float"}},
            "data": {"type": "any", "description": "d"},
            "nested": {"type": "array", "items": {"type": "dict", "properties": {"k": {"type": "string"}}}}
        }});
        visit_subschemas(&mut schema, &mut map_bfcl_type);
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["x"], json!({"type": "number"}));
        assert_eq!(
            schema["properties"]["pair"],
            json!({"type": "array", "x-bfcl-type": "tuple", "items": {"type": "number"}})
        );
        assert_eq!(
            schema["properties"]["data"],
            json!({"x-bfcl-type": "any", "description": "d"})
        );
        assert_eq!(schema["properties"]["nested"]["items"]["type"], "object");
    }

    #[test]
    fn category_and_language_come_from_the_file_name() {
        assert_eq!(
            category("x/BFCL_v4_simple_java.json".as_ref()).as_deref(),
            Some("simple_java")
        );
        assert_eq!(language(Some("simple_java")), "java");
        assert_eq!(language(Some("simple_javascript")), "javascript");
        assert_eq!(category("tools.json".as_ref()), None);
    }
}
