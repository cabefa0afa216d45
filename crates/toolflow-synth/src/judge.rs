//! The LLM judge (paper §4, Table 15): a model scores a seeded sample of dialogues from 1 to
//! 5 on naturalness, coherence, helpfulness and accuracy, with a comment for each. An answer
//! that does not parse is asked again with another seed; after `attempts` it counts as a
//! failure, never as a score.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use toolflow_core::metrics::{CriterionScore, JudgeMeans, JudgeMetrics, JudgeVerdict};
use toolflow_core::{Dialogue, Turn, content_hash};
use toolflow_llm::{BackendError, ChatRequest, Engine, EngineError, Message};

use crate::context::derive;
use crate::prompts::{PromptKind, Prompts};

pub use toolflow_core::metrics::JUDGE_CRITERIA as CRITERIA;

/// How the judge runs; also the `[judge]` table of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JudgeOptions {
    /// Dialogues judged: a sample of this size, drawn by `seed` (all of them when fewer).
    pub sample: usize,
    /// Draws the sample and seeds the requests.
    pub seed: u64,
    /// The judge's model, by its id in the endpoints; by default the first one drawn.
    pub model: Option<String>,
    /// The requests' sampling temperature (0: the most likely verdict).
    pub temperature: f32,
    /// Answers asked for per dialogue before it counts as a failure.
    pub attempts: u32,
    /// Ask for the JSON form (structured output); off, the Table 15 text form is parsed.
    pub structured: bool,
    /// Dialogues judged at the same time.
    pub concurrency: usize,
    /// The longest comment the JSON form allows, in characters: a bound the answer schema
    /// enforces, so that a small grammar-constrained model closes its verdict in time.
    pub comment_chars: u32,
    /// The judge's answer is cut at this many tokens.
    pub max_tokens: u32,
}

impl Default for JudgeOptions {
    fn default() -> Self {
        JudgeOptions {
            sample: 200,
            seed: 0,
            model: None,
            temperature: 0.0,
            attempts: 3,
            structured: true,
            concurrency: 32,
            comment_chars: 400,
            max_tokens: 1024,
        }
    }
}

/// One dialogue's scores, in [`CRITERIA`] order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The dialogue's id.
    pub id: String,
    /// Scores from 1 to 5.
    pub scores: [u8; 4],
    /// The judge's comment on each score.
    pub comments: [String; 4],
}

pub use toolflow_core::metrics::JudgeFailure;

/// What a judge run found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeReport {
    /// The judge's model.
    pub model: String,
    /// Dialogues in the sample.
    pub sampled: usize,
    /// Mean score per criterion over the judged dialogues; `None` when none was.
    pub means: Option<JudgeMeans>,
    /// Each judged dialogue's verdict.
    pub verdicts: Vec<Verdict>,
    /// Each sampled dialogue the judge gave no usable verdict on.
    pub failures: Vec<JudgeFailure>,
}

/// The criteria's keys in `metrics.json`, as the paper's tables head them (NAT, COH, HELP, ACC).
pub const METRIC_KEYS: [&str; 4] = ["nat", "coh", "help", "acc"];

impl JudgeReport {
    /// The report as the `judge` entry of a run in `metrics.json`: the mean scores under
    /// `value` (none, with a note, when no dialogue got a usable verdict), then who judged
    /// how many with which seed, every verdict with its comments, and every failure.
    pub fn to_metrics(&self, options: &JudgeOptions) -> JudgeMetrics {
        let verdicts = self
            .verdicts
            .iter()
            .map(|verdict| {
                let criterion = |k: usize| CriterionScore {
                    score: verdict.scores[k],
                    comment: verdict.comments[k].clone(),
                };
                JudgeVerdict {
                    id: verdict.id.clone(),
                    naturalness: criterion(0),
                    coherence: criterion(1),
                    helpfulness: criterion(2),
                    accuracy: criterion(3),
                }
            })
            .collect();
        let note = self.verdicts.is_empty().then(|| {
            format!(
                "unavailable: no usable verdict ({} sampled, {} failed)",
                self.sampled,
                self.failures.len()
            )
        });
        JudgeMetrics {
            value: self.means,
            model: Some(self.model.clone()),
            seed: Some(options.seed),
            sampled: Some(self.sampled as u64),
            judged: Some(self.verdicts.len() as u64),
            failed: Some(self.failures.len() as u64),
            verdicts: Some(verdicts),
            failures: Some(self.failures.clone()),
            note,
        }
    }
}

