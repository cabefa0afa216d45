//! Enrichment (paper §3.4): the chat model fills in what a tool's source left out. A tool
//! with an empty description, a parameter without a description (at any depth: nested object
//! properties and array items too), or no return schema gets one structured request asking
//! for exactly those fields; the answer fills only fields that were empty, never the
//! source's own text.
//!
//! # Telling inferred fields from the source's own
//!
//! Every field the model wrote is listed in the tool's `meta` under `inferred`, as a JSON
//! pointer (RFC 6901) into the tool record, with the id of the model that wrote it:
//!
//! ```json
//! {"inferred": {"fields": ["/description", "/parameters/properties/city/description", "/returns"],
//!               "model": "gpt-4o"}}
//! ```
//!
//! A later run that fills more fields of the same tool appends to `fields`.
//!
//! Requests are seeded from [`EnrichOptions::seed`] and the tool's name, so a rerun asks the
//! same questions and is answered from the engine's response cache.

use std::collections::HashSet;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use toolflow_core::Tool;
use toolflow_llm::{ChatRequest, Engine, EngineError, Message};

use crate::prompts::{PromptError, PromptKind, Prompts};

/// The `meta` key that lists inferred fields.
pub const INFERRED_KEY: &str = "inferred";

/// The role enrichment requests are accounted under.
pub const ROLE: &str = "enrich";

/// Draws per tool when the model's return schema does not compile; each draw is a request
/// the engine itself already retried until its answer matched the answer schema.
const SCHEMA_DRAWS: u64 = 3;

/// Longest description the answer schema allows, in characters.
const MAX_DESCRIPTION_CHARS: usize = 300;

/// Most top-level properties a proposed return schema may have.
const MAX_RETURN_PROPERTIES: usize = 12;

/// How enrichment runs; also the `[enrich]` table of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrichOptions {
    /// Propose a return schema for tools whose source has none.
    pub infer_returns: bool,
    /// Mixed with each tool's name into the request seed (and the model draw).
    pub seed: u64,
    /// The requests' sampling temperature.
    pub temperature: f32,
    /// Requests in flight at once; the engine still enforces each endpoint's own limits.
    pub max_concurrency: usize,
    /// The model to ask, by its id in the endpoints file; by default one is drawn per tool.
    pub model: Option<String>,
}

impl Default for EnrichOptions {
    fn default() -> Self {
        EnrichOptions {
            infer_returns: true,
            seed: 0,
            temperature: 0.2,
            max_concurrency: 64,
            model: None,
        }
    }
}

/// Why one tool could not be enriched; it is then kept as it was.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// The prompt did not render.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// The request failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The model's answer is not JSON.
    #[error("the answer is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// Every proposed return schema was unusable.
    #[error("the proposed return schema is unusable after {draws} draws: {reason}")]
    BadReturns {
        /// Answers asked for.
        draws: u64,
        /// What was wrong with the last one.
        reason: ReturnsError,
    },
}

/// Why a proposed return schema cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReturnsError {
    /// It is not a JSON Schema that compiles.
    #[error("{0}")]
    Invalid(String),
    /// It describes something other than an object with named fields.
    #[error("not an object schema with properties")]
    NotAnObject,
}

/// Counts of filled fields, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FieldCounts {
    /// Tool descriptions.
    pub descriptions: usize,
    /// Parameter descriptions, nested ones included.
    pub parameters: usize,
    /// Return schemas.
    pub returns: usize,
}

/// A tool whose request failed; it was kept as its source had it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnrichFailure {
    /// The tool's name.
    pub tool: String,
    /// Why its request failed.
    pub error: String,
}

/// The tools after enrichment, in input order, and what happened to them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnrichReport {
    /// Every tool, enriched or not, in input order.
    #[serde(skip)]
    pub tools: Vec<Tool>,
    /// Tools read.
    pub read: usize,
    /// Tools that got at least one field.
    pub enriched: usize,
    /// The fields filled, by kind.
    pub fields: FieldCounts,
    /// Tools that needed nothing.
    pub unchanged: usize,
    /// The tools whose request failed.
    pub failed: Vec<EnrichFailure>,
}

