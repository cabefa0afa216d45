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
pub fn tool_call_schema(tools: &[ToolSpec]) -> Value {
    let variants: Vec<Value> = tools
        .iter()
        .map(|tool| {
            json!({
                "type": "object",
                "properties": { "name": { "const": tool.name }, "arguments": tool.parameters },
                "required": ["name", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    json!({ "anyOf": variants })
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
