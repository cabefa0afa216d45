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
//! # The chain strategy
//!
//! A walk along `return-param` edges forward, so that each added tool can take an output of
//! a tool added before it:
//!
//! 1. **Start** at a node drawn uniformly from those with an outgoing `return-param` edge (any
//!    node when there is none).
//! 2. **Chain.** If the last added node feeds a tool not chosen yet, add one of those consumers
//!    uniformly; otherwise branch from an earlier chosen node that does (uniformly among them).
//!    Each such step records its link: the edge's best (field, parameter) pair.
//! 3. **Fallback.** When no chosen node feeds an unchosen tool, take one step of the graph
//!    strategy (steps 1–2 above, over edges of every kind) and count it in
//!    [`Subset::fallbacks`]; when that fails too, restart as the graph strategy does.
//!
//! A chain subset with no fallback and no restart is a tree of data flow rooted at its first
//! tool: every later tool takes some earlier tool's output.
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
use toolflow_core::graph::UnknownNode;
use toolflow_core::{EdgeKind, SamplingStrategy, Subset, SubsetLink, ToolGraph};

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

/// One `return-param` edge as the chain strategy walks it: the consumer, and the return
/// field and parameter of the edge's best link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardStep {
    /// The consumer's node index.
    pub consumer: u32,
    /// Path of the producer's return field.
    pub field: String,
    /// The consumer's parameter that can take it.
    pub parameter: String,
}

/// The `return-param` edges of `graph` by producer index, consumers ascending.
pub fn forward_steps(graph: &ToolGraph) -> Result<Vec<Vec<ForwardStep>>, UnknownNode> {
    let mut forward: Vec<Vec<ForwardStep>> = vec![Vec::new(); graph.nodes.len()];
    for (edge, (producer, consumer)) in graph.edges.iter().zip(graph.edge_ends()?) {
        if edge.kind != EdgeKind::ReturnParam {
            continue;
        }
        let Some(&(field, parameter)) = edge.evidence.slot_pairs().first() else {
            continue;
        };
        if producer != consumer {
            forward[producer as usize].push(ForwardStep {
                consumer,
                field: field.to_string(),
                parameter: parameter.to_string(),
            });
        }
    }
    for steps in &mut forward {
        // Sorting fixes the order the walk draws from; the first edge of a pair is kept.
        steps.sort_by_key(|step| step.consumer);
        steps.dedup_by_key(|step| step.consumer);
    }
    Ok(forward)
}

/// Draws subsets from one graph; holds scratch space reused across subsets.
pub struct Sampler<'a> {
    adjacency: &'a [Vec<u32>],
    forward: &'a [Vec<ForwardStep>],
    /// Nodes with a forward step: where chains start.
    producers: Vec<u32>,
    chosen_flags: Vec<bool>,
    candidates: Vec<u32>,
    frontier: Vec<u32>,
}

/// What one walk drew.
struct Walk {
    nodes: Vec<u32>,
    /// Chain steps taken: (producer, index of the step in its forward list).
    links: Vec<(u32, usize)>,
    restarts: u32,
    fallbacks: u32,
}

impl<'a> Sampler<'a> {
    /// `adjacency`: sorted neighbour lists by node index, as [`toolflow_core::ToolGraph::adjacency`] gives.
    pub fn new(adjacency: &'a [Vec<u32>]) -> Self {
        Self::with_forward(adjacency, &[])
    }

