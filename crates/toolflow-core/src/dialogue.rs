//! The dialogue record (paper §3.2–3.3): the plan, the tools, and every turn the user,
//! assistant and tool agents wrote, with enough provenance (models, seeds, settings, token
//! usage) to audit, reproduce and export it. One JSON object per line of `dialogues.jsonl`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::links::DialogueLink;
use crate::subset::SamplingStrategy;
use crate::tool::Tool;

/// One synthesized dialogue: a line of `dialogues.jsonl`, and what the filter, the
/// measures and the exports read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Dialogue {
    /// Derived from the run seed and `index`: the same run gives the same ids.
    pub id: String,
    /// The index of the subset this dialogue was written from.
    pub index: u64,
    /// The full definitions of the sampled tools, so the record stands alone.
    pub tools: Vec<Tool>,
    /// The plan the user agent followed; null in the plan-off ablation.
    pub plan: Option<Plan>,
    /// The data-flow links of a `chain` subset the plan was asked to use, each with whether
    /// the dialogue realised it ([`crate::links::realised`]); empty for other subsets, and in
    /// records written before links were recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<DialogueLink>,
    /// Shared by all agents, as in the paper's examples.
    pub context: SystemContext,
    /// The messages, in order: user, assistant and tool turns.
    pub turns: Vec<Turn>,
    /// What the dialogue was written under.
    pub settings: DialogueSettings,
    /// How writing it ended.
    pub outcome: Outcome,
    /// Sum over every request made for this dialogue, including retries and planning.
    pub usage: Usage,
}

/// A numbered list of user requests (paper Table 14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// The steps, numbered from 1.
    pub steps: Vec<PlanStep>,
}

/// One step of a [`Plan`]: what the user asks for at that point of the dialogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanStep {
    /// 1-based, as the plan numbers its steps.
    pub number: u32,
    /// A request that needs a tool, or small talk.
    pub kind: StepKind,
    /// What the user wants at this step, without naming any tool.
    pub request: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
/// What kind of request a plan step is.
pub enum StepKind {
    /// The user asks for something a tool of the dialogue answers.
    ToolCall,
    /// Small talk that needs no tool (the paper's chitchat turns).
    Chitchat,
}

/// The time and place every agent is told (the system prompt's context).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SystemContext {
    /// ISO 8601 local date and time, e.g. `2024-05-14T09:30:00`.
    pub current_time: String,
    /// Where the user is, e.g. `Lyon, France`.
    pub location: String,
}

/// One message of the dialogue, tagged by `role`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Turn {
    /// What the user agent wrote.
    User(UserTurn),
    /// The assistant's answer or tool calls.
    Assistant(AssistantTurn),
    /// One tool result, answering one call.
    Tool(ToolTurn),
}

/// A user message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserTurn {
    /// The message text.
    pub content: String,
    /// The plan step the user agent said it was on; null without a plan.
    pub plan_step: Option<u32>,
    /// How the turn was generated; null for turns not written by a model.
    pub generation: Option<Generation>,
}

/// An assistant message: text, tool calls, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AssistantTurn {
    /// Text shown to the user; null for a turn that only calls tools.
    pub content: Option<String>,
    /// Empty for a direct answer or a clarification; several for parallel calls.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// How the turn was generated; null for turns not written by a model.
    pub generation: Option<Generation>,
}

/// One call the assistant made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCall {
    /// Unique within the dialogue; tool turns answer it by this id.
    pub id: String,
    /// The tool called, by its name in the dialogue's `tools`.
    pub name: String,
    /// The parsed arguments object; null when they did not parse.
    pub arguments: Value,
    /// The model's text for the arguments, kept only when it did not parse as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments_raw: Option<String>,
}

