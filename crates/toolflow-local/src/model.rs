//! The model itself: weights, tokenizer, template and grammars, answering one request at a
//! time on the calling thread.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use toolflow_core::Usage;
use toolflow_llm::{ChatRequest, ChatResponse, FinishReason, ToolCallRequest, ToolChoice};

use crate::LocalError;
use crate::grammar::{Constraint, GrammarCompiler, tool_call_schema};
use crate::sampler::Sampler;
use crate::template::ChatTemplate;
use crate::tokenizer::{GgufTokenizer, metadata_string};

/// The model id this backend reports.
pub const MODEL_ID: &str = "SmolLM2-135M-Instruct.Q4_1";
/// Answers are cut here when a request names no `max_tokens`.
const DEFAULT_MAX_TOKENS: u32 = 512;

/// Where the time of one request went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Prompt tokens run through the model (the prompt less the prefix found in the KV cache).
    pub prompt_tokens_processed: usize,
    /// Prompt tokens whose keys and values were reused from the previous request.
    pub prompt_tokens_reused: usize,
    pub prompt: Duration,
    pub generated_tokens: usize,
    pub generation: Duration,
}

pub struct LocalModel {
    weights: ModelWeights,
    tokenizer: Arc<GgufTokenizer>,
    template: ChatTemplate,
    grammars: GrammarCompiler,
    device: Device,
    /// The tokens whose keys and values the model's KV cache holds, in order.
    ///
    /// candle's quantized llama appends to its per-layer cache whenever `index_pos > 0` and
    /// restarts it at `index_pos == 0`; it cannot truncate. So a request reuses the cache only
    /// when its prompt strictly extends these tokens — the usual case for the next turn of a
    /// conversation, whose prompt is the previous prompt, the answer as generated and the new
    /// messages. Anything else (another conversation, a re-tokenised answer that differs from
    /// the sampled tokens) runs the whole prompt again.
    cached: Vec<u32>,
    /// Stop generating at any of these (`<|im_end|>`, `<|endoftext|>`).
    end_tokens: Vec<u32>,
}

impl LocalModel {
    pub fn load(path: &Path) -> Result<Self, LocalError> {
        let gguf = |e: candle_core::Error| LocalError::Gguf(format!("{}: {e}", path.display()));
        let mut file = std::fs::File::open(path)
            .map_err(|e| LocalError::Gguf(format!("{}: {e}", path.display())))?;
        let content = gguf_file::Content::read(&mut file).map_err(gguf)?;
        let tokenizer = Arc::new(GgufTokenizer::from_gguf(&content)?);
        let template = ChatTemplate::new(&metadata_string(&content, "tokenizer.chat_template")?)?;
        let grammars = GrammarCompiler::new(tokenizer.tok_env())?;
        let device = Device::Cpu;
        dequantize_weights_to_f32();
        let weights = ModelWeights::from_gguf(content, &mut file, &device).map_err(gguf)?;
        let mut end_tokens = vec![tokenizer.eos];
        end_tokens.extend(
            tokenizer
                .encode("<|endoftext|>")?
                .into_iter()
                .filter(|id| *id != tokenizer.eos),
        );
        Ok(LocalModel {
            weights,
            tokenizer,
            template,
            grammars,
            device,
            cached: Vec::new(),
            end_tokens,
        })
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Forgets the KV cache, so the next request runs its whole prompt.
    pub fn clear_cache(&mut self) {
        self.weights.clear_kv_cache();
        self.cached.clear();
    }

    pub fn complete(
        &mut self,
        request: &ChatRequest,
    ) -> Result<(ChatResponse, Timings), LocalError> {
        let prompt = self.template.render(request)?;
        let prompt_ids = self.tokenizer.encode(&prompt)?;
        let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS) as usize;
        if prompt_ids.len() + max_tokens > MAX_SEQ_LEN {
            return Err(LocalError::Request(format!(
                "the prompt has {} tokens and max_tokens is {max_tokens}: more than the {MAX_SEQ_LEN} this backend holds",
                prompt_ids.len()
            )));
        }
        let constraint = if let Some(schema) = &request.json_schema {
            Some(Constraint::Json(schema.clone()))
        } else if !request.tools.is_empty() {
            // Left to choose, this model nearly always answers a request for action in prose
            // (measured: 2 of 2 seeds on a plain weather question), so callers that know a
            // call is due should say `Required`.
            let call_schema = tool_call_schema(&request.tools);
            match request.tool_choice {
                ToolChoice::Required => Some(Constraint::ToolCall(call_schema)),
                ToolChoice::Auto => Some(Constraint::TextOrToolCall(call_schema)),
                ToolChoice::None => None,
            }
        } else {
            None
        };
        let mut matcher = constraint
            .as_ref()
            .map(|c| self.grammars.matcher(c))
            .transpose()?;

        let mut timings = Timings::default();
        let started = Instant::now();
        let mut logits = self.run_prompt(&prompt_ids, &mut timings)?;
        timings.prompt = started.elapsed();

        let started = Instant::now();
        let mut sampler = Sampler::new(request.temperature, request.top_p, request.seed);
        let mut output: Vec<u32> = Vec::new();
        let mut finish = FinishReason::Length;
        let mut text = String::new();
        while output.len() < max_tokens {
            if let Some(matcher) = &mut matcher {
                if matcher.is_stopped() {
                    finish = FinishReason::Stop;
                    break;
                }
                let mask = matcher
                    .compute_mask()
                    .map_err(|e| LocalError::Grammar(e.to_string()))?;
                for (id, logit) in logits.iter_mut().enumerate() {
                    if !mask.is_allowed(id as u32) {
                        *logit = f32::NEG_INFINITY;
                    }
                }
            }
            let token = sampler.sample(&mut logits)?;
            if self.end_tokens.contains(&token) {
                finish = FinishReason::Stop;
                break;
            }
            if let Some(matcher) = &mut matcher {
                matcher
                    .consume_token(token)
                    .map_err(|e| LocalError::Grammar(e.to_string()))?;
            }
            output.push(token);
            text = self.tokenizer.decode(&output)?;
            if matcher.is_none() {
                if let Some(at) = first_stop(&text, &request.stop) {
                    text.truncate(at);
                    finish = FinishReason::Stop;
                    break;
                }
            }
            if output.len() == max_tokens {
                break;
            }
            logits = self.forward(&[token])?;
        }
        timings.generated_tokens = output.len();
        timings.generation = started.elapsed();
        if let (Some(matcher), FinishReason::Length) = (&mut matcher, &finish) {
            tracing::debug!(accepting = ?matcher.is_accepting(), "structured answer cut by max_tokens");
        }

        let usage = Usage {
            prompt_tokens: prompt_ids.len() as u64,
            completion_tokens: output.len() as u64,
        };
        let mut response = ChatResponse {
            text: Some(text),
            tool_calls: Vec::new(),
            finish_reason: finish,
            usage,
            model: MODEL_ID.to_string(),
        };
        if let (Some(Constraint::ToolCall(_) | Constraint::TextOrToolCall(_)), FinishReason::Stop) =
            (&constraint, &response.finish_reason)
        {
            if let Some(call) = response.text.as_deref().and_then(parse_tool_call) {
                response.tool_calls.push(call);
                response.text = None;
                response.finish_reason = FinishReason::ToolCalls;
            }
        }
        Ok((response, timings))
    }

