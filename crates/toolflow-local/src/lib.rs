//! The embedded chat model: SmolLM2-135M-Instruct (Q4_1 GGUF) run in-process on the CPU with
//! candle's quantized llama. Its tokenizer and chat template come from the GGUF metadata;
//! structured requests (a JSON Schema, or tools) are decoded under an llguidance grammar, so
//! even this small model answers with parseable, schema-valid JSON.
//!
//! The transformer runs on toolflow's own quantized kernels ([`quant`]: Q4_1 and Q8_0
//! weights against 8-bit activations, AVX-512 VNNI or AVX2 chosen at run time).
//!
//! [`LocalBackend`] owns the model on a dedicated thread and decodes the requests in flight
//! together, up to [`MAX_SEQUENCES`], one forward pass per token for all of them;
//! [`LocalModel`] is the same model driven directly on the calling thread.

#![warn(missing_docs)]

mod error;
mod fetch;
mod grammar;
mod llama;
mod model;
pub mod quant;
mod sampler;
mod template;
mod tokenizer;

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use toolflow_llm::{BackendError, BoxFuture, ChatBackend, ChatRequest, ChatResponse};

pub use error::LocalError;
pub use fetch::{MODEL_FILE, ModelSource, PIP_PACKAGE, locate_model};
pub use grammar::tool_call_schema;
pub use model::{Answer, LocalModel, MAX_SEQUENCES, MODEL_ID, SequenceId, Timings};
pub use template::{ChatTemplate, tool_instructions};
pub use tokenizer::GgufTokenizer;

/// How to load the embedded model.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Use this GGUF file instead of the cache or a download.
    pub model_path: Option<PathBuf>,
    /// The model is cached under `<cache_dir>/models/`.
    pub cache_dir: PathBuf,
    /// Do not try the Hugging Face hub.
    pub offline: bool,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            model_path: None,
            cache_dir: toolflow_core::default_cache_dir(),
            offline: false,
        }
    }
}

type Job = (ChatRequest, ReplySender<Result<ChatResponse, LocalError>>);

/// The embedded model as a [`ChatBackend`]. The model runs on its own thread, which decodes
/// the requests waiting for it together (up to [`MAX_SEQUENCES`], the rest queue in arrival
/// order); the thread ends when the backend is dropped and the requests in flight are done.
pub struct LocalBackend {
    jobs: mpsc::Sender<Job>,
}

impl LocalBackend {
    /// Finds (downloading if needed) and loads the model, then starts its thread.
    pub fn load(options: &LocalOptions) -> Result<Self, LocalError> {
        let path = locate_model(&ModelSource {
            model_path: options.model_path.clone(),
            cache_dir: options.cache_dir.clone(),
            offline: options.offline,
        })?;
        tracing::info!(path = %path.display(), "loading the embedded model");
        Ok(Self::from_model(LocalModel::load(&path)?))
    }

    /// Starts the thread that serves requests with `model`.
    pub fn from_model(model: LocalModel) -> Self {
        let (jobs, inbox) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("toolflow-local".to_string())
            .spawn(move || serve(model, inbox))
            .expect("spawning the embedded model's thread");
        LocalBackend { jobs }
    }
}

/// The model thread's loop: take in new requests while there is room, start their prompts
/// together, then advance every sequence by one token; reply to those that end.
fn serve(mut model: LocalModel, inbox: mpsc::Receiver<Job>) {
    let mut waiting: Vec<(SequenceId, ReplySender<Result<ChatResponse, LocalError>>)> = Vec::new();
    let mut open = true;
    loop {
        let mut arrived: Vec<Job> = Vec::new();
        if model.in_flight() == 0 {
            if !open {
                return;
            }
            match inbox.recv() {
                Ok(job) => arrived.push(job),
                Err(_) => return,
            }
        }
        while open && model.in_flight() + arrived.len() < MAX_SEQUENCES {
            match inbox.try_recv() {
                Ok(job) => arrived.push(job),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => open = false,
            }
        }
        if !arrived.is_empty() {
            let (requests, replies): (Vec<ChatRequest>, Vec<_>) = arrived.into_iter().unzip();
            for (started, reply) in model.begin(&requests).into_iter().zip(replies) {
                match started {
                    Ok(id) => waiting.push((id, reply)),
                    Err(error) => reply.send(Err(error)),
                }
            }
        }
        for (id, answer) in model.step() {
            let Some(at) = waiting.iter().position(|(waiting_id, _)| *waiting_id == id) else {
                continue;
            };
            let (_, reply) = waiting.swap_remove(at);
            reply.send(answer.map(|(response, timings)| {
                tracing::debug!(?timings, "embedded model answered");
                response
            }));
        }
    }
}

impl ChatBackend for LocalBackend {
    fn model(&self) -> &str {
        MODEL_ID
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, BackendError>> {
        let (reply, answer) = reply_channel();
        let sent = self.jobs.send((request.clone(), reply));
        Box::pin(async move {
            if sent.is_err() {
                return Err(BackendError::Permanent(
                    "the embedded model's thread has stopped".to_string(),
                ));
            }
            match answer.await {
                Some(Ok(response)) => Ok(response),
                // Every local failure (bad schema, prompt too long, model error) repeats on retry.
                Some(Err(error)) => Err(BackendError::Permanent(error.to_string())),
                None => Err(BackendError::Permanent(
                    "the embedded model's thread stopped mid-request".to_string(),
                )),
            }
        })
    }
}

/// A one-shot reply from the model's thread to an async caller, usable under any executor.
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The sender is gone; no value will come.
    closed: bool,
}

struct ReplySender<T>(Arc<Mutex<Slot<T>>>);
struct ReplyFuture<T>(Arc<Mutex<Slot<T>>>);

fn reply_channel<T>() -> (ReplySender<T>, ReplyFuture<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
        closed: false,
    }));
    (ReplySender(slot.clone()), ReplyFuture(slot))
}

impl<T> ReplySender<T> {
    fn send(self, value: T) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).value = Some(value);
        // Drop wakes the receiver.
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.closed = true;
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
    }
}

impl<T> std::future::Future for ReplyFuture<T> {
    type Output = Option<T>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = slot.value.take() {
            Poll::Ready(Some(value))
        } else if slot.closed {
            Poll::Ready(None)
        } else {
            slot.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
