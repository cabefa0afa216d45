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
    /// `chain` only: the data-flow link behind each chain step, in order (a later tool can take
    /// an earlier tool's output).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<SubsetLink>,
    /// `chain` only: steps that followed a graph edge of any kind because no tool chosen so far
    /// had an output an unchosen tool could take (restarts are counted apart).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fallbacks: u32,
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

/// One data-flow link of a chain subset: `producer`'s return field `field` can be passed as
/// `consumer`'s `parameter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubsetLink {
    /// The tool whose result holds the value.
    pub producer: String,
    /// Path of the return field, e.g. `results[].id`, `location.name`.
    pub field: String,
    /// The tool that takes it.
    pub consumer: String,
    /// The consumer's parameter.
    pub parameter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
/// How a subset's tools are drawn.
pub enum SamplingStrategy {
    /// Random walk on the tool graph (Algorithm 1).
    Graph,
    /// Uniform sample without replacement: the paper's ablation baseline.
    Random,
    /// A walk along `return-param` edges forward, so that a later tool can take an earlier
    /// tool's output; graph steps where a chain cannot grow ([`Subset::fallbacks`]).
    Chain,
}
