//! How the dialogue so far is shown to each agent: the planner and the tool agent read tool
//! definitions as JSON, the user agent reads a plain transcript (it never sees tool calls,
//! only what the assistant told it), and the assistant reads chat messages with native
//! tool calls.

use serde_json::{Value, json};
use toolflow_core::{Plan, StepKind, SubsetLink, Tool, Turn};
use toolflow_llm::{Message, Role, ToolCallRequest, ToolSpec};

/// One line of JSON per tool: name, description, parameters and, when `with_returns`, the
/// return schema.
pub fn tools_json(tools: &[Tool], with_returns: bool) -> String {
    tools
        .iter()
        .map(|tool| tool_json(tool, with_returns).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn tool_json(tool: &Tool, with_returns: bool) -> Value {
    let mut value = json!({
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
    });
    if with_returns {
        value["returns"] = tool.returns.clone().unwrap_or(Value::Null);
    }
    value
}

/// "Name: description" per tool, for prompts whose model also gets the tools natively.
pub fn tools_summary(tools: &[Tool]) -> String {
    tools
        .iter()
        .map(|tool| format!("- {}: {}", tool.name, tool.description))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn tool_spec(tool: &Tool) -> ToolSpec {
    ToolSpec {
        name: tool.name.clone(),
        description: tool.description.clone(),
        parameters: tool.parameters.clone(),
    }
}

/// The planner's view of a subset's data-flow links, one line each (empty without links):
/// the planner may read tool and field names, which its rules forbid it to write.
pub fn links_text(links: &[SubsetLink]) -> String {
    links
        .iter()
        .map(|link| {
            // An empty field is the producer's whole result (it declares no fields).
            let returns = match link.field.as_str() {
                "" => "a result".to_string(),
                field => format!("`{field}`"),
            };
            format!(
                "- {} returns {returns}, which {} takes as `{}`",
                link.producer, link.consumer, link.parameter
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The user agent's view of the linked parameters (empty without links): each one's tool
/// and the tool whose result should fill it, so that the user leaves those values to the
/// assistant.
pub fn linked_parameters_text(links: &[SubsetLink]) -> String {
    links
        .iter()
        .map(|link| {
            format!(
                "`{}` of {} (from what {} returns)",
                link.parameter, link.consumer, link.producer
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The plan in the numbered text form the planner prompt describes.
pub fn plan_text(plan: &Plan) -> String {
    plan.steps
        .iter()
        .map(|step| {
            let kind = match step.kind {
                StepKind::ToolCall => "Tool call request",
                StepKind::Chitchat => "Chitchat",
            };
            format!("{}. {kind}: {}", step.number, step.request)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the user has seen: its own messages and the assistant's words.
pub fn user_view(turns: &[Turn]) -> String {
    let lines: Vec<String> = turns
        .iter()
        .filter_map(|turn| match turn {
            Turn::User(user) => Some(format!("User: {}", user.content)),
            Turn::Assistant(assistant) => assistant
                .content
                .as_ref()
                .map(|content| format!("Assistant: {content}")),
            Turn::Tool(_) => None,
        })
        .collect();
    if lines.is_empty() {
        "(the conversation has not started yet)".into()
    } else {
        lines.join("\n")
    }
}

/// The turns as chat messages, tool calls and results included.
pub fn chat_messages(turns: &[Turn]) -> Vec<Message> {
    turns
        .iter()
        .map(|turn| match turn {
            Turn::User(user) => Message::user(user.content.clone()),
            Turn::Assistant(assistant) => Message {
                role: Role::Assistant,
                content: assistant.content.clone(),
                tool_calls: assistant
                    .tool_calls
                    .iter()
                    .map(|call| ToolCallRequest {
                        id: call.id.clone(),
                        name: call.name.clone(),
                        arguments: call
                            .arguments_raw
                            .clone()
                            .unwrap_or_else(|| call.arguments.to_string()),
                    })
                    .collect(),
                tool_call_id: None,
            },
            Turn::Tool(tool) => Message::tool(tool.tool_call_id.clone(), tool.content.to_string()),
        })
        .collect()
}
