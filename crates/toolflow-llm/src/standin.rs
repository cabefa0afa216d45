//! A stand-in for an OpenAI-compatible server, for tests and benchmarks: it listens on
//! loopback only, answers `POST /v1/chat/completions` from a script, injects the faults
//! real servers produce, and records every request it saw.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the stand-in answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The last user message, sent back as the answer.
    Echo,
    /// This text.
    Text(String),
    /// A structured answer: the value, written as the message text.
    Json(Value),
    /// Tool calls by name and arguments (any JSON; a string is sent as written).
    ToolCalls(Vec<(String, Value)>),
    /// Any status and body, for lenient-format tests.
    Raw {
        /// The HTTP status.
        status: u16,
        /// The body, as written.
        body: String,
    },
    /// 429, with this `Retry-After` header value if given.
    RateLimited {
        /// The header's value.
        retry_after: Option<String>,
    },
    /// This status (500, 503, 400, …) with an OpenAI-style error body.
    Status(u16),
    /// The reply after a delay.
    Slow(Duration, Box<Reply>),
    /// The connection is closed without an answer.
    DropConnection,
    /// 200 with a body that is not JSON.
    InvalidJson,
    /// 200 with a valid answer cut short: `Content-Length` promises more than is sent.
    Truncated,
}

/// A request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// The HTTP headers, as received.
    pub headers: Vec<(String, String)>,
    /// The parsed body, or the raw text when it is not JSON.
    pub body: Value,
}

impl SeenRequest {
    /// The content of the last user message, or "".
    pub fn last_user_text(&self) -> &str {
        self.body["messages"]
            .as_array()
            .and_then(|messages| {
                messages
                    .iter()
                    .rev()
                    .find(|message| message["role"] == "user")
            })
            .and_then(|message| message["content"].as_str())
            .unwrap_or_default()
    }

    /// The value of header `name`, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

type Script = dyn Fn(&SeenRequest) -> Reply + Send + Sync;

struct Shared {
    script: Box<Script>,
    seen: Mutex<Vec<SeenRequest>>,
    answered: AtomicUsize,
}

/// An OpenAI-compatible server for tests, answering from a script.
pub struct StandInServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl StandInServer {
    /// Serves on 127.0.0.1 at a free port, answering each request with `script(request)`.
    /// Must be called inside a tokio runtime.
    pub async fn start(
        script: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            script: Box::new(script),
            seen: Mutex::new(Vec::new()),
            answered: AtomicUsize::new(0),
        });
        let router = axum::Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(StandInServer {
            address,
            shared,
            task,
        })
    }

    /// Answers with `replies` in order, then with `then` for ever.
    pub async fn queue(replies: Vec<Reply>, then: Reply) -> io::Result<Self> {
        let replies = Mutex::new(std::collections::VecDeque::from(replies));
        StandInServer::start(move |_| {
            replies
                .lock()
                .expect("queue")
                .pop_front()
                .unwrap_or_else(|| then.clone())
        })
        .await
    }

    /// The base URL to configure an endpoint with (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.seen.lock().expect("seen").clone()
    }

    /// Requests answered so far.
    pub fn request_count(&self) -> usize {
        self.shared.answered.load(Ordering::Relaxed)
    }
}

impl Drop for StandInServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let seen = SeenRequest {
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
    };
    let reply = (shared.script)(&seen);
    let completion = Completion::of(&seen);
    shared.seen.lock().expect("seen").push(seen);
    shared.answered.fetch_add(1, Ordering::Relaxed);
    respond(reply, &completion).await
}

/// What a successful answer needs from its request.
struct Completion {
    model: String,
    prompt_tokens: u64,
    last_user_text: String,
}

impl Completion {
    fn of(seen: &SeenRequest) -> Self {
        let prompt_chars: usize = seen.body["messages"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .map(|message| message["content"].as_str().map_or(0, str::len))
                    .sum()
            })
            .unwrap_or(0);
        Completion {
            model: seen.body["model"].as_str().unwrap_or("standin").to_owned(),
            prompt_tokens: (prompt_chars / 4).max(1) as u64,
            last_user_text: seen.last_user_text().to_owned(),
        }
    }

    fn body(&self, content: Option<String>, tool_calls: Vec<Value>) -> String {
        let completion_tokens = (content.as_deref().map_or(0, str::len)
            + tool_calls
                .iter()
                .map(|call| call.to_string().len())
                .sum::<usize>())
            / 4;
        let finish_reason = if tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        };
        let mut message = json!({"role": "assistant", "content": content});
        if !tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(tool_calls);
        }
        json!({
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": completion_tokens.max(1),
                "total_tokens": self.prompt_tokens + completion_tokens.max(1) as u64
            }
        })
        .to_string()
    }
}

fn ok_json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn respond<'a>(
    reply: Reply,
    completion: &'a Completion,
) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send + 'a>> {
    Box::pin(async move {
        match reply {
            Reply::Echo => {
                ok_json(completion.body(Some(completion.last_user_text.clone()), vec![]))
            }
            Reply::Text(text) => ok_json(completion.body(Some(text), vec![])),
            Reply::Json(value) => ok_json(completion.body(Some(value.to_string()), vec![])),
            Reply::ToolCalls(calls) => {
                let calls = calls
                    .into_iter()
                    .enumerate()
                    .map(|(index, (name, arguments))| {
                        let arguments = match arguments {
                            Value::String(text) => text,
                            other => other.to_string(),
                        };
                        json!({"id": format!("call_{index}"), "type": "function",
                               "function": {"name": name, "arguments": arguments}})
                    })
                    .collect();
                ok_json(completion.body(None, calls))
            }
            Reply::Raw { status, body } => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            Reply::RateLimited { retry_after } => {
                let mut response = error_body(429, "rate limit reached").into_response();
                if let Some(value) = retry_after {
                    response.headers_mut().insert(
                        header::RETRY_AFTER,
                        value.parse().expect("a valid header value"),
                    );
                }
                response
            }
            Reply::Status(status) => error_body(status, "stand-in fault").into_response(),
            Reply::Slow(delay, reply) => {
                tokio::time::sleep(delay).await;
                respond(*reply, completion).await
            }
            Reply::DropConnection => broken_body(Vec::new(), None),
            Reply::InvalidJson => {
                ok_json("{\"choices\": [{\"message\": {\"content\": \"unterminated".into())
            }
            Reply::Truncated => {
                let full = completion
                    .body(Some(completion.last_user_text.clone()), vec![])
                    .into_bytes();
                let half = full[..full.len() / 2].to_vec();
                broken_body(half, Some(full.len()))
            }
        }
    })
}

fn error_body(
    status: u16,
    message: &str,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"message": message, "type": "standin", "code": status.as_u16()}})
        .to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}

/// A body that sends `prefix` and then fails, which makes the server close the connection
/// mid-answer (before any byte of it when `prefix` is empty).
fn broken_body(prefix: Vec<u8>, promised_length: Option<usize>) -> Response {
    let chunks: Vec<Result<Bytes, io::Error>> = vec![
        Ok(Bytes::from(prefix)),
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "stand-in drops the connection",
        )),
    ];
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    if let Some(length) = promised_length {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, length.into());
    }
    response
}
