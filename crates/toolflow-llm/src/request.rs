//! The request and response values every backend speaks. A request is plain data: its
//! canonical JSON (with the model) keys the response cache.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolflow_core::Usage;

/// One chat completion request, whatever backend answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools the model may call; sent in OpenAI function format:
    /// `{"type":"function","function":{"name","description","parameters"}}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature; the server's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass; the server's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// The answer is cut at this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Strings that end the answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Sampling seed, for answers that repeat (and cache keys that differ per draw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// When set, the answer must be one JSON value valid against this schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<Value>,
    /// Whether the model may, must or must not call one of `tools`.
    #[serde(default, skip_serializing_if = "ToolChoice::is_auto")]
    pub tool_choice: ToolChoice,
    /// Hand back calls whose arguments parse but break the tool's schema instead of
    /// resampling them: a dialogue writer wants some of these, to show the tool's error
    /// and the assistant's recovery. Unknown tools and unparseable arguments still resample.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_invalid_arguments: bool,
}

/// OpenAI's `tool_choice`, without naming one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoice {
    /// The model decides between answering and calling.
    #[default]
    Auto,
    /// At least one call.
    Required,
    /// No call, even with tools offered (they stay in the prompt as context).
    None,
}

impl ToolChoice {
    /// Whether it is the default, which requests leave out.
    pub fn is_auto(&self) -> bool {
        *self == ToolChoice::Auto
    }
}

impl ChatRequest {
    /// A request of `messages` with every option at its default.
    pub fn new(messages: Vec<Message>) -> Self {
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }

    /// A rough token count of the prompt (4 bytes a token), for rate limits before the
    /// server has said how many tokens the request really took.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        let text: usize = self
            .messages
            .iter()
            .map(|message| {
                message.content.as_deref().map_or(0, str::len)
                    + message
                        .tool_calls
                        .iter()
                        .map(|call| call.name.len() + call.arguments.len())
                        .sum::<usize>()
            })
            .sum();
        let tools: usize = self
            .tools
            .iter()
            .map(|tool| {
                tool.name.len() + tool.description.len() + tool.parameters.to_string().len()
            })
            .sum();
        let schema = self
            .json_schema
            .as_ref()
            .map_or(0, |schema| schema.to_string().len());
        ((text + tools + schema) / 4 + 4 * self.messages.len()) as u64
    }
}

/// A tool as a request offers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions and context.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// One message of a conversation, in OpenAI's chat form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text; none for an assistant message that only calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallRequest>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A text message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message::new(Role::User, content)
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new(Role::Assistant, content)
    }

    /// The result of the tool call `call_id`.
    pub fn tool(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(call_id.into()),
            ..Message::new(Role::Tool, content)
        }
    }
}

/// A tool call as the model wrote it; `arguments` is the raw text, because a model's
/// arguments may not be JSON at all (the engine checks them against the tool's schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRequest {
    /// The call's id, which the tool message answering it names.
    pub id: String,
    /// The tool called.
    pub name: String,
    /// The arguments as the model wrote them.
    pub arguments: String,
}

/// A model's answer: text, tool calls, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The answer's text, if any.
    pub text: Option<String>,
    /// The calls it makes, in order.
    #[serde(default)]
    pub tool_calls: Vec<ToolCallRequest>,
    /// Why the model stopped.
    pub finish_reason: FinishReason,
    /// The tokens it took.
    pub usage: Usage,
    /// The model id that answered, as the backend reported it.
    pub model: String,
}

impl ChatResponse {
    /// The answer of a request with a JSON Schema, parsed.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.text.as_deref().unwrap_or_default())
    }
}

/// Why the model stopped. Any string a server sends is kept: unknown ones land in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum FinishReason {
    /// The model ended its answer.
    Stop,
    /// The answer hit `max_tokens`.
    Length,
    /// The model stopped to call tools.
    ToolCalls,
    /// Anything else a server says (`content_filter`, vLLM's `abort`, …).
    Other(String),
}

impl From<String> for FinishReason {
    fn from(reason: String) -> Self {
        match reason.as_str() {
            "stop" | "eos" | "end_turn" | "stop_sequence" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "tool_calls" | "function_call" | "tool_use" => FinishReason::ToolCalls,
            _ => FinishReason::Other(reason),
        }
    }
}

impl From<FinishReason> for String {
    fn from(reason: FinishReason) -> Self {
        match reason {
            FinishReason::Stop => "stop".into(),
            FinishReason::Length => "length".into(),
            FinishReason::ToolCalls => "tool_calls".into(),
            FinishReason::Other(other) => other,
        }
    }
}

/// The future a [`ChatBackend`] returns (the trait is object-safe, so no `async fn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One way of answering chat requests: an HTTP endpoint, or the embedded model.
/// Backends make one attempt; retries, limits and the cache belong to the engine.
pub trait ChatBackend: Send + Sync {
    /// The model this backend answers with, for cache keys and accounting.
    fn model(&self) -> &str;
    /// One attempt at answering `request`.
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, BackendError>>;

    /// Finds out what the server behind this backend supports (`toolflow chat --probe`);
    /// `None` for backends with nothing to find out, such as the embedded model.
    fn probe(&self) -> BoxFuture<'_, Option<crate::capability::ProbeReport>> {
        Box::pin(async { None })
    }
}

/// What kind of passing failure a [`BackendError::Transient`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransientKind {
    /// HTTP 429: the engine also narrows the endpoint's concurrency.
    RateLimited,
    /// HTTP 5xx (and 408).
    Server,
    /// The attempt took longer than the endpoint's timeout.
    Timeout,
    /// Reset or dropped connections, truncated bodies.
    Connection,
    /// No connection could be made at all (refused, no route, unknown host).
    Unreachable,
    /// A body that is not the JSON of a chat completion.
    InvalidBody,
}

/// Why one attempt failed, sorted by what the engine does next.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Worth retrying: 429, 5xx, timeouts, dropped connections, garbled bodies.
    #[error("{message}")]
    Transient {
        /// What failed.
        kind: TransientKind,
        /// The server's or the client's words.
        message: String,
        /// How long the server asked to wait, if it did.
        retry_after: Option<Duration>,
    },
    /// The model answered, but not as the request demanded (no JSON where a schema was
    /// given, an unknown tool, arguments that break the tool's schema). Sampling again may help.
    #[error("invalid model output: {0}")]
    InvalidOutput(String),
    /// Retrying the same request will fail the same way.
    #[error("{0}")]
    Permanent(String),
}

impl BackendError {
    /// A transient error without a `Retry-After`.
    pub fn transient(kind: TransientKind, message: impl Into<String>) -> Self {
        BackendError::Transient {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }
}
