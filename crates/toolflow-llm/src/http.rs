//! The OpenAI-compatible HTTP backend (`POST {base_url}/chat/completions`), with lenient
//! response types: servers omit `id`, `created` and tool call ids, invent finish reasons
//! and send content as arrays of parts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use toolflow_core::Usage;

use crate::config::{EndpointConfig, FeatureMode};
use crate::request::{
    BackendError, BoxFuture, ChatBackend, ChatRequest, ChatResponse, FinishReason, Message, Role,
    ToolCallRequest, ToolChoice, TransientKind,
};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "endpoint `{endpoint}`: environment variable `{variable}` (its api_key_env) is not set"
    )]
    MissingKey { endpoint: String, variable: String },
    #[error("endpoint `{endpoint}`: header `{header}` is not a valid HTTP header")]
    BadHeader { endpoint: String, header: String },
    #[error("HTTP client: {0}")]
    Client(String),
}

/// One HTTP client for every endpoint, so that connections are pooled per host.
pub fn http_client() -> Result<reqwest::Client, SetupError> {
    // reqwest is built without a default TLS crypto provider (the aws-lc one is a long C
    // build); ring is installed once per process. A second install is harmlessly refused.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|error| SetupError::Client(error.to_string()))
}

pub struct OpenAiBackend {
    endpoint: String,
    url: String,
    model: String,
    client: reqwest::Client,
    /// Extra headers and the bearer token, the latter marked sensitive so that it is
    /// never printed by reqwest or hyper.
    headers: HeaderMap,
    /// Kept only to scrub it from error bodies: some servers echo the key they refused.
    api_key: Option<String>,
    extra_body: Map<String, Value>,
    structured_output: FeatureMode,
    tool_calling: FeatureMode,
    /// Set for good when the server rejected the native form with 400.
    native_schema_rejected: AtomicBool,
    native_tools_rejected: AtomicBool,
}

