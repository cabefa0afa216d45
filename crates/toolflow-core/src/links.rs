//! Data flow inside a dialogue: whether a planned link of a chain subset ([`SubsetLink`]) was
//! realised (a call took a value from an earlier result of the link's producer), and which
//! calls take a value from any earlier result ("chained calls"). The synth writer records
//! the first on each [`Dialogue`]; `toolflow eval` counts both.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dialogue::{Dialogue, ToolCall, Turn};
use crate::subset::SubsetLink;

/// A planned link of the dialogue's subset, and whether the dialogue realised it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DialogueLink {
    /// The tool whose result holds the value.
    pub producer: String,
    /// Path of the return field, e.g. `results[].id`.
    pub field: String,
    /// The tool that takes it.
    pub consumer: String,
    /// The consumer's parameter.
    pub parameter: String,
    /// A call of `consumer` passed as `parameter` a value found at `field` of an earlier
    /// result of `producer` in this dialogue ([`realised`]).
    pub realised: bool,
}

/// Each of `links` with whether `turns` realise it ([`realised`]).
pub fn realise_links(links: &[SubsetLink], turns: &[Turn]) -> Vec<DialogueLink> {
    links
        .iter()
        .map(|link| DialogueLink {
            producer: link.producer.clone(),
            field: link.field.clone(),
            consumer: link.consumer.clone(),
            parameter: link.parameter.clone(),
            realised: realised(link, turns),
        })
        .collect()
}

/// Whether some call of the link's consumer passes, as the link's parameter, a value equal
/// ([`same_value`]) to one found at the link's field in a result of the link's producer
/// that came before the call. Error results do not count. When the field path cannot be
/// followed in a result (the result has another shape than the return schema said), any
/// value of that result counts.
pub fn realised(link: &SubsetLink, turns: &[Turn]) -> bool {
    let mut produced: Vec<&Value> = Vec::new();
    for turn in turns {
        match turn {
            Turn::Tool(result) if result.name == link.producer && !result.is_error => {
                match values_at(&result.content, &link.field) {
                    // An object or array at the field (an object the schema left undeclared,
                    // the whole result for an empty path) passes itself or any value in it.
                    Some(values) => {
                        for value in values {
                            produced.push(value);
                            if value.is_object() || value.is_array() {
                                produced.extend(leaves(value));
                            }
                        }
                    }
                    None => produced.extend(leaves(&result.content)),
                }
            }
            Turn::Assistant(assistant) => {
                let passed = assistant
                    .tool_calls
                    .iter()
                    .filter(|call| call.name == link.consumer)
                    .filter_map(|call| argument(call, &link.parameter));
                for value in passed {
                    if produced.iter().any(|found| same_value(found, value)) {
                        return true;
                    }
                }
            }
            _ => {}
        }
    }
    false
}

/// The call's argument `parameter`: a top-level name, or a dotted path into nested objects.
fn argument<'a>(call: &'a ToolCall, parameter: &str) -> Option<&'a Value> {
    if let Some(value) = call.arguments.get(parameter) {
        return Some(value);
    }
    parameter
        .split('.')
        .try_fold(&call.arguments, |value, name| value.get(name))
}

/// The values at `path` in `value` (`results[].id`: the `id` of every item of `results`;
/// `[].id` or `id` on a top-level array: each item's `id`), or None when the path cannot be
/// followed: a name missing from an object, or a value of the wrong kind on the way.
pub fn values_at<'a>(value: &'a Value, path: &str) -> Option<Vec<&'a Value>> {
    let mut current = vec![value];
    for segment in path.split('.').filter(|segment| !segment.is_empty()) {
        let name = segment.trim_end_matches("[]");
        let arrays = (segment.len() - name.len()) / 2;
        let mut next = Vec::new();
        for value in current {
            if name.is_empty() {
                next.push(value);
                continue;
            }
            // A field of an array's items: the path names the field, the items are implied.
            for item in spread(value) {
                next.push(item.get(name)?);
            }
        }
        for _ in 0..arrays {
            next = next
                .into_iter()
                .map(|value| {
                    value
                        .as_array()
                        .map(|items| items.iter().collect::<Vec<_>>())
                })
                .collect::<Option<Vec<Vec<&Value>>>>()?
                .into_iter()
                .flatten()
                .collect();
        }
        current = next;
    }
    let values: Vec<&Value> = current.into_iter().flat_map(spread).collect();
    Some(values)
}

