//! `metrics.json`: what `toolflow eval` (and the run's eval stage) measured, one entry per
//! dataset file, side by side. Every writer and reader goes through these types; a measure
//! that cannot be taken is `{"value": null, "note": why}`, never left out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsDocument {
    /// How text was cut into words for every count.
    pub tokenizer: TokenizerInfo,
    /// What the counts mean.
    pub definitions: Definitions,
    /// One entry per dataset file.
    pub runs: Vec<RunMetrics>,
}

/// The word tokenizer the counts use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenizerInfo {
    /// Its name and version (`words-v1`).
    pub name: String,
    /// The rule, in words.
    pub rule: String,
}

/// What the counts mean, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Definitions {
    /// What `tokens` counts.
    pub tokens: String,
    /// What the diversity measures are taken over.
    pub diversity: String,
    /// What a chitchat round is.
    pub chitchat_share: String,
    /// What makes a call chained. Empty in files written before it was counted.
    #[serde(default)]
    pub chained_calls: String,
    /// When a planned link counts as realised. Empty in files written before it was counted.
    #[serde(default)]
    pub links_realised: String,
}

/// The format a dataset file was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DialogueFormat {
    /// toolflow dialogue records, one per line.
    ToolflowJsonl,
    /// toolflow dialogue records in one JSON array.
    ToolflowArray,
    /// Schema-Guided Dialogue (DSTC8) files, and MultiWOZ 2.2 in the same schema.
    Sgd,
    /// MultiWOZ 2.0/2.1 `data.json` files.
    Multiwoz,
}

/// Every measure of one dataset file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunMetrics {
    /// The file's stem, to label the run in tables.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// How it was read.
    pub format: DialogueFormat,
    /// Table 1 and the counts around it.
    pub statistics: Statistics,
    /// Entropy and Distinct-3.
    pub diversity: Diversity,
    /// SS and EnR (appendix A.1).
    pub coherence: CoherenceMetrics,
    /// The LLM judge's NAT, COH, HELP, ACC (Table 15).
    pub judge: JudgeMetrics,
}

/// Table 1 and the counts around it, for one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Statistics {
    /// Dialogues read.
    pub dialogues: u64,
    /// Every turn: user, assistant and tool.
    pub turns: u64,
    /// User turns.
    pub user_turns: u64,
    /// Assistant turns, with or without calls.
    pub assistant_turns: u64,
    /// Tool result turns.
    pub tool_turns: u64,
    /// `words-v1` words over all text, tool calls and results included (the paper's `# token`).
    pub tokens: u64,
    /// `words-v1` words over user and assistant text only.
    pub utterance_tokens: u64,
    /// The paper's `# call`.
    pub tool_calls: u64,
    /// Assistant turns with at least one call: the paper's `# call turn`.
    pub call_turns: u64,
    /// A round is a user turn and everything up to the next user turn.
    pub rounds: u64,
    /// Rounds in which the assistant called a tool.
    pub tool_rounds: u64,
    /// Rounds without a call whose reply is a question leading (through more such rounds) to
    /// a round with a call: the assistant asking for a missing argument.
    pub clarification_rounds: u64,
    /// The other rounds without a call: the assistant answering directly.
    pub chitchat_rounds: u64,
    /// `chitchat_rounds / rounds`.
    pub chitchat_share: f64,
    /// The share of user turns on a plan step of kind `chitchat`, over user turns that name
    /// a plan step; null when no dialogue has a plan (human data, the plan-off ablation).
    pub plan_chitchat_share: Option<f64>,
    /// Calls by tool name, over the whole dataset.
    pub calls_per_tool: BTreeMap<String, u64>,
    /// Mean calls per tool that was called at least once.
    pub mean_calls_per_called_tool: f64,
    /// Mean number of tools offered to a dialogue (`Dialogue.tools`).
    pub mean_tools_per_dialogue: f64,
    /// Mean number of distinct tools a dialogue actually calls.
    pub mean_called_tools_per_dialogue: f64,
    /// Tool calls with an argument value equal to a value of an earlier tool result (not an
    /// error) of the same dialogue: data passed from one call to another. Booleans, nulls,
    /// blank strings and the integers 0–9 are left out, as they match by chance
    /// ([`crate::links::chained_calls`]). 0 in files measured before it was counted.
    #[serde(default)]
    pub chained_calls: u64,
    /// `chained_calls / tool_calls`.
    #[serde(default)]
    pub chained_call_share: f64,
    /// Data-flow links planned for the dialogues (`Dialogue.links`: chain subsets).
    #[serde(default)]
    pub links_planned: u64,
    /// Planned links a call realised.
    #[serde(default)]
    pub links_realised: u64,
    /// `links_realised / links_planned`; null when no dialogue has links.
    #[serde(default)]
    pub links_realised_share: Option<f64>,
}