/// The ids of the dialogues a judge with `seed` looks at: the `size` with the smallest
/// hash of (seed, id), so the sample does not depend on the order of the file.
pub fn sample_ids(dialogues: &[Dialogue], size: usize, seed: u64) -> Vec<String> {
    let mut keyed: Vec<(String, &str)> = dialogues
        .iter()
        .map(|d| {
            (
                content_hash(&[b"toolflow-judge", &seed.to_le_bytes(), d.id.as_bytes()]),
                d.id.as_str(),
            )
        })
        .collect();
    keyed.sort();
    keyed
        .into_iter()
        .take(size)
        .map(|(_, id)| id.to_owned())
        .collect()
}

/// Judges the sampled dialogues of `dialogues`.
pub async fn judge(
    engine: &Engine,
    prompts: &Prompts,
    dialogues: &[Dialogue],
    options: &JudgeOptions,
) -> JudgeReport {
    use futures_util::StreamExt;
    let model = options
        .model
        .clone()
        .unwrap_or_else(|| engine.draw_model(options.seed).to_owned());
    let chosen = sample_ids(dialogues, options.sample, options.seed);
    let picked: Vec<&Dialogue> = chosen
        .iter()
        .filter_map(|id| dialogues.iter().find(|d| &d.id == id))
        .collect();
    let results: Vec<Result<Verdict, JudgeFailure>> = futures_util::stream::iter(picked)
        .map(|dialogue| judge_one(engine, prompts, &model, dialogue, options))
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let (mut verdicts, mut failures) = (Vec::new(), Vec::new());
    for result in results {
        match result {
            Ok(verdict) => verdicts.push(verdict),
            Err(failure) => failures.push(failure),
        }
    }
    let means = (!verdicts.is_empty()).then(|| {
        let mean = |k: usize| {
            verdicts.iter().map(|v| f64::from(v.scores[k])).sum::<f64>() / verdicts.len() as f64
        };
        JudgeMeans {
            nat: mean(0),
            coh: mean(1),
            help: mean(2),
            acc: mean(3),
        }
    });
    JudgeReport {
        model,
        sampled: chosen.len(),
        means,
        verdicts,
        failures,
    }
}

async fn judge_one(
    engine: &Engine,
    prompts: &Prompts,
    model: &str,
    dialogue: &Dialogue,
    options: &JudgeOptions,
) -> Result<Verdict, JudgeFailure> {
    let fail = |error: String| JudgeFailure {
        id: dialogue.id.clone(),
        error,
    };
    let prompt = prompts
        .render(
            PromptKind::Judge,
            json!({"dialogue": transcript(dialogue), "structured": options.structured}),
        )
        .map_err(|error| fail(error.to_string()))?;
    let mut last = String::from("no attempt made");
    for attempt in 0..options.attempts.max(1) {
        let mut request = ChatRequest::new(vec![Message::user(prompt.clone())]);
        request.temperature = Some(options.temperature);
        request.max_tokens = Some(options.max_tokens);
        request.seed = Some(derive(&[
            b"toolflow-judge/request",
            &options.seed.to_le_bytes(),
            dialogue.id.as_bytes(),
            &attempt.to_le_bytes(),
        ]));
        if options.structured {
            request.json_schema = Some(verdict_schema(options.comment_chars));
        }
        let answer = match engine.complete(model, "judge", &request).await {
            Ok(answer) => answer,
            // The model answered, only never in the verdict's form: an unusable verdict,
            // asked for again with the next seed like one that does not parse.
            Err(EngineError::Exhausted {
                last: BackendError::InvalidOutput(why),
                ..
            }) => {
                tracing::debug!(id = %dialogue.id, attempt, %why, "unusable verdict");
                last = why;
                continue;
            }
            Err(error) => return Err(fail(error.to_string())),
        };
        let text = answer.text.unwrap_or_default();
        let parsed = if options.structured {
            parse_json(&text)
        } else {
            parse_text(&text)
        };
        match parsed {
            Ok((scores, comments)) => {
                return Ok(Verdict {
                    id: dialogue.id.clone(),
                    scores,
                    comments,
                });
            }
            Err(error) => {
                tracing::debug!(id = %dialogue.id, attempt, %error, "unusable verdict");
                last = error.to_string();
            }
        }
    }
    Err(fail(format!(
        "no usable verdict in {} attempts; the last: {last}",
        options.attempts.max(1)
    )))
}

fn verdict_schema(comment_chars: u32) -> Value {
    let criterion = json!({
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "comment": {"type": "string", "maxLength": comment_chars}
        },
        "required": ["score", "comment"],
        "additionalProperties": false
    });
    json!({
        "type": "object",
        "properties": CRITERIA.iter().map(|name| (name.to_string(), criterion.clone())).collect::<serde_json::Map<_, _>>(),
        "required": CRITERIA,
        "additionalProperties": false
    })
}

