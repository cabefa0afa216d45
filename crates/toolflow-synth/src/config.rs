//! The `[synth]` table of a run configuration: everything that shapes a dialogue besides
//! its tools. Every field has a default, so an empty table is valid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::context::{DateError, parse_date};
use crate::execute::ToolMode;
use crate::role::Role;

/// How dialogues are written: the `[synth]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// The run's seed: every dialogue's id, draws and request seeds derive from it and the
    /// dialogue's index.
    pub seed: u64,
    /// Write a plan first (paper §3.2); off is the paper's no-plan ablation, where the user
    /// agent improvises from the tools.
    pub plan: bool,
    /// Plan steps (user requests) per dialogue, drawn uniformly from `[min, max]`.
    pub turns: [u32; 2],
    /// User turns allowed beyond the plan's steps, for answering clarifying questions.
    pub extra_turns: u32,
    /// Planner answers tried before the dialogue fails (a plan that does not parse or
    /// breaks a rule is retried with another seed, and so is one with a step of four words
    /// or more copied from the prompt, its example outline above all, while attempts are
    /// left).
    pub plan_attempts: u32,
    /// Assistant → tool → assistant rounds per user turn; the last round must answer in text.
    pub max_tool_rounds: u32,
    /// The user agent's writing style, drawn per dialogue.
    pub styles: Vec<String>,
    /// The user's location in the system context, drawn per dialogue.
    pub locations: Vec<String>,
    /// The current date of the system context is drawn from this inclusive range
    /// (`YYYY-MM-DD`), the time of day from 07:00 to 22:55.
    pub dates: [String; 2],
    /// The sampling temperature of every agent's requests.
    pub temperature: f32,
    /// The answer limit of every request.
    pub max_tokens: u32,
    /// The longest user message and plan step, in characters, enforced through the
    /// structured answer's schema: small models otherwise ramble until `max_tokens`.
    pub max_message_chars: u32,
    /// `auto`: the assistant decides when to call tools. `plan`: it must call on a
    /// tool-call step and must not on a chitchat step, and answers in text once the results
    /// are in — for small models that cannot tell, such as the embedded one. Clarifying
    /// questions and chains of calls need `auto`.
    pub tool_choice: ToolChoicePolicy,
    /// Keep assistant calls whose arguments break the tool's schema, answered by an error
    /// result, instead of resampling them: the data then shows errors and recoveries.
    pub keep_invalid_arguments: bool,
    /// Requests per user message or structured answer: one whose text runs into
    /// `max_message_chars` was cut there by the schema (and is recorded as cut, which the
    /// filter rejects), so it is asked again with the next seed, up to this many times in
    /// all; so is a user message that repeats the user's previous one word for word. 1
    /// asks once.
    pub turn_attempts: u32,
    /// Let the tool agent answer a valid call with an error (a resource that does not
    /// exist, a refused request), as Table 17 asks. Off, a valid call always gets a result
    /// that follows the tool's `returns`: for small models, which otherwise answer almost
    /// every call with an error. Calls whose arguments break the schema are answered with
    /// an error either way.
    pub simulated_errors: bool,
    /// Ask planner and user agents for JSON (structured output); off, they answer in the
    /// prompts' text forms, which are parsed.
    pub structured: bool,
    /// Ask the assistant for its text answers as JSON too (`{"answer": ...}`, at most
    /// `max_message_chars`, not starting like JSON or markup) whenever it must not call a
    /// tool: a small model otherwise copies a result's JSON or writes a call as text. For
    /// models without a tool parser of their own, such as the embedded one.
    pub structured_answers: bool,
    /// The model per role (`planner`, `user`, `assistant`, `tool`); a role not named uses
    /// the model drawn for the dialogue from the endpoint pool.
    pub models: BTreeMap<Role, String>,
    /// Dialogues written at the same time; the engine bounds requests per endpoint.
    pub concurrency: usize,
    /// `simulate` (the tool agent writes every result), `execute` (MCP servers run every
    /// call) or `auto` (tools from an MCP server are executed, the rest simulated).
    #[serde(skip_serializing_if = "ToolMode::is_simulate")]
    pub tools: ToolMode,
}

