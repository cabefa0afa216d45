//! The synthesis loop end to end against the stand-in server, answered by the scripted
//! dialogue model: the records are checked field by field.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use toolflow_core::{OutcomeStatus, SamplingStrategy, StepKind, Tool, Turn};
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_synth::scripted::dialogue_script;
use toolflow_synth::{Prompts, Role, SynthConfig, Synthesizer, ToolChoicePolicy};

mod support;
use support::{MODEL, engine};

fn tools() -> Vec<Tool> {
    let tool = |value: serde_json::Value| serde_json::from_value::<Tool>(value).unwrap();
    vec![
        tool(json!({
            "name": "book_flight", "description": "Book a seat on a flight.", "source": "test",
            "parameters": {"type": "object", "properties": {
                "flight_id": {"type": "string", "description": "Flight to book"},
                "passenger_name": {"type": "string", "description": "Full name"},
                "seat_class": {"type": "string", "enum": ["economy", "business"]}},
                "required": ["flight_id", "passenger_name"]},
            "returns": {"type": "object", "properties": {"booking_reference": {"type": "string"}, "total_price": {"type": "number"}}}
        })),
        tool(json!({
            "name": "get_weather_forecast", "description": "Weather forecast of a city.", "source": "test",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
                "required": ["city"]},
            "returns": {"type": "object", "properties": {"city": {"type": "string"}, "forecast": {"type": "array", "items": {"type": "object", "properties": {"high": {"type": "number"}}}}}}
        })),
        tool(json!({
            "name": "convert_currency", "description": "Convert an amount between currencies.", "source": "test",
            "parameters": {"type": "object", "properties": {"amount": {"type": "number"}, "to": {"type": "string"}}, "required": ["amount", "to"]},
            "returns": null
        })),
    ]
}

fn config() -> SynthConfig {
    SynthConfig {
        turns: [4, 5],
        seed: 11,
        ..SynthConfig::default()
    }
}

