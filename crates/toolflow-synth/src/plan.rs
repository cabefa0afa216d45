//! Reading the planner's answer into a typed [`Plan`] and checking it against the rules of
//! the paper's Table 14. A plan that breaks a rule is an error, so the caller can retry.

use serde_json::{Value, json};
use toolflow_core::{Plan, PlanStep, StepKind};

/// Why a planner's answer is not a usable plan (paper Table 14's rules, and its form).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// No step was found.
    #[error("the plan has no numbered steps")]
    Empty,
    /// A line of the text form is not a step.
    #[error("line {line}: `{text}` is not `N. Tool call request: …` or `N. Chitchat: …`")]
    BadLine {
        /// The line's number, from 1.
        line: usize,
        /// The line.
        text: String,
    },
    /// The JSON form does not parse or has an unknown step kind.
    #[error("the plan answer is not the JSON asked for: {0}")]
    BadJson(String),
    /// The plan has another number of steps than asked for.
    #[error("the plan has {found} steps, {expected} were asked for")]
    WrongLength {
        /// Steps asked for.
        expected: usize,
        /// Steps found.
        found: usize,
    },
    /// A step names a tool instead of describing a need.
    #[error("step {step} names the tool `{tool}`; plans describe needs, not tools")]
    NamesTool {
        /// The step's number.
        step: u32,
        /// The tool named.
        tool: String,
    },
    /// Chitchat outnumbers the tool-call requests.
    #[error("the plan has {chitchat} chitchat steps and only {tool_calls} tool call requests")]
    TooMuchChitchat {
        /// Chitchat steps.
        chitchat: usize,
        /// Tool-call steps.
        tool_calls: usize,
    },
}

/// The JSON Schema the planner's structured answer must follow for `target` steps.
pub fn plan_schema(target: usize) -> Value {
    json!({
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": target,
                "maxItems": target,
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": ["tool_call", "chitchat"]},
                        "request": {"type": "string", "minLength": 1}
                    },
                    "required": ["kind", "request"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["steps"],
        "additionalProperties": false
    })
}

/// Parses a planner answer — the structured JSON form or the numbered text form — and checks
/// it: exactly `target` steps, no step naming one of `tool_names`, and chitchat never
/// outnumbering tool call requests.
pub fn parse_plan(answer: &str, target: usize, tool_names: &[&str]) -> Result<Plan, PlanError> {
    let trimmed = answer.trim();
    let steps = if trimmed.starts_with('{') {
        steps_from_json(trimmed)?
    } else {
        steps_from_text(trimmed)?
    };
    if steps.is_empty() {
        return Err(PlanError::Empty);
    }
    if steps.len() != target {
        return Err(PlanError::WrongLength {
            expected: target,
            found: steps.len(),
        });
    }
    for step in &steps {
        if let Some(tool) = named_tool(&step.request, tool_names) {
            return Err(PlanError::NamesTool {
                step: step.number,
                tool: tool.to_string(),
            });
        }
    }
    let chitchat = steps
        .iter()
        .filter(|s| s.kind == StepKind::Chitchat)
        .count();
    let tool_calls = steps.len() - chitchat;
    if chitchat > tool_calls {
        return Err(PlanError::TooMuchChitchat {
            chitchat,
            tool_calls,
        });
    }
    Ok(Plan { steps })
}

fn steps_from_json(text: &str) -> Result<Vec<PlanStep>, PlanError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        steps: Vec<Step>,
    }
    #[derive(serde::Deserialize)]
    struct Step {
        kind: String,
        request: String,
    }
    let answer: Answer =
        serde_json::from_str(text).map_err(|e| PlanError::BadJson(e.to_string()))?;
    answer
        .steps
        .into_iter()
        .zip(1..)
        .map(|(step, number)| {
            let kind = step_kind(&step.kind).ok_or_else(|| {
                PlanError::BadJson(format!("step {number}: unknown kind `{}`", step.kind))
            })?;
            Ok(PlanStep {
                number,
                kind,
                request: step.request.trim().to_string(),
            })
        })
        .collect()
}

/// Numbered lines `N. Kind: request`; markdown emphasis and blank or unnumbered lines (an
/// introduction the model added despite the prompt) are tolerated. Steps are renumbered
/// from 1 in order, since models sometimes skip or repeat numbers.
fn steps_from_text(text: &str) -> Result<Vec<PlanStep>, PlanError> {
    let mut steps = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim().replace("**", "");
        let Some(rest) = strip_number(&line) else {
            continue;
        };
        let (label, request) = rest.split_once(':').ok_or_else(|| PlanError::BadLine {
            line: index + 1,
            text: raw.trim().to_string(),
        })?;
        let kind = step_kind(label).ok_or_else(|| PlanError::BadLine {
            line: index + 1,
            text: raw.trim().to_string(),
        })?;
        let request = request.trim();
        if request.is_empty() {
            return Err(PlanError::BadLine {
                line: index + 1,
                text: raw.trim().to_string(),
            });
        }
        steps.push(PlanStep {
            number: steps.len() as u32 + 1,
            kind,
            request: request.to_string(),
        });
    }
    Ok(steps)
}

