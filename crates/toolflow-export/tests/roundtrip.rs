//! Export → parse back → the same turns and calls, for each format that can be read back;
//! and a chat-template render checked character for character.

use std::path::Path;

use serde_json::Value;
use toolflow_core::{Dialogue, Turn};
use toolflow_export::formats::{self, Format};
use toolflow_export::{ChatTemplate, export_file};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn dialogues() -> Vec<Dialogue> {
    toolflow_core::jsonl::read(&fixture("dialogues.jsonl")).unwrap()
}

/// Turns without what a format cannot carry: generation metadata, and (unless `keep_ids`)
/// call ids, which readers renumber `call_0`, `call_1`, … in order.
fn comparable(turns: &[Turn], keep_ids: bool) -> Vec<Turn> {
    let mut calls = 0;
    let mut ids = std::collections::HashMap::new();
    turns
        .iter()
        .cloned()
        .map(|mut turn| {
            match &mut turn {
                Turn::User(t) => t.generation = None,
                Turn::Assistant(t) => {
                    t.generation = None;
                    for call in &mut t.tool_calls {
                        if !keep_ids {
                            let id = format!("call_{calls}");
                            ids.insert(call.id.clone(), id.clone());
                            call.id = id;
                        }
                        calls += 1;
                    }
                }
                Turn::Tool(t) => {
                    t.generation = None;
                    if !keep_ids {
                        t.tool_call_id = ids[&t.tool_call_id].clone();
                    }
                }
            }
            turn
        })
        .collect()
}