/// An array's items (nested arrays flattened), or the value itself.
fn spread(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().flat_map(spread).collect(),
        other => vec![other],
    }
}

/// Every scalar (string, number, boolean) anywhere in `value`.
pub fn leaves(value: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    fn walk<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
        match value {
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            Value::Object(fields) => fields.values().for_each(|field| walk(field, out)),
            Value::Null => {}
            scalar => out.push(scalar),
        }
    }
    walk(value, &mut out);
    out
}

/// Two scalars are the same value when equal as JSON, or when one is a number and the
/// other a string holding that number (`42` and `"42"`): models often quote ids. Objects and
/// arrays are compared whole.
pub fn same_value(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::Number(number), Value::String(text))
        | (Value::String(text), Value::Number(number)) => {
            let text = text.trim();
            text.parse::<f64>()
                .ok()
                .zip(number.as_f64())
                .is_some_and(|(x, y)| x == y)
        }
        _ => false,
    }
}

/// A value too common to show data flow when two of them match: a boolean, null, an empty
/// or blank string, or an integer 0–9 (a number or a string holding one). Counting those
/// would call `{"page": 1}` after a result with `"count": 1` a chained call.
pub fn is_trivial(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) => true,
        Value::String(text) => {
            let text = text.trim();
            text.is_empty() || (text.len() == 1 && text.as_bytes()[0].is_ascii_digit())
        }
        Value::Number(number) => number
            .as_f64()
            .is_some_and(|x| x.fract() == 0.0 && (0.0..=9.0).contains(&x)),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// The number of tool calls in `dialogue` with at least one argument value (any scalar,
