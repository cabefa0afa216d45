//! The engine every agent sends its requests through. It owns everything between "this
//! request, for this model, on behalf of this role" and an answer: the cache, the choice
//! of endpoint, admission (in-flight bound, RPM, TPM), timeouts, retries with backoff,
//! resampling of answers that break the request's contract, and accounting.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cache::{CacheError, CacheMode, ResponseCache, cache_key};
use crate::config::{Config, EndpointConfig, EngineConfig};
use crate::http::{OpenAiBackend, SetupError, http_client};
use crate::limits::{AdaptiveConcurrency, TokenBucket};
use crate::request::{BackendError, ChatBackend, ChatRequest, ChatResponse, TransientKind};
use crate::validate::check_response;

/// A backend with the limits and prices it is used under.
pub struct Endpoint {
    /// The name logs and errors give it.
    pub name: String,
    /// What answers its requests.
    pub backend: Arc<dyn ChatBackend>,
    /// Requests in flight at most; the engine narrows it after a 429.
    pub max_concurrency: usize,
    /// Requests per minute, if limited.
    pub rpm: Option<u64>,
    /// Tokens per minute, if limited.
    pub tpm: Option<u64>,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// US dollars per million prompt tokens.
    pub price_prompt_per_million: f64,
    /// US dollars per million completion tokens.
    pub price_completion_per_million: f64,
    /// Share in the per-dialogue model draw.
    pub weight: f64,
}

impl Endpoint {
    /// An endpoint with no rate limits and no prices.
    pub fn new(name: impl Into<String>, backend: Arc<dyn ChatBackend>) -> Self {
        Endpoint {
            name: name.into(),
            backend,
            max_concurrency: 16,
            rpm: None,
            tpm: None,
            timeout: Duration::from_secs(120),
            price_prompt_per_million: 0.0,
            price_completion_per_million: 0.0,
            weight: 1.0,
        }
    }

    /// The OpenAI-compatible endpoint a config entry describes.
    pub fn http(config: &EndpointConfig, client: reqwest::Client) -> Result<Self, SetupError> {
        let backend = OpenAiBackend::new(config, client)?;
        Ok(Endpoint {
            max_concurrency: config.max_concurrency,
            rpm: config.rpm,
            tpm: config.tpm,
            timeout: config.timeout(),
            price_prompt_per_million: config.price_prompt_per_million,
            price_completion_per_million: config.price_completion_per_million,
            weight: config.weight,
            ..Endpoint::new(config.name(), Arc::new(backend))
        })
    }
}

/// Why the engine returned no answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request names a model no endpoint serves.
    #[error("no endpoint serves model `{model}` (configured: {known})")]
    UnknownModel {
        /// The model asked for.
        model: String,
        /// The models served, comma-separated.
        known: String,
    },
    /// The engine was built without endpoints.
    #[error("no endpoints configured")]
    NoEndpoints,
    /// Cache-only mode, and the cache lacks the answer.
    #[error("cache-only mode: no cached answer for this request to `{model}` (key {key})")]
    CacheMiss {
        /// The model asked.
        model: String,
        /// The request's cache key.
        key: String,
    },
    /// The response cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// An endpoint could not be set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// Every attempt failed in a way worth retrying, or the answers were never usable.
    #[error("`{model}` at {endpoint}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// The model asked.
        model: String,
        /// The endpoint of the last attempt.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: BackendError,
    },
    /// An attempt failed in a way retrying cannot fix.
    #[error("`{model}` at {endpoint}: {error}")]
    Failed {
        /// The model asked.
        model: String,
        /// The endpoint.
        endpoint: String,
        /// Its error.
        error: BackendError,
    },
    /// The endpoint was found unusable earlier in the run.
    #[error("{0}")]
    Unusable(FatalEndpoint),
    /// The caller cancelled the request.
    #[error("cancelled")]
    Cancelled,
}

/// An endpoint the engine stopped sending requests to: nothing listens there, or it
/// refuses every request the same way. Callers check [`Engine::fatal`] to stop launching
/// work; requests to it fail at once with [`EngineError::Unusable`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FatalEndpoint {
    /// The endpoint's name.
    pub endpoint: String,
    /// What went wrong, with the server's own words.
    pub error: String,
    /// What to change.
    pub advice: String,
}

impl std::fmt::Display for FatalEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "endpoint `{}` is unusable: {}
  what to change: {}",
            self.endpoint, self.error, self.advice
        )
    }
}

