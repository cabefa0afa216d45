//! The chat template from the GGUF metadata, rendered the way `transformers` renders it:
//! trim and lstrip blocks, Python string methods, `raise_exception`, and a `tojson` that does
//! not HTML-escape.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::json;
use toolflow_llm::{ChatRequest, Message, Role, ToolSpec};

use crate::error::LocalError;

const TEMPLATE_NAME: &str = "chat";

/// A model's Jinja chat template, compiled, turning a chat request into prompt text.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// Whether the template reads `tools`; when it does not, the tools are described in the
    /// system prompt instead.
    handles_tools: bool,
}

impl ChatTemplate {
    /// Compiles the template `source` (the GGUF `tokenizer.chat_template`).
    pub fn new(source: &str) -> Result<Self, LocalError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| LocalError::Template(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<Value, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_filter("tojson", to_json);
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| LocalError::Template(format!("tokenizer.chat_template: {e}")))?;
        Ok(ChatTemplate {
            env,
            handles_tools: source.contains("tools"),
        })
    }

    /// The prompt text for `request`, ending with the opening of the assistant's turn.
    pub fn render(&self, request: &ChatRequest) -> Result<String, LocalError> {
        let mut messages: Vec<serde_json::Value> =
            request.messages.iter().map(message_value).collect();
        let mut context = json!({ "add_generation_prompt": true });
        if !request.tools.is_empty() {
            if self.handles_tools {
                context["tools"] = request.tools.iter().map(tool_value).collect();
            } else {
                describe_tools_in_system_prompt(&mut messages, &request.tools);
            }
        }
        context["messages"] = serde_json::Value::Array(messages);
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| LocalError::Template(e.to_string()))?;
        template
            .render(Value::from(minijinja::value::Serde(&context)))
            .map_err(|e| LocalError::Template(format!("rendering the chat template: {e}")))
    }
}

/// A message as chat templates expect it. Templates without tool support concatenate
/// `content`, so an assistant's tool calls are written there as the JSON this backend asks the
/// model to produce, in the grammar's separators so that the next turn's prompt repeats the
/// generated tokens and the KV cache can be reused; the content is never null.
fn message_value(message: &Message) -> serde_json::Value {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut content = message.content.clone().unwrap_or_default();
    if !message.tool_calls.is_empty() && content.is_empty() {
        let calls: Vec<String> = message
            .tool_calls
            .iter()
            .map(|call| {
                let arguments: serde_json::Value = serde_json::from_str(&call.arguments)
                    .unwrap_or_else(|_| serde_json::Value::String(call.arguments.clone()));
                python_compact_json(&json!({ "name": call.name, "arguments": arguments }))
            })
            .collect();
        content = calls.join("\n");
    }
    let mut value = json!({ "role": role, "content": content });
    if !message.tool_calls.is_empty() {
        value["tool_calls"] = message
            .tool_calls
            .iter()
            .map(|call| {
                json!({ "id": call.id, "type": "function", "function": { "name": call.name, "arguments": call.arguments } })
            })
            .collect();
    }
    if let Some(id) = &message.tool_call_id {
        value["tool_call_id"] = json!(id);
    }
    value
}

fn tool_value(tool: &ToolSpec) -> serde_json::Value {
    json!({ "type": "function", "function": { "name": tool.name, "description": tool.description, "parameters": tool.parameters } })
}

/// The instructions used when the template knows nothing of tools. The answer format matches
/// the grammar the decoder enforces for a call.
pub fn tool_instructions(tools: &[ToolSpec]) -> String {
    let mut text = String::from(
        "You can call these tools. To call one, reply with only a JSON object \
         {\"name\": <tool name>, \"arguments\": <arguments object>}. Otherwise answer in plain text.\n\nTools:\n",
    );
    for tool in tools {
        text.push_str(&format!(
            "- {}: {} Arguments schema: {}\n",
            tool.name, tool.description, tool.parameters
        ));
    }
    text
}

fn describe_tools_in_system_prompt(messages: &mut Vec<serde_json::Value>, tools: &[ToolSpec]) {
    let instructions = tool_instructions(tools);
    match messages.first_mut() {
        Some(first) if first["role"] == "system" => {
            let existing = first["content"].as_str().unwrap_or_default();
            first["content"] = json!(format!("{existing}\n\n{instructions}"));
        }
        _ => messages.insert(0, json!({ "role": "system", "content": instructions })),
    }
}

/// `tojson` as Python's `json.dumps` writes it: no HTML escaping, `indent` honoured.
fn to_json(value: Value, indent: Option<usize>) -> Result<Value, Error> {
    let json: serde_json::Value = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let text = match indent {
        Some(width) => {
            let indent = " ".repeat(width);
            let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            let mut out = Vec::new();
            let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(&json, &mut serializer)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            String::from_utf8(out).expect("serde_json writes UTF-8")
        }
        None => python_compact_json(&json),
    };
    Ok(Value::from_safe_string(text))
}

