//! A sampled tool subset (paper §3.1.2): the tools one dialogue is written around.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One line of `subsets.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Subset {
    /// Position in the file, from 0; dialogue `index` refers to it.
    pub index: u64,
    /// Tool names in the order they were added.
    pub tools: Vec<String>,
    /// How the tools were drawn.
    pub strategy: SamplingStrategy,
    /// The seed this subset was drawn with (derived from the run seed and `index`).
    pub seed: u64,
    /// Fewer tools than asked for: the walk could not find enough distinct tools.
    pub short: bool,
    /// How many times the walk jumped to a fresh uniformly chosen start node because it
    /// was stuck; 0 means every tool was reached along graph edges from the first.
    pub restarts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
/// How a subset's tools are drawn.
pub enum SamplingStrategy {
    /// Random walk on the tool graph (Algorithm 1).
    Graph,
    /// Uniform sample without replacement: the paper's ablation baseline.
    Random,
}
