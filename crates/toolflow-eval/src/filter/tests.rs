//! One passing and one failing example per rule, as documented on [`Rule`].

use serde_json::{Map, Value, json};
use toolflow_core::{
    AssistantTurn, Dialogue, DialogueSettings, Outcome, OutcomeStatus, Plan, PlanStep,
    SamplingStrategy, StepKind, SystemContext, Tool, ToolCall, ToolTurn, Turn, Usage, UserTurn,
};

use super::*;

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: "Weather forecast".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "detailed": {"type": "boolean"}
            },
            "required": ["city"],
            "additionalProperties": false
        }),
        returns: None,
        source: "test".into(),
        meta: Map::new(),
    }
}

fn user(text: &str) -> Turn {
    Turn::User(UserTurn {
        content: text.into(),
        plan_step: None,
        generation: None,
    })
}

fn say(text: &str) -> Turn {
    Turn::Assistant(AssistantTurn {
        content: Some(text.into()),
        tool_calls: vec![],
        generation: None,
    })
}

fn call(name: &str, arguments: Value) -> Turn {
    Turn::Assistant(AssistantTurn {
        content: None,
        tool_calls: vec![ToolCall {
            id: "call_0".into(),
            name: name.into(),
            arguments,
            arguments_raw: None,
        }],
        generation: None,
    })
}

fn result(content: Value) -> Turn {
    Turn::Tool(ToolTurn {
        tool_call_id: "call_0".into(),
        name: "get_weather".into(),
        content,
        is_error: false,
        origin: toolflow_core::SIMULATED.into(),
        generation: None,
    })
}

fn dialogue(id: &str, turns: Vec<Turn>) -> Dialogue {
    Dialogue {
        id: id.into(),
        index: 0,
        tools: vec![weather_tool()],
        plan: None,
        links: Vec::new(),
        context: SystemContext {
            current_time: "2024-05-14T09:30:00".into(),
            location: "Lyon, France".into(),
        },
        turns,
        settings: DialogueSettings {
            sampler: SamplingStrategy::Graph,
            plan: false,
            target_turns: 2,
            max_turns: 4,
            user_style: "plain".into(),
            seed: 1,
            models: Default::default(),
            temperature: 0.7,
        },
        outcome: Outcome {
            status: OutcomeStatus::Completed,
            reason: None,
            steps_done: 0,
        },
        usage: Usage::default(),
    }
}

/// Passes every rule: a grounded, schema-valid call, a JSON result, a final answer.
fn good(id: &str) -> Dialogue {
    dialogue(
        id,
        vec![
            user("What's the weather in LYON for the next 3 days?"),
            call(
                "get_weather",
                json!({"city": "Lyon", "days": 3, "unit": "c", "detailed": true}),
            ),
            result(json!({"forecast": [{"day": 1, "temp": 21}]})),
            say("Sunny, 21 degrees tomorrow."),
        ],
    )
}

fn with_call(arguments: Value) -> Dialogue {
    let mut d = good("d");
    d.turns[1] = call("get_weather", arguments);
    d
}

fn reasons(dialogue: &Dialogue) -> Vec<Reason> {
    Filter::new(FilterConfig::default()).check(dialogue)
}

fn rules(dialogue: &Dialogue) -> Vec<Rule> {
    reasons(dialogue).into_iter().map(|r| r.rule).collect()
}

#[test]
fn the_good_dialogue_passes_every_rule() {
    assert_eq!(reasons(&good("d")), []);
}

#[test]
fn unparsed_arguments() {
    assert!(!rules(&good("d")).contains(&Rule::UnparsedArguments));
    let mut d = good("d");
    let Turn::Assistant(a) = &mut d.turns[1] else {
        unreachable!()
    };
    a.tool_calls[0].arguments = Value::Null;
    a.tool_calls[0].arguments_raw = Some(r#"{"city": "Lyon""#.into());
    let found = reasons(&d);
    assert_eq!(found[0].rule, Rule::UnparsedArguments);
    assert_eq!(
        found[0].pointer.as_deref(),
        Some("/turns/1/tool_calls/0/arguments_raw")
    );
    assert_eq!(found[0].turn, Some(1));
    // Parsed, but not an object.
    assert_eq!(rules(&with_call(json!("Lyon"))), [Rule::UnparsedArguments]);
}

#[test]
fn unknown_tool() {
    assert!(!rules(&good("d")).contains(&Rule::UnknownTool));
    let mut d = good("d");
    d.turns[1] = call("get_forecast", json!({"city": "Lyon"}));
    let found = reasons(&d);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule, Rule::UnknownTool);
    assert!(found[0].detail.contains("get_forecast") && found[0].detail.contains("get_weather"));
}