/// A tool's result for one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolTurn {
    /// The [`ToolCall::id`] this result answers.
    pub tool_call_id: String,
    /// The tool that answered.
    pub name: String,
    /// The result (simulated, or the server's); for an error, an object with an `error`
    /// field.
    pub content: Value,
    /// The call broke the tool's schema, the simulation failed, or the server flagged its
    /// result as an error, and this is an error.
    #[serde(default)]
    pub is_error: bool,
    /// How the result was made: `simulated` (the tool agent wrote it), `mcp:NAME` (MCP
    /// server NAME executed the call), or `checked` (the writer refused the call before
    /// any tool saw it: an unknown tool, or arguments that break its schema). Records
    /// written before it was recorded read as `simulated`.
    #[serde(default = "simulated")]
    pub origin: String,
    /// How the result was generated; null when no model wrote it.
    pub generation: Option<Generation>,
}

fn simulated() -> String {
    SIMULATED.into()
}

/// [`ToolTurn::origin`] of a result the tool agent wrote.
pub const SIMULATED: &str = "simulated";

/// [`ToolTurn::origin`] of an error the writer made for a call it refused.
pub const CHECKED: &str = "checked";

/// Which model wrote a turn, with what, at what cost. Whether the answer came from the
/// response cache is deliberately not recorded: a resumed run must write the same bytes as
/// an uninterrupted one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Generation {
    /// The model id the endpoint reported.
    pub model: String,
    /// The tokens this turn's request read and wrote.
    pub usage: Usage,
    /// The seed sent with the request, when the backend takes one.
    pub seed: Option<u64>,
    /// Why the backend stopped writing this turn: `stop`, `length` (cut at the token
    /// limit), `tool_calls`, or whatever else the server said. Absent in records written
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

/// Token counts, as the backend reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    /// Tokens of the prompts sent.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// The settings one dialogue was written under: the paper's ablation switches among them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DialogueSettings {
    /// How the dialogue's tools were sampled (the graph ablation).
    pub sampler: SamplingStrategy,
    /// Whether a plan guided the user agent (the plan ablation).
    pub plan: bool,
    /// The number of plan steps (or user turns, without a plan) aimed for.
    pub target_turns: u32,
    /// The hard limit on user turns.
    pub max_turns: u32,
    /// The user agent's writing style, drawn per dialogue.
    pub user_style: String,
    /// The dialogue's own seed, from which every request's seed derives.
    pub seed: u64,
    /// The model drawn for this dialogue for each role, by role name.
    pub models: std::collections::BTreeMap<String, String>,
    /// The sampling temperature of the agents' requests.
    pub temperature: f32,
}

/// How writing a dialogue ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// Completed, stopped at the turn limit, or failed.
    pub status: OutcomeStatus,
    /// Why the dialogue ended early or failed; null when it completed.
    pub reason: Option<String>,
    /// Plan steps the user agent reached.
    pub steps_done: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
/// The three ways a dialogue ends.
pub enum OutcomeStatus {
    /// Every plan step was addressed.
    Completed,
    /// The turn limit came first.
    TurnLimit,
    /// A request or a parse failed past its retries; the turns so far are kept.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn turns_are_tagged_by_role() {
        let turns = vec![
            Turn::User(UserTurn {
                content: "Hi".into(),
                plan_step: Some(1),
                generation: None,
            }),
            Turn::Assistant(AssistantTurn {
                content: None,
                tool_calls: vec![ToolCall {
                    id: "call_0".into(),
                    name: "get_weather".into(),
                    arguments: json!({"city": "Lyon"}),
                    arguments_raw: None,
                }],
                generation: None,
            }),
            Turn::Tool(ToolTurn {
                tool_call_id: "call_0".into(),
                name: "get_weather".into(),
                content: json!({"temp": 21}),
                is_error: false,
                origin: SIMULATED.into(),
                generation: None,
            }),
        ];
        let json = serde_json::to_value(&turns).unwrap();
        assert_eq!(json[0]["role"], "user");
        assert_eq!(json[1]["role"], "assistant");
        assert_eq!(json[1]["tool_calls"][0]["arguments"]["city"], "Lyon");
        assert!(json[1]["tool_calls"][0].get("arguments_raw").is_none());
        assert_eq!(json[2]["role"], "tool");
        let back: Vec<Turn> = serde_json::from_value(json).unwrap();
        assert_eq!(back, turns);
    }
}