/// Whether `tool` lacks a description, a parameter description, or (with `infer_returns`)
/// a return schema.
pub fn needs_enrichment(tool: &Tool, infer_returns: bool) -> bool {
    !Missing::of(tool, infer_returns).is_empty()
}

/// Fills the missing fields of every tool that has some, one request per tool, running up
/// to `options.max_concurrency` requests at once. A failed request never stops the run: its
/// tool is kept unchanged and the failure lands in the report.
pub async fn enrich_tools(
    engine: &Engine,
    prompts: &Prompts,
    tools: Vec<Tool>,
    options: &EnrichOptions,
) -> EnrichReport {
    enrich_tools_with_progress(engine, prompts, tools, options, |_, _| {}).await
}

/// [`enrich_tools`], calling `progress(done, total)` as each tool is finished.
pub async fn enrich_tools_with_progress(
    engine: &Engine,
    prompts: &Prompts,
    tools: Vec<Tool>,
    options: &EnrichOptions,
    progress: impl Fn(usize, usize),
) -> EnrichReport {
    let total = tools.len();
    let mut outcomes =
        futures_util::stream::iter(tools.into_iter().enumerate())
            .map(|(index, tool)| async move {
                (index, enrich_one(engine, prompts, tool, options).await)
            })
            .buffer_unordered(options.max_concurrency.max(1));
    let mut finished: Vec<(usize, Outcome)> = Vec::with_capacity(total);
    while let Some(outcome) = outcomes.next().await {
        finished.push(outcome);
        progress(finished.len(), total);
    }
    finished.sort_by_key(|(index, _)| *index);

    let mut report = EnrichReport {
        read: total,
        ..EnrichReport::default()
    };
    for (_, outcome) in finished {
        match outcome {
            Outcome::Unchanged(tool) => {
                report.unchanged += 1;
                report.tools.push(tool);
            }
            Outcome::Enriched(tool, counts) => {
                report.enriched += 1;
                report.fields.descriptions += counts.descriptions;
                report.fields.parameters += counts.parameters;
                report.fields.returns += counts.returns;
                report.tools.push(tool);
            }
            Outcome::Failed(tool, error) => {
                tracing::warn!(tool = %tool.name, %error, "enrichment failed; the tool is kept as it was");
                report.failed.push(EnrichFailure {
                    tool: tool.name.clone(),
                    error: error.to_string(),
                });
                report.tools.push(tool);
            }
        }
    }
    report
}

enum Outcome {
    Unchanged(Tool),
    Enriched(Tool, FieldCounts),
    Failed(Tool, EnrichError),
}

async fn enrich_one(
    engine: &Engine,
    prompts: &Prompts,
    tool: Tool,
    options: &EnrichOptions,
) -> Outcome {
    let missing = Missing::of(&tool, options.infer_returns);
    if missing.is_empty() {
        return Outcome::Unchanged(tool);
    }
    let seed = tool_seed(options.seed, &tool.name);
    let model = options
        .model
        .clone()
        .unwrap_or_else(|| engine.draw_model(seed).to_owned());
    match ask(
        engine,
        prompts,
        &tool,
        &missing,
        &model,
        seed,
        options.temperature,
    )
    .await
    {
        Ok(answer) => {
            let mut tool = tool;
            let counts = apply(&mut tool, &missing, &answer, &model);
            Outcome::Enriched(tool, counts)
        }
        Err(error) => Outcome::Failed(tool, error),
    }
}