/// Consecutive failed connection attempts, on an endpoint that never answered, after
/// which nothing is taken to listen there.
const UNREACHABLE_ATTEMPTS: u32 = 3;
/// When an endpoint's first requests all end refused with the same error, it is unusable.
const FIRST_REFUSALS: usize = 3;
/// Or when this share of its last `WINDOW` requests did.
const WINDOW: usize = 20;
const WINDOW_SHARE: f64 = 0.8;

/// How an endpoint's requests have been going, for fail-fast.
#[derive(Default)]
struct Health {
    answered: bool,
    unreachable_streak: u32,
    /// The last `WINDOW` finished requests: the shape of a refusal, or `None` for anything else.
    recent: VecDeque<Option<String>>,
    finished: usize,
    fatal: Option<FatalEndpoint>,
}

impl Health {
    fn answered(&mut self) {
        self.answered = true;
        self.unreachable_streak = 0;
    }

    fn unreachable(&mut self, endpoint: &str, error: &BackendError) {
        self.unreachable_streak += 1;
        if !self.answered && self.unreachable_streak >= UNREACHABLE_ATTEMPTS && self.fatal.is_none()
        {
            self.fatal = Some(FatalEndpoint {
                endpoint: endpoint.to_owned(),
                error: format!(
                    "{UNREACHABLE_ATTEMPTS} connection attempts failed and it never answered: {error}"
                ),
                advice: "start the server, or fix `base_url` in the endpoints file".into(),
            });
        }
    }

    /// A request finished: refused (`Some` error text) or not.
    fn finished(&mut self, endpoint: &str, refusal: Option<&str>) {
        self.finished += 1;
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(refusal.map(shape));
        if self.fatal.is_some() {
            return;
        }
        let Some(refusal) = refusal else { return };
        let same = self
            .recent
            .iter()
            .filter(|seen| seen.as_deref() == Some(shape(refusal).as_str()))
            .count();
        let first = self.finished == same && same >= FIRST_REFUSALS;
        let window = self.recent.len() == WINDOW && same as f64 >= WINDOW_SHARE * WINDOW as f64;
        if first || window {
            self.fatal = Some(FatalEndpoint {
                endpoint: endpoint.to_owned(),
                error: format!(
                    "{same} of its last {} requests were refused the same way: {refusal}",
                    self.recent.len()
                ),
                advice: advice(refusal),
            });
        }
    }
}

/// A refusal with its numbers blanked, so that "needs 4100 tokens" and "needs 4200
/// tokens" count as the same error.
fn shape(error: &str) -> String {
    let mut shaped = String::with_capacity(error.len());
    for c in error.chars() {
        if c.is_ascii_digit() {
            if !shaped.ends_with('#') {
                shaped.push('#');
            }
        } else {
            shaped.push(c);
        }
    }
    shaped
}

fn advice(refusal: &str) -> String {
    if let Some((_, advice)) = refusal.rsplit_once("); ") {
        // A capability refusal says itself which setting to change.
        return advice.to_owned();
    }
    if refusal.contains("HTTP 401") || refusal.contains("HTTP 403") {
        "check the API key (the variable `api_key_env` names) and its permissions".into()
    } else if refusal.contains("HTTP 404") {
        "check `base_url` (up to and including `/v1`) and `model` in the endpoints file".into()
    } else {
        "change what the server refuses (see its answer above) in the endpoint's settings \
         (`extra_body`, `structured_output`, `tool_calling`), or the server's options"
            .into()
    }
}

/// Token and cost totals of one (model, role) pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Answers returned, from the cache or a server.
    pub answers: u64,
    /// Answers taken from the response cache.
    pub cache_hits: u64,
    /// Requests sent to a server, retries included.
    pub attempts: u64,
    /// Requests that ended without an answer.
    pub failures: u64,
    /// Prompt tokens of the answers that came from a server.
    pub prompt_tokens: u64,
    /// Completion tokens of those answers.
    pub completion_tokens: u64,
    /// Their cost at the endpoints' prices, in US dollars.
    pub cost_usd: f64,
}

/// One row of [`Engine::tallies`]: a (model, role) pair and its totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TallyRow {
    /// The model.
    pub model: String,
    /// Who asked (an agent role, `judge`, `enrich`, `chat`).
    pub role: String,
    /// The totals.
    #[serde(flatten)]
    pub tally: Tally,
}

struct EndpointState {
    endpoint: Endpoint,
    concurrency: AdaptiveConcurrency,
    rpm: Option<TokenBucket>,
    tpm: Option<TokenBucket>,
    /// Set by a `Retry-After`: no request leaves for this endpoint before then.
    paused_until: Mutex<Option<Instant>>,
    health: Mutex<Health>,
}