#[test]
fn trl_round_trip_keeps_turns_calls_ids_and_context() {
    for dialogue in dialogues() {
        let (record, dropped) = formats::to_record(Format::Trl, &dialogue).unwrap();
        assert_eq!(dropped, 0);
        assert_eq!(record["tools"][0]["type"], "function");
        // Arguments stay objects, as chat templates expect; results are text.
        let call = record["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m.get("tool_calls").is_some())
            .unwrap();
        assert!(call["tool_calls"][0]["function"]["arguments"].is_object());
        let line = serde_json::to_string(&record).unwrap();
        let (context, turns) = formats::from_trl(&serde_json::from_str(&line).unwrap()).unwrap();
        assert_eq!(context, dialogue.context);
        assert_eq!(turns, comparable(&dialogue.turns, true));
    }
}

#[test]
fn sharegpt_round_trip_and_llama_factory_alternation() {
    for dialogue in dialogues() {
        let (record, dropped) = formats::to_record(Format::Sharegpt, &dialogue).unwrap();
        assert_eq!(dropped, 0);
        let roles: Vec<&str> = record["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["from"].as_str().unwrap())
            .collect();
        for (position, role) in roles.iter().enumerate() {
            let allowed: &[&str] = if position % 2 == 0 {
                &["human", "observation"]
            } else {
                &["gpt", "function_call"]
            };
            assert!(allowed.contains(role), "{roles:?}");
        }
        let tools: Value = serde_json::from_str(record["tools"].as_str().unwrap()).unwrap();
        assert_eq!(tools[0]["name"], dialogue.tools[0].name);
        let (context, turns) = formats::from_sharegpt(&record).unwrap();
        assert_eq!(context, dialogue.context);
        assert_eq!(turns, comparable(&dialogue.turns, false));
    }
}

#[test]
fn sharegpt_parallel_calls_are_one_list() {
    let dialogue = &dialogues()[1];
    let (record, _) = formats::to_record(Format::Sharegpt, dialogue).unwrap();
    let call = record["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == "function_call")
        .unwrap();
    let calls: Value = serde_json::from_str(call["value"].as_str().unwrap()).unwrap();
    assert_eq!(calls.as_array().unwrap().len(), 2);
    assert_eq!(calls[1]["arguments"]["stars"], 4);
}

/// LLaMA-Factory's qwen template wraps each observation in this slot (`format_observation`
/// in its `data/template.py`); the joined parallel results must then render as the Qwen
/// template itself renders the two tool messages of the TRL row.
#[test]
fn sharegpt_parallel_results_render_as_the_models_template_does() {
    let dialogue = &dialogues()[1];
    let (record, _) = formats::to_record(Format::Sharegpt, dialogue).unwrap();
    let observations: Vec<&str> = record["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == "observation")
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        observations.len(),
        1,
        "parallel results share one observation"
    );
    let llama_factory = format!(
        "<|im_start|>user\n<tool_response>\n{}\n</tool_response><|im_end|>\n",
        observations[0]
    );
    let template = ChatTemplate::from_tokenizer_config(&fixture("tokenizer_config.json")).unwrap();
    let rendered = template.render(dialogue).unwrap();
    assert!(
        rendered.contains(&llama_factory),
        "LLaMA-Factory would render\n{llama_factory}\nthe model's template renders\n{rendered}"
    );
    // Each result is its JSON text as is, not a JSON string holding it (the old double
    // encoding).
    for result in observations[0].split(formats::PARALLEL_RESULTS_SEPARATOR) {
        let value: Value = serde_json::from_str(result).unwrap();
        assert!(value.is_object() || value.is_array(), "{result}");
    }
}

/// A tool with a `returns` schema, answered with an error.
fn failed_call_with_returns() -> Dialogue {
    let mut dialogue = dialogues()[0].clone();
    dialogue.tools[0].returns = Some(serde_json::json!({
        "type": "object", "properties": {"temp": {"type": "number"}}
    }));
    let Turn::Tool(result) = &mut dialogue.turns[2] else {
        panic!()
    };
    result.content = serde_json::json!({"error": "unknown city"});
    result.is_error = true;
    dialogue
}

#[test]
fn returns_and_is_error_survive_where_the_format_has_room() {
    let dialogue = failed_call_with_returns();
    let error_of = |turns: &[Turn]| {
        turns.iter().find_map(|turn| match turn {
            Turn::Tool(t) => Some(t.is_error),
            _ => None,
        })
    };
    let (trl, _) = formats::to_record(Format::Trl, &dialogue).unwrap();
    assert_eq!(
        trl["tools"][0]["function"]["returns"]["properties"]["temp"]["type"],
        "number"
    );
    assert_eq!(trl["messages"][3]["is_error"], true);
    assert_eq!(error_of(&formats::from_trl(&trl).unwrap().1), Some(true));

    let (sharegpt, _) = formats::to_record(Format::Sharegpt, &dialogue).unwrap();
    let tools: Value = serde_json::from_str(sharegpt["tools"].as_str().unwrap()).unwrap();
    assert_eq!(tools[0]["returns"]["type"], "object");

    let (hermes, _) = formats::to_record(Format::Hermes, &dialogue).unwrap();
    let system = hermes["conversations"][0]["value"].as_str().unwrap();
    assert!(system.contains("\"returns\": {"), "{system}");
    assert_eq!(
        error_of(&formats::from_hermes(&hermes).unwrap().1),
        Some(true)
    );
    // A result that is not an error says nothing about it.
    let (hermes, _) = formats::to_record(Format::Hermes, &dialogues()[0]).unwrap();
    assert!(!hermes.to_string().contains("is_error"));
}

#[test]
fn sharegpt_counts_assistant_text_it_cannot_hold() {
    let mut dialogue = dialogues()[0].clone();
    let Turn::Assistant(call) = &mut dialogue.turns[1] else {
        panic!()
    };
    call.content = Some("Let me check.".into());
    let (_, dropped) = formats::to_record(Format::Sharegpt, &dialogue).unwrap();
    assert_eq!(dropped, 1);
}

#[test]
fn hermes_round_trip_and_tags() {
    for dialogue in dialogues() {
        let (record, _) = formats::to_record(Format::Hermes, &dialogue).unwrap();
        let messages = record["conversations"].as_array().unwrap();
        let system = messages[0]["value"].as_str().unwrap();
        assert!(
            system.contains(
                "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""
            ),
            "{system}"
        );
        let gpt = messages
            .iter()
            .find(|m| m["from"] == "gpt" && m["value"].as_str().unwrap().contains("<tool_call>"))
            .unwrap();
        assert!(
            gpt["value"]
                .as_str()
                .unwrap()
                .starts_with("<tool_call>\n{\"name\": ")
        );
        let (context, turns) = formats::from_hermes(&record).unwrap();
        assert_eq!(context, dialogue.context);
        assert_eq!(turns, comparable(&dialogue.turns, false));
    }
}

#[test]
fn parallel_results_share_one_hermes_tool_message() {
    let (record, _) = formats::to_record(Format::Hermes, &dialogues()[1]).unwrap();
    let tools: Vec<&Value> = record["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == "tool")
        .collect();
    assert_eq!(tools.len(), 1);
    assert_eq!(
        tools[0]["value"]
            .as_str()
            .unwrap()
            .matches("<tool_response>")
            .count(),
        2
    );
}

#[test]
fn unparsed_arguments_are_refused_with_the_dialogue_id() {
    let mut dialogue = dialogues()[0].clone();
    let Turn::Assistant(call) = &mut dialogue.turns[1] else {
        panic!()
    };
    call.tool_calls[0].arguments = Value::Null;
    call.tool_calls[0].arguments_raw = Some("{city: Lyon".into());
    let error = formats::to_record(Format::Trl, &dialogue)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("dialogue d-simple: turn 1:"), "{error}");
}

const EXPECTED_RENDER: &str = "<|im_start|>system
Current time: 2024-05-14T09:30:00
Location: Lyon, France
Today Date: 14 May 2024

# Tools

<tools>
{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}
</tools><|im_end|>
<|im_start|>user
Weather in Lyon?<|im_end|>
<|im_start|>assistant
<tool_call>
{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lyon\"}}
</tool_call><|im_end|>
<|im_start|>user
<tool_response>
{\"temp\":21}
</tool_response><|im_end|>
<|im_start|>assistant
It is 21 °C.<|im_end|>
";

#[test]
fn chat_template_renders_like_transformers() {
    let template = ChatTemplate::from_tokenizer_config(&fixture("tokenizer_config.json")).unwrap();
    let rendered = template.render(&dialogues()[0]).unwrap();
    assert_eq!(rendered, EXPECTED_RENDER);
    // Parallel results are grouped into one user message by the template's own logic.
    let rendered = template.render(&dialogues()[1]).unwrap();
    assert_eq!(rendered.matches("<tool_response>").count(), 2);
    assert!(rendered.contains("Hôtel \\\"Le Bleu\\\""), "{rendered}");
}

#[test]
fn raise_exception_fails_the_render_with_its_message() {
    let mut dialogue = dialogues()[0].clone();
    dialogue.context = Default::default();
    dialogue.turns.remove(0);
    let template = ChatTemplate::from_tokenizer_config(&fixture("tokenizer_config.json")).unwrap();
    let error = template.render(&dialogue).unwrap_err().to_string();
    assert!(
        error.contains("Conversations must start with a user or system message"),
        "{error}"
    );
}

#[test]
fn export_writes_a_seeded_split() {
    let dir = tempfile::tempdir().unwrap();
    let all = export_file(
        &fixture("dialogues.jsonl"),
        Format::Trl,
        dir.path(),
        0.0,
        1,
        None,
    )
    .unwrap();
    assert_eq!((all.train, all.validation), (2, 0));
    let lines = std::fs::read_to_string(dir.path().join("train.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
    let none = export_file(
        &fixture("dialogues.jsonl"),
        Format::Sharegpt,
        dir.path(),
        1.0,
        1,
        None,
    )
    .unwrap();
    assert_eq!((none.train, none.validation), (0, 2));
    let template = ChatTemplate::from_tokenizer_config(&fixture("tokenizer_config.json")).unwrap();
    let text = export_file(
        &fixture("dialogues.jsonl"),
        Format::Template,
        dir.path(),
        0.0,
        1,
        Some(&template),
    )
    .unwrap();
    assert_eq!(text.train, 2);
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(dir.path().join("train.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["text"], EXPECTED_RENDER);
}

#[test]
fn a_refused_dialogue_is_skipped_and_counted_and_sharegpt_gets_its_dataset_info() {
    let dir = tempfile::tempdir().unwrap();
    // The second dialogue starts with an assistant turn, which the template refuses.
    let mut records = dialogues();
    records[1].context = Default::default();
    records[1].turns.remove(0);
    let input = dir.path().join("in.jsonl");
    let text: String = records
        .iter()
        .map(|dialogue| serde_json::to_string(dialogue).unwrap() + "\n")
        .collect();
    std::fs::write(&input, text).unwrap();
    let template = ChatTemplate::from_tokenizer_config(&fixture("tokenizer_config.json")).unwrap();
    let out = dir.path().join("template");
    let summary = export_file(&input, Format::Template, &out, 0.0, 1, Some(&template)).unwrap();
    assert_eq!((summary.train, summary.skipped), (1, 1));
    assert_eq!(
        std::fs::read_to_string(out.join("train.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let out = dir.path().join("sharegpt");
    let summary = export_file(&input, Format::Sharegpt, &out, 0.0, 1, None).unwrap();
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dataset_info.json")).unwrap())
            .unwrap();
    assert_eq!(summary.dataset_info, Some(out.join("dataset_info.json")));
    let train = &info["toolflow_train"];
    assert_eq!(train["file_name"], "train.jsonl");
    assert_eq!(train["formatting"], "sharegpt");
    assert_eq!(train["columns"]["tools"], "tools");
    assert_eq!(train["columns"]["system"], "system");
    assert_eq!(train["tags"]["function_tag"], "function_call");
}

#[test]
fn hermes_escapes_markup_in_arguments_and_reads_it_back() {
    let mut dialogue = dialogues()[0].clone();
    let url = "<https://example.org/a?b=1&c=2>";
    for turn in &mut dialogue.turns {
        if let Turn::Assistant(a) = turn
            && let Some(call) = a.tool_calls.first_mut()
        {
            call.arguments["city"] = Value::String(url.into());
        }
    }
    let (record, _) = formats::to_record(Format::Hermes, &dialogue).unwrap();
    let gpt = record["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == "gpt")
        .map(|m| m["value"].as_str().unwrap())
        .find(|value| value.contains("<tool_call>"))
        .unwrap();
    let call_block = gpt
        .split("<tool_call>")
        .nth(1)
        .unwrap()
        .split("</tool_call>")
        .next()
        .unwrap();
    assert!(
        !call_block.contains('<') && call_block.contains("\\u003chttps://"),
        "{call_block}"
    );
    let (_, turns) = formats::from_hermes(&record).unwrap();
    let read_back = turns
        .iter()
        .find_map(|turn| match turn {
            Turn::Assistant(a) => a
                .tool_calls
                .first()
                .map(|call| call.arguments["city"].clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(read_back, url);
}