/// `"3. rest"` or `"3) rest"` → `"rest"`.
fn strip_number(line: &str) -> Option<&str> {
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    line[digits..].strip_prefix(['.', ')']).map(str::trim_start)
}

/// The labels models use for the two kinds ("Tool call request", "Tool Call Requirement",
/// "tool_call", "Chit-chat", …).
fn step_kind(label: &str) -> Option<StepKind> {
    let normalized: String = label
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .collect();
    if normalized.starts_with("toolcall") {
        Some(StepKind::ToolCall)
    } else if normalized == "chitchat" {
        Some(StepKind::Chitchat)
    } else {
        None
    }
}

/// The first tool whose name occurs in `request` as a whole identifier. Only names that read
/// as identifiers (with `_`, `.`, `-` or a digit) are checked: a tool called `translate` must
/// not forbid the word "translate" in a plan.
fn named_tool<'a>(request: &str, tool_names: &[&'a str]) -> Option<&'a str> {
    let request = request.to_lowercase();
    let words: Vec<&str> = request
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .map(|word| word.trim_end_matches(['.', '-']))
        .collect();
    tool_names.iter().copied().find(|name| {
        let identifier_like = name
            .chars()
            .any(|c| matches!(c, '_' | '.' | '-') || c.is_ascii_digit());
        identifier_like && words.contains(&name.to_lowercase().as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOLS: &[&str] = &["book_flight", "translate"];

    #[test]
    fn parses_the_numbered_text_form() {
        let answer = "Here is the plan:\n\n1. Tool Call Request: The user wants to book a flight.\n\
                      2. **Chitchat**: The user talks about jet lag.\n3) tool call requirement: The user asks to translate a note.";
        let plan = parse_plan(answer, 3, TOOLS).unwrap();
        let kinds: Vec<StepKind> = plan.steps.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [StepKind::ToolCall, StepKind::Chitchat, StepKind::ToolCall]
        );
        assert_eq!(plan.steps[2].number, 3);
        assert_eq!(plan.steps[1].request, "The user talks about jet lag.");
    }

    #[test]
    fn parses_the_json_form() {
        let answer = r#"{"steps":[{"kind":"tool_call","request":"Book a flight"},{"kind":"chitchat","request":"Weather talk"}]}"#;
        let plan = parse_plan(answer, 2, TOOLS).unwrap();
        assert_eq!(
            plan.steps[1],
            PlanStep {
                number: 2,
                kind: StepKind::Chitchat,
                request: "Weather talk".into()
            }
        );
        assert!(matches!(
            parse_plan(r#"{"steps":[{"kind":"joke","request":"x"}]}"#, 1, TOOLS),
            Err(PlanError::BadJson(_))
        ));
    }

    #[test]
    fn rejects_plans_that_break_the_rules() {
        assert_eq!(
            parse_plan("1. Tool call request: a\n2. Tool call request: b", 3, TOOLS),
            Err(PlanError::WrongLength {
                expected: 3,
                found: 2
            })
        );
        assert_eq!(
            parse_plan(
                "1. Tool call request: Use book_flight to fly home.",
                1,
                TOOLS
            ),
            Err(PlanError::NamesTool {
                step: 1,
                tool: "book_flight".into()
            })
        );
        assert_eq!(
            parse_plan(
                "1. Chitchat: hi\n2. Chitchat: more\n3. Tool call request: a",
                3,
                TOOLS
            ),
            Err(PlanError::TooMuchChitchat {
                chitchat: 2,
                tool_calls: 1
            })
        );
        assert!(matches!(
            parse_plan("1. Question: what?", 1, TOOLS),
            Err(PlanError::BadLine { line: 1, .. })
        ));
        assert_eq!(
            parse_plan("I cannot help with that.", 2, TOOLS),
            Err(PlanError::Empty)
        );
    }

    #[test]
    fn plain_words_that_are_tool_names_are_allowed() {
        assert!(
            parse_plan(
                "1. Tool call request: The user wants to translate a menu.",
                1,
                TOOLS
            )
            .is_ok()
        );
    }

    #[test]
    fn the_schema_pins_the_length() {
        let schema = plan_schema(4);
        assert_eq!(schema["properties"]["steps"]["minItems"], 4);
        assert_eq!(schema["properties"]["steps"]["maxItems"], 4);
    }
}