type Scores = ([u8; 4], [String; 4]);

/// Why a judge's answer holds no verdict; its text is the failure's `error` in
/// `metrics.json` once the attempts are spent.
#[derive(Debug, thiserror::Error)]
enum VerdictError {
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// The JSON form's score of a criterion is missing or out of range.
    #[error("`{0}` has no score from 1 to 5")]
    BadScore(&'static str),
    /// The text form's line of a criterion has no score from 1 to 5.
    #[error("`{criterion}` has no score from 1 to 5: {line}")]
    BadScoreLine {
        criterion: &'static str,
        line: String,
    },
    /// The text form has no line for a criterion.
    #[error("no score for `{0}`")]
    NoScore(&'static str),
}

fn parse_json(text: &str) -> Result<Scores, VerdictError> {
    let value: Value = serde_json::from_str(text.trim()).map_err(VerdictError::NotJson)?;
    let mut scores = [0u8; 4];
    let mut comments: [String; 4] = Default::default();
    for (k, &name) in CRITERIA.iter().enumerate() {
        let entry = &value[name];
        scores[k] = score(entry["score"].as_u64()).ok_or(VerdictError::BadScore(name))?;
        comments[k] = entry["comment"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_owned();
    }
    Ok((scores, comments))
}

/// The Table 15 form: `N. Criterion: S / 5` then a `Comments:` line, in any order.
fn parse_text(text: &str) -> Result<Scores, VerdictError> {
    let mut scores = [0u8; 4];
    let mut comments: [String; 4] = Default::default();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let plain = line
            .trim()
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == ' ')
            .replace("**", "");
        let lower = plain.to_lowercase();
        if let Some(k) = CRITERIA.iter().position(|name| lower.starts_with(name)) {
            let after = &plain[CRITERIA[k].len()..];
            let number = after
                .trim_start_matches([':', ' ', '['])
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>();
            scores[k] = score(number.parse().ok()).ok_or_else(|| VerdictError::BadScoreLine {
                criterion: CRITERIA[k],
                line: line.to_owned(),
            })?;
            current = Some(k);
        } else if let (Some(k), Some(rest)) = (
            current,
            lower
                .strip_prefix("comments:")
                .map(|_| &plain["comments:".len()..]),
        ) {
            comments[k] = rest.trim().to_owned();
        }
    }
    if let Some(k) = scores.iter().position(|&s| s == 0) {
        return Err(VerdictError::NoScore(CRITERIA[k]));
    }
    Ok((scores, comments))
}

fn score(value: Option<u64>) -> Option<u8> {
    value.filter(|s| (1..=5).contains(s)).map(|s| s as u8)
}

/// The dialogue as the judge reads it: every turn, tool calls and results included.
fn transcript(dialogue: &Dialogue) -> String {
    let mut lines = Vec::new();
    for turn in &dialogue.turns {
        match turn {
            Turn::User(user) => lines.push(format!("User: {}", user.content)),
            Turn::Assistant(assistant) => {
                if let Some(content) = &assistant.content {
                    lines.push(format!("Assistant: {content}"));
                }
                for call in &assistant.tool_calls {
                    lines.push(format!("Assistant calls {}({})", call.name, call.arguments));
                }
            }
            Turn::Tool(result) => {
                lines.push(format!("Tool {} returns: {}", result.name, result.content))
            }
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_answer_forms_parse_and_bad_scores_are_refused() {
        let text = "Evaluation of Synthetic Dialogue Data\n\n1. Naturalness: 4 / 5\n- Comments: Flows well.\n\
                    2. **Coherence**: [3] / 5\nComments: A jump at turn 3.\n3. Helpfulness: 5 / 5\nComments: Useful.\n\
                    4. Accuracy: 2 / 5\nComments: Misquotes the price.";
        let (scores, comments) = parse_text(text).unwrap();
        assert_eq!(scores, [4, 3, 5, 2]);
        assert_eq!(comments[1], "A jump at turn 3.");
        assert!(
            parse_text("1. Naturalness: 7 / 5")
                .unwrap_err()
                .to_string()
                .contains("naturalness")
        );
        assert!(
            parse_text("1. Naturalness: 4 / 5")
                .unwrap_err()
                .to_string()
                .contains("coherence")
        );
        let json = r#"{"naturalness": {"score": 5, "comment": "a"}, "coherence": {"score": 4, "comment": "b"},
                       "helpfulness": {"score": 3, "comment": "c"}, "accuracy": {"score": 1, "comment": "d"}}"#;
        assert_eq!(parse_json(json).unwrap().0, [5, 4, 3, 1]);
        assert!(parse_json(r#"{"naturalness": {"score": 0, "comment": ""}}"#).is_err());
    }
}