/// Python's default separators are `", "` and `": "`; the tool grammar writes the same.
pub(crate) fn python_compact_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(python_compact_json)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        serde_json::Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    serde_json::Value::String(k.clone()),
                    python_compact_json(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolflow_llm::ToolCallRequest;

    const SMOLLM2: &str = include_str!("../tests/fixtures/smollm2_chat_template.jinja");
    const WITH_TOOLS: &str = include_str!("../tests/fixtures/tools_chat_template.jinja");

    fn request(messages: Vec<Message>, tools: Vec<ToolSpec>) -> ChatRequest {
        ChatRequest {
            messages,
            tools,
            ..ChatRequest::default()
        }
    }

    fn weather_tool() -> ToolSpec {
        ToolSpec {
            name: "get_weather".to_string(),
            description: "Current weather of a city.".to_string(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }
    }

    fn conversation() -> Vec<Message> {
        let mut call = Message::new(Role::Assistant, "");
        call.content = None;
        call.tool_calls = vec![ToolCallRequest {
            id: "call_1".to_string(),
            name: "get_weather".to_string(),
            arguments: r#"{"city": "Paris"}"#.to_string(),
        }];
        let mut result = Message::new(Role::Tool, r#"{"celsius": 21}"#);
        result.tool_call_id = Some("call_1".to_string());
        vec![
            Message::new(Role::System, "Be brief."),
            Message::new(Role::User, "Weather in Paris?"),
            call,
            result,
            Message::new(Role::Assistant, "It is 21 °C."),
            Message::new(Role::User, "Thanks <3 & bye"),
        ]
    }

    #[test]
    fn smollm2_template_renders_every_role() {
        let template = ChatTemplate::new(SMOLLM2).unwrap();
        let text = template
            .render(&request(conversation(), Vec::new()))
            .unwrap();
        assert_eq!(
            text,
            "<|im_start|>system\nBe brief.<|im_end|>\n\
             <|im_start|>user\nWeather in Paris?<|im_end|>\n\
             <|im_start|>assistant\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}<|im_end|>\n\
             <|im_start|>tool\n{\"celsius\": 21}<|im_end|>\n\
             <|im_start|>assistant\nIt is 21 °C.<|im_end|>\n\
             <|im_start|>user\nThanks <3 & bye<|im_end|>\n\
             <|im_start|>assistant\n"
        );
    }

    #[test]
    fn smollm2_template_adds_its_default_system_prompt() {
        let template = ChatTemplate::new(SMOLLM2).unwrap();
        let text = template
            .render(&request(vec![Message::new(Role::User, "Hi")], Vec::new()))
            .unwrap();
        assert!(
            text.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"),
            "{text}"
        );
        assert!(
            text.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
            "{text}"
        );
    }

    #[test]
    fn tools_go_to_the_system_prompt_when_the_template_ignores_them() {
        let template = ChatTemplate::new(SMOLLM2).unwrap();
        let text = template
            .render(&request(
                vec![Message::new(Role::User, "Hi")],
                vec![weather_tool()],
            ))
            .unwrap();
        assert!(
            text.starts_with("<|im_start|>system\nYou can call these tools."),
            "{text}"
        );
        assert!(
            text.contains("- get_weather: Current weather of a city."),
            "{text}"
        );
        let text = template
            .render(&request(conversation(), vec![weather_tool()]))
            .unwrap();
        assert!(
            text.starts_with("<|im_start|>system\nBe brief.\n\nYou can call these tools."),
            "{text}"
        );
    }

    #[test]
    fn tools_reach_a_template_that_reads_them_with_python_style_json() {
        let template = ChatTemplate::new(WITH_TOOLS).unwrap();
        let text = template
            .render(&request(conversation(), vec![weather_tool()]))
            .unwrap();
        let expected_tool = r#"{"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#;
        assert!(text.starts_with(&format!("<|im_start|>system\nBe brief.\n# Tools\n{expected_tool}\n<|im_end|>\n<|im_start|>user\n")), "{text}");
        // trim_blocks and lstrip_blocks leave no blank line behind a block tag.
        assert!(!text.contains("\n\n"), "{text}");
        assert!(text.contains("Thanks <3 & bye"), "{text}");
        assert!(text.ends_with("<|im_start|>assistant\n"), "{text}");
    }

    #[test]
    fn raise_exception_becomes_an_error() {
        let template = ChatTemplate::new("{{ raise_exception('no system role here') }}").unwrap();
        let error = template
            .render(&request(vec![Message::new(Role::User, "Hi")], Vec::new()))
            .unwrap_err();
        assert!(error.to_string().contains("no system role here"), "{error}");
    }
}
