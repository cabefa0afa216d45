//! The model itself: weights, tokenizer, template and grammars, decoding any number of
//! requests together on the calling thread. Each request in flight (a sequence) has its own
//! KV cache slot, grammar matcher and sampler; every decoding step feeds one token of every
//! sequence through a single forward pass.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use llguidance::Matcher;
use toolflow_core::Usage;
use toolflow_llm::{ChatRequest, ChatResponse, FinishReason, ToolCallRequest, ToolChoice};

use crate::error::LocalError;
use crate::grammar::{Constraint, GrammarCompiler, tool_call_schema};
use crate::llama::{KvCache, Llama};
use crate::sampler::Sampler;
use crate::template::ChatTemplate;
use crate::tokenizer::{GgufTokenizer, metadata_string};

/// The model id this backend reports.
pub const MODEL_ID: &str = "SmolLM2-135M-Instruct.Q4_1";
/// Answers are cut here when a request names no `max_tokens`.
const DEFAULT_MAX_TOKENS: u32 = 512;
/// Sequences decoded together at most, and KV cache slots kept for reuse across turns.
pub const MAX_SEQUENCES: usize = 8;

/// Where the time of one request went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Prompt tokens run through the model (the prompt less the prefix found in the KV cache).
    pub prompt_tokens_processed: usize,
    /// Prompt tokens whose keys and values were reused from the previous request.
    pub prompt_tokens_reused: usize,
    /// From [`LocalModel::begin`] to the prompt's logits: checking, tokenizing and running
    /// the prompt, shared by the requests begun together.
    pub prompt: Duration,
    /// Tokens of the answer.
    pub generated_tokens: usize,
    /// From the prompt's logits to the end of the answer.
    pub generation: Duration,
}

/// A request in flight, as [`LocalModel::begin`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SequenceId(u64);

/// One request's answer, or why it failed.
pub type Answer = Result<(ChatResponse, Timings), LocalError>;

/// A KV cache and the tokens it holds, kept after its request ends so that the next turn of
/// the same conversation (whose prompt starts with this one's prompt and answer) only runs
/// its new tokens.
struct Slot {
    cache: KvCache,
    tokens: Vec<u32>,
    busy: bool,
    last_used: u64,
}

/// A request being decoded.
struct Sequence {
    id: SequenceId,
    slot: usize,
    stop: Vec<String>,
    max_tokens: usize,
    prompt_tokens: usize,
    constraint: Option<Constraint>,
    matcher: Option<Matcher>,
    sampler: Sampler,
    output: Vec<u32>,
    text: String,
    /// The logits for the next token.
    logits: Vec<f32>,
    timings: Timings,
    generation_started: Instant,
    /// Set when the sequence ended other than by reaching `max_tokens`.
    finish: Option<FinishReason>,
}

/// A request checked and tokenized, before its prompt runs.
struct Prepared {
    prompt: Vec<u32>,
    stop: Vec<String>,
    max_tokens: usize,
    constraint: Option<Constraint>,
    matcher: Option<Matcher>,
    sampler: Sampler,
}

/// The embedded model driven directly on the calling thread: requests are begun, then
/// decoded together one token per [`LocalModel::step`], which returns those that ended.
pub struct LocalModel {
    llama: Llama,
    tokenizer: Arc<GgufTokenizer>,
    template: ChatTemplate,
    grammars: GrammarCompiler,
    slots: Vec<Slot>,
    sequences: Vec<Sequence>,
    next_id: u64,
    /// Counts slot uses, to evict the least recently used one.
    clock: u64,
    /// Stop generating at any of these (`<|im_end|>`, `<|endoftext|>`).
    end_tokens: Vec<u32>,
}

