//! The OpenAI-compatible HTTP backend (`POST {base_url}/chat/completions`), with lenient
//! response types: servers omit `id`, `created` and tool call ids, invent finish reasons
//! and send content as arrays of parts.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use toolflow_core::Usage;

use crate::capability::{
    Capabilities, Feature, ProbeCheck, ProbeOutcome, ProbeReport, SchemaDialect, refused_feature,
};
use crate::config::{EndpointConfig, FeatureMode};
use crate::request::{
    BackendError, BoxFuture, ChatBackend, ChatRequest, ChatResponse, FinishReason, Message, Role,
    ToolCallRequest, ToolChoice, ToolSpec, TransientKind,
};
use crate::textcalls::{call_id, parse_text_calls};
use crate::validate::check_response;

/// Why an HTTP endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The variable that should hold the API key is not set.
    #[error(
        "endpoint `{endpoint}`: environment variable `{variable}` (its api_key_env) is not set"
    )]
    MissingKey {
        /// The endpoint.
        endpoint: String,
        /// The variable.
        variable: String,
    },
    /// A configured header name or value is not valid HTTP.
    #[error("endpoint `{endpoint}`: header `{header}` is not a valid HTTP header")]
    BadHeader {
        /// The endpoint.
        endpoint: String,
        /// The header's name.
        header: String,
    },
    /// The HTTP client could not be built.
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

/// An OpenAI-compatible `/chat/completions` endpoint, with the features it turned out to
/// support.
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
    /// What the server accepted so far; found out at first use, kept for good.
    capabilities: Mutex<Capabilities>,
    /// Held by the request that finds out a capability, so that concurrent first requests
    /// wait for its answer instead of all walking the same refusals.
    detecting: tokio::sync::Mutex<()>,
}

/// How one request is put on the wire: which forms of the features it uses.
#[derive(Debug, Clone)]
struct Plan {
    dialect: SchemaDialect,
    native_tools: bool,
    /// Whether an explicit `tool_choice` is sent (else it is asked for in the prompt).
    tool_choice: bool,
    /// A `tool_choice` naming this function (the probe's check).
    named: Option<String>,
}