/// The model's answer, with a return schema (when one was asked for) that compiles.
async fn ask(
    engine: &Engine,
    prompts: &Prompts,
    tool: &Tool,
    missing: &Missing,
    model: &str,
    seed: u64,
    temperature: f32,
) -> Result<Value, EnrichError> {
    let prompt = prompts.render(PromptKind::Enrich, missing.prompt_variables(tool))?;
    let mut request = ChatRequest::new(vec![Message::user(prompt)]);
    request.json_schema = Some(missing.answer_schema());
    request.temperature = Some(temperature);
    for draw in 0..SCHEMA_DRAWS {
        request.seed = Some(if draw == 0 {
            seed
        } else {
            tool_seed(seed, &format!("draw {draw}"))
        });
        let answer = engine
            .complete(model, ROLE, &request)
            .await?
            .json()
            .map_err(EnrichError::NotJson)?;
        match answer
            .get("returns")
            .filter(|_| missing.returns)
            .map(check_returns_schema)
        {
            Some(Err(reason)) if draw + 1 == SCHEMA_DRAWS => {
                return Err(EnrichError::BadReturns {
                    draws: SCHEMA_DRAWS,
                    reason,
                });
            }
            Some(Err(error)) => {
                tracing::debug!(tool = %tool.name, draw, %error, "unusable return schema; drawing again");
            }
            _ => return Ok(answer),
        }
    }
    unreachable!("the last draw returns")
}

fn check_returns_schema(schema: &Value) -> Result<(), ReturnsError> {
    jsonschema::validator_for(schema).map_err(|error| ReturnsError::Invalid(error.to_string()))?;
    let is_object = schema.get("type").and_then(Value::as_str) == Some("object")
        && schema.get("properties").is_some_and(Value::is_object);
    if is_object {
        Ok(())
    } else {
        Err(ReturnsError::NotAnObject)
    }
}

/// Writes the answer into the fields that are still empty and marks each one in `meta`.
fn apply(tool: &mut Tool, missing: &Missing, answer: &Value, model: &str) -> FieldCounts {
    let mut counts = FieldCounts::default();
    let mut filled: Vec<String> = Vec::new();
    let description = non_blank(answer.get("description"))
        .filter(|_| missing.description && is_blank(&tool.description));
    if let Some(text) = description {
        tool.description = text.to_owned();
        counts.descriptions += 1;
        filled.push("/description".into());
    }
    for parameter in &missing.parameters {
        let Some(text) = non_blank(
            answer
                .get("parameters")
                .and_then(|given| given.get(&parameter.label)),
        ) else {
            continue;
        };
        let Some(property) = tool
            .parameters
            .pointer_mut(&parameter.pointer)
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if description_missing(property) {
            property.insert("description".into(), Value::String(text.to_owned()));
            counts.parameters += 1;
            filled.push(format!("/parameters{}/description", parameter.pointer));
        }
    }
    let returns = answer
        .get("returns")
        .filter(|_| missing.returns && tool.returns.is_none());
    if let Some(returns) = returns {
        tool.returns = Some(returns.clone());
        counts.returns += 1;
        filled.push("/returns".into());
    }
    if !filled.is_empty() {
        mark_inferred(&mut tool.meta, filled, model);
    }
    counts
}

