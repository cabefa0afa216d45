//! Near-duplicate detection: MinHash signatures over word shingles, banded LSH to find
//! candidates, and the signature agreement as the Jaccard estimate.
//!
//! A dialogue's shingles are its runs of `shingle_words` consecutive `words-v1` words over
//! all its text (a dialogue shorter than that is one shingle). Each shingle is hashed once
//! (64-bit FNV-1a over its words); permutation `i` is `splitmix64(h ^ seed_i)`, with
//! `seed_i` drawn from splitmix64 started at the configured seed. Everything is integer
//! arithmetic on fixed constants, so a seed gives the same signatures on every machine.
//!
//! The index is filled in input order and only with dialogues that are kept, so of a group
//! of near-duplicates the first one is kept.

use std::collections::HashMap;

/// Estimated Jaccard similarity of two signatures: the share of equal slots.
pub fn estimated_jaccard(a: &[u64], b: &[u64]) -> f64 {
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f64 / a.len().max(1) as f64
}

/// The splitmix64 finaliser: a fixed, well-mixing 64-bit hash, used for the permutations,
/// their seeds and the band keys.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv1a(words: &[String]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for word in words {
        for &byte in word.as_bytes().iter().chain(&[0xff]) {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Computes signatures with a fixed, seeded family of hash functions.
#[derive(Debug, Clone)]
pub struct MinHasher {
    seeds: Vec<u64>,
    shingle_words: usize,
}

impl MinHasher {
    /// `hashes` hash functions seeded from `seed`, over shingles of `shingle_words` words
    /// (at least 1).
    pub fn new(hashes: usize, shingle_words: usize, seed: u64) -> Self {
        let mut state = seed;
        let seeds = (0..hashes)
            .map(|_| {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                splitmix64(state)
            })
            .collect();
        MinHasher {
            seeds,
            shingle_words: shingle_words.max(1),
        }
    }

    /// The signature of a word sequence; all `u64::MAX` for no words at all.
    pub fn signature(&self, words: &[String]) -> Vec<u64> {
        let mut signature = vec![u64::MAX; self.seeds.len()];
        if words.is_empty() {
            return signature;
        }
        let width = self.shingle_words.min(words.len());
        for shingle in words.windows(width) {
            let base = fnv1a(shingle);
            for (slot, seed) in signature.iter_mut().zip(&self.seeds) {
                *slot = (*slot).min(splitmix64(base ^ seed));
            }
        }
        signature
    }
}

/// Banded locality-sensitive hashing over the signatures of kept dialogues.
#[derive(Debug, Default)]
pub struct LshIndex {
    bands: usize,
    buckets: HashMap<(usize, u64), Vec<usize>>,
    signatures: Vec<Vec<u64>>,
}

impl LshIndex {
    /// An empty index cutting signatures into `bands` bands (at least 1).
    pub fn new(bands: usize) -> Self {
        LshIndex {
            bands: bands.max(1),
            ..Default::default()
        }
    }

    fn band_keys<'a>(&self, signature: &'a [u64]) -> impl Iterator<Item = (usize, u64)> + 'a {
        let rows = signature.len().div_ceil(self.bands).max(1);
        signature
            .chunks(rows)
            .enumerate()
            .map(|(band, rows)| (band, rows.iter().fold(0u64, |acc, &r| splitmix64(acc ^ r))))
    }

    /// The earliest indexed signature whose estimated Jaccard with `signature` reaches
    /// `threshold`, with that estimate.
    pub fn find(&self, signature: &[u64], threshold: f64) -> Option<(usize, f64)> {
        let mut candidates: Vec<usize> = self
            .band_keys(signature)
            .filter_map(|key| self.buckets.get(&key))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates.into_iter().find_map(|candidate| {
            let similarity = estimated_jaccard(signature, &self.signatures[candidate]);
            (similarity >= threshold).then_some((candidate, similarity))
        })
    }

    /// Adds a signature; returns its position, the number [`LshIndex::find`] reports.
    pub fn insert(&mut self, signature: Vec<u64>) -> usize {
        let position = self.signatures.len();
        let keys: Vec<_> = self.band_keys(&signature).collect();
        for key in keys {
            self.buckets.entry(key).or_default().push(position);
        }
        self.signatures.push(signature);
        position
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::words;

    #[test]
    fn signatures_estimate_jaccard_and_are_seeded() {
        let hasher = MinHasher::new(256, 2, 7);
        let a = words("one two three four five six seven eight nine ten");
        let b = words("one two three four five six seven eight nine eleven");
        // Two-word shingles: 9 each, 8 shared → Jaccard 8/10.
        let estimate = estimated_jaccard(&hasher.signature(&a), &hasher.signature(&b));
        assert!((estimate - 0.8).abs() < 0.1, "{estimate}");
        assert_eq!(
            hasher.signature(&a),
            MinHasher::new(256, 2, 7).signature(&a)
        );
        assert_ne!(
            hasher.signature(&a),
            MinHasher::new(256, 2, 8).signature(&a)
        );
        let c = words("completely different text about the weather in lyon today");
        assert!(estimated_jaccard(&hasher.signature(&a), &hasher.signature(&c)) < 0.1);
    }

    #[test]
    fn index_finds_the_earliest_near_copy() {
        let hasher = MinHasher::new(128, 3, 0);
        let mut index = LshIndex::new(32);
        let text = "please book a table for two at the italian place near the station tonight";
        index.insert(hasher.signature(&words("nothing alike at all in this one sentence")));
        index.insert(hasher.signature(&words(text)));
        index.insert(hasher.signature(&words(text)));
        let (found, similarity) = index.find(&hasher.signature(&words(text)), 0.9).unwrap();
        assert_eq!((found, similarity), (1, 1.0));
    }
}
