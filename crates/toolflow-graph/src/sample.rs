//! Sampling tool subsets (paper §3.1.2).
//!
//! # The graph strategy: Algorithm 1, made total
//!
//! The paper starts at a uniformly chosen node and repeatedly draws a uniform neighbour of the
//! *last added* node, adding it when it is new. Taken literally that loop never ends at a
//! dead end (a node whose neighbours are all chosen already) or in a component smaller than
//! the subset size. Here every step adds exactly one node, so a subset of size `n` takes at
//! most `n - 1` steps and nothing can hang:
//!
//! 1. **Walk.** Let `v` be the last added node. If `v` has neighbours not yet chosen, add one
//!    of them uniformly. (Drawing a uniform neighbour and redrawing on repeats, as the paper
//!    does, ends in exactly this distribution; drawing among the new ones directly is bounded.)
//! 2. **Dead end.** Otherwise, continue the walk from an already chosen node: pick uniformly
//!    one of the chosen nodes that still has a neighbour not chosen, and add one of those
//!    neighbours uniformly. The subset stays connected.
//! 3. **Exhausted component.** If no chosen node has a new neighbour, the chosen nodes form a
//!    whole connected component smaller than `n`: restart at a node drawn uniformly from those
//!    not chosen yet, and count the restart in [`Subset::restarts`]. A subset with
//!    `restarts == 0` is therefore always connected in the graph.
//! 4. **Too few nodes.** When every node is chosen before reaching `n` (`n` larger than the
//!    graph), the subset is returned as it is, marked [`Subset::short`].
//!
//! # The random strategy
//!
//! The paper's ablation baseline: `n` nodes uniformly without replacement (a partial
//! Fisher–Yates shuffle), short when the graph has fewer than `n` nodes.
//!
//! # Seeds
//!
//! Subset `k` of a run with seed `s` is drawn from its own ChaCha8 stream keyed by
//! [`subset_seed`]`(s, k)`, so each subset depends only on `(s, k)` and never on the number
//! of threads or on the other subsets. Uniform integers come from [`uniform_below`] (Lemire's
//! multiply-and-reject method on `next_u64`), not from `rand`'s range helpers, whose outputs
//! may change between `rand` versions: the same seed gives the same file on every machine.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use toolflow_core::{SamplingStrategy, Subset};

/// The seed of subset `index` in a run seeded with `seed`: SplitMix64 of both, mixed so that
/// nearby seeds and indexes give unrelated streams.
pub fn subset_seed(seed: u64, index: u64) -> u64 {
    splitmix64(seed ^ splitmix64(index.wrapping_add(0x5EED)))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The RNG of one subset: ChaCha8 keyed by the subset seed (little-endian, zero-padded).
pub fn subset_rng(subset_seed: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&subset_seed.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// A uniform integer in `0..bound` (`bound > 0`), by Lemire's method: the high half of
/// `x · bound` for a uniform 64-bit `x`, rejecting the few `x` that would bias it.
pub fn uniform_below(rng: &mut impl Rng, bound: u64) -> u64 {
    assert!(bound > 0, "uniform_below needs a non-empty range");
    let mut product = u128::from(rng.next_u64()) * u128::from(bound);
    if (product as u64) < bound {
        let threshold = bound.wrapping_neg() % bound;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(bound);
        }
    }
    (product >> 64) as u64
}

fn pick<T: Copy>(rng: &mut impl Rng, items: &[T]) -> T {
    items[uniform_below(rng, items.len() as u64) as usize]
}

/// Draws subsets from one graph; holds scratch space reused across subsets.
pub struct Sampler<'a> {
    adjacency: &'a [Vec<u32>],
    chosen_flags: Vec<bool>,
    candidates: Vec<u32>,
    frontier: Vec<u32>,
}

impl<'a> Sampler<'a> {
    /// `adjacency`: sorted neighbour lists by node index, as [`toolflow_core::ToolGraph::adjacency`] gives.
    pub fn new(adjacency: &'a [Vec<u32>]) -> Self {
        Sampler {
            adjacency,
            chosen_flags: vec![false; adjacency.len()],
            candidates: Vec::new(),
            frontier: Vec::new(),
        }
    }

    /// Subset `index` of a run: node indexes in the order added, with its seed and flags.
    pub fn sample(
        &mut self,
        strategy: SamplingStrategy,
        size: usize,
        seed: u64,
        index: u64,
    ) -> SampledNodes {
        let seed = subset_seed(seed, index);
        let mut rng = subset_rng(seed);
        let (nodes, restarts) = match strategy {
            SamplingStrategy::Graph => self.walk(&mut rng, size),
            SamplingStrategy::Random => (self.uniform(&mut rng, size), 0),
        };
        SampledNodes {
            short: nodes.len() < size,
            nodes,
            restarts,
            seed,
            index,
            strategy,
        }
    }

