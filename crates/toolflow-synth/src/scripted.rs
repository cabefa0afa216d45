//! A scripted dialogue model for the stand-in server (feature `standin`): it answers each of
//! toolflow's agents the way a capable model would, decided only by the request it receives,
//! so tests and benchmarks get realistic, deterministic dialogues without a real model.
//!
//! Over any tool set, a dialogue it writes has: a multi-step plan with a chitchat step (3),
//! parallel calls (step 2, when two tools are offered), a clarifying question (step 4), and
//! after the user's answer a call that breaks the tool's schema, the tool's error, and the
//! corrected call.
//!
//! Its calls follow data flow the simple way a chain subset's links are named: a parameter
//! takes the value of a field of the earliest tool result in the conversation whose name it
//! ends with (`person_id` or `personId` ← `id`, `city` ← `city`), when the parameter's
//! schema accepts the value ([`linked_arguments`]); the other parameters get sample values.

use serde_json::{Map, Value, json};
use toolflow_llm::standin::{Reply, SeenRequest};

/// The script to start a [`toolflow_llm::standin::StandInServer`] with.
pub fn dialogue_script(request: &SeenRequest) -> Reply {
    let messages = request.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let first = messages
        .first()
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let schema = request.body["response_format"]["json_schema"]["schema"].clone();
    if first.starts_with("You design the outline") {
        plan(&schema)
    } else if first.starts_with("You play the user") {
        user(first)
    } else if first.starts_with("You act as the tool") {
        tool_result(first)
    } else if first.starts_with("You review a synthetic conversation") {
        // A judge that likes dialogues with more turns a little better.
        let turns = first
            .lines()
            .filter(|line| line.starts_with("User: "))
            .count() as u64;
        let score =
            |base: u64| json!({"score": (base + turns / 3).min(5), "comment": "Scripted verdict."});
        Reply::Json(
            json!({"naturalness": score(3), "coherence": score(4), "helpfulness": score(4), "accuracy": score(2)}),
        )
    } else if request.body.get("tools").is_some() {
        assistant(
            &messages,
            request.body["tools"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        )
    } else {
        Reply::Text("I am a scripted model.".into())
    }
}

fn plan(schema: &Value) -> Reply {
    let steps = schema["properties"]["steps"]["minItems"]
        .as_u64()
        .unwrap_or(4);
    let steps: Vec<Value> = (1..=steps)
        .map(|step| {
            if step == 3 {
                json!({"kind": "chitchat", "request": "The user chats about how busy the week has been."})
            } else {
                json!({"kind": "tool_call", "request": format!("The user needs help with task {step}, building on the previous answer.")})
            }
        })
        .collect();
    Reply::Json(json!({ "steps": steps }))
}

/// The user's next message: step by step, answering a question with the details asked for.
fn user(prompt: &str) -> Reply {
    let history = section(prompt, "The conversation so far:", "Rules:");
    let users = history
        .lines()
        .filter(|line| line.starts_with("User: "))
        .count();
    let last_assistant = history
        .lines()
        .rev()
        .find(|line| line.starts_with("Assistant: "));
    let asked = last_assistant.is_some_and(|line| line.trim_end().ends_with('?'));
    // Step 4 takes two user turns: the request, then the details asked for.
    let step = if users >= 4 { users } else { users + 1 };
    let message = if asked {
        "Sure: the name is Ana Silva, and economy is fine.".to_string()
    } else if step == 3 {
        "Let's chat for a second: this week has been so busy.".to_string()
    } else {
        format!("Step {step}: can you take care of this for me, please?")
    };
    let done: Vec<u64> = (1..step as u64).collect();
    Reply::Json(json!({"completed_steps": done, "current_step": step, "message": message}))
}

fn assistant(messages: &[Value], tools: Vec<Value>) -> Reply {
    let last = messages.last().cloned().unwrap_or_default();
    let functions: Vec<&Value> = tools.iter().map(|tool| &tool["function"]).collect();
    if last["role"] == "tool" {
        let failed = messages
            .iter()
            .rev()
            .take_while(|m| m["role"] == "tool")
            .any(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("\"error\""))
            });
        let calls = messages.iter().rev().find(|m| m["role"] == "assistant");
        if let (true, Some(calls)) = (failed, calls) {
            let name = calls["tool_calls"][0]["function"]["name"]
                .as_str()
                .unwrap_or_default();
            if let Some(function) = functions.iter().find(|f| f["name"] == name) {
                return Reply::ToolCalls(vec![(
                    name.to_string(),
                    linked_arguments(&function["parameters"], messages),
                )]);
            }
        }
        let results = messages.iter().filter(|m| m["role"] == "tool").count();
        return Reply::Text(format!(
            "All done: here is what I found, with {results} results so far."
        ));
    }
    let text = last["content"].as_str().unwrap_or_default();
    let call = |function: &Value| {
        (
            function["name"].as_str().unwrap_or_default().to_string(),
            linked_arguments(&function["parameters"], messages),
        )
    };
    if text.contains("chat") {
        Reply::Text("Busy weeks are tiring; I hope the weekend gives you a rest.".into())
    } else if text.starts_with("Step 4") {
        Reply::Text("Happy to. Whose name should I use, and which class?".into())
    } else if text.starts_with("Sure: the name") {
        Reply::ToolCalls(vec![(
            functions[0]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            invalid_instance(&functions[0]["parameters"]),
        )])
    } else if text.starts_with("Step 2") && functions.len() >= 2 {
        Reply::ToolCalls(vec![call(functions[0]), call(functions[1])])
    } else {
        let step: usize = text
            .trim_start_matches("Step ")
            .split(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Reply::ToolCalls(vec![call(functions[(step - 1) % functions.len().max(1)])])
    }
}

