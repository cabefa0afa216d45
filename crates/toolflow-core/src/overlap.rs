//! `overlap.json`: how much a training tool set overlaps test sets (paper §7: token n-gram
//! coverage of each tool's JSON, and embedding cosine), per test set and per side.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole `overlap.json`: the measure, the model and the inputs named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OverlapDocument {
    /// What was measured.
    #[serde(flatten)]
    pub report: OverlapReport,
    /// The embedding model the cosines come from.
    pub model: String,
    /// The training tools.
    pub train: TrainTools,
}

/// Where the training tools came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrainTools {
    /// The file or directory.
    pub path: PathBuf,
    /// How many tools it gave.
    pub tools: usize,
}

/// "longer than 10 tokens".
pub const DEFAULT_NGRAM: usize = 11;
/// "more than 10% of the tokens".
pub const DEFAULT_COVERAGE: f64 = 0.10;
/// "cosine similarity … exceeded 0.9".
pub const DEFAULT_COSINE: f64 = 0.9;

/// The thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OverlapOptions {
    /// Tokens per n-gram.
    pub ngram: usize,
    /// Leaked when the contaminated share of tokens is strictly above this.
    pub coverage: f64,
    /// Leaked when the best cosine is strictly above this.
    pub cosine: f64,
}

/// The paper's thresholds.
impl Default for OverlapOptions {
    fn default() -> Self {
        OverlapOptions {
            ngram: DEFAULT_NGRAM,
            coverage: DEFAULT_COVERAGE,
            cosine: DEFAULT_COSINE,
        }
    }
}

/// A count and its share of the tools, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LeakCount {
    /// Tools leaked.
    pub leaked: usize,
    /// Their share of the side's tools.
    pub percent: f64,
}

/// Leak counts of one side (training tools or test tools) by each criterion and by either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SideSummary {
    /// The side's tools.
    pub tools: usize,
    /// Leaked by n-gram coverage.
    pub ngram: LeakCount,
    /// Leaked by embedding cosine.
    pub similarity: LeakCount,
    /// Leaked by either.
    pub either: LeakCount,
    /// The highest n-gram coverage and cosine of any tool, leaked or not: how close the
    /// sets come.
    pub max_ngram_coverage: f64,
    /// The highest cosine of any tool to the other set.
    pub max_cosine: f32,
}

/// One leaked tool, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LeakedTool {
    /// The tool.
    pub name: String,
    /// Share of its JSON tokens in n-grams that the other set also has.
    pub ngram_coverage: f64,
    /// The other set's tool with the highest cosine, and that cosine.
    pub best_match: String,
    /// The cosine to `best_match`.
    pub cosine: f32,
    /// Leaked by n-gram coverage.
    pub by_ngram: bool,
    /// Leaked by embedding cosine.
    pub by_similarity: bool,
}

/// The overlap of the training tools with one test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TestSetOverlap {
    /// The test set's name.
    pub name: String,
    /// Training tools leaked from this test set.
    pub train: SideSummary,
    /// Test tools leaked into the training set (Table 9's reading).
    pub test: SideSummary,
    /// The leaked training tools, in training order.
    pub leaked: Vec<LeakedTool>,
    /// The leaked test tools, in test-set order.
    pub leaked_test_tools: Vec<LeakedTool>,
    /// Where the test set was read from.
    pub path: PathBuf,
}

/// The measure over every test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OverlapReport {
    /// The thresholds.
    pub options: OverlapOptions,
    /// The word tokenizer of the n-grams.
    pub tokenizer: String,
    /// What of a tool is compared as JSON.
    pub tool_json: String,
    /// What of a tool is embedded.
    pub embedded_text: String,
    /// The training tools.
    pub train_tools: usize,
    /// One entry per test set, in the order given.
    pub test_sets: Vec<TestSetOverlap>,
}