/// at any depth of the arguments) equal ([`same_value`]) to a value in an earlier tool
/// result of the dialogue (not an error), trivial values ([`is_trivial`]) left out.
pub fn chained_calls(dialogue: &Dialogue) -> u64 {
    let mut produced: Vec<&Value> = Vec::new();
    let mut chained = 0;
    for turn in &dialogue.turns {
        match turn {
            Turn::Tool(result) if !result.is_error => produced.extend(
                leaves(&result.content)
                    .into_iter()
                    .filter(|value| !is_trivial(value)),
            ),
            Turn::Assistant(assistant) => {
                for call in &assistant.tool_calls {
                    let takes_a_result = leaves(&call.arguments).into_iter().any(|argument| {
                        !is_trivial(argument)
                            && produced.iter().any(|found| same_value(found, argument))
                    });
                    chained += u64::from(takes_a_result);
                }
            }
            _ => {}
        }
    }
    chained
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::{AssistantTurn, SIMULATED, ToolTurn};
    use serde_json::json;

    fn call(name: &str, arguments: Value) -> Turn {
        Turn::Assistant(AssistantTurn {
            content: None,
            tool_calls: vec![ToolCall {
                id: format!("call_{name}"),
                name: name.into(),
                arguments,
                arguments_raw: None,
            }],
            generation: None,
        })
    }

    fn result(name: &str, content: Value, is_error: bool) -> Turn {
        Turn::Tool(ToolTurn {
            tool_call_id: format!("call_{name}"),
            name: name.into(),
            content,
            is_error,
            origin: SIMULATED.into(),
            generation: None,
        })
    }

    fn link() -> SubsetLink {
        SubsetLink {
            producer: "search_person".into(),
            field: "results[].id".into(),
            consumer: "person_details".into(),
            parameter: "person_id".into(),
        }
    }

    #[test]
    fn field_paths_reach_into_arrays_and_objects() {
        let value = json!({"results": [{"id": 7}, {"id": 12}], "location": {"name": "Lyon"}});
        assert_eq!(
            values_at(&value, "results[].id").unwrap(),
            vec![&json!(7), &json!(12)]
        );
        assert_eq!(
            values_at(&value, "location.name").unwrap(),
            vec![&json!("Lyon")]
        );
        // Items of a top-level array, with or without the leading `[]`.
        let list = json!([{"id": "a"}, {"id": "b"}]);
        assert_eq!(values_at(&list, "[].id").unwrap().len(), 2);
        assert_eq!(values_at(&list, "id").unwrap().len(), 2);
        assert!(values_at(&value, "results[].name").is_none());
        assert!(values_at(&value, "location[].name").is_none());
    }

    #[test]
    fn a_link_is_realised_by_a_value_from_an_earlier_producer_result() {
        let found = json!({"results": [{"id": 7021, "name": "Ana"}]});
        let turns = vec![
            call("search_person", json!({"query": "Ana"})),
            result("search_person", found.clone(), false),
            call("person_details", json!({"person_id": "7021"})),
        ];
        assert!(realised(&link(), &turns));
        // Another value, a call before the result, an error result: not realised.
        let other = vec![
            call("search_person", json!({"query": "Ana"})),
            result("search_person", found.clone(), false),
            call("person_details", json!({"person_id": 99})),
        ];
        assert!(!realised(&link(), &other));
        let before = vec![
            call("person_details", json!({"person_id": 7021})),
            result("search_person", found.clone(), false),
        ];
        assert!(!realised(&link(), &before));
        let error = vec![
            result("search_person", json!({"error": "7021"}), true),
            call("person_details", json!({"person_id": "7021"})),
        ];
        assert!(!realised(&link(), &error));
        // A result of another shape: any of its values counts.
        let reshaped = vec![
            result("search_person", json!({"person": {"key": 7021}}), false),
            call("person_details", json!({"person_id": 7021})),
        ];
        let recorded = realise_links(&[link()], &reshaped);
        assert!(recorded[0].realised);
        assert_eq!(recorded[0].parameter, "person_id");
        // An object at the field, or the whole result (an empty path): a value inside counts.
        for field in ["location", ""] {
            let inside = SubsetLink {
                producer: "search_location".into(),
                field: field.into(),
                consumer: "search_restaurants".into(),
                parameter: "locationId".into(),
            };
            let turns = vec![
                result(
                    "search_location",
                    json!({"location": {"locationId": 3_721}}),
                    false,
                ),
                call("search_restaurants", json!({"locationId": "3721"})),
            ];
            assert!(realised(&inside, &turns), "field {field:?}");
        }
    }

    #[test]
    fn chained_calls_ignore_trivial_values() {
        let dialogue = |turns: Vec<Turn>| -> Dialogue {
            serde_json::from_value(json!({
                "id": "d", "index": 0, "tools": [], "plan": null,
                "context": {"current_time": "", "location": ""},
                "turns": turns,
                "settings": {"sampler": "chain", "plan": true, "target_turns": 1, "max_turns": 1,
                             "user_style": "", "seed": 0, "models": {}, "temperature": 0.0},
                "outcome": {"status": "completed", "reason": null, "steps_done": 1},
                "usage": {"prompt_tokens": 0, "completion_tokens": 0}
            }))
            .unwrap()
        };
        let chained = dialogue(vec![
            call("search_person", json!({"query": "Ana"})),
            result(
                "search_person",
                json!({"count": 1, "ok": true, "results": [{"id": "p-7021"}]}),
                false,
            ),
            // Takes the id: chained.
            call("person_details", json!({"person_id": "p-7021", "page": 1})),
            // Shares only `1` and `true` with the result: not chained.
            call("person_films", json!({"page": 1, "adult": true})),
        ]);
        assert_eq!(chained_calls(&chained), 1);
        assert!(is_trivial(&json!("7")) && is_trivial(&json!(0)) && is_trivial(&json!(" ")));
        assert!(!is_trivial(&json!(10)) && !is_trivial(&json!("Lyon")));
    }
}