impl LocalModel {
    /// Loads the model, its products running on all the cores this process may use.
    pub fn load(path: &Path) -> Result<Self, LocalError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::load_with_threads(path, threads)
    }

    /// Loads the model, its products running on `threads` threads.
    pub fn load_with_threads(path: &Path, threads: usize) -> Result<Self, LocalError> {
        let gguf = |e: candle_core::Error| LocalError::Gguf(format!("{}: {e}", path.display()));
        let mut file = std::fs::File::open(path)
            .map_err(|e| LocalError::Gguf(format!("{}: {e}", path.display())))?;
        let content = gguf_file::Content::read(&mut file).map_err(gguf)?;
        let tokenizer = Arc::new(GgufTokenizer::from_gguf(&content)?);
        let template = ChatTemplate::new(&metadata_string(&content, "tokenizer.chat_template")?)?;
        let grammars = GrammarCompiler::new(tokenizer.tok_env())?;
        let llama = Llama::load(&content, &mut file, threads).map_err(|e| match e {
            LocalError::Gguf(why) => LocalError::Gguf(format!("{}: {why}", path.display())),
            other => other,
        })?;
        let mut end_tokens = vec![tokenizer.eos];
        end_tokens.extend(
            tokenizer
                .encode("<|endoftext|>")?
                .into_iter()
                .filter(|id| *id != tokenizer.eos),
        );
        Ok(LocalModel {
            llama,
            tokenizer,
            template,
            grammars,
            slots: Vec::new(),
            sequences: Vec::new(),
            next_id: 0,
            clock: 0,
            end_tokens,
        })
    }

    /// The tokenizer read from the model file.
    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// The chat template read from the model file.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Threads the matrix products run on.
    pub fn threads(&self) -> usize {
        self.llama.threads()
    }

    /// Requests being decoded.
    pub fn in_flight(&self) -> usize {
        self.sequences.len()
    }

    /// Forgets the KV caches not in use, so the next requests run their whole prompts.
    pub fn clear_cache(&mut self) {
        let mut renumbered = vec![0; self.slots.len()];
        let mut kept = 0;
        for (old, slot) in self.slots.iter().enumerate() {
            if slot.busy {
                renumbered[old] = kept;
                kept += 1;
            }
        }
        self.slots.retain(|slot| slot.busy);
        for sequence in &mut self.sequences {
            sequence.slot = renumbered[sequence.slot];
        }
    }

    /// Answers one request (with any others in flight decoded alongside).
    pub fn complete(&mut self, request: &ChatRequest) -> Answer {
        let id = self
            .begin(std::slice::from_ref(request))
            .pop()
            .expect("one id per request")?;
        loop {
            for (done, answer) in self.step() {
                if done == id {
                    return answer;
                }
            }
        }
    }

    /// Starts decoding `requests`: their prompts run together in one forward pass, each
    /// after the longest prefix of it that a free KV cache slot holds. Requests beyond
    /// [`MAX_SEQUENCES`] in flight are refused.
    pub fn begin(&mut self, requests: &[ChatRequest]) -> Vec<Result<SequenceId, LocalError>> {
        let mut results: Vec<Result<SequenceId, LocalError>> = Vec::with_capacity(requests.len());
        let mut started = Vec::new();
        let begun = Instant::now();
        for request in requests {
            if self.sequences.len() + started.len() >= MAX_SEQUENCES {
                results.push(Err(LocalError::Request(format!(
                    "more than {MAX_SEQUENCES} requests in flight"
                ))));
                continue;
            }
            match self.prepare(request) {
                Ok(prepared) => {
                    let id = SequenceId(self.next_id);
                    self.next_id += 1;
                    let slot = self.take_slot(&prepared.prompt);
                    results.push(Ok(id));
                    started.push((id, slot, prepared));
                }
                Err(error) => results.push(Err(error)),
            }
        }
        if started.is_empty() {
            return results;
        }
        let fresh: Vec<(usize, Vec<u32>)> = started
            .iter()
            .map(|(_, slot, prepared)| {
                let held = self.slots[*slot].tokens.len();
                (*slot, prepared.prompt[held..].to_vec())
            })
            .collect();
        let reused: Vec<usize> = fresh
            .iter()
            .map(|(slot, _)| self.slots[*slot].tokens.len())
            .collect();
        let logits = self.forward_slots(&fresh);
        let elapsed = begun.elapsed();
        match logits {
            Ok(logits) => {
                for (((id, slot, prepared), logits), (reused, (_, fresh))) in started
                    .into_iter()
                    .zip(logits)
                    .zip(reused.into_iter().zip(&fresh))
                {
                    self.sequences.push(Sequence {
                        id,
                        slot,
                        stop: prepared.stop,
                        max_tokens: prepared.max_tokens,
                        prompt_tokens: prepared.prompt.len(),
                        constraint: prepared.constraint,
                        matcher: prepared.matcher,
                        sampler: prepared.sampler,
                        output: Vec::new(),
                        text: String::new(),
                        logits,
                        timings: Timings {
                            prompt_tokens_processed: fresh.len(),
                            prompt_tokens_reused: reused,
                            prompt: elapsed,
                            ..Timings::default()
                        },
                        generation_started: Instant::now(),
                        finish: None,
                    });
                }
            }
            Err(error) => {
                let message = error.to_string();
                for (id, slot, _) in started {
                    self.release_slot(slot);
                    if let Some(result) =
                        results.iter_mut().find(|r| matches!(r, Ok(i) if *i == id))
                    {
                        *result = Err(LocalError::Request(message.clone()));
                    }
                }
            }
        }
        results
    }

    /// Samples one token for every sequence in flight and runs the ones that go on through
    /// one forward pass together; returns the sequences that ended, with their answers.
    pub fn step(&mut self) -> Vec<(SequenceId, Answer)> {
        let mut finished = Vec::new();
        let mut next: Vec<(usize, Vec<u32>)> = Vec::new();
        // Each sequence samples (and walks its grammar) on its own, so they do it on the
        // pool's threads side by side rather than one after another on this one.
        let (end_tokens, tokenizer) = (&self.end_tokens, &*self.tokenizer);
        let outcomes = self.llama.for_each(&mut self.sequences, |sequence| {
            advance(sequence, end_tokens, tokenizer)
        });
        let mut going = Vec::with_capacity(self.sequences.len());
        for (sequence, outcome) in std::mem::take(&mut self.sequences)
            .into_iter()
            .zip(outcomes)
        {
            match outcome {
                Ok(Some(token)) => {
                    next.push((sequence.slot, vec![token]));
                    going.push(sequence);
                }
                Ok(None) => {
                    self.release_slot(sequence.slot);
                    let id = sequence.id;
                    finished.push((id, Ok(self.answer(sequence))));
                }
                Err(error) => {
                    self.release_slot(sequence.slot);
                    finished.push((sequence.id, Err(error)));
                }
            }
        }
        self.sequences = going;
        if next.is_empty() {
            return finished;
        }
        match self.forward_slots(&next) {
            Ok(logits) => {
                for (sequence, logits) in self.sequences.iter_mut().zip(logits) {
                    sequence.logits = logits;
                }
            }
            Err(error) => {
                let message = error.to_string();
                for sequence in std::mem::take(&mut self.sequences) {
                    self.release_slot(sequence.slot);
                    self.slots[sequence.slot].tokens.clear();
                    self.slots[sequence.slot].cache.truncate(0);
                    finished.push((sequence.id, Err(LocalError::Request(message.clone()))));
                }
            }
        }
        finished
    }

    /// Renders, tokenizes and checks a request, and compiles its grammar.
    fn prepare(&self, request: &ChatRequest) -> Result<Prepared, LocalError> {
        let prompt = self.template.render(request)?;
        let prompt = self.tokenizer.encode(&prompt)?;
        if prompt.is_empty() {
            return Err(LocalError::Request(
                "the rendered prompt is empty".to_string(),
            ));
        }
        let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS) as usize;
        let context = self.llama.config.context;
        if prompt.len() + max_tokens > context {
            return Err(LocalError::Request(format!(
                "the prompt has {} tokens and max_tokens is {max_tokens}: more than the {context} this model holds",
                prompt.len()
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
        let matcher = constraint
            .as_ref()
            .map(|c| self.grammars.matcher(c))
            .transpose()?;
        Ok(Prepared {
            prompt,
            stop: request.stop.clone(),
            max_tokens,
            constraint,
            matcher,
            sampler: Sampler::new(request.temperature, request.top_p, request.seed),
        })
    }

    /// Picks the free slot whose tokens share the longest prefix with `prompt` (a new slot
    /// when none shares any and there is room, else the least recently used), and cuts its
    /// cache back to that prefix, keeping at least one prompt token to run.
    fn take_slot(&mut self, prompt: &[u32]) -> usize {
        let shared = |slot: &Slot| {
            let common = slot
                .tokens
                .iter()
                .zip(prompt)
                .take_while(|(a, b)| a == b)
                .count();
            common.min(prompt.len() - 1)
        };
        let best = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| !slot.busy)
            .max_by_key(|&(_, slot)| (shared(slot), std::cmp::Reverse(slot.last_used)))
            .map(|(index, slot)| (index, shared(slot)));
        let index = match best {
            Some((index, common)) if common > 0 || self.slots.len() >= MAX_SEQUENCES => index,
            _ => {
                self.slots.push(Slot {
                    cache: self.llama.new_cache(),
                    tokens: Vec::new(),
                    busy: false,
                    last_used: 0,
                });
                self.slots.len() - 1
            }
        };
        let common = shared(&self.slots[index]);
        self.clock += 1;
        let slot = &mut self.slots[index];
        slot.busy = true;
        slot.last_used = self.clock;
        slot.tokens.truncate(common);
        slot.cache.truncate(common);
        index
    }

    fn release_slot(&mut self, slot: usize) {
        self.slots[slot].busy = false;
    }

    /// Feeds each slot its tokens in one forward pass; the logits come back in order.
    fn forward_slots(&mut self, inputs: &[(usize, Vec<u32>)]) -> Result<Vec<Vec<f32>>, LocalError> {
        let mut caches: Vec<Option<&mut KvCache>> = self
            .slots
            .iter_mut()
            .map(|slot| Some(&mut slot.cache))
            .collect();
        let mut batch: Vec<(&mut KvCache, &[u32])> = Vec::with_capacity(inputs.len());
        for (slot, tokens) in inputs {
            let cache = caches[*slot].take().expect("each slot once per pass");
            batch.push((cache, tokens.as_slice()));
        }
        let logits = self.llama.forward(&mut batch)?;
        for (slot, tokens) in inputs {
            self.slots[*slot].tokens.extend_from_slice(tokens);
        }
        Ok(logits)
    }

    /// The response of a sequence that ended.
    fn answer(&mut self, mut sequence: Sequence) -> (ChatResponse, Timings) {
        let finish = sequence.finish.take().unwrap_or(FinishReason::Length);
        let mut timings = sequence.timings;
        timings.generated_tokens = sequence.output.len();
        timings.generation = sequence.generation_started.elapsed();
        if let (Some(matcher), FinishReason::Length) = (&mut sequence.matcher, &finish) {
            tracing::debug!(accepting = ?matcher.is_accepting(), "structured answer cut by max_tokens");
        }
        let usage = Usage {
            prompt_tokens: sequence.prompt_tokens as u64,
            completion_tokens: sequence.output.len() as u64,
        };
        let mut response = ChatResponse {
            text: Some(sequence.text),
            tool_calls: Vec::new(),
            finish_reason: finish,
            usage,
            model: MODEL_ID.to_string(),
        };
        if let (Some(Constraint::ToolCall(_) | Constraint::TextOrToolCall(_)), FinishReason::Stop) =
            (&sequence.constraint, &response.finish_reason)
        {
            if let Some(call) = response.text.as_deref().and_then(parse_tool_call) {
                response.tool_calls.push(call);
                response.text = None;
                response.finish_reason = FinishReason::ToolCalls;
            }
        }
        (response, timings)
    }
}

/// Samples the next token of `sequence`: `Some(token)` when it goes on (the token still to
/// be fed), `None` when it ended.
fn advance(
    sequence: &mut Sequence,
    end_tokens: &[u32],
    tokenizer: &GgufTokenizer,
) -> Result<Option<u32>, LocalError> {
    if sequence.output.len() >= sequence.max_tokens {
        return Ok(None);
    }
    let token = match &mut sequence.matcher {
        Some(matcher) => {
            if matcher.is_stopped() {
                sequence.finish = Some(FinishReason::Stop);
                return Ok(None);
            }
            // A token drawn without the mask that the grammar accepts is a draw from the
            // masked distribution too (when no nucleus cut depends on the mask), so the
            // mask over the whole vocabulary is only computed when that draw is refused.
            let mut token = None;
            if sequence.sampler.exact_without_mask() {
                let drawn = sequence.sampler.sample(&sequence.logits, None)?;
                if matcher.validate_tokens(&[drawn]).map_err(grammar_error)? == 1 {
                    token = Some(drawn);
                }
            }
            match token {
                Some(token) => token,
                None => {
                    let mask = matcher.compute_mask().map_err(grammar_error)?;
                    sequence.sampler.sample(&sequence.logits, Some(&mask))?
                }
            }
        }
        None => sequence.sampler.sample(&sequence.logits, None)?,
    };
    if end_tokens.contains(&token) {
        sequence.finish = Some(FinishReason::Stop);
        return Ok(None);
    }
    if let Some(matcher) = &mut sequence.matcher {
        matcher.consume_token(token).map_err(grammar_error)?;
    }
    sequence.output.push(token);
    sequence.text = tokenizer.decode(&sequence.output)?;
    if sequence.matcher.is_none() {
        if let Some(at) = first_stop(&sequence.text, &sequence.stop) {
            sequence.text.truncate(at);
            sequence.finish = Some(FinishReason::Stop);
            return Ok(None);
        }
    }
    if sequence.output.len() == sequence.max_tokens {
        return Ok(None);
    }
    Ok(Some(token))
}

fn grammar_error(error: impl std::fmt::Display) -> LocalError {
    LocalError::Grammar(error.to_string())
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