#[test]
fn schema_violation() {
    assert!(
        !rules(&with_call(json!({"city": "Lyon", "days": 3}))).contains(&Rule::SchemaViolation)
    );
    let found = reasons(&with_call(json!({"city": "Lyon", "days": "three"})));
    let violation = found
        .iter()
        .find(|r| r.rule == Rule::SchemaViolation)
        .expect("a violation");
    assert_eq!(
        violation.pointer.as_deref(),
        Some("/turns/1/tool_calls/0/arguments/days")
    );
    // An argument the schema does not allow.
    assert!(
        rules(&with_call(json!({"city": "Lyon", "colour": "red"})))
            .contains(&Rule::SchemaViolation)
    );
}

#[test]
fn an_argument_the_tool_does_not_declare_is_a_violation_even_when_the_schema_is_open() {
    let mut d = with_call(json!({"city": "Lyon", "required": ["city"]}));
    let Value::Object(schema) = &mut d.tools[0].parameters else {
        unreachable!("the weather tool's parameters are an object")
    };
    schema.remove("additionalProperties");
    let found = reasons(&d);
    let violations: Vec<&Reason> = found
        .iter()
        .filter(|r| r.rule == Rule::SchemaViolation)
        .collect();
    assert_eq!(violations.len(), 1, "{found:?}");
    assert_eq!(
        violations[0].pointer.as_deref(),
        Some("/turns/1/tool_calls/0/arguments/required")
    );
    assert_eq!(
        violations[0].detail,
        "`get_weather` has no parameter `required`"
    );
    // A schema that says what else it takes is the validator's to judge.
    d.tools[0].parameters["additionalProperties"] = json!({"type": "array"});
    assert!(!rules(&d).contains(&Rule::SchemaViolation));
}

#[test]
fn missing_required_is_reported_once_and_not_as_a_schema_violation() {
    assert!(!rules(&with_call(json!({"city": "Lyon"}))).contains(&Rule::MissingRequired));
    let found = rules(&with_call(json!({"days": 3})));
    assert_eq!(found, [Rule::MissingRequired]);
}

#[test]
fn a_call_the_tool_rejected_is_a_recorded_mistake_not_a_violation() {
    let mut d = with_call(json!({"days": "three"}));
    assert!(rules(&d).contains(&Rule::MissingRequired));
    d.turns[2] = Turn::Tool(ToolTurn {
        is_error: true,
        ..match result(json!({"error": "city is required"})) {
            Turn::Tool(tool) => tool,
            _ => unreachable!(),
        }
    });
    let found = rules(&d);
    assert!(
        !found.contains(&Rule::MissingRequired) && !found.contains(&Rule::SchemaViolation),
        "{found:?}"
    );
}

#[test]
fn ungrounded_argument_is_a_warning_by_default() {
    // Case-insensitive string, number by value, enum and boolean exempt.
    assert_eq!(
        rules(&with_call(
            json!({"city": "lyon", "days": 3.0, "unit": "f", "detailed": false})
        )),
        []
    );
    let found = reasons(&with_call(json!({"city": "Paris", "days": 6})));
    let pointers: Vec<_> = found.iter().filter_map(|r| r.pointer.as_deref()).collect();
    assert_eq!(
        pointers,
        [
            "/turns/1/tool_calls/0/arguments/city",
            "/turns/1/tool_calls/0/arguments/days"
        ]
    );
    assert!(
        found
            .iter()
            .all(|r| r.rule == Rule::UngroundedArgument && r.level == Level::Warn)
    );
    assert!(!rejects(&found));
    // The system context grounds: the location and the date's numbers.
    assert_eq!(rules(&with_call(json!({"city": "France", "days": 14}))), []);
    // A result of an earlier call grounds later calls; text after the call does not.
    let mut d = good("d");
    d.turns.push(user("And the next one?"));
    d.turns
        .push(call("get_weather", json!({"city": "Lyon", "days": 21})));
    d.turns.push(result(json!({"forecast": []})));
    d.turns.push(say("Nothing more."));
    assert_eq!(rules(&d), []);
    let mut d = good("d");
    d.turns[1] = call("get_weather", json!({"city": "Sunny"}));
    assert_eq!(rules(&d), [Rule::UngroundedArgument]);
}