/// Arguments valid against `schema` ([`instance`]), each top-level parameter that names a
/// field of an earlier tool result in `messages` taking that field's value instead: the
/// earliest result that has such a field, its first occurrence (objects' fields in order,
/// arrays' items in order). A parameter names a field when it is the field's name, or ends
/// with it after `_` or as a capitalised word (`person_id`, `personId` ← `id`); the value is
/// taken only when the parameter's schema accepts it, so a copy never breaks a call.
pub fn linked_arguments(schema: &Value, messages: &[Value]) -> Value {
    let mut arguments = instance(schema);
    let results: Vec<Value> = messages
        .iter()
        .filter(|message| message["role"] == "tool")
        .filter_map(|message| message["content"].as_str())
        .filter_map(|content| serde_json::from_str(content).ok())
        .filter(|result: &Value| result.get("error").is_none())
        .collect();
    let Some(properties) = schema["properties"].as_object() else {
        return arguments;
    };
    for (parameter, property) in properties {
        let found = results.iter().find_map(|result| {
            first_field(result, &|field, value| {
                names_field(parameter, field) && fits(property, value)
            })
        });
        if let (Some(value), Some(object)) = (found, arguments.as_object_mut()) {
            object.insert(parameter.clone(), value.clone());
        }
    }
    arguments
}

fn names_field(parameter: &str, field: &str) -> bool {
    let mut chars = field.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let capitalised: String = first.to_uppercase().chain(chars).collect();
    parameter == field
        || parameter.ends_with(&format!("_{field}"))
        || (parameter.len() > field.len() && parameter.ends_with(&capitalised))
}

/// Whether `value` is a scalar the parameter's schema accepts (type, enum, range, …).
fn fits(property: &Value, value: &Value) -> bool {
    !value.is_object()
        && !value.is_array()
        && !value.is_null()
        && jsonschema::validator_for(property).is_ok_and(|validator| validator.is_valid(value))
}

/// The first `(field, value)` of `value`, depth first, that `wanted` accepts.
fn first_field<'a>(value: &'a Value, wanted: &dyn Fn(&str, &Value) -> bool) -> Option<&'a Value> {
    match value {
        Value::Object(fields) => fields.iter().find_map(|(name, field)| {
            if wanted(name, field) {
                Some(field)
            } else {
                first_field(field, wanted)
            }
        }),
        Value::Array(items) => items.iter().find_map(|item| first_field(item, wanted)),
        _ => None,
    }
}

fn tool_result(prompt: &str) -> Reply {
    let tool: Value = section(prompt, "The tool:", "The call:")
        .trim()
        .parse()
        .unwrap_or_default();
    let result = match tool.get("returns") {
        Some(returns) if !returns.is_null() => instance(returns),
        _ => json!({"status": "ok"}),
    };
    Reply::Json(json!({ "result": result }))
}

fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).map_or(0, |at| at + start.len());
    let to = text[from..].find(end).map_or(text.len(), |at| from + at);
    &text[from..to]
}

/// A value valid against `schema`: every property filled, plain sample values.
pub fn instance(schema: &Value) -> Value {
    if let Some(options) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        return options.first().map(instance).unwrap_or(Value::Null);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.first().cloned().unwrap_or(Value::Null);
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.first().and_then(Value::as_str).unwrap_or("string"),
        Value::String(kind) => kind.as_str(),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let properties = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            Value::Object(
                properties
                    .iter()
                    .map(|(name, property)| (name.clone(), instance(property)))
                    .collect::<Map<_, _>>(),
            )
        }
        "array" => json!([instance(&schema["items"])]),
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        "number" => json!(schema["minimum"].as_f64().unwrap_or(1.5).max(1.5)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ if schema["format"] == "date" => json!("2024-06-01"),
        _ => json!("sample"),
    }
}

/// Arguments that break `schema`: the required ones left out, or else a property of the
/// wrong type.
fn invalid_instance(schema: &Value) -> Value {
    let mut value = instance(schema);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let Some(object) = value.as_object_mut() {
        if required.is_empty() {
            if let Some((_, first)) = object.iter_mut().next() {
                *first = if first.is_string() {
                    json!(12345)
                } else {
                    json!("not-a-valid-value")
                };
            }
        } else {
            object.retain(|name, _| !required.contains(&name.as_str()));
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_takes_the_earliest_result_field_it_names_when_its_schema_accepts_it() {
        let schema = json!({"type": "object", "properties": {
            "person_id": {"type": "integer"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "query": {"type": "string"}}});
        let messages = [
            json!({"role": "user", "content": "Who is Ana?"}),
            // Error results are not data.
            json!({"role": "tool", "content": "{\"error\": \"down\", \"id\": 1}"}),
            json!({"role": "tool", "content": "{\"results\": [{\"id\": 4711, \"unit\": \"kelvin\"}]}"}),
            json!({"role": "tool", "content": "{\"id\": 9}"}),
        ];
        // `unit` names a field, but `kelvin` is not one of its values.
        assert_eq!(
            linked_arguments(&schema, &messages),
            json!({"person_id": 4711, "unit": "c", "query": "sample"})
        );
        assert!(names_field("personId", "id") && names_field("city", "city"));
        assert!(!names_field("paid", "id") && !names_field("id", ""));
    }
}