impl OpenAiBackend {
    pub fn new(config: &EndpointConfig, client: reqwest::Client) -> Result<Self, SetupError> {
        let endpoint = config.name();
        let mut headers = HeaderMap::new();
        let mut api_key = None;
        for (name, value) in &config.headers {
            let bad = || SetupError::BadHeader {
                endpoint: endpoint.clone(),
                header: name.clone(),
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let mut value = HeaderValue::from_str(value).map_err(|_| bad())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(variable) = &config.api_key_env {
            let key = std::env::var(variable).map_err(|_| SetupError::MissingKey {
                endpoint: endpoint.clone(),
                variable: variable.clone(),
            })?;
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                SetupError::BadHeader {
                    endpoint: endpoint.clone(),
                    header: format!("${variable}"),
                }
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
            api_key = Some(key).filter(|key| !key.is_empty());
        }
        let base = config.base_url.trim_end_matches('/');
        let url = if base.ends_with("/chat/completions") {
            base.to_owned()
        } else {
            format!("{base}/chat/completions")
        };
        Ok(OpenAiBackend {
            endpoint,
            url,
            model: config.model.clone(),
            client,
            headers,
            api_key,
            extra_body: config.extra_body.clone(),
            structured_output: config.structured_output,
            tool_calling: config.tool_calling,
            native_schema_rejected: AtomicBool::new(false),
            native_tools_rejected: AtomicBool::new(false),
        })
    }

    fn native_schema(&self) -> bool {
        match self.structured_output {
            FeatureMode::Native => true,
            FeatureMode::Prompted => false,
            FeatureMode::Auto => !self.native_schema_rejected.load(Ordering::Relaxed),
        }
    }

    fn native_tools(&self) -> bool {
        match self.tool_calling {
            FeatureMode::Native => true,
            FeatureMode::Prompted => false,
            FeatureMode::Auto => !self.native_tools_rejected.load(Ordering::Relaxed),
        }
    }

    async fn attempt(&self, request: &ChatRequest) -> Result<ChatResponse, BackendError> {
        let native_schema = self.native_schema();
        let native_tools = self.native_tools();
        match self.send(request, native_schema, native_tools).await {
            Err(Failure::Rejected(rejected)) => {
                // A 400 for a request that used a native feature the endpoint may lack:
                // try once without them, and keep the prompted form if that works.
                let uses_schema = native_schema
                    && request.json_schema.is_some()
                    && self.structured_output == FeatureMode::Auto;
                let uses_tools = native_tools
                    && !request.tools.is_empty()
                    && self.tool_calling == FeatureMode::Auto;
                if rejected.status == 400 && (uses_schema || uses_tools) {
                    let answer = self
                        .send(
                            request,
                            native_schema && !uses_schema,
                            native_tools && !uses_tools,
                        )
                        .await;
                    if answer.is_ok() {
                        tracing::warn!(endpoint = %self.endpoint, schema = uses_schema, tools = uses_tools,
                            "server rejected native structured output or tools; using the prompted form from now on");
                        if uses_schema {
                            self.native_schema_rejected.store(true, Ordering::Relaxed);
                        }
                        if uses_tools {
                            self.native_tools_rejected.store(true, Ordering::Relaxed);
                        }
                    }
                    return answer
                        .map_err(|failure| self.redact(failure.into_error(&self.endpoint)));
                }
                Err(self.redact(rejected.into_error(&self.endpoint)))
            }
            other => other.map_err(|error| self.redact(error.into_error(&self.endpoint))),
        }
    }

    fn redact(&self, error: BackendError) -> BackendError {
        let Some(key) = &self.api_key else {
            return error;
        };
        let scrub = |text: String| text.replace(key.as_str(), "[redacted]");
        match error {
            BackendError::Transient {
                kind,
                message,
                retry_after,
            } => BackendError::Transient {
                kind,
                message: scrub(message),
                retry_after,
            },
            BackendError::InvalidOutput(message) => BackendError::InvalidOutput(scrub(message)),
            BackendError::Permanent(message) => BackendError::Permanent(scrub(message)),
        }
    }

    async fn send(
        &self,
        request: &ChatRequest,
        native_schema: bool,
        native_tools: bool,
    ) -> Result<ChatResponse, Failure> {
        let body = self.body(request, native_schema, native_tools);
        let response = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).expect("a request body serialises"))
            .send()
            .await
            .map_err(Failure::Http)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| parse_retry_after(value.to_str().ok()?));
        let bytes = response.bytes().await.map_err(Failure::Http)?;
        if status == 429 {
            return Err(Failure::Status {
                kind: TransientKind::RateLimited,
                status,
                retry_after,
                body: excerpt(&bytes),
            });
        }
        if status == 408 || status >= 500 {
            return Err(Failure::Status {
                kind: TransientKind::Server,
                status,
                retry_after,
                body: excerpt(&bytes),
            });
        }
        if !(200..300).contains(&status) {
            return Err(Failure::Rejected(Rejected {
                status,
                body: excerpt(&bytes),
            }));
        }
        let wire: WireResponse = serde_json::from_slice(&bytes).map_err(|error| {
            Failure::Body(format!(
                "the body is not a chat completion ({error}): {}",
                excerpt(&bytes)
            ))
        })?;
        self.read(request, wire, native_schema, native_tools)
            .map_err(Failure::Body)
    }

    fn body(&self, request: &ChatRequest, native_schema: bool, native_tools: bool) -> Value {
        let prompted_tools = !native_tools && !request.tools.is_empty();
        let prompted_schema = !native_schema && request.json_schema.is_some();
        let mut messages: Vec<Value> = request
            .messages
            .iter()
            .map(|message| wire_message(message, prompted_tools))
            .collect();
        let mut instructions = Vec::new();
        if prompted_tools {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|tool| json!({"name": tool.name, "description": tool.description, "parameters": tool.parameters}))
                .collect();
            instructions.push(format!(
                "You can call these tools:\n{}\nTo call tools, answer with only this JSON object and nothing else: \
                 {{\"tool_calls\": [{{\"name\": \"<tool name>\", \"arguments\": {{...}}}}]}}. \
                 {}",
                Value::Array(tools),
                match request.tool_choice {
                    ToolChoice::Auto => "Otherwise answer in plain text.",
                    ToolChoice::Required => "You must call at least one tool.",
                    ToolChoice::None => "Do not call a tool now: answer in plain text.",
                }
            ));
        }
        if prompted_schema {
            instructions.push(format!(
                "Answer with only one JSON value, without prose or code fences, valid against this JSON Schema:\n{}",
                request.json_schema.as_ref().expect("checked above")
            ));
        }
        if !instructions.is_empty() {
            let instructions = instructions.join("\n\n");
            match messages.first_mut() {
                Some(first) if first["role"] == "system" => {
                    let content = first["content"].as_str().unwrap_or_default();
                    first["content"] = Value::String(format!("{content}\n\n{instructions}"));
                }
                _ => messages.insert(0, json!({"role": "system", "content": instructions})),
            }
        }

        let mut body = Map::new();
        body.insert("model".into(), Value::String(self.model.clone()));
        body.insert("messages".into(), Value::Array(messages));
        if native_tools && !request.tools.is_empty() {
            let tools = request
                .tools
                .iter()
                .map(|tool| {
                    json!({"type": "function", "function": {
                        "name": tool.name, "description": tool.description, "parameters": tool.parameters}})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
            if !request.tool_choice.is_auto() {
                body.insert("tool_choice".into(), json!(request.tool_choice));
            }
        }
        if let (true, Some(schema)) = (native_schema, &request.json_schema) {
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}),
            );
        }
        let mut set = |name: &str, value: Value| {
            body.insert(name.into(), value);
        };
        if let Some(temperature) = request.temperature {
            set("temperature", json!(temperature));
        }
        if let Some(top_p) = request.top_p {
            set("top_p", json!(top_p));
        }
        if let Some(max_tokens) = request.max_tokens {
            set("max_tokens", json!(max_tokens));
        }
        if !request.stop.is_empty() {
            set("stop", json!(request.stop));
        }
        if let Some(seed) = request.seed {
            set("seed", json!(seed));
        }
        for (name, value) in &self.extra_body {
            body.insert(name.clone(), value.clone());
        }
        Value::Object(body)
    }

    fn read(
        &self,
        request: &ChatRequest,
        wire: WireResponse,
        native_schema: bool,
        native_tools: bool,
    ) -> Result<ChatResponse, String> {
        let Some(choice) = wire.choices.into_iter().next() else {
            let error = wire
                .error
                .map(|error| format!(": {error}"))
                .unwrap_or_default();
            return Err(format!("the completion has no choices{error}"));
        };
        let message = choice.message.unwrap_or_default();
        let mut text = message.content.map(WireContent::into_text);
        let mut tool_calls: Vec<ToolCallRequest> = message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, call)| call.into_call(index))
            .collect();
        let mut finish_reason = choice
            .finish_reason
            .map(FinishReason::from)
            .unwrap_or(FinishReason::Stop);

        let prompted_calls = if !native_tools && !request.tools.is_empty() {
            text.as_deref().and_then(prompted_tool_calls)
        } else {
            None
        };
        if let Some(calls) = prompted_calls {
            tool_calls = calls;
            text = None;
            finish_reason = FinishReason::ToolCalls;
        }
        if !native_schema && request.json_schema.is_some() && tool_calls.is_empty() {
            // Normalised to compact JSON, the shape a native answer has; text that holds
            // no JSON is left as it is for the engine's check to reject.
            if let Some(value) = text.as_deref().and_then(extract_json) {
                text = Some(value.to_string());
            }
        }

        let usage = match wire.usage {
            Some(WireUsage {
                prompt_tokens: Some(prompt),
                completion_tokens: Some(completion),
            }) => Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
            },
            // Some servers omit usage; an estimate keeps the accounting and TPM limits honest.
            _ => Usage {
                prompt_tokens: request.estimated_prompt_tokens(),
                completion_tokens: (text.as_deref().map_or(0, str::len)
                    + tool_calls
                        .iter()
                        .map(|call| call.name.len() + call.arguments.len())
                        .sum::<usize>()) as u64
                    / 4,
            },
        };
        Ok(ChatResponse {
            text,
            tool_calls,
            finish_reason,
            usage,
            model: wire.model.unwrap_or_else(|| self.model.clone()),
        })
    }
}

