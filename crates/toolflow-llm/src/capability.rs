//! What an OpenAI-compatible endpoint can do, found out at first use and kept for the
//! life of the backend: native tools (and `tool_choice`), and which structured-output
//! dialect it speaks. Servers say "no" in many ways (400, 422, even 500 with a validation
//! trace); an error answer whose body names the field or value we sent is a capability
//! answer, so the backend switches to the next form instead of retrying the same request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// One way of asking a server for an answer valid against a JSON Schema, in the order
/// they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaDialect {
    /// OpenAI's `response_format: {"type": "json_schema", "json_schema": {...}}`.
    JsonSchema,
    /// llama-cpp-python's `response_format: {"type": "json_object", "schema": ...}`.
    JsonObjectSchema,
    /// vLLM's `guided_json` field.
    GuidedJson,
    /// llama.cpp `llama-server`'s top-level `json_schema` field.
    LlamaCppJsonSchema,
    /// Ollama's `format` field holding the schema.
    OllamaFormat,
    /// The schema described in the system prompt, the answer checked locally.
    Prompted,
}

impl SchemaDialect {
    /// Every dialect, in the order detection tries them.
    pub const ORDER: [SchemaDialect; 6] = [
        SchemaDialect::JsonSchema,
        SchemaDialect::JsonObjectSchema,
        SchemaDialect::GuidedJson,
        SchemaDialect::LlamaCppJsonSchema,
        SchemaDialect::OllamaFormat,
        SchemaDialect::Prompted,
    ];

    /// The dialect tried after this one (`Prompted` is the last).
    pub fn next(self) -> SchemaDialect {
        let position = SchemaDialect::ORDER
            .iter()
            .position(|dialect| *dialect == self)
            .expect("every dialect is in ORDER");
        SchemaDialect::ORDER[(position + 1).min(SchemaDialect::ORDER.len() - 1)]
    }

    /// The name used in configs and in `toolflow chat --probe`.
    pub fn name(self) -> &'static str {
        match self {
            SchemaDialect::JsonSchema => "json_schema",
            SchemaDialect::JsonObjectSchema => "json_object_schema",
            SchemaDialect::GuidedJson => "guided_json",
            SchemaDialect::LlamaCppJsonSchema => "llamacpp_json_schema",
            SchemaDialect::OllamaFormat => "ollama_format",
            SchemaDialect::Prompted => "prompted",
        }
    }

    /// Puts the schema into a request body in this dialect's form.
    pub fn apply(self, body: &mut Map<String, Value>, schema: &Value) {
        let (field, value) = match self {
            SchemaDialect::JsonSchema => (
                "response_format",
                json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}),
            ),
            SchemaDialect::JsonObjectSchema => (
                "response_format",
                json!({"type": "json_object", "schema": schema}),
            ),
            SchemaDialect::GuidedJson => ("guided_json", schema.clone()),
            SchemaDialect::LlamaCppJsonSchema => ("json_schema", schema.clone()),
            SchemaDialect::OllamaFormat => ("format", schema.clone()),
            SchemaDialect::Prompted => return,
        };
        body.insert(field.into(), value);
    }

    /// Words a refusal of this dialect names: the field, or the value we put in it.
    fn markers(self) -> &'static [&'static str] {
        match self {
            SchemaDialect::JsonSchema => &["response_format", "json_schema"],
            SchemaDialect::JsonObjectSchema => &["response_format", "json_object"],
            SchemaDialect::GuidedJson => &["guided_json"],
            SchemaDialect::LlamaCppJsonSchema => &["json_schema"],
            SchemaDialect::OllamaFormat => &["format"],
            SchemaDialect::Prompted => &[],
        }
    }
}

/// A server feature a request may use, and a refusal may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// The structured-output dialect the request was sent in.
    Schema(SchemaDialect),
    /// Native `tools` (with `tool_choice` left to the server's default).
    Tools,
    /// An explicit `tool_choice` (`required`, `none` or a named function).
    ToolChoice,
}

impl Feature {
    /// What a user writes in the endpoint's table to stop sending it.
    pub fn advice(self) -> &'static str {
        match self {
            Feature::Schema(_) => "set `structured_output = \"prompted\"` for this endpoint",
            Feature::Tools | Feature::ToolChoice => {
                "set `tool_calling = \"prompted\"` for this endpoint"
            }
        }
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Feature::Schema(dialect) => write!(f, "structured output ({})", dialect.name()),
            Feature::Tools => f.write_str("native tools"),
            Feature::ToolChoice => f.write_str("tool_choice"),
        }
    }
}