#[tokio::test]
async fn a_dialogue_has_every_kind_of_turn() {
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let synth =
        Synthesizer::new(engine(&server, None), Prompts::builtin().unwrap(), config()).unwrap();
    let dialogue = synth.write(3, SamplingStrategy::Graph, tools()).await;

    assert_eq!(
        dialogue.outcome.status,
        OutcomeStatus::Completed,
        "{:?}",
        dialogue.outcome
    );
    assert_eq!(dialogue.id, synth.dialogue_id(3));
    assert_eq!(dialogue.index, 3);
    assert_eq!(dialogue.tools.len(), 3);
    let settings = &dialogue.settings;
    assert!((4..=5).contains(&settings.target_turns));
    assert_eq!(settings.max_turns, settings.target_turns + 2);
    assert_eq!(settings.models["assistant"], MODEL);
    assert!(config().styles.contains(&settings.user_style));
    assert!(config().locations.contains(&dialogue.context.location));
    assert!(dialogue.context.current_time.starts_with("202"));

    let plan = dialogue.plan.as_ref().unwrap();
    assert_eq!(plan.steps.len() as u32, settings.target_turns);
    assert_eq!(plan.steps[2].kind, StepKind::Chitchat);
    assert_eq!(dialogue.outcome.steps_done, settings.target_turns);

    let users: Vec<_> = dialogue
        .turns
        .iter()
        .filter_map(|t| match t {
            Turn::User(u) => Some(u),
            _ => None,
        })
        .collect();
    // Step 4 took two user turns: the request and the details asked for.
    assert_eq!(users.len() as u32, settings.target_turns + 1);
    assert_eq!(
        users
            .iter()
            .map(|u| u.plan_step.unwrap())
            .collect::<Vec<_>>()[..5],
        [1, 2, 3, 4, 4]
    );

    let assistants: Vec<_> = dialogue
        .turns
        .iter()
        .filter_map(|t| match t {
            Turn::Assistant(a) => Some(a),
            _ => None,
        })
        .collect();
    assert!(
        assistants.iter().any(|a| a.tool_calls.len() == 2),
        "parallel calls"
    );
    let clarification = assistants
        .iter()
        .find(|a| a.content.as_deref().is_some_and(|c| c.ends_with('?')))
        .expect("a clarifying question");
    assert!(clarification.tool_calls.is_empty());
    let chitchat_reply = assistants
        .iter()
        .find(|a| a.content.as_deref().is_some_and(|c| c.contains("weekend")))
        .expect("a chitchat reply");
    assert!(chitchat_reply.tool_calls.is_empty());

    // Every call is answered, in order, by a tool turn with its id; ids are the writer's own.
    let mut expected_ids = Vec::new();
    for (at, turn) in dialogue.turns.iter().enumerate() {
        if let Turn::Assistant(a) = turn {
            for (k, call) in a.tool_calls.iter().enumerate() {
                expected_ids.push(call.id.clone());
                match &dialogue.turns[at + 1 + k] {
                    Turn::Tool(result) => {
                        assert_eq!(result.tool_call_id, call.id);
                        assert_eq!(result.name, call.name);
                    }
                    other => panic!("call {} answered by {other:?}", call.id),
                }
            }
        }
    }
    assert_eq!(
        expected_ids,
        (0..expected_ids.len())
            .map(|n| format!("call_{n}"))
            .collect::<Vec<_>>()
    );

    // The schema-breaking call got an error result made without the model; the retry succeeded.
    let errors: Vec<_> = dialogue
        .turns
        .iter()
        .filter_map(|t| match t {
            Turn::Tool(r) if r.is_error => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].content["error"]
            .as_str()
            .unwrap()
            .contains("invalid arguments"),
        "{}",
        errors[0].content
    );
    assert!(errors[0].generation.is_none());
    let after_error = dialogue
        .turns
        .iter()
        .position(|t| matches!(t, Turn::Tool(r) if r.is_error))
        .unwrap();
    match &dialogue.turns[after_error + 1] {
        Turn::Assistant(a) => assert_eq!(a.tool_calls[0].name, errors[0].name),
        other => panic!("{other:?}"),
    }
    // Results follow the return schema: the forecast has its fields.
    let forecast = dialogue
        .turns
        .iter()
        .find_map(|t| match t {
            Turn::Tool(r) if r.name == "get_weather_forecast" => Some(r),
            _ => None,
        })
        .unwrap();
    assert!(
        forecast.content["forecast"].is_array(),
        "{}",
        forecast.content
    );

    // The dialogue ends on the assistant's answer; usage adds up every generation.
    assert!(
        matches!(dialogue.turns.last(), Some(Turn::Assistant(a)) if a.content.is_some() && a.tool_calls.is_empty())
    );
    let generations: u64 = dialogue
        .turns
        .iter()
        .filter_map(|t| match t {
            Turn::User(u) => u.generation.as_ref(),
            Turn::Assistant(a) => a.generation.as_ref(),
            Turn::Tool(r) => r.generation.as_ref(),
        })
        .map(|g| g.usage.prompt_tokens)
        .sum();
    assert!(
        dialogue.usage.prompt_tokens > generations,
        "the plan's tokens count too"
    );
    assert!(dialogue.turns.iter().all(|t| {
        match t {
            Turn::User(u) => u
                .generation
                .as_ref()
                .is_some_and(|g| g.model == MODEL && g.seed.is_some()),
            _ => true,
        }
    }));
    // Each generated turn says how the backend stopped: calls on `tool_calls`, text on `stop`.
    for turn in &dialogue.turns {
        let (generation, expected) = match turn {
            Turn::User(u) => (u.generation.as_ref(), "stop"),
            Turn::Assistant(a) if a.tool_calls.is_empty() => (a.generation.as_ref(), "stop"),
            Turn::Assistant(a) => (a.generation.as_ref(), "tool_calls"),
            Turn::Tool(r) => (r.generation.as_ref(), "stop"),
        };
        if let Some(generation) = generation {
            assert_eq!(
                generation.finish_reason.as_deref(),
                Some(expected),
                "{turn:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_bytes_and_the_cache_answers_a_rerun() {
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("responses.sqlite");
    let synth = Synthesizer::new(
        engine(&server, Some(&cache)),
        Prompts::builtin().unwrap(),
        config(),
    )
    .unwrap();
    let first =
        serde_json::to_string(&synth.write(0, SamplingStrategy::Graph, tools()).await).unwrap();
    let asked = server.request_count();
    let again =
        serde_json::to_string(&synth.write(0, SamplingStrategy::Graph, tools()).await).unwrap();
    assert_eq!(first, again);
    assert_eq!(
        server.request_count(),
        asked,
        "the rerun came from the cache"
    );

    let other =
        serde_json::to_string(&synth.write(1, SamplingStrategy::Graph, tools()).await).unwrap();
    assert_ne!(first, other);
}

#[tokio::test]
async fn ablations_and_tool_choice_hints() {
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let no_plan = SynthConfig {
        plan: false,
        ..config()
    };
    let synth =
        Synthesizer::new(engine(&server, None), Prompts::builtin().unwrap(), no_plan).unwrap();
    let dialogue = synth.write(0, SamplingStrategy::Random, tools()).await;
    assert!(dialogue.plan.is_none());
    assert!(!dialogue.settings.plan);
    assert_eq!(dialogue.settings.sampler, SamplingStrategy::Random);
    assert!(
        dialogue
            .turns
            .iter()
            .all(|t| !matches!(t, Turn::User(u) if u.plan_step.is_some()))
    );
    assert!(server.requests().iter().all(|r| {
        !r.body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .starts_with("You design")
    }));

    let hinted = SynthConfig {
        tool_choice: ToolChoicePolicy::Plan,
        ..config()
    };
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let synth =
        Synthesizer::new(engine(&server, None), Prompts::builtin().unwrap(), hinted).unwrap();
    synth.write(0, SamplingStrategy::Graph, tools()).await;
    let choices: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.body.get("tools").is_some())
        .map(|r| r.body["tool_choice"].as_str().unwrap_or("auto").to_string())
        .collect();
    assert!(
        choices.contains(&"required".to_string()) && choices.contains(&"none".to_string()),
        "{choices:?}"
    );
}

#[tokio::test]
async fn a_failing_endpoint_fails_the_dialogue_not_the_run() {
    let server = StandInServer::start(|_| toolflow_llm::standin::Reply::Status(500))
        .await
        .unwrap();
    let synth =
        Synthesizer::new(engine(&server, None), Prompts::builtin().unwrap(), config()).unwrap();
    let dialogue = synth.write(5, SamplingStrategy::Graph, tools()).await;
    assert_eq!(dialogue.outcome.status, OutcomeStatus::Failed);
    assert!(
        dialogue
            .outcome
            .reason
            .as_deref()
            .unwrap()
            .starts_with("planner agent:"),
        "{:?}",
        dialogue.outcome.reason
    );
    assert!(dialogue.turns.is_empty());

    let bad =
        serde_json::from_value::<SynthConfig>(serde_json::json!({"models": {"judge": MODEL}}));
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("unknown variant `judge`")
    );
    let unknown = SynthConfig {
        models: [(Role::User, "gpt-9".to_string())].into(),
        ..config()
    };
    assert!(
        Synthesizer::new(engine(&server, None), Prompts::builtin().unwrap(), unknown)
            .err()
            .unwrap()
            .to_string()
            .contains("gpt-9")
    );
}

/// The scripted model, except that every other user-agent request after the first is
/// answered with the user's previous message, word for word.
fn repeating_user(request: &toolflow_llm::standin::SeenRequest, asked: &AtomicUsize) -> Reply {
    let reply = dialogue_script(request);
    let prompt = request.body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    let previous = prompt
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("User: "));
    match (reply, previous) {
        (Reply::Json(mut answer), Some(previous))
            if prompt.starts_with("You play the user")
                && asked.fetch_add(1, Ordering::SeqCst) % 2 == 0 =>
        {
            answer["message"] = json!(previous);
            Reply::Json(answer)
        }
        (reply, _) => reply,
    }
}

