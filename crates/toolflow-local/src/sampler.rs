//! Token sampling: temperature and nucleus (top-p), deterministic for a given seed.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::LocalError;

/// Used when a request names no temperature: low enough that a 135M model stays on topic.
const DEFAULT_TEMPERATURE: f32 = 0.7;

pub struct Sampler {
    temperature: f32,
    top_p: f32,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// A request without a seed samples as if it had seed 0: the same request always gets the
    /// same answer, which is what the response cache assumes.
    pub fn new(temperature: Option<f32>, top_p: Option<f32>, seed: Option<u64>) -> Self {
        Sampler {
            temperature: temperature.unwrap_or(DEFAULT_TEMPERATURE),
            top_p: top_p.unwrap_or(1.0).clamp(0.0, 1.0),
            rng: ChaCha8Rng::seed_from_u64(seed.unwrap_or(0)),
        }
    }

    /// Draws a token from `logits` (masked entries are `-inf`); a temperature of 0 takes the
    /// most likely token. `logits` is used as scratch space.
    pub fn sample(&mut self, logits: &mut [f32]) -> Result<u32, LocalError> {
        let best = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(id, l)| (id, *l))
            .ok_or_else(|| LocalError::Grammar("no token is allowed at this point".to_string()))?;
        if self.temperature <= 0.0 {
            return Ok(best.0 as u32);
        }
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(id, l)| (id as u32, ((l - best.1) / self.temperature).exp()))
            .collect();
        if self.top_p < 1.0 {
            let total: f32 = candidates.iter().map(|(_, p)| p).sum();
            // Most likely first; ties by id so the order never depends on the sort's stability.
            candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut kept = 0.0;
            let keep = candidates
                .iter()
                .position(|(_, p)| {
                    kept += p / total;
                    kept >= self.top_p
                })
                .map_or(candidates.len(), |i| i + 1);
            candidates.truncate(keep);
        }
        let kept_total: f32 = candidates.iter().map(|(_, p)| p).sum();
        let mut draw = self.rng.random::<f32>() * kept_total;
        for (id, p) in &candidates {
            if draw < *p {
                return Ok(*id);
            }
            draw -= p;
        }
        Ok(candidates
            .last()
            .expect("at least the best token is kept")
            .0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_temperature_takes_the_most_likely_token() {
        let mut sampler = Sampler::new(Some(0.0), None, Some(1));
        assert_eq!(
            sampler
                .sample(&mut [0.1, 2.0, f32::NEG_INFINITY, 1.9])
                .unwrap(),
            1
        );
    }

    #[test]
    fn masked_tokens_are_never_drawn_and_seeds_repeat() {
        let draws = |seed| {
            let mut sampler = Sampler::new(Some(1.0), Some(0.95), Some(seed));
            (0..200)
                .map(|_| {
                    sampler
                        .sample(&mut [1.0, f32::NEG_INFINITY, 1.0, 0.5])
                        .unwrap()
                })
                .collect::<Vec<_>>()
        };
        let first = draws(7);
        assert!(!first.contains(&1));
        assert!(first.contains(&0) && first.contains(&2));
        assert_eq!(first, draws(7));
        assert_ne!(first, draws(8));
    }

    #[test]
    fn small_top_p_keeps_only_the_head() {
        let mut sampler = Sampler::new(Some(1.0), Some(0.1), Some(3));
        for _ in 0..50 {
            assert_eq!(sampler.sample(&mut [0.0, 5.0, 0.0, 1.0]).unwrap(), 1);
        }
    }

    #[test]
    fn nothing_allowed_is_an_error() {
        let mut sampler = Sampler::new(None, None, None);
        assert!(sampler.sample(&mut [f32::NEG_INFINITY; 3]).is_err());
    }
}
