//! The engine every agent sends its requests through. It owns everything between "this
//! request, for this model, on behalf of this role" and an answer: the cache, the choice
//! of endpoint, admission (in-flight bound, RPM, TPM), timeouts, retries with backoff,
//! resampling of answers that break the request's contract, and accounting.

use std::collections::BTreeMap;
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
    pub name: String,
    pub backend: Arc<dyn ChatBackend>,
    pub max_concurrency: usize,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub timeout: Duration,
    pub price_prompt_per_million: f64,
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

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no endpoint serves model `{model}` (configured: {known})")]
    UnknownModel { model: String, known: String },
    #[error("no endpoints configured")]
    NoEndpoints,
    #[error("cache-only mode: no cached answer for this request to `{model}` (key {key})")]
    CacheMiss { model: String, key: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("`{model}` at {endpoint}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        model: String,
        endpoint: String,
        attempts: u32,
        last: BackendError,
    },
    #[error("`{model}` at {endpoint}: {error}")]
    Failed {
        model: String,
        endpoint: String,
        error: BackendError,
    },
    #[error("cancelled")]
    Cancelled,
}

/// Token and cost totals of one (model, role) pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Answers returned, from the cache or a server.
    pub answers: u64,
    pub cache_hits: u64,
    /// Requests sent to a server, retries included.
    pub attempts: u64,
    pub failures: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TallyRow {
    pub model: String,
    pub role: String,
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
}

struct Model {
    id: String,
    weight: f64,
    endpoints: Vec<usize>,
}

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
            let state = &self.endpoints[self.least_loaded(entry)];
            let endpoint = &state.endpoint;
            let outcome = self.attempt(state, role, &key, &sent, attempt).await;
            let error = match outcome {
                Ok(answer) => {
                    if let Some(cache) = &self.cache {
                        cache.put(&key, model, &answer)?;
                    }
                    return Ok(answer);
                }
                Err(error) => error,
            };
            let delay = match &error {
                BackendError::Permanent(_) => {
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
            Ok(answer) => answer,
            Err(error) => {
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

    fn least_loaded(&self, model: &Model) -> usize {
        model
            .endpoints
            .iter()
            .copied()
            .min_by(|&a, &b| {
                self.endpoints[a]
                    .concurrency
                    .load()
                    .total_cmp(&self.endpoints[b].concurrency.load())
            })
            .expect("a model has an endpoint")
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