impl ChatBackend for OpenAiBackend {
    fn model(&self) -> &str {
        &self.model
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, BackendError>> {
        Box::pin(self.attempt(request))
    }
}

fn wire_message(message: &Message, prompted_tools: bool) -> Value {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    if prompted_tools {
        // Servers without tool support may also refuse `tool` messages and `tool_calls`.
        if message.role == Role::Tool {
            let id = message.tool_call_id.as_deref().unwrap_or("?");
            let content = message.content.as_deref().unwrap_or_default();
            return json!({"role": "user", "content": format!("Result of tool call {id}: {content}")});
        }
        if !message.tool_calls.is_empty() {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| json!({"name": call.name, "arguments": parse_or_string(&call.arguments)}))
                .collect();
            return json!({"role": role, "content": json!({"tool_calls": calls}).to_string()});
        }
    }
    let mut wire = Map::new();
    wire.insert("role".into(), Value::String(role.into()));
    wire.insert(
        "content".into(),
        message.content.clone().map_or(Value::Null, Value::String),
    );
    if !message.tool_calls.is_empty() {
        let calls = message
            .tool_calls
            .iter()
            .map(|call| json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}))
            .collect();
        wire.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(id) = &message.tool_call_id {
        wire.insert("tool_call_id".into(), Value::String(id.clone()));
    }
    Value::Object(wire)
}

fn parse_or_string(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// `{"tool_calls": [{"name", "arguments"}]}` written as text by a model without native tools.
fn prompted_tool_calls(text: &str) -> Option<Vec<ToolCallRequest>> {
    let value = extract_json(text)?;
    let calls = value.get("tool_calls")?.as_array()?;
    calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            let name = call.get("name")?.as_str()?.to_owned();
            let arguments = match call.get("arguments") {
                Some(Value::String(text)) => text.clone(),
                Some(value) => value.to_string(),
                None => "{}".into(),
            };
            Some(ToolCallRequest {
                id: call_id(index, &name, &arguments),
                name,
                arguments,
            })
        })
        .collect()
}