    /// A sampler that can also walk chains: `forward` as [`forward_steps`] gives (missing or
    /// empty lists make every chain step a fallback).
    pub fn with_forward(adjacency: &'a [Vec<u32>], forward: &'a [Vec<ForwardStep>]) -> Self {
        Sampler {
            adjacency,
            forward,
            producers: (0..forward.len().min(adjacency.len()) as u32)
                .filter(|&n| !forward[n as usize].is_empty())
                .collect(),
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
        let walk = match strategy {
            SamplingStrategy::Graph => self.walk(&mut rng, size, false),
            SamplingStrategy::Chain => self.walk(&mut rng, size, true),
            SamplingStrategy::Random => Walk {
                nodes: self.uniform(&mut rng, size),
                links: Vec::new(),
                restarts: 0,
                fallbacks: 0,
            },
        };
        SampledNodes {
            short: walk.nodes.len() < size,
            nodes: walk.nodes,
            links: walk.links,
            restarts: walk.restarts,
            fallbacks: walk.fallbacks,
            seed,
            index,
            strategy,
        }
    }

    /// The graph walk, or with `chain` the chain walk whose graph steps are its fallbacks.
    fn walk(&mut self, rng: &mut ChaCha8Rng, size: usize, chain: bool) -> Walk {
        let node_count = self.adjacency.len();
        let target = size.min(node_count);
        let mut walk = Walk {
            nodes: Vec::with_capacity(target),
            links: Vec::new(),
            restarts: 0,
            fallbacks: 0,
        };
        if target == 0 {
            return walk;
        }
        let start = if chain && !self.producers.is_empty() {
            pick(rng, &self.producers)
        } else {
            uniform_below(rng, node_count as u64) as u32
        };
        self.add(&mut walk.nodes, start);
        while walk.nodes.len() < target {
            if chain && let Some((producer, step)) = self.chain_step(rng, &walk.nodes) {
                let consumer = self.forward[producer as usize][step].consumer;
                self.add(&mut walk.nodes, consumer);
                walk.links.push((producer, step));
                continue;
            }
            if let Some(next) = self.graph_step(rng, &walk.nodes) {
                self.add(&mut walk.nodes, next);
                walk.fallbacks += u32::from(chain);
                continue;
            }
            let next = self.restart(rng, walk.nodes.len());
            walk.restarts += 1;
            self.add(&mut walk.nodes, next);
        }
        for &node in &walk.nodes {
            self.chosen_flags[node as usize] = false;
        }
        walk
    }

    /// A forward step from the last chosen node, else from a chosen node that has one:
    /// (producer, index of the step).
    fn chain_step(&mut self, rng: &mut ChaCha8Rng, chosen: &[u32]) -> Option<(u32, usize)> {
        let last = *chosen.last().expect("a node was chosen");
        if let Some(step) = self.new_consumer_of(rng, last) {
            return Some((last, step));
        }
        self.frontier.clear();
        for &node in chosen {
            let feeds_new = self.forward.get(node as usize).is_some_and(|steps| {
                steps
                    .iter()
                    .any(|step| !self.chosen_flags[step.consumer as usize])
            });
            if feeds_new {
                self.frontier.push(node);
            }
        }
        if self.frontier.is_empty() {
            return None;
        }
        let from = pick(rng, &self.frontier);
        Some((from, self.new_consumer_of(rng, from)?))
    }

    /// A uniform forward step of `producer` to an unchosen consumer, by index.
    fn new_consumer_of(&mut self, rng: &mut ChaCha8Rng, producer: u32) -> Option<usize> {
        let forward = self.forward;
        let steps = forward.get(producer as usize)?;
        self.candidates.clear();
        self.candidates.extend(
            (0..steps.len() as u32)
                .filter(|&i| !self.chosen_flags[steps[i as usize].consumer as usize]),
        );
        if self.candidates.is_empty() {
            return None;
        }
        Some(pick(rng, &self.candidates) as usize)
    }

    /// One step of Algorithm 1 along edges of any kind: a new neighbour of the last chosen
    /// node, else of a chosen node that has one; none when the chosen nodes are whole
    /// components.
    fn graph_step(&mut self, rng: &mut ChaCha8Rng, chosen: &[u32]) -> Option<u32> {
        let last = *chosen.last().expect("a node was chosen");
        self.new_neighbours_of(last);
        if !self.candidates.is_empty() {
            return Some(pick(rng, &self.candidates));
        }
        self.frontier.clear();
        for &node in chosen {
            if self.adjacency[node as usize]
                .iter()
                .any(|&n| !self.chosen_flags[n as usize])
            {
                self.frontier.push(node);
            }
        }
        if self.frontier.is_empty() {
            return None;
        }
        let from = pick(rng, &self.frontier);
        self.new_neighbours_of(from);
        Some(pick(rng, &self.candidates))
    }

    /// The chosen nodes make up whole components: a uniform node among the rest (there is
    /// one, since fewer than the target, which is at most the node count, are chosen).
    fn restart(&self, rng: &mut ChaCha8Rng, chosen: usize) -> u32 {
        let node_count = self.adjacency.len();
        let mut skip = uniform_below(rng, (node_count - chosen) as u64);
        (0..node_count as u32)
            .filter(|&n| !self.chosen_flags[n as usize])
            .find(|_| {
                let hit = skip == 0;
                skip = skip.wrapping_sub(1);
                hit
            })
            .expect("an unchosen node remains")
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
    /// Position in the subsets file, from 0.
    pub index: u64,
    /// The tools' node indexes, in the order they were added.
    pub nodes: Vec<u32>,
    /// How the tools were drawn.
    pub strategy: SamplingStrategy,
    /// The seed this subset was drawn with.
    pub seed: u64,
    /// Fewer tools than asked for: the walk could not find enough distinct tools.
    pub short: bool,
    /// How many times the walk jumped to a fresh start node because it was stuck.
    pub restarts: u32,
    /// Chain steps: (producer, index of the step in the producer's forward list).
    pub links: Vec<(u32, usize)>,
    /// Chain steps that followed an edge of any kind, no data-flow step being open.
    pub fallbacks: u32,
}

impl SampledNodes {
    /// The subset with names; `forward` is what the subset was sampled with.
    pub fn into_subset(self, names: &[String], forward: &[Vec<ForwardStep>]) -> Subset {
        let name = |node: u32| names[node as usize].clone();
        let links = self
            .links
            .iter()
            .map(|&(producer, step)| {
                let step = &forward[producer as usize][step];
                SubsetLink {
                    producer: name(producer),
                    field: step.field.clone(),
                    consumer: name(step.consumer),
                    parameter: step.parameter.clone(),
                }
            })
            .collect();
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
            links,
            fallbacks: self.fallbacks,
        }
    }
}

/// `count` subsets of `size` nodes, subset `k` drawn with [`subset_seed`]`(seed, k)`, spread
/// over `threads` threads (0: as many as the machine has); the output is the same for any
/// thread count. `forward` ([`forward_steps`]) is what the chain strategy walks.
pub fn sample_subsets(
    adjacency: &[Vec<u32>],
    forward: &[Vec<ForwardStep>],
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
        let mut sampler = Sampler::with_forward(adjacency, forward);
        return (0..count)
            .map(|index| sampler.sample(strategy, size, seed, index))
            .collect();
    }
    let chunk = count.div_ceil(threads as u64);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                scope.spawn(move || {
                    let mut sampler = Sampler::with_forward(adjacency, forward);
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