/// Who decides whether the assistant calls a tool (see [`SynthConfig::tool_choice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoicePolicy {
    /// The assistant.
    Auto,
    /// The plan's step kinds.
    Plan,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            plan: true,
            turns: [3, 5],
            extra_turns: 2,
            plan_attempts: 3,
            max_tool_rounds: 3,
            styles: [
                "casual and friendly",
                "brief and to the point",
                "polite and formal",
                "chatty, with a little personal context",
                "hurried, in short sentences",
            ]
            .map(String::from)
            .to_vec(),
            locations: [
                "Lyon, France",
                "Osaka, Japan",
                "Toronto, Canada",
                "Nairobi, Kenya",
                "Austin, Texas, USA",
                "Melbourne, Australia",
                "São Paulo, Brazil",
                "Berlin, Germany",
            ]
            .map(String::from)
            .to_vec(),
            dates: ["2024-01-01".into(), "2025-12-31".into()],
            temperature: 0.7,
            max_tokens: 768,
            max_message_chars: 1000,
            tool_choice: ToolChoicePolicy::Auto,
            keep_invalid_arguments: true,
            simulated_errors: true,
            turn_attempts: 1,
            structured: true,
            structured_answers: false,
            models: BTreeMap::new(),
            concurrency: 64,
            tools: ToolMode::Simulate,
        }
    }
}

/// A `[synth]` setting that serde accepts but the synthesis cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthConfigError {
    /// `turns` is not a range of at least one step.
    #[error("synth.turns = [{min}, {max}]: need 1 ≤ min ≤ max")]
    Turns {
        /// The fewest steps.
        min: u32,
        /// The most steps.
        max: u32,
    },
    /// A list to draw from is empty.
    #[error("synth.{0} is empty")]
    Empty(&'static str),
    /// A count is below what the synthesis needs.
    #[error("synth.{field} must be at least {least}")]
    TooSmall {
        /// The setting.
        field: &'static str,
        /// Its smallest usable value.
        least: u32,
    },
    /// An end of `dates` is not a date.
    #[error("synth.dates[{index}]: {source}")]
    Date {
        /// 0 for the first date, 1 for the last.
        index: usize,
        /// Why it is not one.
        source: DateError,
    },
    /// `dates` ends before it starts.
    #[error("synth.dates: {first} is after {last}")]
    DatesReversed {
        /// The first date.
        first: String,
        /// The last date.
        last: String,
    },
}

impl SynthConfig {
    /// Checks what serde cannot: ranges, non-empty lists, dates.
    pub fn check(&self) -> Result<(), SynthConfigError> {
        let [min, max] = self.turns;
        if min == 0 || min > max {
            return Err(SynthConfigError::Turns { min, max });
        }
        if self.styles.is_empty() {
            return Err(SynthConfigError::Empty("styles"));
        }
        if self.locations.is_empty() {
            return Err(SynthConfigError::Empty("locations"));
        }
        let too_small = |field, least| SynthConfigError::TooSmall { field, least };
        if self.plan_attempts == 0 {
            return Err(too_small("plan_attempts", 1));
        }
        if self.max_message_chars < 20 {
            return Err(too_small("max_message_chars", 20));
        }
        if self.concurrency == 0 {
            return Err(too_small("concurrency", 1));
        }
        self.days().map(|_| ())
    }

    /// The first and last day of `dates`, in days since 1970-01-01.
    pub(crate) fn days(&self) -> Result<(i64, i64), SynthConfigError> {
        let [first, last] = &self.dates;
        let day = |index: usize, text: &str| {
            parse_date(text).map_err(|source| SynthConfigError::Date { index, source })
        };
        let (first_day, last_day) = (day(0, first)?, day(1, last)?);
        if first_day > last_day {
            return Err(SynthConfigError::DatesReversed {
                first: first.clone(),
                last: last.clone(),
            });
        }
        Ok((first_day, last_day))
    }
}