/// The first JSON object or array in a model's text, inside code fences or prose.
pub fn extract_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        return Some(value);
    }
    for (start, _) in trimmed.match_indices(['{', '[']) {
        let mut values = serde_json::Deserializer::from_str(&trimmed[start..]).into_iter::<Value>();
        if let Some(Ok(value)) = values.next() {
            return Some(value);
        }
    }
    None
}

/// Ids for calls that came without one: stable, so that cached answers replay alike.
fn call_id(index: usize, name: &str, arguments: &str) -> String {
    let hash =
        toolflow_core::content_hash(&[&index.to_le_bytes(), name.as_bytes(), arguments.as_bytes()]);
    format!("call_{}", &hash[..16])
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn excerpt(bytes: &[u8]) -> String {
    const LIMIT: usize = 300;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(LIMIT)]);
    if bytes.len() > LIMIT {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}

struct Rejected {
    status: u16,
    body: String,
}

impl Rejected {
    fn into_error(self, endpoint: &str) -> BackendError {
        BackendError::Permanent(format!("{endpoint}: HTTP {}: {}", self.status, self.body))
    }
}

enum Failure {
    Http(reqwest::Error),
    Status {
        kind: TransientKind,
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    Rejected(Rejected),
    Body(String),
}

impl Failure {
    fn into_error(self, endpoint: &str) -> BackendError {
        match self {
            Failure::Http(error) => {
                let kind = if error.is_timeout() {
                    TransientKind::Timeout
                } else {
                    TransientKind::Connection
                };
                // The error's source chain says what broke (refused, reset, incomplete body);
                // reqwest never puts headers, and so never the key, into it.
                let mut message = format!("{endpoint}: {error}");
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                BackendError::transient(kind, message)
            }
            Failure::Status {
                kind,
                status,
                retry_after,
                body,
            } => BackendError::Transient {
                kind,
                message: format!("{endpoint}: HTTP {status}: {body}"),
                retry_after,
            },
            Failure::Rejected(rejected) => rejected.into_error(endpoint),
            Failure::Body(message) => BackendError::transient(
                TransientKind::InvalidBody,
                format!("{endpoint}: {message}"),
            ),
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireMessage {
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

impl WireContent {
    fn into_text(self) -> String {
        match self {
            WireContent::Text(text) => text,
            WireContent::Parts(parts) => parts.into_iter().filter_map(|part| part.text).collect(),
        }
    }
}

#[derive(Deserialize)]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    /// A string by the spec; some servers send the object itself.
    #[serde(default)]
    arguments: Option<Value>,
}

impl WireToolCall {
    fn into_call(self, index: usize) -> ToolCallRequest {
        let arguments = match self.function.arguments {
            Some(Value::String(text)) => text,
            None | Some(Value::Null) => "{}".into(),
            Some(value) => value.to_string(),
        };
        let id = self
            .id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| call_id(index, &self.function.name, &arguments));
        ToolCallRequest {
            id,
            name: self.function.name,
            arguments,
        }
    }
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        let later = SystemTime::now() + Duration::from_secs(30);
        let delay = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            delay > Duration::from_secs(28) && delay <= Duration::from_secs(30),
            "{delay:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn finds_json_in_prose_and_fences() {
        assert_eq!(
            extract_json("```json\n{\"a\": 1}\n```"),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            extract_json("Sure! {\"a\": [1, 2]} Hope it helps."),
            Some(json!({"a": [1, 2]}))
        );
        assert_eq!(extract_json("no json here"), None);
    }

    #[test]
    fn reads_lenient_completions() {
        let backend = OpenAiBackend::new(
            &EndpointConfig::new("http://127.0.0.1:1/v1", "m"),
            http_client().unwrap(),
        )
        .unwrap();
        let request = ChatRequest::new(vec![Message::user("hi")]);
        // No id, no created, content as parts, a tool call without id and with object arguments,
        // an unknown finish reason, no usage.
        let wire: WireResponse = serde_json::from_value(json!({
            "choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
                "finish_reason": "abort"}]
        }))
        .unwrap();
        let response = backend.read(&request, wire, true, true).unwrap();
        assert_eq!(response.text.as_deref(), Some("ab"));
        assert_eq!(response.tool_calls[0].arguments, r#"{"x":1}"#);
        assert!(response.tool_calls[0].id.starts_with("call_"));
        assert_eq!(response.finish_reason, FinishReason::Other("abort".into()));
        assert_eq!(response.model, "m");
        assert!(response.usage.prompt_tokens > 0);
    }
}