impl EndpointState {
    fn fatal(&self) -> Option<FatalEndpoint> {
        self.health.lock().expect("health").fatal.clone()
    }
}

struct Model {
    id: String,
    weight: f64,
    endpoints: Vec<usize>,
}

/// Sends chat requests to the endpoints that serve their model: the response cache first,
/// then concurrency and rate limits, retries with backoff, answer checks and accounting.
pub struct Engine {
    endpoints: Vec<EndpointState>,
    models: Vec<Model>,
    cache: Option<ResponseCache>,
    mode: CacheMode,
    policy: EngineConfig,
    tallies: Mutex<BTreeMap<(String, String), Tally>>,
}

impl Engine {
    /// `cache` is the SQLite file of the response cache; `None` runs without one (as `Off`).
    pub fn new(
        endpoints: Vec<Endpoint>,
        policy: EngineConfig,
        cache: Option<&Path>,
        mode: CacheMode,
    ) -> Result<Self, EngineError> {
        if endpoints.is_empty() {
            return Err(EngineError::NoEndpoints);
        }
        let mut models: Vec<Model> = Vec::new();
        let endpoints: Vec<EndpointState> = endpoints
            .into_iter()
            .enumerate()
            .map(|(index, endpoint)| {
                let id = endpoint.backend.model().to_owned();
                match models.iter_mut().find(|model| model.id == id) {
                    Some(model) => {
                        model.weight += endpoint.weight;
                        model.endpoints.push(index);
                    }
                    None => models.push(Model {
                        id,
                        weight: endpoint.weight,
                        endpoints: vec![index],
                    }),
                }
                EndpointState {
                    concurrency: AdaptiveConcurrency::new(endpoint.max_concurrency),
                    rpm: endpoint.rpm.map(TokenBucket::per_minute),
                    tpm: endpoint.tpm.map(TokenBucket::per_minute),
                    paused_until: Mutex::new(None),
                    health: Mutex::new(Health::default()),
                    endpoint,
                }
            })
            .collect();
        let (cache, mode) = match (cache, mode) {
            (Some(path), CacheMode::ReadWrite | CacheMode::Only) => {
                (Some(ResponseCache::open(path)?), mode)
            }
            _ => (None, CacheMode::Off),
        };
        Ok(Engine {
            endpoints,
            models,
            cache,
            mode,
            policy,
            tallies: Mutex::new(BTreeMap::new()),
        })
    }