#[test]
fn ungrounded_argument_can_reject() {
    let config: FilterConfig = FilterConfig::from_toml(
        "[rules]\nungrounded-argument = \"reject\"\n",
        Path::new("r.toml"),
    )
    .unwrap();
    let found = Filter::new(config).check(&with_call(json!({"city": "Paris"})));
    assert!(rejects(&found));
}

#[test]
fn result_not_json() {
    assert!(!rules(&good("d")).contains(&Rule::ResultNotJson));
    let mut d = good("d");
    d.turns[2] = result(json!("It is 21 degrees"));
    assert_eq!(rules(&d), [Rule::ResultNotJson]);
    d.turns[2] = result(json!("{\"temp\": 21}"));
    let found = reasons(&d);
    assert!(found[0].detail.contains("JSON text"), "{}", found[0].detail);
    assert_eq!(found[0].pointer.as_deref(), Some("/turns/2/content"));
}

#[test]
fn incomplete() {
    assert!(!rules(&good("d")).contains(&Rule::Incomplete));
    let mut ends_on_user = good("d");
    ends_on_user.turns.push(user("And on Sunday?"));
    assert_eq!(rules(&ends_on_user), [Rule::Incomplete]);
    let mut ends_on_tool = good("d");
    ends_on_tool.turns.pop();
    assert_eq!(rules(&ends_on_tool), [Rule::Incomplete]);
    let mut turn_limit = good("d");
    turn_limit.outcome.status = OutcomeStatus::TurnLimit;
    assert_eq!(rules(&turn_limit), [Rule::Incomplete]);
    let mut steps_left = good("d");
    let step = |number, kind| PlanStep {
        number,
        kind,
        request: "x".into(),
    };
    steps_left.plan = Some(Plan {
        steps: vec![step(1, StepKind::ToolCall), step(2, StepKind::Chitchat)],
    });
    steps_left.outcome.steps_done = 1;
    assert_eq!(
        reasons(&steps_left)[0].detail,
        "plan steps left: 1 of 2 done"
    );
    steps_left.outcome.steps_done = 2;
    assert_eq!(rules(&steps_left), []);
}

#[test]
fn no_tool_call() {
    assert!(!rules(&good("d")).contains(&Rule::NoToolCall));
    let d = dialogue("d", vec![user("Hi!"), say("Hello, how can I help?")]);
    assert_eq!(rules(&d), [Rule::NoToolCall]);
}

fn failed(message: &str) -> Turn {
    let mut turn = result(json!({ "error": message }));
    if let Turn::Tool(t) = &mut turn {
        t.is_error = true;
    }
    turn
}

#[test]
fn a_dialogue_whose_every_call_failed_has_no_tool_call_that_worked() {
    let mut recovered = good("d");
    recovered.turns.splice(
        1..1,
        [
            call("get_weather", json!({"city": "Lyon", "days": 30})),
            failed("days must be at most 14"),
        ],
    );
    assert_eq!(rules(&recovered), []);
    let mut only_errors = good("d");
    only_errors.turns[2] = failed("weather service unavailable");
    only_errors.turns[3] = say("Sorry, the weather service is down right now.");
    let found = reasons(&only_errors);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].rule, Rule::NoToolCall);
    assert_eq!(
        found[0].detail,
        "every tool call was answered with an error: none succeeded"
    );
}

#[test]
fn an_answer_that_is_the_error_message_word_for_word_is_degenerate() {
    let mut d = good("d");
    d.turns.splice(
        1..1,
        [
            call("get_weather", json!({"city": "Lyon", "days": 30})),
            failed("The input is invalid."),
            say("the input is invalid"),
            user("Then for 3 days?"),
        ],
    );
    let found = reasons(&d);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].rule, found[0].turn), (Rule::Degenerate, Some(3)));
    // Put in its own words, or short enough to be repeated as it is, it passes.
    d.turns[3] = say("That did not work: the input was invalid.");
    assert_eq!(rules(&d), []);
    d.turns[2] = failed("Unknown city.");
    d.turns[3] = say("Unknown city.");
    assert_eq!(rules(&d), []);
}

#[test]
fn empty_turn() {
    assert!(!rules(&good("d")).contains(&Rule::EmptyTurn));
    let mut d = good("d");
    d.turns.insert(0, user("   "));
    let found = reasons(&d);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].rule, found[0].turn), (Rule::EmptyTurn, Some(0)));
    let mut d = good("d");
    d.turns[3] = Turn::Assistant(AssistantTurn {
        content: None,
        tool_calls: vec![],
        generation: None,
    });
    assert_eq!(rules(&d), [Rule::EmptyTurn]);
}