fn user_messages(dialogue: &toolflow_core::Dialogue) -> Vec<&str> {
    dialogue
        .turns
        .iter()
        .filter_map(|turn| match turn {
            Turn::User(user) => Some(user.content.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_user_message_that_repeats_the_previous_one_is_asked_again() {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let server = StandInServer::start(move |request| repeating_user(request, &counter))
        .await
        .unwrap();
    let write = |turn_attempts| {
        let config = SynthConfig {
            turn_attempts,
            ..config()
        };
        let synth =
            Synthesizer::new(engine(&server, None), Prompts::builtin().unwrap(), config).unwrap();
        async move { synth.write(3, SamplingStrategy::Graph, tools()).await }
    };

    // Asked once, the repeats stay.
    let once = write(1).await;
    let users = user_messages(&once);
    assert!(
        users.windows(2).any(|pair| pair[0] == pair[1]),
        "{users:#?}"
    );

    // Asked up to twice, every repeat is asked again and replaced.
    asked.store(0, Ordering::SeqCst);
    let twice = write(2).await;
    assert_eq!(twice.outcome.status, OutcomeStatus::Completed);
    let users = user_messages(&twice);
    assert!(users.len() >= 4, "{users:#?}");
    assert!(
        users.windows(2).all(|pair| pair[0] != pair[1]),
        "{users:#?}"
    );
    // One request per user turn, and one more for each repeat but the first turn's.
    assert_eq!(asked.load(Ordering::SeqCst), 2 * (users.len() - 1));
}
