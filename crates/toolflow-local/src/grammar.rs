//! Grammars for structured requests, compiled by llguidance into a per-token mask.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::{Value, json};
use toolflow_llm::ToolSpec;

use crate::error::LocalError;

/// Compact JSON with the separators models usually write. Flexible whitespace would let a
/// small model pad an object with newlines until it runs out of tokens.
fn guidance_options() -> Value {
    json!({ "whitespace_flexible": false, "item_separator": ", ", "key_separator": ": ", "coerce_one_of": true })
}

/// The schema of one call to any of `tools`: `{"name": <tool>, "arguments": <its parameters>}`.
/// The arguments hold only declared parameters: see [`declared_only`].
pub fn tool_call_schema(tools: &[ToolSpec]) -> Value {
    let variants: Vec<Value> = tools
        .iter()
        .map(|tool| {
            json!({
                "type": "object",
                "properties": { "name": { "const": tool.name }, "arguments": declared_only(&tool.parameters) },
                "required": ["name", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    json!({ "anyOf": variants })
}

/// `parameters` closed to undeclared arguments: a schema that lists `properties` and says
/// nothing of others allows any extra key in JSON Schema, and a small model fills it with
/// invented ones (`"required": [...]` copied from the definition). A function call takes
/// only the parameters its tool declares, and the filter rejects any other.
fn declared_only(parameters: &Value) -> Value {
    let mut parameters = parameters.clone();
    if let Value::Object(map) = &mut parameters
        && map.get("properties").is_some_and(Value::is_object)
        && !map.contains_key("additionalProperties")
        && !map.contains_key("patternProperties")
    {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    parameters
}

fn with_options(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Value::Object(map) = &mut schema {
        map.entry("x-guidance").or_insert_with(guidance_options);
        schema
    } else {
        // `true`/`false` schemas: wrap so the options can be attached.
        json!({ "allOf": [schema], "x-guidance": guidance_options() })
    }
}

/// What the decoder must produce.
pub enum Constraint {
    /// One JSON value valid against the schema.
    Json(Value),
    /// One tool call as JSON, valid against this call schema.
    ToolCall(Value),
    /// Either plain text (not starting with `{`) or one tool call as JSON.
    TextOrToolCall(Value),
}

pub struct GrammarCompiler {
    factory: Arc<ParserFactory>,
}

impl GrammarCompiler {
    pub fn new(tok_env: toktrie::TokEnv) -> Result<Self, LocalError> {
        let mut factory =
            ParserFactory::new_simple(&tok_env).map_err(|e| LocalError::Grammar(e.to_string()))?;
        factory.quiet();
        Ok(GrammarCompiler {
            factory: Arc::new(factory),
        })
    }

    pub fn matcher(&self, constraint: &Constraint) -> Result<Matcher, LocalError> {
        let grammar = match constraint {
            Constraint::Json(schema) | Constraint::ToolCall(schema) => {
                TopLevelGrammar::from_json_schema(with_options(schema))
            }
            Constraint::TextOrToolCall(call_schema) => {
                let schema = serde_json::to_string(&with_options(call_schema))
                    .expect("a JSON value serialises");
                TopLevelGrammar::from_lark(format!(
                    "start: call | text\ncall: %json {schema}\ntext: /[^{{\\s][\\s\\S]*/\n"
                ))
            }
        };
        let parser = self
            .factory
            .create_parser(grammar)
            .map_err(|e| LocalError::Grammar(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(error) = matcher.get_error() {
            return Err(LocalError::Grammar(error));
        }
        Ok(matcher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(parameters: Value) -> ToolSpec {
        ToolSpec {
            name: "book_flight".into(),
            description: String::new(),
            parameters,
        }
    }

    fn arguments_schema(parameters: Value) -> Value {
        tool_call_schema(&[spec(parameters)])["anyOf"][0]["properties"]["arguments"].clone()
    }

    #[test]
    fn call_arguments_take_only_declared_parameters() {
        let open = json!({"type": "object", "properties": {"flight_id": {"type": "string"}}});
        let closed = arguments_schema(open.clone());
        assert_eq!(closed["additionalProperties"], json!(false));
        assert_eq!(closed["properties"], open["properties"]);
        let validator = jsonschema::validator_for(&closed).expect("compiles");
        assert!(validator.is_valid(&json!({"flight_id": "AF12"})));
        assert!(!validator.is_valid(&json!({"flight_id": "AF12", "required": ["flight_id"]})));
    }

    #[test]
    fn a_schema_that_says_what_else_it_takes_is_kept() {
        let extensible =
            json!({"type": "object", "properties": {}, "additionalProperties": {"type": "string"}});
        assert_eq!(arguments_schema(extensible.clone()), extensible);
        let free = json!({"type": "object"});
        assert_eq!(arguments_schema(free.clone()), free);
    }
}