#[test]
fn repeated_turn() {
    let mut d = good("d");
    d.turns.extend([user("Thanks!"), say("Anything else?")]);
    assert!(!rules(&d).contains(&Rule::RepeatedTurn));
    let mut d = good("d");
    d.turns
        .extend([user("Thanks!"), say("Sunny, 21 degrees tomorrow.  ")]);
    let found = reasons(&d);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].rule, found[0].turn),
        (Rule::RepeatedTurn, Some(5))
    );
}

#[test]
fn exact_duplicate_keeps_the_first() {
    let mut filter = Filter::new(FilterConfig::default());
    assert_eq!(filter.check(&good("first")), []);
    // Another id and other generation metadata: still the same turns.
    let mut copy = good("second");
    copy.settings.seed = 99;
    let found = filter.check(&copy);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule, Rule::ExactDuplicate);
    assert_eq!(found[0].detail, "same turns as dialogue first");
}

#[test]
fn a_rejected_dialogue_does_not_make_its_copy_a_duplicate() {
    let mut filter = Filter::new(FilterConfig::default());
    let mut broken = good("broken");
    broken.outcome.status = OutcomeStatus::Failed;
    assert!(rejects(&filter.check(&broken)));
    let mut clean = good("clean");
    clean.outcome.status = OutcomeStatus::Completed;
    assert_eq!(filter.check(&clean), []);
}

#[test]
fn near_duplicate_keeps_the_first() {
    // 120 words, so that changing one word changes 5 of ~125 shingles: Jaccard ≈ 0.92.
    let words: Vec<String> = (0..120).map(|i| format!("word{i}")).collect();
    let mut first = good("first");
    first.turns[0] = user(&format!("{} 3", words.join(" ")));
    let mut changed = words.clone();
    changed[60] = "other".into();
    let mut second = good("second");
    second.turns[0] = user(&format!("{} 3", changed.join(" ")));
    let mut filter = Filter::new(FilterConfig::default());
    assert_eq!(filter.check(&first), []);
    let found = filter.check(&second);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule, Rule::NearDuplicate);
    assert!(
        found[0].detail.ends_with("with dialogue first"),
        "{}",
        found[0].detail
    );
    // A different dialogue is no near-duplicate.
    let mut other = good("other");
    other.turns[0] =
        user("Tell me whether I need an umbrella in Lyon in 3 days, my cousin asks too.");
    assert_eq!(filter.check(&other), []);
}

#[test]
fn rules_can_be_switched_off() {
    let config = FilterConfig::from_toml(
        "[rules]\nno-tool-call = \"off\"\nempty-turn = \"warn\"\n",
        Path::new("rules.toml"),
    )
    .unwrap();
    let mut filter = Filter::new(config);
    let found = filter.check(&dialogue("d", vec![user(" "), say("Hello!")]));
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].rule, found[0].level),
        (Rule::EmptyTurn, Level::Warn)
    );
}

#[test]
fn bad_rules_files_name_the_problem() {
    let error = FilterConfig::from_toml("[rules]\nno-such-rule = \"off\"\n", Path::new("r.toml"))
        .unwrap_err();
    assert!(
        error.to_string().starts_with("r.toml: bad rules file:"),
        "{error}"
    );
    let error =
        FilterConfig::from_toml("[near-duplicate]\nthreshold = 1.5\nshingle-words = 5\nhashes = 128\nbands = 32\nseed = 0\n", Path::new("r.toml"))
            .unwrap_err();
    assert!(error.to_string().contains("threshold"), "{error}");
}

fn generation(finish_reason: &str) -> Option<toolflow_core::Generation> {
    Some(toolflow_core::Generation {
        model: "m".into(),
        usage: Usage {
            prompt_tokens: 10,
            completion_tokens: 64,
        },
        seed: Some(1),
        finish_reason: Some(finish_reason.into()),
    })
}

/// `good` with its final answer replaced.
fn answering(text: &str) -> Dialogue {
    let mut d = good("d");
    d.turns[3] = say(text);
    d
}

#[test]
fn call_in_text() {
    assert!(!rules(&good("d")).contains(&Rule::CallInText));
    let d = answering(r#"{"name": "get_weather", "arguments": {"city": "Lyon"}} 21"#);
    let found = reasons(&d);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].rule, found[0].pointer.as_deref()),
        (Rule::CallInText, Some("/turns/3/content"))
    );
    // A call to one of the dialogue's tools written as code.
    let d = answering("Running get_weather(city='Lyon', days=3): 21 degrees.");
    assert_eq!(rules(&d), [Rule::CallInText]);
}

