//! Checks that an answer keeps the request's contract: JSON valid against the requested
//! schema, calls only to offered tools, arguments valid against the tool's schema (unless
//! the request keeps invalid ones), a call when one is required and none when forbidden.
//! The engine resamples answers that break it, so agents never see them.

use serde_json::Value;

use crate::request::{ChatRequest, ChatResponse, ToolChoice};

/// Why `response` does not answer `request` as it demanded (a call where none was allowed,
/// an unknown tool, arguments that break the tool's schema, text that is not the JSON asked
/// for), if it does not.
pub fn check_response(request: &ChatRequest, response: &ChatResponse) -> Result<(), String> {
    if !request.tools.is_empty() {
        match (request.tool_choice, response.tool_calls.is_empty()) {
            (ToolChoice::Required, true) => {
                return Err("no tool call, though one was required".into());
            }
            (ToolChoice::None, false) => {
                return Err("a tool call, though calls were not allowed".into());
            }
            _ => {}
        }
    }
    for call in &response.tool_calls {
        let Some(tool) = request.tools.iter().find(|tool| tool.name == call.name) else {
            let offered: Vec<&str> = request
                .tools
                .iter()
                .map(|tool| tool.name.as_str())
                .collect();
            return Err(format!(
                "call to unknown tool `{}` (offered: {})",
                call.name,
                list(&offered)
            ));
        };
        let arguments: Value = serde_json::from_str(if call.arguments.trim().is_empty() {
            "{}"
        } else {
            &call.arguments
        })
        .map_err(|error| {
            format!(
                "arguments of `{}` are not JSON ({error}): {}",
                call.name,
                excerpt(&call.arguments)
            )
        })?;
        if !request.keep_invalid_arguments {
            check_against(&tool.parameters, &arguments)
                .map_err(|error| format!("arguments of `{}` {error}", call.name))?;
        }
    }
    if let (Some(schema), true) = (&request.json_schema, response.tool_calls.is_empty()) {
        let text = response.text.as_deref().unwrap_or_default();
        let answer: Value = serde_json::from_str(text)
            .map_err(|error| format!("answer is not JSON ({error}): {}", excerpt(text)))?;
        check_against(schema, &answer).map_err(|error| format!("answer {error}"))?;
    }
    Ok(())
}

fn check_against(schema: &Value, instance: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|error| format!("have an unusable schema: {error}"))?;
    validator.validate(instance).map_err(|error| {
        let pointer = error.instance_path().to_string();
        format!(
            "break the schema at `{}`: {error}",
            if pointer.is_empty() { "/" } else { &pointer }
        )
    })
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn excerpt(text: &str) -> String {
    const LIMIT: usize = 200;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{FinishReason, Message, ToolCallRequest, ToolSpec};
    use serde_json::json;

    fn answer(text: Option<&str>, calls: Vec<ToolCallRequest>) -> ChatResponse {
        ChatResponse {
            text: text.map(str::to_owned),
            tool_calls: calls,
            finish_reason: FinishReason::Stop,
            usage: Default::default(),
            model: "m".into(),
        }
    }

    #[test]
    fn names_the_broken_part() {
        let mut request = ChatRequest::new(vec![Message::user("x")]);
        request.tools.push(ToolSpec {
            name: "weather".into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        });
        let call = |name: &str, arguments: &str| ToolCallRequest {
            id: "1".into(),
            name: name.into(),
            arguments: arguments.into(),
        };
        assert!(
            check_response(
                &request,
                &answer(None, vec![call("weather", r#"{"city":"Oslo"}"#)])
            )
            .is_ok()
        );
        let unknown =
            check_response(&request, &answer(None, vec![call("forecast", "{}")])).unwrap_err();
        assert!(
            unknown.contains("unknown tool `forecast`") && unknown.contains("weather"),
            "{unknown}"
        );
        let broken = check_response(
            &request,
            &answer(None, vec![call("weather", r#"{"city":3}"#)]),
        )
        .unwrap_err();
        assert!(broken.contains("/city"), "{broken}");
        request.keep_invalid_arguments = true;
        assert!(
            check_response(
                &request,
                &answer(None, vec![call("weather", r#"{"city":3}"#)])
            )
            .is_ok()
        );
        request.keep_invalid_arguments = false;
        assert!(
            check_response(&request, &answer(None, vec![call("weather", "{city")]))
                .unwrap_err()
                .contains("not JSON")
        );

        request.tool_choice = ToolChoice::Required;
        assert!(
            check_response(&request, &answer(Some("Sunny."), vec![]))
                .unwrap_err()
                .contains("required")
        );
        request.tool_choice = ToolChoice::None;
        assert!(
            check_response(
                &request,
                &answer(None, vec![call("weather", r#"{"city":"Oslo"}"#)])
            )
            .is_err()
        );
        request.tool_choice = ToolChoice::Auto;

        request.json_schema = Some(json!({"type": "object", "required": ["ok"]}));
        assert!(check_response(&request, &answer(Some(r#"{"ok":1}"#), vec![])).is_ok());
        assert!(
            check_response(&request, &answer(Some("{}"), vec![]))
                .unwrap_err()
                .contains("ok")
        );
    }
}