    fn walk(&mut self, rng: &mut ChaCha8Rng, size: usize) -> (Vec<u32>, u32) {
        let node_count = self.adjacency.len();
        let target = size.min(node_count);
        let mut chosen: Vec<u32> = Vec::with_capacity(target);
        let mut restarts = 0;
        if target == 0 {
            return (chosen, 0);
        }
        self.add(&mut chosen, uniform_below(rng, node_count as u64) as u32);
        while chosen.len() < target {
            let last = *chosen.last().expect("a node was chosen");
            self.new_neighbours_of(last);
            if !self.candidates.is_empty() {
                let next = pick(rng, &self.candidates);
                self.add(&mut chosen, next);
                continue;
            }
            self.frontier.clear();
            for &node in &chosen {
                if self.adjacency[node as usize]
                    .iter()
                    .any(|&n| !self.chosen_flags[n as usize])
                {
                    self.frontier.push(node);
                }
            }
            if !self.frontier.is_empty() {
                let from = pick(rng, &self.frontier);
                self.new_neighbours_of(from);
                let next = pick(rng, &self.candidates);
                self.add(&mut chosen, next);
                continue;
            }
            // The chosen nodes make up whole components: restart among the rest (there is
            // one, since chosen.len() < target <= node_count).
            let remaining = (node_count - chosen.len()) as u64;
            let mut skip = uniform_below(rng, remaining);
            let next = (0..node_count as u32)
                .filter(|&n| !self.chosen_flags[n as usize])
                .find(|_| {
                    let hit = skip == 0;
                    skip = skip.wrapping_sub(1);
                    hit
                })
                .expect("an unchosen node remains");
            restarts += 1;
            self.add(&mut chosen, next);
        }
        for &node in &chosen {
            self.chosen_flags[node as usize] = false;
        }
        (chosen, restarts)
    }

    fn add(&mut self, chosen: &mut Vec<u32>, node: u32) {
        self.chosen_flags[node as usize] = true;
        chosen.push(node);
    }

    fn new_neighbours_of(&mut self, node: u32) {
        self.candidates.clear();
        let flags = &self.chosen_flags;
        self.candidates.extend(
            self.adjacency[node as usize]
                .iter()
                .filter(|&&n| !flags[n as usize]),
        );
    }

    /// A partial Fisher–Yates shuffle of `0..node_count`, touching only the swapped slots.
    fn uniform(&mut self, rng: &mut ChaCha8Rng, size: usize) -> Vec<u32> {
        let node_count = self.adjacency.len();
        let target = size.min(node_count);
        let mut swapped: std::collections::HashMap<u32, u32> =
            std::collections::HashMap::with_capacity(target);
        let mut chosen = Vec::with_capacity(target);
        for position in 0..target as u32 {
            let other = position + uniform_below(rng, (node_count as u32 - position) as u64) as u32;
            let at_other = *swapped.get(&other).unwrap_or(&other);
            let at_position = *swapped.get(&position).unwrap_or(&position);
            swapped.insert(other, at_position);
            chosen.push(at_other);
        }
        chosen
    }
}

/// A subset as node indexes, before names are attached.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledNodes {
    pub index: u64,
    pub nodes: Vec<u32>,
    pub strategy: SamplingStrategy,
    pub seed: u64,
    pub short: bool,
    pub restarts: u32,
}

impl SampledNodes {
    pub fn into_subset(self, names: &[String]) -> Subset {
        Subset {
            index: self.index,
            tools: self
                .nodes
                .iter()
                .map(|&n| names[n as usize].clone())
                .collect(),
            strategy: self.strategy,
            seed: self.seed,
            short: self.short,
            restarts: self.restarts,
        }
    }
}

/// `count` subsets of `size` nodes, subset `k` drawn with [`subset_seed`]`(seed, k)`, spread
/// over `threads` threads (0: as many as the machine has); the output is the same for any
/// thread count.
pub fn sample_subsets(
    adjacency: &[Vec<u32>],
    strategy: SamplingStrategy,
    size: usize,
    count: u64,
    seed: u64,
    threads: usize,
) -> Vec<SampledNodes> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    // Below a few thousand subsets a thread costs more than it saves.
    let threads = threads.min((count / 4096).max(1) as usize);
    if threads <= 1 {
        let mut sampler = Sampler::new(adjacency);
        return (0..count)
            .map(|index| sampler.sample(strategy, size, seed, index))
            .collect();
    }
    let chunk = count.div_ceil(threads as u64);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                scope.spawn(move || {
                    let mut sampler = Sampler::new(adjacency);
                    let range = t * chunk..((t + 1) * chunk).min(count);
                    range
                        .map(|index| sampler.sample(strategy, size, seed, index))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a sampling thread panicked"))
            .collect()
    })
}