#[test]
fn json_answer() {
    assert!(!rules(&good("d")).contains(&Rule::JsonAnswer));
    let d = answering(r#"{"error": "Service unavailable", "code": 21}"#);
    assert_eq!(rules(&d), [Rule::JsonAnswer]);
    // A JSON call is a call in text, not also a JSON answer.
    let d = answering(r#"{"name": "get_weather", "arguments": {"days": 21}}"#);
    assert_eq!(rules(&d), [Rule::CallInText]);
}

#[test]
fn placeholder() {
    let d = answering("Sunny, 21 degrees. See [1] and the [Draft] notes, x < 5 and y > 3.");
    assert_eq!(rules(&d), []);
    let d = answering("Sending Mail to [name] at [email_address], 21 degrees.");
    let found = reasons(&d);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].rule, Rule::Placeholder);
    assert!(found[0].detail.contains("[name]"), "{}", found[0].detail);
    // In a result, pointed at the string.
    let mut d = good("d");
    d.turns[2] =
        result(json!({"forecast": [{"day": 1, "temp": 21, "note": "<a short, realistic note>"}]}));
    let found = reasons(&d);
    assert_eq!(
        (found[0].rule, found[0].pointer.as_deref()),
        (Rule::Placeholder, Some("/turns/2/content/forecast/0/note"))
    );
}

#[test]
fn truncated() {
    let finished = |reason: &str| {
        let mut d = good("d");
        let Turn::User(u) = &mut d.turns[0] else {
            unreachable!()
        };
        u.generation = generation(reason);
        d
    };
    assert_eq!(rules(&finished("stop")), []);
    let found = reasons(&finished("length"));
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].rule, found[0].pointer.as_deref()),
        (Rule::Truncated, Some("/turns/0/generation/finish_reason"))
    );
    assert!(found[0].detail.contains("64 tokens"), "{}", found[0].detail);
    // An answer that stops on a comma or colon was cut too, whatever the backend said.
    for cut in [
        "Tomorrow it will be 21 degrees,",
        "The forecast gives 21 degrees:",
    ] {
        assert_eq!(rules(&answering(cut)), [Rule::Truncated], "{cut}");
    }
}

#[test]
fn degenerate() {
    let d =
        answering("Sunny and 21 degrees in Lyon tomorrow, with a light breeze in the afternoon.");
    assert_eq!(rules(&d), []);
    let d =
        answering("I can help with that, 21. I can help with that, 21. I can help with that, 21.");
    assert_eq!(rules(&d), [Rule::Degenerate]);
    // The user agent writing the assistant's answer back.
    let mut d = answering("Sunny with 21 degrees tomorrow and a light breeze in the afternoon.");
    d.turns.extend([
        user("Sunny with 21 degrees tomorrow and a light breeze in the afternoon!"),
        say("Glad I could help."),
    ]);
    let found = reasons(&d);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].rule, found[0].turn), (Rule::Degenerate, Some(4)));
    assert!(
        found[0].detail.contains("assistant turn"),
        "{}",
        found[0].detail
    );
}

#[test]
fn degenerate_argument() {
    let mut d = good("d");
    d.turns[1] = call(
        "get_weather",
        json!({"city": "Lyon to Paris to Lyon to Paris to Lyon to Paris to Lyon to Paris"}),
    );
    let found: Vec<_> = reasons(&d)
        .into_iter()
        .filter(|r| r.rule == Rule::Degenerate)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].pointer.as_deref(),
        Some("/turns/1/tool_calls/0/arguments/city")
    );
}

#[test]
fn argument_copying_its_description_is_a_placeholder() {
    let mut d = good("d");
    d.tools[0].parameters["properties"]["city"]["description"] =
        json!("The city to forecast, e.g. Lyon");
    d.turns[1] = call(
        "get_weather",
        json!({"city": "the city to forecast, e.g. Lyon"}),
    );
    let found: Vec<_> = reasons(&d)
        .into_iter()
        .filter(|r| r.rule == Rule::Placeholder)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].pointer.as_deref(),
        Some("/turns/1/tool_calls/0/arguments/city")
    );
    assert!(!rules(&good("d")).contains(&Rule::Placeholder));
}

fn with_returns(returns: Value, content: Value) -> Dialogue {
    let mut d = good("d");
    d.tools[0].returns = Some(returns);
    d.turns[2] = result(content);
    d
}

