//! Per-endpoint admission: an adaptive bound on requests in flight and token buckets for
//! requests and tokens per minute.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// A bound on requests in flight that halves when the server answers 429 and grows back
/// by one slot per `limit` successes (additive increase, multiplicative decrease).
pub struct AdaptiveConcurrency {
    semaphore: Semaphore,
    max: usize,
    state: Mutex<ConcurrencyState>,
    in_flight: AtomicUsize,
    /// Requests in flight or waiting for a slot.
    demand: AtomicUsize,
}

struct ConcurrencyState {
    limit: usize,
    /// Fraction of a slot earned by successes since the last increase.
    growth: f64,
    /// Permits to retire as they come back, after a decrease found them in use.
    debt: usize,
    /// Bumped on every decrease, so that a burst of 429s from requests that were all sent
    /// under the old limit halves it once, not once per request.
    epoch: u64,
}

impl AdaptiveConcurrency {
    /// A limit starting at, and never above, `max` (at least 1).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        AdaptiveConcurrency {
            semaphore: Semaphore::new(max),
            max,
            state: Mutex::new(ConcurrencyState {
                limit: max,
                growth: 0.0,
                debt: 0,
                epoch: 0,
            }),
            in_flight: AtomicUsize::new(0),
            demand: AtomicUsize::new(0),
        }
    }

    /// Waits for a free slot; the permit gives it back when dropped.
    pub async fn acquire(&self) -> ConcurrencyPermit<'_> {
        let demand = Demand::new(&self.demand);
        let permit = self
            .semaphore
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let epoch = self.state.lock().expect("limit state").epoch;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        ConcurrencyPermit {
            owner: self,
            permit: Some(permit),
            epoch,
            _demand: demand,
        }
    }

    /// Requests allowed in flight now.
    pub fn limit(&self) -> usize {
        self.state.lock().expect("limit state").limit
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// How busy the endpoint is, waiting requests included, for choosing among endpoints
    /// that serve the same model.
    pub fn load(&self) -> f64 {
        self.demand.load(Ordering::Relaxed) as f64 / self.limit() as f64
    }
}

/// Counts a request from the moment it asks for a slot until its slot is given back, or
/// until it stops waiting (a cancelled request drops this too).
struct Demand<'a>(&'a AtomicUsize);

impl<'a> Demand<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Demand(counter)
    }
}

impl Drop for Demand<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One request's slot; given back when dropped.
pub struct ConcurrencyPermit<'a> {
    owner: &'a AdaptiveConcurrency,
    permit: Option<SemaphorePermit<'a>>,
    epoch: u64,
    _demand: Demand<'a>,
}

impl ConcurrencyPermit<'_> {
    /// The request succeeded: the limit grows by one every `limit` successes, up to the
    /// maximum.
    pub fn succeeded(&self) {
        let mut state = self.owner.state.lock().expect("limit state");
        if state.limit >= self.owner.max {
            return;
        }
        state.growth += 1.0 / state.limit as f64;
        if state.growth >= 1.0 {
            state.growth -= 1.0;
            state.limit += 1;
            if state.debt > 0 {
                state.debt -= 1;
            } else {
                self.owner.semaphore.add_permits(1);
            }
        }
    }

    /// The request was rate limited: the limit halves, once per burst of 429s.
    pub fn rate_limited(&self) {
        let mut state = self.owner.state.lock().expect("limit state");
        if state.epoch != self.epoch {
            return;
        }
        let halved = (state.limit / 2).max(1);
        state.debt += state.limit - halved;
        state.limit = halved;
        state.epoch += 1;
        state.growth = 0.0;
        let retired = self.owner.semaphore.forget_permits(state.debt);
        state.debt -= retired;
        tracing::debug!(limit = halved, "rate limited: concurrency halved");
    }
}

impl Drop for ConcurrencyPermit<'_> {
    fn drop(&mut self) {
        self.owner.in_flight.fetch_sub(1, Ordering::Relaxed);
        let permit = self.permit.take().expect("a permit is dropped once");
        let mut state = self.owner.state.lock().expect("limit state");
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        }
    }
}

/// A token bucket refilled continuously: `per_minute` units a minute, bursting up to a
/// minute's worth. A request larger than the bucket waits for a full bucket and then
/// drives it negative, so it is admitted once rather than never.
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A bucket that refills `per_minute` units a minute, starting full.
    pub fn per_minute(per_minute: u64) -> Self {
        let capacity = per_minute.max(1) as f64;
        TokenBucket {
            capacity,
            per_second: capacity / 60.0,
            state: Mutex::new((capacity, Instant::now())),
        }
    }

    /// Waits until `amount` units are available and takes them.
    pub async fn acquire(&self, amount: u64) {
        loop {
            let wait = {
                let mut state = self.state.lock().expect("bucket state");
                let (tokens, refilled) = &mut *state;
                let now = Instant::now();
                *tokens = (*tokens + now.duration_since(*refilled).as_secs_f64() * self.per_second)
                    .min(self.capacity);
                *refilled = now;
                let needed = (amount as f64).min(self.capacity);
                if *tokens >= needed {
                    *tokens -= amount as f64;
                    return;
                }
                Duration::from_secs_f64((needed - *tokens) / self.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Corrects an estimate once the real amount is known.
    pub fn settle(&self, charged: u64, actual: u64) {
        let mut state = self.state.lock().expect("bucket state");
        state.0 = (state.0 + charged as f64 - actual as f64).min(self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_once_per_burst_and_grows_back() {
        let limit = AdaptiveConcurrency::new(8);
        let permits: Vec<_> = futures_join(&limit, 8).await;
        for permit in &permits {
            permit.rate_limited();
        }
        assert_eq!(
            limit.limit(),
            4,
            "eight 429s sent under one limit halve it once"
        );
        drop(permits);
        assert_eq!(limit.semaphore.available_permits(), 4);
        for _ in 0..4 {
            limit.acquire().await.succeeded();
        }
        assert_eq!(limit.limit(), 5);
        for _ in 0..100 {
            limit.acquire().await.succeeded();
        }
        assert_eq!(limit.limit(), 8, "growth stops at the configured maximum");
        assert_eq!(limit.semaphore.available_permits(), 8);
    }

    async fn futures_join(limit: &AdaptiveConcurrency, count: usize) -> Vec<ConcurrencyPermit<'_>> {
        let mut permits = Vec::new();
        for _ in 0..count {
            permits.push(limit.acquire().await);
        }
        permits
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_paces_after_the_burst() {
        let bucket = TokenBucket::per_minute(60);
        let start = tokio::time::Instant::now();
        for _ in 0..60 {
            bucket.acquire(1).await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(10),
            "a minute's worth bursts"
        );
        bucket.acquire(1).await;
        bucket.acquire(1).await;
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_millis(2200),
            "{elapsed:?}"
        );
    }
}
