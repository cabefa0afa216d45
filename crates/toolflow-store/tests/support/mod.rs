//! Dialogues built by hand for the tests: deterministic in their index, of a chosen size.

use std::collections::BTreeMap;

use serde_json::json;
use toolflow_core::{
    AssistantTurn, Dialogue, DialogueSettings, Outcome, OutcomeStatus, SamplingStrategy,
    SystemContext, Tool, ToolCall, ToolTurn, Turn, Usage, UserTurn,
};

/// Dialogue `index` of a run with `seed`, about `size` bytes of JSON; every seventh fails.
pub fn dialogue(seed: u64, index: u64, size: usize) -> Dialogue {
    let status = match index % 7 {
        0 => OutcomeStatus::Failed,
        3 => OutcomeStatus::TurnLimit,
        _ => OutcomeStatus::Completed,
    };
    let filler = "lorem ipsum dolor sit amet ".repeat(size / 27 + 1);
    Dialogue {
        id: toolflow_core::content_hash(&[&seed.to_le_bytes(), &index.to_le_bytes()]),
        index,
        tools: vec![Tool {
            name: "get_weather".into(),
            description: filler[..size.min(filler.len())].to_string(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            returns: None,
            source: "test".into(),
            meta: Default::default(),
        }],
        plan: None,
        links: Vec::new(),
        context: SystemContext {
            current_time: "2024-05-14T09:30:00".into(),
            location: "Lyon, France".into(),
        },
        turns: vec![
            Turn::User(UserTurn {
                content: format!("Weather number {index}, «ünïcode» and \"quotes\"?"),
                plan_step: None,
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
                content: json!({"temp": index % 30}),
                is_error: false,
                origin: toolflow_core::SIMULATED.into(),
                generation: None,
            }),
        ],
        settings: DialogueSettings {
            sampler: SamplingStrategy::Graph,
            plan: false,
            target_turns: 3,
            max_turns: 8,
            user_style: "terse".into(),
            seed: seed ^ index,
            models: BTreeMap::from([("user".to_string(), "m".to_string())]),
            temperature: 0.7,
        },
        outcome: Outcome {
            status,
            reason: (status != OutcomeStatus::Completed).then(|| "stopped".to_string()),
            steps_done: 1,
        },
        usage: Usage {
            prompt_tokens: 100 + index,
            completion_tokens: 10,
        },
    }
}