/// Which of `sent` features an error answer refuses, if its body names one. Rate limits,
/// timeouts, auth and routing errors never are capability answers.
pub fn refused_feature(status: u16, body: &str, sent: &[Feature]) -> Option<Feature> {
    if !(400..600).contains(&status) || matches!(status, 401 | 403 | 404 | 408 | 429) {
        return None;
    }
    let body = body.to_ascii_lowercase();
    // tool_choice first: a refusal of `"required"` also mentions the tools it came with.
    let mut ordered: Vec<Feature> = sent.to_vec();
    ordered.sort_by_key(|feature| match feature {
        Feature::ToolChoice => 0,
        Feature::Schema(_) => 1,
        Feature::Tools => 2,
    });
    ordered.into_iter().find(|feature| {
        let markers: &[&str] = match feature {
            Feature::Schema(dialect) => dialect.markers(),
            Feature::ToolChoice => &["tool_choice", "required", "named function"],
            // vLLM without a tool parser: `"auto" tool choice requires --enable-auto-tool-choice`;
            // llama-server without --jinja: `tools param requires --jinja flag`.
            Feature::Tools => &["tools", "tool choice", "tool_choice", "tool_calls", "jinja"],
        };
        markers.iter().any(|marker| mentions(&body, marker))
    })
}

/// `word` in `text` with no letter, digit or `_` right before or after it.
fn mentions(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// What is known so far about one endpoint; `None` means not yet found out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capabilities {
    /// The structured-output dialect that was accepted.
    pub structured_output: Option<SchemaDialect>,
    /// Whether native `tools` are accepted.
    pub native_tools: Option<bool>,
    /// Whether an explicit `tool_choice` is accepted and obeyed: a `"required"` answered
    /// without a call counts as not, and such calls are forced through the schema dialect.
    pub tool_choice: Option<bool>,
    /// Whether `tool_choice` naming one function is obeyed (found by the probe only).
    pub named_tool_choice: Option<bool>,
    /// Whether the model made several calls in one answer when asked to (probe only).
    pub parallel_calls: Option<bool>,
    /// Whether calls came back as text that toolflow parsed (the server has no tool parser).
    pub calls_as_text: Option<bool>,
}

/// How one probe check came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// Accepted and obeyed.
    Supported,
    /// Refused by a capability answer (the body named what was sent).
    Refused,
    /// Accepted, but the answer shows it was not obeyed.
    Ignored,
    /// The request failed for another reason (unreachable, timeout, server error).
    Failed,
}

/// One check of `toolflow chat --probe`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeCheck {
    /// What was tried (`structured_output: json_schema`, `tool_choice: required`, …).
    pub feature: String,
    /// Whether the server took it.
    pub outcome: ProbeOutcome,
    /// What the server answered, shortened.
    pub detail: String,
}

/// Everything the probe of one endpoint found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// The endpoint's name.
    pub endpoint: String,
    /// Each check, in the order it ran.
    pub checks: Vec<ProbeCheck>,
    /// The capabilities the endpoint is used with from now on.
    pub capabilities: Capabilities,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_naming_the_field_is_a_capability_answer() {
        let llama_cpp_python = r#"{"error":{"message":"[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]","type":"internal_server_error"}}"#;
        let sent = [Feature::Schema(SchemaDialect::JsonSchema)];
        assert_eq!(
            refused_feature(500, llama_cpp_python, &sent),
            Some(Feature::Schema(SchemaDialect::JsonSchema))
        );
        // The same status without the field is an ordinary server error.
        assert_eq!(refused_feature(500, "out of memory", &sent), None);
        assert_eq!(refused_feature(429, llama_cpp_python, &sent), None);
        // A word inside another word is not a mention.
        assert_eq!(
            refused_feature(
                400,
                "bad formatting",
                &[Feature::Schema(SchemaDialect::OllamaFormat)]
            ),
            None
        );
        let vllm = r#"{"object":"error","message":"\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set","code":400}"#;
        assert_eq!(
            refused_feature(400, vllm, &[Feature::Tools]),
            Some(Feature::Tools)
        );
        assert_eq!(
            refused_feature(
                400,
                "tool_choice 'required' is not supported",
                &[Feature::Tools, Feature::ToolChoice]
            ),
            Some(Feature::ToolChoice)
        );
    }

    #[test]
    fn dialects_are_tried_in_order_and_end_prompted() {
        let mut dialect = SchemaDialect::JsonSchema;
        let mut seen = vec![dialect];
        while dialect != SchemaDialect::Prompted {
            dialect = dialect.next();
            seen.push(dialect);
        }
        assert_eq!(seen, SchemaDialect::ORDER);
        let mut body = Map::new();
        SchemaDialect::JsonObjectSchema.apply(&mut body, &json!({"type": "object"}));
        assert_eq!(
            Value::Object(body),
            json!({"response_format": {"type": "json_object", "schema": {"type": "object"}}})
        );
    }
}