impl OpenAiBackend {
    /// The backend of one `[[endpoint]]`, sending through the shared `client`.
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
            capabilities: Mutex::new(Capabilities::default()),
            detecting: tokio::sync::Mutex::new(()),
        })
    }

    /// What is known about the server so far.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities.lock().expect("capabilities").clone()
    }

    /// The forms the known capabilities (or the config) choose for `request`.
    fn plan(&self) -> Plan {
        let known = self.capabilities();
        let dialect = match self.structured_output {
            FeatureMode::Native => SchemaDialect::JsonSchema,
            FeatureMode::Prompted => SchemaDialect::Prompted,
            FeatureMode::Auto => known.structured_output.unwrap_or(SchemaDialect::JsonSchema),
        };
        let (native_tools, tool_choice) = match self.tool_calling {
            FeatureMode::Native => (true, true),
            FeatureMode::Prompted => (false, false),
            FeatureMode::Auto => (
                known.native_tools.unwrap_or(true),
                known.tool_choice.unwrap_or(true),
            ),
        };
        Plan {
            dialect,
            native_tools,
            tool_choice,
            named: None,
        }
    }

    /// Whether `request` uses a feature whose support is not known yet.
    fn needs_detection(&self, request: &ChatRequest) -> bool {
        let known = self.capabilities();
        let schema = request.json_schema.is_some()
            && self.structured_output == FeatureMode::Auto
            && known.structured_output.is_none();
        let tools = !request.tools.is_empty()
            && self.tool_calling == FeatureMode::Auto
            && (known.native_tools.is_none()
                || (!request.tool_choice.is_auto() && known.tool_choice.is_none()));
        schema || tools
    }

    /// The features `plan` puts on the wire for `request`, which a refusal may name.
    fn sent_features(request: &ChatRequest, plan: &Plan) -> Vec<Feature> {
        let mut sent = Vec::new();
        if request.json_schema.is_some() && plan.dialect != SchemaDialect::Prompted {
            sent.push(Feature::Schema(plan.dialect));
        }
        if plan.native_tools && !request.tools.is_empty() {
            sent.push(Feature::Tools);
            if plan.named.is_some() || (plan.tool_choice && !request.tool_choice.is_auto()) {
                sent.push(Feature::ToolChoice);
            }
        }
        sent
    }

    /// The plan to try after a refusal of `feature`, where the config lets it change.
    fn fall_back(&self, plan: &Plan, feature: Feature) -> Option<Plan> {
        let mut next = plan.clone();
        match feature {
            Feature::Schema(dialect) if self.structured_output == FeatureMode::Auto => {
                next.dialect = dialect.next();
            }
            Feature::Tools if self.tool_calling == FeatureMode::Auto => next.native_tools = false,
            Feature::ToolChoice if self.tool_calling == FeatureMode::Auto => {
                next.tool_choice = false;
            }
            _ => return None,
        }
        Some(next)
    }

    /// Records what an accepted request shows the server supports.
    fn learn(&self, request: &ChatRequest, plan: &Plan) {
        let mut known = self.capabilities.lock().expect("capabilities");
        let before = known.clone();
        if request.json_schema.is_some() && self.structured_output == FeatureMode::Auto {
            known.structured_output = Some(plan.dialect);
        }
        if !request.tools.is_empty() && self.tool_calling == FeatureMode::Auto {
            known.native_tools = Some(plan.native_tools);
            if plan.native_tools && !request.tool_choice.is_auto() {
                known.tool_choice = Some(plan.tool_choice);
            }
        }
        if *known != before {
            tracing::info!(endpoint = %self.endpoint, capabilities = ?*known, "endpoint capabilities found");
        }
    }

    async fn attempt(&self, request: &ChatRequest) -> Result<ChatResponse, BackendError> {
        let _detecting = if self.needs_detection(request) {
            Some(self.detecting.lock().await)
        } else {
            None
        };
        let mut plan = self.plan();
        loop {
            match self.send(request, &plan).await {
                Ok((answer, _)) if self.ignores_required(request, &plan, &answer) => {
                    tracing::warn!(endpoint = %self.endpoint,
                        "the server takes tool_choice \"required\" but answered without a call: forcing calls through the schema dialect from now on");
                    plan.tool_choice = false;
                    self.learn(request, &plan);
                    plan = self.plan();
                }
                Ok((answer, _)) => {
                    self.learn(request, &plan);
                    return Ok(answer);
                }
                Err(failure) => {
                    let sent = Self::sent_features(request, &plan);
                    let refused = failure.error_answer().and_then(|(status, body)| {
                        Some((status, body, refused_feature(status, body, &sent)?))
                    });
                    let Some((status, body, feature)) = refused else {
                        if let Some(answer) =
                            self.without_tool_choice(request, &plan, &failure).await
                        {
                            return Ok(answer);
                        }
                        return Err(self.redact(failure.into_error(&self.endpoint)));
                    };
                    if let Some(next) = self.fall_back(&plan, feature) {
                        tracing::warn!(endpoint = %self.endpoint, %feature, status,
                            "the server refuses {feature}; trying the next form");
                        plan = next;
                        continue;
                    }
                    return Err(self.redact(BackendError::Permanent(format!(
                        "{}: the server refuses {feature} (HTTP {status}: {body}); {}",
                        self.endpoint,
                        feature.advice()
                    ))));
                }
            }
        }
    }

    /// Whether `answer` shows that the server accepts `tool_choice: "required"` without
    /// enforcing it (llama-server's grammar lets text come before the calls, and a small
    /// model writes text until its token limit): a server that enforces it never answers
    /// without a call, so one such answer is enough to stop relying on it.
    fn ignores_required(&self, request: &ChatRequest, plan: &Plan, answer: &ChatResponse) -> bool {
        self.tool_calling == FeatureMode::Auto
            && request.tool_choice == ToolChoice::Required
            && !request.tools.is_empty()
            && plan.native_tools
            && plan.tool_choice
            && plan.named.is_none()
            && answer.tool_calls.is_empty()
    }

    /// llama-cpp-python's `chatml-function-calling` answers `tool_choice: "required"` with
    /// an HTTP 500 whose body is empty: nothing names the field. While support for
    /// `tool_choice` is unknown, a 5xx to a request carrying one is tried once without it;
    /// if that is answered, the field was the cause and is asked for in words from then on.
    async fn without_tool_choice(
        &self,
        request: &ChatRequest,
        plan: &Plan,
        failure: &Failure,
    ) -> Option<ChatResponse> {
        let server_error = failure
            .error_answer()
            .is_some_and(|(status, _)| status >= 500);
        if !server_error
            || !Self::sent_features(request, plan).contains(&Feature::ToolChoice)
            || self.tool_calling != FeatureMode::Auto
            || self.capabilities().tool_choice.is_some()
        {
            return None;
        }
        let fallback = Plan {
            tool_choice: false,
            ..plan.clone()
        };
        let (answer, _) = self.send(request, &fallback).await.ok()?;
        tracing::warn!(endpoint = %self.endpoint,
            "the server fails requests with tool_choice but answers them without: asking for it in the prompt from now on");
        self.learn(request, &fallback);
        Some(answer)
    }

    /// Asks the server, one small request per feature, what it supports, and uses what it
    /// found from then on. A check that fails for another reason (unreachable, timeout)
    /// ends the probe there.
    pub async fn probe(&self) -> ProbeReport {
        let mut checks = Vec::new();
        let mut found = Capabilities::default();
        let reachable = self.probe_schema(&mut checks, &mut found).await
            && self.probe_tools(&mut checks, &mut found).await;
        if reachable {
            let mut known = self.capabilities.lock().expect("capabilities");
            *known = found.clone();
        }
        ProbeReport {
            endpoint: self.endpoint.clone(),
            checks,
            capabilities: found,
        }
    }

    /// One probe request: its outcome and what the answer was (or why it failed).
    async fn probe_send(
        &self,
        request: &ChatRequest,
        plan: &Plan,
        obeyed: impl Fn(&ChatResponse) -> bool,
    ) -> (ProbeOutcome, String, Option<(ChatResponse, bool)>) {
        match self.send(request, plan).await {
            Ok((answer, from_text)) => {
                let detail = describe_answer(&answer, from_text);
                let outcome = if obeyed(&answer) {
                    ProbeOutcome::Supported
                } else {
                    ProbeOutcome::Ignored
                };
                (outcome, detail, Some((answer, from_text)))
            }
            Err(failure) => {
                let sent = Self::sent_features(request, plan);
                if let Some((status, body)) = failure.error_answer()
                    && refused_feature(status, body, &sent).is_some()
                {
                    return (
                        ProbeOutcome::Refused,
                        format!("HTTP {status}: {body}"),
                        None,
                    );
                }
                if let Some((status, body)) = failure.error_answer()
                    && status >= 500
                    && sent.contains(&Feature::ToolChoice)
                {
                    let without = Plan {
                        tool_choice: false,
                        named: None,
                        ..plan.clone()
                    };
                    if self.send(request, &without).await.is_ok() {
                        return (
                            ProbeOutcome::Refused,
                            format!(
                                "HTTP {status}: {body} (answered once tool_choice was left out)"
                            ),
                            None,
                        );
                    }
                }
                let error = self.redact(failure.into_error(&self.endpoint));
                (ProbeOutcome::Failed, error.to_string(), None)
            }
        }
    }

    async fn probe_schema(&self, checks: &mut Vec<ProbeCheck>, found: &mut Capabilities) -> bool {
        // Property names the prompt does not give away: only a server that applies the
        // schema writes them.
        let schema = json!({"type": "object", "properties": {
            "city": {"type": "string", "enum": ["Paris"]}, "certain": {"type": "boolean"}},
            "required": ["city", "certain"], "additionalProperties": false});
        let mut request = probe_request("Which city is the capital of France? Answer in JSON.");
        request.json_schema = Some(schema);
        for dialect in SchemaDialect::ORDER {
            if dialect == SchemaDialect::Prompted {
                found.structured_output = Some(dialect);
                break;
            }
            let plan = Plan {
                dialect,
                native_tools: false,
                tool_choice: false,
                named: None,
            };
            let (outcome, detail, _) = self
                .probe_send(&request, &plan, |answer| {
                    check_response(&request, &normalised(answer)).is_ok()
                })
                .await;
            let done = outcome == ProbeOutcome::Supported;
            let failed = outcome == ProbeOutcome::Failed;
            checks.push(ProbeCheck {
                feature: format!("structured_output: {}", dialect.name()),
                outcome,
                detail,
            });
            if failed {
                return false;
            }
            if done {
                found.structured_output = Some(dialect);
                break;
            }
        }
        true
    }

    async fn probe_tools(&self, checks: &mut Vec<ProbeCheck>, found: &mut Capabilities) -> bool {
        let tools = vec![
            probe_tool("get_weather", "The current weather in a city", "city"),
            probe_tool("get_time", "The current local time in a city", "city"),
        ];
        let native = Plan {
            dialect: SchemaDialect::Prompted,
            native_tools: true,
            tool_choice: true,
            named: None,
        };
        let mut request =
            probe_request("What is the weather in Paris right now? Use the get_weather tool.");
        request.tools = tools.clone();
        let (outcome, detail, answer) = self
            .probe_send(&request, &native, |answer| !answer.tool_calls.is_empty())
            .await;
        let failed = outcome == ProbeOutcome::Failed;
        found.native_tools = Some(outcome != ProbeOutcome::Refused);
        if let Some((answer, from_text)) = &answer
            && !answer.tool_calls.is_empty()
        {
            found.calls_as_text = Some(*from_text);
        }
        checks.push(ProbeCheck {
            feature: "tools: tool_choice auto".into(),
            outcome,
            detail,
        });
        if failed || found.native_tools == Some(false) {
            return !failed;
        }

        let mut required = request.clone();
        required.tool_choice = ToolChoice::Required;
        let (outcome, detail, _) = self
            .probe_send(&required, &native, |answer| !answer.tool_calls.is_empty())
            .await;
        // A server that takes `"required"` but lets the model answer in prose (llama-server
        // lets content come before the calls) does not force a call: such calls are then
        // forced through the schema dialect instead.
        found.tool_choice = Some(outcome == ProbeOutcome::Supported);
        checks.push(ProbeCheck {
            feature: "tools: tool_choice required".into(),
            outcome: outcome.clone(),
            detail,
        });
        if outcome == ProbeOutcome::Failed {
            return false;
        }

        let named = Plan {
            named: Some("get_time".into()),
            ..native.clone()
        };
        let (outcome, detail, _) = self
            .probe_send(&request, &named, |answer| {
                !answer.tool_calls.is_empty()
                    && answer.tool_calls.iter().all(|call| call.name == "get_time")
            })
            .await;
        found.named_tool_choice = Some(outcome == ProbeOutcome::Supported);
        checks.push(ProbeCheck {
            feature: "tools: tool_choice named".into(),
            outcome: outcome.clone(),
            detail,
        });
        if outcome == ProbeOutcome::Failed {
            return false;
        }

        let mut parallel = probe_request(
            "What is the weather in Paris and in Lyon? Call get_weather once for each city, both calls in this one answer.",
        );
        parallel.tools = tools;
        if found.tool_choice == Some(true) {
            parallel.tool_choice = ToolChoice::Required;
        }
        let plan = Plan {
            tool_choice: found.tool_choice == Some(true),
            ..native
        };
        let (outcome, detail, _) = self
            .probe_send(&parallel, &plan, |answer| answer.tool_calls.len() >= 2)
            .await;
        found.parallel_calls = Some(outcome == ProbeOutcome::Supported);
        let failed = outcome == ProbeOutcome::Failed;
        checks.push(ProbeCheck {
            feature: "tools: parallel calls".into(),
            outcome,
            detail,
        });
        !failed
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

    /// One request on the wire; the answer, and whether its calls were parsed from text.
    async fn send(
        &self,
        request: &ChatRequest,
        plan: &Plan,
    ) -> Result<(ChatResponse, bool), Failure> {
        let body = self.body(request, plan);
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
        self.read(request, wire).map_err(Failure::Body)
    }

    /// The dialect that forces a call when the server takes tools but not
    /// `tool_choice: "required"`: the calls are asked for as JSON under a schema that
    /// admits only calls to the offered tools, which a grammar-constrained server obeys.
    fn forced_calls_dialect(&self, request: &ChatRequest, plan: &Plan) -> Option<SchemaDialect> {
        let forced = !request.tools.is_empty()
            && request.tool_choice == ToolChoice::Required
            && plan.native_tools
            && !plan.tool_choice
            && request.json_schema.is_none();
        let dialect = self.capabilities().structured_output?;
        (forced && dialect != SchemaDialect::Prompted).then_some(dialect)
    }

    fn body(&self, request: &ChatRequest, plan: &Plan) -> Value {
        let forced_calls = self.forced_calls_dialect(request, plan);
        let prompted_tools =
            (!plan.native_tools || forced_calls.is_some()) && !request.tools.is_empty();
        let prompted_schema =
            plan.dialect == SchemaDialect::Prompted && request.json_schema.is_some();
        let mut messages: Vec<Value> = request
            .messages
            .iter()
            .map(|message| wire_message(message, prompted_tools))
            .collect();
        let mut instructions = Vec::new();
        let choice_rule = match request.tool_choice {
            ToolChoice::Auto => "Otherwise answer in plain text.",
            ToolChoice::Required => "You must call at least one tool.",
            ToolChoice::None => "Do not call a tool now: answer in plain text.",
        };
        if prompted_tools {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|tool| json!({"name": tool.name, "description": tool.description, "parameters": tool.parameters}))
                .collect();
            instructions.push(format!(
                "You can call these tools:\n{}\nTo call tools, answer with only this JSON object and nothing else: \
                 {{\"tool_calls\": [{{\"name\": \"<tool name>\", \"arguments\": {{...}}}}]}}. \
                 {choice_rule}",
                Value::Array(tools),
            ));
        } else if !request.tools.is_empty() && !plan.tool_choice && !request.tool_choice.is_auto() {
            // The server takes tools but not tool_choice: ask for it in words instead.
            instructions.push(choice_rule.to_owned());
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
        if let Some(dialect) = forced_calls {
            dialect.apply(&mut body, &calls_schema(&request.tools));
        } else if plan.native_tools && !request.tools.is_empty() {
            let tools = request
                .tools
                .iter()
                .map(|tool| {
                    json!({"type": "function", "function": {
                        "name": tool.name, "description": tool.description, "parameters": tool.parameters}})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
            if let Some(name) = &plan.named {
                body.insert(
                    "tool_choice".into(),
                    json!({"type": "function", "function": {"name": name}}),
                );
            } else if plan.tool_choice && !request.tool_choice.is_auto() {
                body.insert("tool_choice".into(), json!(request.tool_choice));
            }
        }
        if let Some(schema) = &request.json_schema {
            plan.dialect.apply(&mut body, schema);
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

    /// The answer in toolflow's terms, and whether its calls were parsed from its text.
    fn read(
        &self,
        request: &ChatRequest,
        wire: WireResponse,
    ) -> Result<(ChatResponse, bool), String> {
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

        // Servers without a tool parser (or told about the tools in the prompt) hand the
        // calls back as text.
        let text_calls = if tool_calls.is_empty()
            && !request.tools.is_empty()
            && request.tool_choice != ToolChoice::None
        {
            text.as_deref()
                .and_then(|text| parse_text_calls(text, &request.tools))
        } else {
            None
        };
        let from_text = text_calls.is_some();
        if let Some(found) = text_calls {
            tool_calls = found.calls;
            text = found.prose;
            finish_reason = FinishReason::ToolCalls;
        }
        if request.json_schema.is_some() && tool_calls.is_empty() {
            // Normalised to compact JSON, whatever dialect it came through; text that holds
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
        Ok((
            ChatResponse {
                text,
                tool_calls,
                finish_reason,
                usage,
                model: wire.model.unwrap_or_else(|| self.model.clone()),
            },
            from_text,
        ))
    }
}

/// `{"tool_calls": [...]}` with at least one call, each to an offered tool with
/// arguments valid against its parameters.
fn calls_schema(tools: &[ToolSpec]) -> Value {
    let calls: Vec<Value> = tools
        .iter()
        .map(|tool| {
            json!({"type": "object", "properties": {
                "name": {"type": "string", "enum": [tool.name]}, "arguments": tool.parameters},
                "required": ["name", "arguments"]})
        })
        .collect();
    json!({"type": "object", "properties": {"tool_calls": {"type": "array", "minItems": 1,
        "items": {"anyOf": calls}}}, "required": ["tool_calls"]})
}

fn probe_request(prompt: &str) -> ChatRequest {
    ChatRequest {
        temperature: Some(0.0),
        max_tokens: Some(128),
        seed: Some(0),
        ..ChatRequest::new(vec![Message::user(prompt)])
    }
}

fn probe_tool(name: &str, description: &str, parameter: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters: json!({"type": "object", "properties": {parameter: {"type": "string"}},
            "required": [parameter]}),
    }
}

/// The answer's JSON text compacted, as `read` leaves it for a schema request.
fn normalised(answer: &ChatResponse) -> ChatResponse {
    let mut answer = answer.clone();
    if let Some(value) = answer.text.as_deref().and_then(extract_json) {
        answer.text = Some(value.to_string());
    }
    answer
}

fn describe_answer(answer: &ChatResponse, from_text: bool) -> String {
    if answer.tool_calls.is_empty() {
        return format!(
            "answered: {}",
            excerpt(answer.text.as_deref().unwrap_or_default().as_bytes())
        );
    }
    let calls: Vec<String> = answer
        .tool_calls
        .iter()
        .map(|call| format!("{}({})", call.name, call.arguments))
        .collect();
    let how = if from_text { " (written as text)" } else { "" };
    excerpt(format!("called {}{how}", calls.join(", ")).as_bytes())
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

    fn probe(&self) -> BoxFuture<'_, Option<ProbeReport>> {
        Box::pin(async { Some(OpenAiBackend::probe(self).await) })
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
    // llama-cpp-python's server refuses `"content": null` (its schema wants a string);
    // an empty string means the same to every server.
    let content = match &message.content {
        Some(text) => Value::String(text.clone()),
        None if !message.tool_calls.is_empty() => Value::String(String::new()),
        None => Value::Null,
    };
    wire.insert("content".into(), content);
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
    /// The status and body of an error answer from the server.
    fn error_answer(&self) -> Option<(u16, &str)> {
        match self {
            Failure::Status { status, body, .. } => Some((*status, body)),
            Failure::Rejected(rejected) => Some((rejected.status, &rejected.body)),
            Failure::Http(_) | Failure::Body(_) => None,
        }
    }

    fn into_error(self, endpoint: &str) -> BackendError {
        match self {
            Failure::Http(error) => {
                let kind = if error.is_timeout() {
                    TransientKind::Timeout
                } else if error.is_connect() {
                    TransientKind::Unreachable
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
        let (response, _) = backend.read(&request, wire).unwrap();
        assert_eq!(response.text.as_deref(), Some("ab"));
        assert_eq!(response.tool_calls[0].arguments, r#"{"x":1}"#);
        assert!(response.tool_calls[0].id.starts_with("call_"));
        assert_eq!(response.finish_reason, FinishReason::Other("abort".into()));
        assert_eq!(response.model, "m");
        assert!(response.usage.prompt_tokens > 0);
    }
}