fn mark_inferred(meta: &mut Map<String, Value>, filled: Vec<String>, model: &str) {
    let mut fields: Vec<Value> = meta
        .get(INFERRED_KEY)
        .and_then(|inferred| inferred.get("fields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    fields.extend(filled.into_iter().map(Value::String));
    meta.insert(
        INFERRED_KEY.into(),
        json!({"fields": fields, "model": model}),
    );
}

/// What one tool lacks.
#[derive(Debug, Default)]
struct Missing {
    description: bool,
    parameters: Vec<MissingParameter>,
    returns: bool,
}

#[derive(Debug)]
struct MissingParameter {
    /// The key the model answers under: `city`, `address.street`, `stops[].name`.
    label: String,
    /// The property's JSON pointer within `parameters`.
    pointer: String,
}

impl Missing {
    fn of(tool: &Tool, infer_returns: bool) -> Self {
        let mut parameters = Vec::new();
        collect_undocumented(&tool.parameters, "", None, &mut parameters);
        // Labels are for the model; a property name with a dot in it could collide with a
        // nested path, and then the unambiguous pointer serves as the label.
        let mut labels = HashSet::new();
        for parameter in &mut parameters {
            if !labels.insert(parameter.label.clone()) {
                parameter.label.clone_from(&parameter.pointer);
                labels.insert(parameter.label.clone());
            }
        }
        Missing {
            description: is_blank(&tool.description),
            parameters,
            returns: infer_returns && tool.returns.is_none(),
        }
    }

    fn is_empty(&self) -> bool {
        !self.description && self.parameters.is_empty() && !self.returns
    }

    fn prompt_variables(&self, tool: &Tool) -> Value {
        let mut shown = json!({"name": tool.name, "description": tool.description, "parameters": tool.parameters});
        if let Some(returns) = &tool.returns {
            shown["returns"] = returns.clone();
        }
        json!({
            "tool": serde_json::to_string_pretty(&shown).expect("JSON values serialize"),
            "missing_description": self.description,
            "missing_parameters": self.parameters.iter().map(|parameter| &parameter.label).collect::<Vec<_>>(),
            "missing_returns": self.returns,
        })
    }

    /// The answer's JSON Schema: exactly the missing fields are required. Other keys are
    /// allowed and ignored, so a model that also rewrites documented fields costs no resample.
    fn answer_schema(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        if self.description {
            properties.insert("description".into(), description_schema());
            required.push("description");
        }
        if !self.parameters.is_empty() {
            let labels: Vec<&str> = self
                .parameters
                .iter()
                .map(|parameter| parameter.label.as_str())
                .collect();
            let described: Map<String, Value> = labels
                .iter()
                .map(|label| (label.to_string(), description_schema()))
                .collect();
            properties.insert(
                "parameters".into(),
                json!({"type": "object", "properties": described, "required": labels}),
            );
            required.push("parameters");
        }
        if self.returns {
            properties.insert("returns".into(), returns_answer_schema());
            required.push("returns");
        }
        json!({"type": "object", "properties": properties, "required": required})
    }
}

/// One description. The bound keeps a small model under a grammar from writing one string
/// until its token limit cuts the answer (seen with the embedded 135M model).
fn description_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION_CHARS})
}

/// An object schema whose top-level properties are typed and described.
fn returns_answer_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "type": {"const": "object"},
            "description": description_schema(),
            "properties": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": MAX_RETURN_PROPERTIES,
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "type": {"enum": ["string", "number", "integer", "boolean", "array", "object"]},
                        "description": description_schema()
                    },
                    "required": ["type", "description"]
                }
            }
        },
        "required": ["type", "properties"]
    })
}

/// Every property under `schema` (through nested `properties` and `items`) that has no
/// description, in schema order.
fn collect_undocumented(
    schema: &Value,
    pointer: &str,
    label: Option<&str>,
    out: &mut Vec<MissingParameter>,
) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let pointer = format!("{pointer}/properties/{}", escape_pointer_token(name));
            let label = match label {
                Some(parent) => format!("{parent}.{name}"),
                None => name.clone(),
            };
            if property.as_object().is_some_and(description_missing) {
                out.push(MissingParameter {
                    label: label.clone(),
                    pointer: pointer.clone(),
                });
            }
            collect_undocumented(property, &pointer, Some(&label), out);
        }
    }
    if let Some(items) = schema.get("items").filter(|items| items.is_object()) {
        let label = format!("{}[]", label.unwrap_or_default());
        collect_undocumented(items, &format!("{pointer}/items"), Some(&label), out);
    }
}

