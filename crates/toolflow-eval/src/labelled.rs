//! Scoring the filter on a labelled corpus: dialogue files plus a labels file naming, for
//! each dialogue that should be flagged, the rules that must flag it (`{"id": ["rule",
//! ...]}`); a dialogue without a label must pass every rule. A dialogue is *bad* when one
//! of its labels is a rule at the `reject` level, and must then be rejected; every other
//! dialogue must be kept. Each file is filtered on its own, with a fresh [`Filter`], so a
//! duplicate's original must sit in the same file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::coherence::EmbedFn;
use crate::error::EvalError;
use crate::filter::{Filter, FilterConfig, Level, Rule, rejects};
use crate::input;

/// What the filter said about one labelled dialogue.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The dialogue's id.
    pub id: String,
    /// The dialogue file it was read from.
    pub file: PathBuf,
    /// The rules its label names.
    pub expected: BTreeSet<Rule>,
    /// The rules that flagged it (at `warn` or `reject`).
    pub flagged: BTreeSet<Rule>,
    /// Whether a rule its label names runs at the `reject` level.
    pub should_reject: bool,
    /// Whether the filter rejected it.
    pub rejected: bool,
}

impl Verdict {
    /// Whether the filter did exactly what the label says.
    pub fn agrees(&self) -> bool {
        self.expected == self.flagged && self.should_reject == self.rejected
    }
}

/// The dialogue files of the dev corpus in `dir` (`crates/toolflow-eval/tests/fixtures/gate`),
/// and its labels file: hand-written toolflow dialogues, SGD-style ones, targeted defects,
/// and real output of the embedded model saved from `toolflow run` (`embedded_run16.jsonl`:
/// every dialogue of one 16-dialogue demo run, ids prefixed `run16-`).
pub fn dev_corpus(dir: &Path) -> (Vec<PathBuf>, PathBuf) {
    let files = [
        "good.jsonl",
        "good_sgd.json",
        "bad.jsonl",
        "embedded.jsonl",
        "embedded_run16.jsonl",
    ]
    .iter()
    .map(|name| dir.join(name))
    .collect();
    (files, dir.join("labels.json"))
}

/// Reads a labels file: a JSON object from dialogue id to the rules that must flag it.
fn read_labels(path: &Path) -> Result<BTreeMap<String, BTreeSet<Rule>>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| EvalError::Labels {
        path: path.to_path_buf(),
        detail: source.to_string(),
    })
}

/// Filters each of `files` with `config` (measuring [`Rule::OffPlan`] with `embed` when
/// given) and compares the result with the labels file at `labels_path`. A label naming a
/// dialogue that none of the files holds is an error, so that a typo cannot hide a missed
/// rule.
pub fn judge_corpus(
    files: &[PathBuf],
    labels_path: &Path,
    config: &FilterConfig,
    mut embed: Option<&mut EmbedFn<'_>>,
) -> Result<Vec<Verdict>, EvalError> {
    let labels = read_labels(labels_path)?;
    let mut verdicts = Vec::new();
    for file in files {
        let mut filter = Filter::new(config.clone());
        input::for_each_dialogue(file, |dialogue, _| {
            let reasons = filter.check_with(&dialogue, embed.as_deref_mut());
            let expected = labels.get(&dialogue.id).cloned().unwrap_or_default();
            verdicts.push(Verdict {
                should_reject: expected
                    .iter()
                    .any(|rule| config.level(*rule) == Level::Reject),
                expected,
                flagged: reasons.iter().map(|reason| reason.rule).collect(),
                rejected: rejects(&reasons),
                id: dialogue.id,
                file: file.clone(),
            });
            Ok(())
        })?;
    }
    let seen: BTreeSet<&str> = verdicts.iter().map(|v| v.id.as_str()).collect();
    if let Some(missing) = labels.keys().find(|id| !seen.contains(id.as_str())) {
        return Err(EvalError::Labels {
            path: labels_path.to_path_buf(),
            detail: format!("dialogue {missing:?} is in no corpus file"),
        });
    }
    Ok(verdicts)
}

/// Precision and recall of one rule's flags against the labels.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleScore {
    /// Dialogues labelled with the rule and flagged by it.
    pub true_positives: u64,
    /// Dialogues flagged by the rule without its label.
    pub false_positives: u64,
    /// Dialogues labelled with the rule that it did not flag.
    pub false_negatives: u64,
}

impl RuleScore {
    /// `None` when the rule flagged nothing.
    pub fn precision(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// `None` when no dialogue is labelled with the rule.
    pub fn recall(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// The gate's figures over a labelled corpus.
#[derive(Debug, Clone, Serialize)]
pub struct GateScores {
    /// Dialogues that should be rejected.
    pub bad: u64,
    /// Of those, how many were.
    pub bad_rejected: u64,
    /// Dialogues that should be kept.
    pub good: u64,
    /// Of those, how many were.
    pub good_kept: u64,
    /// Per rule, in [`Rule::ALL`] order.
    pub rules: Vec<(Rule, RuleScore)>,
}

impl GateScores {
    /// Scores `verdicts`.
    pub fn of(verdicts: &[Verdict]) -> Self {
        let mut scores = GateScores {
            bad: 0,
            bad_rejected: 0,
            good: 0,
            good_kept: 0,
            rules: Rule::ALL
                .iter()
                .map(|&rule| (rule, RuleScore::default()))
                .collect(),
        };
        for verdict in verdicts {
            if verdict.should_reject {
                scores.bad += 1;
                scores.bad_rejected += u64::from(verdict.rejected);
            } else {
                scores.good += 1;
                scores.good_kept += u64::from(!verdict.rejected);
            }
            for (rule, score) in &mut scores.rules {
                match (
                    verdict.expected.contains(rule),
                    verdict.flagged.contains(rule),
                ) {
                    (true, true) => score.true_positives += 1,
                    (false, true) => score.false_positives += 1,
                    (true, false) => score.false_negatives += 1,
                    (false, false) => {}
                }
            }
        }
        scores
    }

    /// The share of bad dialogues rejected (the gate's recall).
    pub fn bad_rejected_share(&self) -> Option<f64> {
        ratio(self.bad_rejected, self.bad)
    }

    /// The share of good dialogues kept.
    pub fn good_kept_share(&self) -> Option<f64> {
        ratio(self.good_kept, self.good)
    }

    /// Of the rejected dialogues, the share that are bad (the gate's precision).
    pub fn rejection_precision(&self) -> Option<f64> {
        let wrongly_rejected = self.good - self.good_kept;
        ratio(self.bad_rejected, self.bad_rejected + wrongly_rejected)
    }
}
