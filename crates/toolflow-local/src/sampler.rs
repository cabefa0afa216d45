//! Token sampling: temperature and nucleus (top-p), deterministic for a given seed.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use toktrie::SimpleVob;

use crate::error::LocalError;

/// Used when a request names no temperature: low enough that a 135M model stays on topic.
const DEFAULT_TEMPERATURE: f32 = 0.7;

pub struct Sampler {
    temperature: f32,
    top_p: f32,
    rng: ChaCha8Rng,
    /// Scratch: the allowed tokens and their unnormalised probabilities.
    candidates: Vec<(u32, f32)>,
}

/// Most likely first; ties by id, so the order never depends on the selection's stability.
fn most_likely_first(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// How far below the best token, in units of temperature, a token's weight stops counting.
const NEGLIGIBLE_GAP: f32 = 30.0;

/// The nucleus is first looked for among this many of the most likely tokens.
const FIRST_NUCLEUS_GUESS: usize = 64;

impl Sampler {
    /// A request without a seed samples as if it had seed 0: the same request always gets the
    /// same answer, which is what the response cache assumes.
    pub fn new(temperature: Option<f32>, top_p: Option<f32>, seed: Option<u64>) -> Self {
        Sampler {
            temperature: temperature.unwrap_or(DEFAULT_TEMPERATURE),
            top_p: top_p.unwrap_or(1.0).clamp(0.0, 1.0),
            rng: ChaCha8Rng::seed_from_u64(seed.unwrap_or(0)),
            candidates: Vec::new(),
        }
    }

    /// Whether a draw that ignores a mask, when the mask allows it, is distributed as a
    /// draw under the mask: true unless a nucleus cut (which the mask would move) applies.
    pub fn exact_without_mask(&self) -> bool {
        self.temperature <= 0.0 || self.top_p >= 1.0
    }

    /// Draws a token from `logits` among those `mask` allows (all when `None`; `-inf`
    /// entries never); a temperature of 0 takes the most likely token.
    ///
    /// Without a nucleus cut nothing is sorted; with one, only the head of the distribution
    /// is selected and sorted, growing until it holds `top_p` of the mass.
    pub fn sample(&mut self, logits: &[f32], mask: Option<&SimpleVob>) -> Result<u32, LocalError> {
        let allowed = |id: usize, logit: f32| {
            logit.is_finite() && mask.is_none_or(|m| m.is_allowed(id as u32))
        };
        let best = logits
            .iter()
            .enumerate()
            .filter(|(id, l)| allowed(*id, **l))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(id, l)| (id, *l))
            .ok_or_else(|| LocalError::Grammar("no token is allowed at this point".to_string()))?;
        if self.temperature <= 0.0 {
            return Ok(best.0 as u32);
        }
        // Tokens further below the best than this weigh under e^-30 of it: below f32's
        // resolution of any total that holds the best token, so leaving them out spares
        // nearly the whole vocabulary's `exp` and changes a draw only by rounding.
        let floor = best.1 - NEGLIGIBLE_GAP * self.temperature;
        let candidates = &mut self.candidates;
        candidates.clear();
        candidates.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(id, l)| **l >= floor && allowed(*id, **l))
                .map(|(id, l)| (id as u32, ((l - best.1) / self.temperature).exp())),
        );
        if self.top_p < 1.0 {
            let total: f32 = candidates.iter().map(|(_, p)| p).sum();
            let mut head = FIRST_NUCLEUS_GUESS.min(candidates.len());
            let keep = loop {
                if head < candidates.len() {
                    candidates.select_nth_unstable_by(head - 1, most_likely_first);
                }
                candidates[..head].sort_unstable_by(most_likely_first);
                let mut kept = 0.0;
                let within = candidates[..head].iter().position(|(_, p)| {
                    kept += p / total;
                    kept >= self.top_p
                });
                match within {
                    Some(i) => break i + 1,
                    None if head == candidates.len() => break head,
                    None => head = (head * 4).min(candidates.len()),
                }
            };
            candidates.truncate(keep);
        }
        let kept_total: f32 = candidates.iter().map(|(_, p)| p).sum();
        let mut draw = self.rng.random::<f32>() * kept_total;
        for (id, p) in candidates.iter() {
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
                .sample(&[0.1, 2.0, f32::NEG_INFINITY, 1.9], None)
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
                        .sample(&[1.0, f32::NEG_INFINITY, 1.0, 0.5], None)
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
            assert_eq!(sampler.sample(&[0.0, 5.0, 0.0, 1.0], None).unwrap(), 1);
        }
    }

    #[test]
    fn nothing_allowed_is_an_error() {
        let mut sampler = Sampler::new(None, None, None);
        assert!(sampler.sample(&[f32::NEG_INFINITY; 3], None).is_err());
    }

    /// The old sampler: the whole vocabulary sorted whenever top-p cuts.
    fn full_sort_reference(
        logits: &[f32],
        temperature: f32,
        top_p: f32,
        rng: &mut ChaCha8Rng,
    ) -> u32 {
        let best = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(id, l)| (id as u32, ((l - best) / temperature).exp()))
            .collect();
        let total: f32 = candidates.iter().map(|(_, p)| p).sum();
        candidates.sort_by(most_likely_first);
        let mut kept = 0.0;
        let keep = candidates
            .iter()
            .position(|(_, p)| {
                kept += p / total;
                kept >= top_p
            })
            .map_or(candidates.len(), |i| i + 1);
        candidates.truncate(keep);
        let kept_total: f32 = candidates.iter().map(|(_, p)| p).sum();
        let mut draw = rng.random::<f32>() * kept_total;
        for (id, p) in &candidates {
            if draw < *p {
                return *id;
            }
            draw -= p;
        }
        candidates.last().unwrap().0
    }

    #[test]
    fn partial_nucleus_selection_draws_what_a_full_sort_draws() {
        // A vocabulary-sized, flat-ish distribution: the nucleus needs several head sizes.
        let mut state = 11u64;
        let logits: Vec<f32> = (0..49_152)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                (state >> 41) as f32 / (1u64 << 23) as f32 * 4.0
            })
            .collect();
        for top_p in [0.05, 0.5, 0.9, 0.999] {
            let mut sampler = Sampler::new(Some(0.8), Some(top_p), Some(5));
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            for _ in 0..20 {
                assert_eq!(
                    sampler.sample(&logits, None).unwrap(),
                    full_sort_reference(&logits, 0.8, top_p, &mut rng),
                    "top_p {top_p}"
                );
            }
        }
    }

    #[test]
    fn leaving_out_the_negligible_tail_draws_what_the_whole_vocabulary_draws() {
        // A head of a few likely tokens and a vocabulary-sized tail far below them.
        let mut logits = vec![-40.0f32; 49_152];
        for (i, logit) in [12.0, 11.5, 10.0, 9.0, -5.0].into_iter().enumerate() {
            logits[7 * i + 3] = logit;
        }
        for top_p in [0.9, 1.0] {
            let mut sampler = Sampler::new(Some(0.8), Some(top_p), Some(9));
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            for _ in 0..200 {
                assert_eq!(
                    sampler.sample(&logits, None).unwrap(),
                    full_sort_reference(&logits, 0.8, top_p, &mut rng),
                    "top_p {top_p}"
                );
            }
        }
    }

    #[test]
    fn a_mask_limits_the_draw() {
        let mut mask = SimpleVob::alloc(4);
        mask.allow_token(3);
        let mut sampler = Sampler::new(Some(1.0), None, Some(2));
        for _ in 0..20 {
            assert_eq!(
                sampler.sample(&[5.0, 5.0, 5.0, 0.0], Some(&mask)).unwrap(),
                3
            );
        }
        assert!(sampler.exact_without_mask());
        assert!(!Sampler::new(Some(1.0), Some(0.9), None).exact_without_mask());
    }
}