#[test]
fn result_schema() {
    let returns =
        json!({"type": "object", "properties": {"temp": {"type": "number"}}, "required": ["temp"]});
    assert_eq!(
        rules(&with_returns(returns.clone(), json!({"temp": 21}))),
        []
    );
    let found = reasons(&with_returns(returns.clone(), json!({"temp": "warm, 21"})));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].rule, found[0].pointer.as_deref()),
        (Rule::ResultSchema, Some("/turns/2/content/temp"))
    );
    // An error result is a recorded mistake, not a broken result.
    let mut d = with_returns(returns, json!({"error": "no such city"}));
    let Turn::Tool(t) = &mut d.turns[2] else {
        unreachable!()
    };
    t.is_error = true;
    // (A lone call that failed leaves the dialogue without a call that worked.)
    assert_eq!(rules(&d), [Rule::NoToolCall]);
}

#[test]
fn ungrounded_answer_is_a_warning_by_default() {
    assert_eq!(rules(&answering("It will be 21 degrees.")), []);
    let found = reasons(&answering("It will be lovely weather."));
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].rule, found[0].level, found[0].turn),
        (Rule::UngroundedAnswer, Level::Warn, Some(3))
    );
}

/// Counts of a few topic words: texts on the same topic point the same way.
fn topic_embedding(texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
    const TOPICS: [&[&str]; 3] = [&["weather", "rain", "sunny"], &["joke", "funny"], &["lyon"]];
    Ok(texts
        .iter()
        .map(|text| {
            let text = text.to_lowercase();
            TOPICS
                .iter()
                .map(|words| words.iter().filter(|w| text.contains(**w)).count() as f32)
                .collect()
        })
        .collect())
}

fn planned(first_user_turn: &str) -> Dialogue {
    let mut d = good("d");
    d.plan = Some(Plan {
        steps: vec![PlanStep {
            number: 1,
            kind: StepKind::ToolCall,
            request: "Ask about the weather in Lyon".into(),
        }],
    });
    d.outcome.steps_done = 1;
    d.turns[0] = Turn::User(UserTurn {
        content: first_user_turn.into(),
        plan_step: Some(1),
        generation: None,
    });
    // A later turn of the same step answers a question: it is not compared.
    d.turns.extend([
        Turn::User(UserTurn {
            content: "Three, please.".into(),
            plan_step: Some(1),
            generation: None,
        }),
        say("Noted."),
    ]);
    d
}

#[test]
fn off_plan_is_a_warning_measured_with_the_embedding_given() {
    let mut embed = topic_embedding;
    let mut filter = Filter::new(FilterConfig::default());
    let on_plan = planned("What's the weather in LYON for the next 3 days?");
    assert_eq!(filter.check_with(&on_plan, Some(&mut embed)), []);
    let off = planned("Tell me a funny joke for the next 3 days?");
    let mut filter = Filter::new(FilterConfig::default());
    let found = filter.check_with(&off, Some(&mut embed));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].rule, found[0].level, found[0].turn),
        (Rule::OffPlan, Level::Warn, Some(0))
    );
    // Without an embedding function it is counted as unmeasured, not guessed.
    let mut filter = Filter::new(FilterConfig::default());
    assert_eq!(filter.check(&off), []);
    assert_eq!(filter.off_plan_unmeasured(), 1);
    let similarities = plan_similarities(&off, &mut embed).unwrap();
    assert_eq!(similarities.len(), 1);
    assert!(similarities[0].cosine < OFF_PLAN_THRESHOLD);
}

#[test]
fn unrealised_link_warns_for_each_planned_link_no_call_followed() {
    let link = |realised: bool| toolflow_core::DialogueLink {
        producer: "search_city".into(),
        field: "results[].name".into(),
        consumer: "get_weather".into(),
        parameter: "city".into(),
        realised,
    };
    let mut passing = good("realised");
    passing.links = vec![link(true)];
    assert!(reasons(&passing).is_empty(), "{:?}", reasons(&passing));
    let mut failing = good("unrealised");
    failing.links = vec![link(true), link(false)];
    let found = reasons(&failing);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].rule, Rule::UnrealisedLink);
    assert_eq!(found[0].level, Level::Warn);
    assert_eq!(found[0].pointer.as_deref(), Some("/links/1"));
    assert!(
        found[0]
            .detail
            .contains("search_city.results[].name → get_weather.city"),
        "{}",
        found[0].detail
    );
    assert!(!rejects(&found));
}