    /// Runs the prompt through the model, reusing the KV cache when the prompt extends what it
    /// holds, and returns the logits of the last position.
    fn run_prompt(
        &mut self,
        prompt: &[u32],
        timings: &mut Timings,
    ) -> Result<Vec<f32>, LocalError> {
        let reusable = self.cached.len() < prompt.len() && prompt.starts_with(&self.cached);
        if !reusable {
            self.cached.clear();
        }
        timings.prompt_tokens_reused = self.cached.len();
        let fresh = &prompt[self.cached.len()..];
        timings.prompt_tokens_processed = fresh.len();
        if fresh.is_empty() {
            return Err(LocalError::Request(
                "the rendered prompt is empty".to_string(),
            ));
        }
        self.forward(fresh)
    }

    /// Feeds `tokens` after the cached ones and returns the logits of the last one.
    fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>, LocalError> {
        let input = Tensor::new(tokens, &self.device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(LocalError::Model)?;
        let logits = self.weights.forward(&input, self.cached.len());
        // A failed forward leaves the per-layer caches in an unknown state.
        let logits = match logits {
            Ok(l) => l,
            Err(e) => {
                self.clear_cache();
                return Err(LocalError::Model(e));
            }
        };
        self.cached.extend_from_slice(tokens);
        logits
            .squeeze(0)
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(LocalError::Model)
    }
}

/// Makes candle load the Q4_1 weights as f32 (about 540 MB instead of 98 MB).
///
/// candle's quantized CPU kernels choose their SIMD code at compile time, and this workspace
/// builds for the x86-64 baseline, so Q4_1 matmuls run scalar: 6.9 prompt tokens/s on 2 cores
/// (`toolflow-bench --bin local`). As f32 the weights go through `gemm`, which picks AVX2 or
/// AVX-512 at run time: 153 tokens/s. candle reads this switch only from the environment, once
/// per thread, so it is set here unless the user set it (to `0` to keep the weights quantized).
fn dequantize_weights_to_f32() {
    if std::env::var_os("CANDLE_DEQUANTIZE_ALL").is_none() {
        // SAFETY: the environment is written once, before the weights load, with a constant
        // value; toolflow does not read or write the environment from other threads while a
        // model loads (it loads the model before starting its workers).
        unsafe { std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1") };
    }
}

/// The byte offset where the first of `stops` begins in `text`.
fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

/// A call as the tool grammar writes it: `{"name": …, "arguments": {…}}`.
fn parse_tool_call(text: &str) -> Option<ToolCallRequest> {
    let value: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    let name = value.get("name")?.as_str()?.to_string();
    let arguments = crate::template::python_compact_json(value.get("arguments")?);
    let id = format!("call_{}", call_id(text));
    Some(ToolCallRequest {
        id,
        name,
        arguments,
    })
}

/// A short id derived from the call text (FNV-1a), so the same answer always carries the same id.
fn call_id(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
