//! The tool record: one callable function, whatever format it was imported from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One tool (function) as every later stage sees it. One JSON object per line of
/// `tools.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    /// Unique within a tool set; importers make it unique with deterministic suffixes.
    pub name: String,
    /// What the tool does; may be empty when the source had none.
    #[serde(default)]
    pub description: String,
    /// JSON Schema (draft 2020-12) of the arguments: an object schema.
    #[serde(default = "empty_object_schema")]
    pub parameters: Value,
    /// JSON Schema of the result, or null when the source does not say.
    #[serde(default)]
    pub returns: Option<Value>,
    /// Where the tool came from, e.g. `openai`, `toolbench`, `openapi`, `bfcl:simple`.
    #[serde(default)]
    pub source: String,
    /// Anything else worth keeping (origin file, HTTP method, fields inferred by a model).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
}

/// The schema of a tool that takes no argument: an object with no properties.
pub fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// One named slot of a tool's interface: a parameter or a return field.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot<'a> {
    /// The parameter's or field's name.
    pub name: &'a str,
    /// Its description, empty when the tool gives none.
    pub description: &'a str,
}

impl Slot<'_> {
    /// The paper's template for embedding a slot: `"{name}: {description}"`.
    pub fn text(&self) -> String {
        format!("{}: {}", self.name, self.description)
    }
}

impl Tool {
    /// Top-level parameters, in schema order.
    pub fn parameter_slots(&self) -> Vec<Slot<'_>> {
        schema_slots(&self.parameters)
    }

    /// Top-level properties of the return schema (of its items, for an array).
    pub fn return_slots(&self) -> Vec<Slot<'_>> {
        self.returns.as_ref().map(schema_slots).unwrap_or_default()
    }

    /// Names listed in `parameters.required`.
    pub fn required_parameters(&self) -> Vec<&str> {
        self.parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// Properties of an object schema, or of an array schema's `items`. A property whose
/// schema is not an object, or has no string description, has an empty description.
fn schema_slots(schema: &Value) -> Vec<Slot<'_>> {
    let mut schema = schema;
    if schema.get("type").and_then(Value::as_str) == Some("array")
        && let Some(items) = schema.get("items").filter(|items| items.is_object())
    {
        schema = items;
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| Slot {
            name,
            description: property
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or(""),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(parameters: Value, returns: Option<Value>) -> Tool {
        Tool {
            name: "t".into(),
            description: String::new(),
            parameters,
            returns,
            source: String::new(),
            meta: Map::new(),
        }
    }

    #[test]
    fn slots_follow_the_paper_template() {
        let t = tool(
            json!({"type":"object","properties":{"city":{"type":"string","description":"City name"},"n":{"type":"integer"}},"required":["city"]}),
            Some(
                json!({"type":"array","items":{"type":"object","properties":{"temp":{"description":"Celsius"}}}}),
            ),
        );
        let params: Vec<String> = t.parameter_slots().iter().map(Slot::text).collect();
        assert_eq!(params, ["city: City name", "n: "]);
        let rets: Vec<String> = t.return_slots().iter().map(Slot::text).collect();
        assert_eq!(rets, ["temp: Celsius"]);
        assert_eq!(t.required_parameters(), ["city"]);
    }

    #[test]
    fn missing_fields_take_defaults() {
        let t: Tool = serde_json::from_str(r#"{"name":"x"}"#).unwrap();
        assert_eq!(t.parameters, empty_object_schema());
        assert_eq!(t.returns, None);
        assert!(t.return_slots().is_empty());
        // A null `returns` and an absent one read the same.
        let t: Tool = serde_json::from_str(r#"{"name":"x","returns":null}"#).unwrap();
        assert_eq!(t.returns, None);
    }
}
