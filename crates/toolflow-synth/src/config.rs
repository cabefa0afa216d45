//! The `[synth]` table of a run configuration: everything that shapes a dialogue besides
//! its tools. Every field has a default, so an empty table is valid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// breaks a rule is retried with another seed).
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
    pub models: BTreeMap<String, String>,
    /// Dialogues written at the same time; the engine bounds requests per endpoint.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoicePolicy {
    Auto,
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
            structured: true,
            structured_answers: false,
            models: BTreeMap::new(),
            concurrency: 64,
        }
    }
}

pub const ROLES: [&str; 4] = ["planner", "user", "assistant", "tool"];

impl SynthConfig {
    /// Checks what serde cannot: ranges, non-empty lists, dates, role names.
    pub fn check(&self) -> Result<(), String> {
        let [min, max] = self.turns;
        if min == 0 || min > max {
            return Err(format!("synth.turns = [{min}, {max}]: need 1 ≤ min ≤ max"));
        }
        if self.styles.is_empty() {
            return Err("synth.styles is empty".into());
        }
        if self.locations.is_empty() {
            return Err("synth.locations is empty".into());
        }
        if self.plan_attempts == 0 {
            return Err("synth.plan_attempts must be at least 1".into());
        }
        if self.max_message_chars < 20 {
            return Err("synth.max_message_chars must be at least 20".into());
        }
        if self.concurrency == 0 {
            return Err("synth.concurrency must be at least 1".into());
        }
        let [first, last] = &self.dates;
        let (first_day, last_day) = (
            crate::context::parse_date(first).map_err(|e| format!("synth.dates[0]: {e}"))?,
            crate::context::parse_date(last).map_err(|e| format!("synth.dates[1]: {e}"))?,
        );
        if first_day > last_day {
            return Err(format!("synth.dates: {first} is after {last}"));
        }
        if let Some(role) = self
            .models
            .keys()
            .find(|role| !ROLES.contains(&role.as_str()))
        {
            return Err(format!(
                "synth.models: unknown role `{role}` (roles: {})",
                ROLES.join(", ")
            ));
        }
        Ok(())
    }
}