/// Diversity of the utterance text of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Diversity {
    /// Shannon entropy, in bits, of the word unigram distribution: `-Σ p(w) log2 p(w)` with
    /// `p(w) = count(w) / words`. The paper does not state the base; base 2 is the usual
    /// one and the only one that puts its reported values (9.75–10.36) in the range of
    /// English unigram entropy, which is about 7 in nats.
    pub entropy_bits: f64,
    /// Distinct word trigrams over all word trigrams (Li et al. 2016, N = 3), over the whole
    /// dataset. Trigrams are taken within one utterance, never across turns.
    pub distinct_3: f64,
    /// Words of utterance text.
    pub words: u64,
    /// Distinct words.
    pub vocabulary: u64,
    /// Word trigrams.
    pub trigrams: u64,
    /// Distinct word trigrams.
    pub distinct_trigrams: u64,
}

/// SS and EnR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CoherenceMetrics {
    /// Semantic similarity between consecutive rounds.
    pub ss: SsMeasure,
    /// Entailment ratio between consecutive rounds.
    pub enr: EnrMeasure,
}

impl CoherenceMetrics {
    /// Both measures without a value, for `note`.
    pub fn unavailable(note: &str) -> Self {
        CoherenceMetrics {
            ss: SsMeasure::unavailable(note),
            enr: EnrMeasure::unavailable(note),
        }
    }
}

/// SS: the mean cosine between a round and the next one's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SsMeasure {
    /// The mean cosine; null when it was not (or could not be) measured.
    pub value: Option<f64>,
    /// Round pairs measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<u64>,
    /// Distinct texts embedded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<u64>,
    /// The embedding model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why there is no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl SsMeasure {
    /// No value, for `note`.
    pub fn unavailable(note: &str) -> Self {
        SsMeasure {
            value: None,
            pairs: None,
            texts: None,
            model: None,
            note: Some(note.to_string()),
        }
    }
}

/// EnR: the share of round pairs the NLI model finds entailed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnrMeasure {
    /// Entailed pairs over pairs; null when not measured.
    pub value: Option<f64>,
    /// Round pairs classified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<u64>,
    /// Of those, entailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entailed: Option<u64>,
    /// The NLI model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why there is no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl EnrMeasure {
    /// No value, for `note`.
    pub fn unavailable(note: &str) -> Self {
        EnrMeasure {
            value: None,
            pairs: None,
            entailed: None,
            model: None,
            note: Some(note.to_string()),
        }
    }
}

/// The LLM judge's scores on a sample of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JudgeMetrics {
    /// The mean score per criterion; null when no dialogue got a usable verdict (or the
    /// judge did not run).
    pub value: Option<JudgeMeans>,
    /// The judge's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The seed that drew the sample and seeded the requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Dialogues drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<u64>,
    /// Dialogues with a usable verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged: Option<u64>,
    /// Dialogues whose every attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    /// Every verdict, with its comments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<Vec<JudgeVerdict>>,
    /// Every failure, with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<JudgeFailure>>,
    /// Why there is no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl JudgeMetrics {
    /// No value, for `note`.
    pub fn unavailable(note: &str) -> Self {
        JudgeMetrics {
            value: None,
            model: None,
            seed: None,
            sampled: None,
            judged: None,
            failed: None,
            verdicts: None,
            failures: None,
            note: Some(note.to_string()),
        }
    }
}

/// The judge's criteria (Table 15), in the order every verdict's scores come.
pub const JUDGE_CRITERIA: [&str; 4] = ["naturalness", "coherence", "helpfulness", "accuracy"];

/// Mean scores (1–5), as the paper's tables head them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JudgeMeans {
    /// Naturalness.
    pub nat: f64,
    /// Coherence.
    pub coh: f64,
    /// Helpfulness.
    pub help: f64,
    /// Accuracy.
    pub acc: f64,
}

/// One dialogue's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JudgeVerdict {
    /// The dialogue's id.
    pub id: String,
    /// How natural the turns read.
    pub naturalness: CriterionScore,
    /// How well the turns follow each other.
    pub coherence: CriterionScore,
    /// How well the assistant served the user.
    pub helpfulness: CriterionScore,
    /// How correct the calls and answers are.
    pub accuracy: CriterionScore,
}

/// One criterion's score and the judge's comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CriterionScore {
    /// 1 to 5.
    pub score: u8,
    /// Why.
    pub comment: String,
}

/// A dialogue the judge could not score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JudgeFailure {
    /// The dialogue's id.
    pub id: String,
    /// The last attempt's error.
    pub error: String,
}