    /// The engine over every endpoint of a config file, caching under `cache_dir`.
    pub fn from_config(
        config: &Config,
        cache_dir: &Path,
        mode: CacheMode,
    ) -> Result<Self, EngineError> {
        let client = http_client()?;
        let endpoints = config
            .endpoints
            .iter()
            .map(|endpoint| Endpoint::http(endpoint, client.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Engine::new(
            endpoints,
            config.engine.clone(),
            Some(&ResponseCache::path_in(cache_dir)),
            mode,
        )
    }

    /// The ids of the models the endpoints serve.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.models.iter().map(|model| model.id.as_str())
    }

    /// The model one dialogue uses, drawn by weight from its seed. The draw is a hash of
    /// the seed, so it is the same on every platform and every version of `rand`.
    pub fn draw_model(&self, seed: u64) -> &str {
        let hash = toolflow_core::content_hash(&[b"toolflow-llm/model-draw", &seed.to_le_bytes()]);
        let unit =
            u64::from_str_radix(&hash[..16], 16).expect("hex") as f64 / (u64::MAX as f64 + 1.0);
        let total: f64 = self.models.iter().map(|model| model.weight).sum();
        let mut point = unit * total;
        for model in &self.models {
            if point < model.weight {
                return &model.id;
            }
            point -= model.weight;
        }
        // All weights zero, or round-off at the top end.
        &self.models.last().expect("at least one model").id
    }

    /// The first endpoint found unusable whose model has no usable endpoint left: a run
    /// should stop launching work and report it. `None` while every model can be served.
    pub fn fatal(&self) -> Option<FatalEndpoint> {
        self.models.iter().find_map(|model| {
            let mut fatal = model
                .endpoints
                .iter()
                .map(|&index| self.endpoints[index].fatal());
            let first = fatal.next()??;
            fatal.all(|other| other.is_some()).then_some(first)
        })
    }

    /// Asks every HTTP endpoint what it supports (see [`ChatBackend::probe`]), in config order.
    pub async fn probe(&self) -> Vec<(String, Option<crate::capability::ProbeReport>)> {
        let mut reports = Vec::new();
        for state in &self.endpoints {
            reports.push((
                state.endpoint.name.clone(),
                state.endpoint.backend.probe().await,
            ));
        }
        reports
    }

    /// Token and cost totals so far, per model and role.
    pub fn tallies(&self) -> Vec<TallyRow> {
        let tallies = self.tallies.lock().expect("tallies");
        tallies
            .iter()
            .map(|((model, role), tally)| TallyRow {
                model: model.clone(),
                role: role.clone(),
                tally: tally.clone(),
            })
            .collect()
    }

    /// Like [`Engine::complete`], giving up with [`EngineError::Cancelled`] once `cancel` fires.
    pub async fn complete_cancellable(
        &self,
        model: &str,
        role: &str,
        request: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, EngineError> {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(EngineError::Cancelled),
            answer = self.complete(model, role, request) => answer,
        }
    }

    /// One answer from `model` for `request`, sent on behalf of `role` (planner, user,
    /// assistant, tool, judge: a tag for accounting). Dropping the future cancels it and
    /// frees its slot.
    pub async fn complete(
        &self,
        model: &str,
        role: &str,
        request: &ChatRequest,
    ) -> Result<ChatResponse, EngineError> {
        let Some(entry) = self.models.iter().find(|entry| entry.id == model) else {
            return Err(EngineError::UnknownModel {
                model: model.to_owned(),
                known: self.models().collect::<Vec<_>>().join(", "),
            });
        };
        let key = cache_key(model, request);
        if let Some(cache) = &self.cache {
            if let Some(answer) = cache.get(&key)? {
                tracing::debug!(model, role, key = &key[..12], "answered from the cache");
                self.tally(model, role, |tally| {
                    tally.answers += 1;
                    tally.cache_hits += 1;
                });
                return Ok(answer);
            }
            if self.mode == CacheMode::Only {
                return Err(EngineError::CacheMiss {
                    model: model.to_owned(),
                    key,
                });
            }
        }

        let mut sent = request.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let state = match self.least_loaded(entry) {
                Ok(index) => &self.endpoints[index],
                Err(fatal) => {
                    self.tally(model, role, |tally| tally.failures += 1);
                    return Err(EngineError::Unusable(fatal));
                }
            };
            let endpoint = &state.endpoint;
            let outcome = self.attempt(state, role, &key, &sent, attempt).await;
            let error = match outcome {
                Ok(answer) => {
                    state
                        .health
                        .lock()
                        .expect("health")
                        .finished(&endpoint.name, None);
                    if let Some(cache) = &self.cache {
                        cache.put(&key, model, &answer)?;
                    }
                    return Ok(answer);
                }
                Err(error) => error,
            };
            let delay = match &error {
                BackendError::Permanent(message) => {
                    state
                        .health
                        .lock()
                        .expect("health")
                        .finished(&endpoint.name, Some(message));
                    self.tally(model, role, |tally| tally.failures += 1);
                    return Err(EngineError::Failed {
                        model: model.to_owned(),
                        endpoint: endpoint.name.clone(),
                        error,
                    });
                }
                BackendError::Transient {
                    retry_after: Some(after),
                    ..
                } => {
                    let after =
                        (*after).min(Duration::from_secs_f64(self.policy.max_retry_after_s));
                    let resume = Instant::now() + after;
                    let mut paused = state.paused_until.lock().expect("pause");
                    *paused = Some(paused.map_or(resume, |until| until.max(resume)));
                    after
                }
                BackendError::Transient { .. } => self.backoff(attempt),
                // The server is fine; sample again at once, with another seed where one is
                // set, since a seeded server would give the same broken answer.
                BackendError::InvalidOutput(_) => {
                    sent.seed = request.seed.map(|seed| seed.wrapping_add(attempt as u64));
                    Duration::ZERO
                }
            };
            if attempt >= self.policy.max_attempts {
                state
                    .health
                    .lock()
                    .expect("health")
                    .finished(&endpoint.name, None);
                self.tally(model, role, |tally| tally.failures += 1);
                return Err(EngineError::Exhausted {
                    model: model.to_owned(),
                    endpoint: endpoint.name.clone(),
                    attempts: attempt,
                    last: error,
                });
            }
            tracing::debug!(model, role, endpoint = %endpoint.name, attempt, delay_ms = delay.as_millis() as u64, %error, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt at one endpoint, from admission to a checked answer.
    async fn attempt(
        &self,
        state: &EndpointState,
        role: &str,
        key: &str,
        request: &ChatRequest,
        attempt: u32,
    ) -> Result<ChatResponse, BackendError> {
        let endpoint = &state.endpoint;
        let model = endpoint.backend.model();
        let paused = *state.paused_until.lock().expect("pause");
        if let Some(until) = paused {
            tokio::time::sleep_until(until.into()).await;
        }
        let permit = state.concurrency.acquire().await;
        if let Some(rpm) = &state.rpm {
            rpm.acquire(1).await;
        }
        let estimate =
            request.estimated_prompt_tokens() + u64::from(request.max_tokens.unwrap_or(256));
        if let Some(tpm) = &state.tpm {
            tpm.acquire(estimate).await;
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(
            endpoint.timeout,
            endpoint.backend.complete(request),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(BackendError::transient(
                TransientKind::Timeout,
                format!(
                    "{}: no answer within {:.1} s",
                    endpoint.name,
                    endpoint.timeout.as_secs_f64()
                ),
            )),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        self.tally(model, role, |tally| tally.attempts += 1);
        let answer = match result {
            Ok(answer) => {
                state.health.lock().expect("health").answered();
                answer
            }
            Err(error) => {
                if matches!(
                    error,
                    BackendError::Transient {
                        kind: TransientKind::Unreachable,
                        ..
                    }
                ) {
                    state
                        .health
                        .lock()
                        .expect("health")
                        .unreachable(&endpoint.name, &error);
                }
                if let Some(tpm) = &state.tpm {
                    tpm.settle(estimate, 0);
                }
                if matches!(
                    error,
                    BackendError::Transient {
                        kind: TransientKind::RateLimited,
                        ..
                    }
                ) {
                    permit.rate_limited();
                }
                tracing::debug!(model, role, endpoint = %endpoint.name, key = &key[..12], attempt, elapsed_ms, %error, "request failed");
                return Err(error);
            }
        };
        permit.succeeded();
        drop(permit);
        let usage = answer.usage;
        if let Some(tpm) = &state.tpm {
            tpm.settle(estimate, usage.prompt_tokens + usage.completion_tokens);
        }
        let cost = (usage.prompt_tokens as f64 * endpoint.price_prompt_per_million
            + usage.completion_tokens as f64 * endpoint.price_completion_per_million)
            / 1e6;
        let verdict = check_response(request, &answer);
        self.tally(model, role, |tally| {
            tally.prompt_tokens += usage.prompt_tokens;
            tally.completion_tokens += usage.completion_tokens;
            tally.cost_usd += cost;
            if verdict.is_ok() {
                tally.answers += 1;
            }
        });
        tracing::debug!(
            model, role, endpoint = %endpoint.name, key = &key[..12], attempt, elapsed_ms,
            prompt_tokens = usage.prompt_tokens, completion_tokens = usage.completion_tokens,
            finish = ?answer.finish_reason, valid = verdict.is_ok(), "answered"
        );
        verdict.map_err(BackendError::InvalidOutput)?;
        Ok(answer)
    }

    /// Full jitter: uniform in [0, min(cap, base · 2^(attempt-1))].
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = (self.policy.backoff_base_ms as f64
            * 2f64.powi(attempt.saturating_sub(1).min(30) as i32))
        .min(self.policy.backoff_cap_ms as f64);
        Duration::from_secs_f64(rand::rng().random_range(0.0..=ceiling) / 1000.0)
    }

    /// The usable endpoint of `model` with the least load, or why none is usable.
    fn least_loaded(&self, model: &Model) -> Result<usize, FatalEndpoint> {
        let mut fatal = None;
        model
            .endpoints
            .iter()
            .copied()
            .filter(|&index| match self.endpoints[index].fatal() {
                Some(reason) => {
                    fatal.get_or_insert(reason);
                    false
                }
                None => true,
            })
            .min_by(|&a, &b| {
                self.endpoints[a]
                    .concurrency
                    .load()
                    .total_cmp(&self.endpoints[b].concurrency.load())
            })
            .ok_or_else(|| fatal.expect("a model has an endpoint"))
    }

    fn tally(&self, model: &str, role: &str, update: impl FnOnce(&mut Tally)) {
        let mut tallies = self.tallies.lock().expect("tallies");
        update(
            tallies
                .entry((model.to_owned(), role.to_owned()))
                .or_default(),
        );
    }
}
