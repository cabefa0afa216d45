//! The judge gate ([`Rule::Judge`]): after the rules, the LLM judge's scores decide. This
//! crate asks no model; the caller judges the kept dialogues and hands the verdicts in.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use super::{FilterSummary, PartialFile};
use crate::error::EvalError;
use toolflow_core::metrics::JUDGE_CRITERIA as CRITERIA;
use toolflow_core::rejection::{Level, Reason, Rule};

/// The lowest scores (1 to 5) a kept dialogue may have: `judge-min = 3.5` on the mean of the
/// four criteria, or `judge-min = { coherence = 4, accuracy = 4 }` per criterion.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum JudgeMin {
    /// The lowest mean of the four criteria's scores.
    Overall(f32),
    /// The lowest score per criterion named; a criterion left out is not checked.
    PerCriterion(BTreeMap<String, f32>),
}

impl JudgeMin {
    /// Why the settings cannot work, if they cannot: a criterion Table 15 does not have, or a
    /// minimum outside 1 to 5.
    pub fn problem(&self) -> Option<String> {
        let out_of_range = |min: f32| !(1.0..=5.0).contains(&min);
        match self {
            JudgeMin::Overall(min) if out_of_range(*min) => {
                Some(format!("judge-min {min} is outside 1 to 5"))
            }
            JudgeMin::Overall(_) => None,
            JudgeMin::PerCriterion(mins) if mins.is_empty() => {
                Some("judge-min names no criterion".into())
            }
            JudgeMin::PerCriterion(mins) => mins.iter().find_map(|(name, &min)| {
                if !CRITERIA.contains(&name.as_str()) {
                    Some(format!(
                        "judge-min: unknown criterion `{name}` (one of {})",
                        CRITERIA.join(", ")
                    ))
                } else if out_of_range(min) {
                    Some(format!("judge-min.{name} {min} is outside 1 to 5"))
                } else {
                    None
                }
            }),
        }
    }

    /// What in `scores` falls short, in words; `None` when the dialogue passes.
    pub fn shortfall(&self, scores: [u8; 4]) -> Option<String> {
        match self {
            JudgeMin::Overall(min) => {
                let mean = scores.iter().map(|&s| f32::from(s)).sum::<f32>() / 4.0;
                (mean < *min).then(|| {
                    format!(
                        "judge's mean score {mean:.2} (scores {scores:?}) is below judge-min {min}"
                    )
                })
            }
            JudgeMin::PerCriterion(mins) => {
                let short: Vec<String> = CRITERIA
                    .iter()
                    .zip(scores)
                    .filter_map(|(name, score)| {
                        let min = *mins.get(*name)?;
                        (f32::from(score) < min).then(|| format!("{name} {score} < {min}"))
                    })
                    .collect();
                (!short.is_empty()).then(|| format!("judge scored {}", short.join(", ")))
            }
        }
    }
}

/// Moves the dialogues of `kept` whose verdict falls short of `min` into `rejected`, each
/// with a [`Rule::Judge`] reason, and counts them in `summary`. `verdicts` maps dialogue ids
/// to scores; a dialogue without one (the judge gave no usable answer) stays kept and is
/// counted in [`FilterSummary::judge_unscored`]. Both files are rewritten whole, under
/// `.partial` names renamed when complete.
pub fn apply_judge_gate(
    kept: &Path,
    rejected: &Path,
    verdicts: &HashMap<String, [u8; 4]>,
    min: &JudgeMin,
    summary: &mut FilterSummary,
) -> Result<(), EvalError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let kept_text = read(kept)?;
    let rejected_text = read(rejected)?;
    let mut kept_out = PartialFile::create(kept)?;
    let mut rejected_out = PartialFile::create(rejected)?;
    for line in rejected_text.lines() {
        rejected_out.line(line)?;
    }
    let count = summary
        .rules
        .iter()
        .position(|count| count.rule == Rule::Judge)
        .expect("every rule is counted");
    summary.rules[count].level = Level::Reject;
    for (number, line) in kept_text.lines().enumerate() {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let id: Id = serde_json::from_str(line).map_err(|source| EvalError::Json {
            path: kept.to_path_buf(),
            line: number + 1,
            source,
        })?;
        let Some(&scores) = verdicts.get(&id.id) else {
            summary.judge_unscored += 1;
            kept_out.line(line)?;
            continue;
        };
        match min.shortfall(scores) {
            None => kept_out.line(line)?,
            Some(detail) => {
                let reasons = vec![Reason {
                    rule: Rule::Judge,
                    level: Level::Reject,
                    turn: None,
                    pointer: None,
                    detail,
                }];
                let reasons = serde_json::to_string(&reasons).expect("reasons serialise");
                rejected_out.line(&format!("{{\"reasons\":{reasons},\"dialogue\":{line}}}"))?;
                summary.kept -= 1;
                summary.rejected += 1;
                summary.rules[count].dialogues += 1;
                summary.rules[count].reasons += 1;
            }
        }
    }
    kept_out.finish()?;
    rejected_out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_and_per_criterion_minimums() {
        let overall = JudgeMin::Overall(3.5);
        assert_eq!(overall.shortfall([4, 4, 3, 3]), None);
        let short = overall.shortfall([4, 3, 3, 3]).unwrap();
        assert!(short.contains("3.25"), "{short}");

        let per = JudgeMin::PerCriterion(BTreeMap::from([("accuracy".to_string(), 4.0)]));
        assert_eq!(per.shortfall([1, 1, 1, 4]), None);
        assert_eq!(
            per.shortfall([5, 5, 5, 3]).unwrap(),
            "judge scored accuracy 3 < 4"
        );
    }

    #[test]
    fn impossible_minimums_are_named() {
        assert!(
            JudgeMin::Overall(6.0)
                .problem()
                .unwrap()
                .contains("outside")
        );
        let typo = JudgeMin::PerCriterion(BTreeMap::from([("coherance".to_string(), 3.0)]));
        assert!(typo.problem().unwrap().contains("`coherance`"));
        assert_eq!(JudgeMin::Overall(3.0).problem(), None);
    }
}