/// No description, or a blank one. A description that is not a string is the source's own
/// (if odd) text and is left alone.
fn description_missing(property: &Map<String, Value>) -> bool {
    match property.get("description") {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => is_blank(text),
        Some(_) => false,
    }
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

fn non_blank(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The request seed of one tool: the same for the same run seed and tool name, on every
/// platform.
fn tool_seed(seed: u64, name: &str) -> u64 {
    let hash = toolflow_core::content_hash(&[
        b"toolflow-synth/enrich",
        &seed.to_le_bytes(),
        name.as_bytes(),
    ]);
    u64::from_str_radix(&hash[..16], 16).expect("a hash is hex")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(description: &str, parameters: Value, returns: Option<Value>) -> Tool {
        Tool {
            name: "t".into(),
            description: description.into(),
            parameters,
            returns,
            source: String::new(),
            meta: Map::new(),
        }
    }

    #[test]
    fn nested_properties_and_array_items_are_found_with_pointers_and_labels() {
        let parameters = json!({"type": "object", "properties": {
            "city": {"type": "string", "description": "  "},
            "address": {"type": "object", "description": "Where", "properties": {
                "street": {"type": "string"},
                "a/b": {"type": "string"}
            }},
            "stops": {"type": "array", "description": "Stops", "items": {"type": "object", "properties": {
                "name": {"type": "string", "description": null},
                "odd": {"type": "string", "description": 7}
            }}}
        }});
        let missing = Missing::of(&tool("Does it.", parameters, Some(json!({}))), true);
        let found: Vec<(&str, &str)> = missing
            .parameters
            .iter()
            .map(|p| (p.label.as_str(), p.pointer.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("city", "/properties/city"),
                ("address.street", "/properties/address/properties/street"),
                ("address.a/b", "/properties/address/properties/a~1b"),
                ("stops[].name", "/properties/stops/items/properties/name"),
            ]
        );
        assert!(!missing.description && !missing.returns);
    }

    #[test]
    fn a_documented_tool_needs_nothing_and_returns_count_only_when_asked() {
        let documented = tool(
            "Gets weather.",
            json!({"type": "object", "properties": {"city": {"type": "string", "description": "City"}}}),
            None,
        );
        assert!(!needs_enrichment(&documented, false));
        assert!(needs_enrichment(&documented, true));
    }

    #[test]
    fn colliding_labels_fall_back_to_pointers() {
        let parameters = json!({"type": "object", "properties": {
            "a": {"type": "object", "description": "A", "properties": {"b": {"type": "string"}}},
            "a.b": {"type": "string"}
        }});
        let missing = Missing::of(&tool("x", parameters, None), false);
        let labels: Vec<&str> = missing
            .parameters
            .iter()
            .map(|p| p.label.as_str())
            .collect();
        assert_eq!(labels, ["a.b", "/properties/a.b"]);
    }

    #[test]
    fn options_read_from_a_partial_table_and_reject_unknown_keys() {
        let options: EnrichOptions = serde_json::from_value(json!({"seed": 7})).unwrap();
        assert_eq!(
            options,
            EnrichOptions {
                seed: 7,
                ..EnrichOptions::default()
            }
        );
        assert!(
            options.infer_returns && options.max_concurrency == 64 && options.temperature == 0.2
        );
        let error = serde_json::from_value::<EnrichOptions>(json!({"sede": 7})).unwrap_err();
        assert!(error.to_string().contains("sede"), "{error}");
    }

    #[test]
    fn the_prompt_names_exactly_the_missing_fields() {
        let prompts = Prompts::builtin().unwrap();
        let t = tool(
            "",
            json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            None,
        );
        let missing = Missing::of(&t, false);
        let text = prompts
            .render(PromptKind::Enrich, missing.prompt_variables(&t))
            .unwrap();
        assert!(
            text.contains("\"description\": what the tool does"),
            "{text}"
        );
        assert!(text.contains("  - city"), "{text}");
        assert!(!text.contains("\"returns\""), "{text}");
        let schema = missing.answer_schema();
        assert_eq!(schema["required"], json!(["description", "parameters"]));
        assert_eq!(
            schema["properties"]["parameters"]["required"],
            json!(["city"])
        );
    }
}
