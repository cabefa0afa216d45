//! The ShareGPT export read the way LLaMA-Factory reads it, and rendered the way its `qwen`
//! template renders it, equals what the model's own chat template renders from the same
//! dialogue (the text TRL trains on, checked against transformers in
//! `transformers_render.rs`).
//!
//! LLaMA-Factory's rules, from its sources (`src/llamafactory/data/`, checked at commit
//! ff6d4d1 of August 2026), written out here rather than imported, so that the check runs
//! without Python:
//! - `converter.py`, `SharegptDatasetConverter`: the `dataset_info.json` entry's `columns`
//!   and `tags` name the fields; `human`/`observation` must sit at even positions and
//!   `gpt`/`function_call` at odd ones, and the count must be even, or the row is dropped
//!   with a warning. An observation's text is used as it is: one observation per round.
//! - `formatter.py`, `FunctionFormatter`: a `function_call` value is parsed as JSON; a list
//!   is parallel calls, an object one call; each needs `name` and `arguments`, which it
//!   dumps again with `json.dumps(ensure_ascii=False)`.
//! - `tool_utils.py`, `QwenToolUtils`: each tool is dumped as
//!   `{"type": "function", "function": tool}` on its own line inside the system turn; the
//!   calls of one turn are `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>` blocks
//!   joined by `\n`.
//! - `template.py`, the `qwen` template's slots: user
//!   `<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n`, assistant
//!   `{content}<|im_end|>\n`, function `{content}<|im_end|>\n`, observation
//!   `<|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n<|im_start|>assistant\n`.
//!
//! Its tool instructions around the tool lines are LLaMA-Factory's own wording, which
//! the fixture template does not share; those lines and everything after the system turn
//! must be byte-identical.

use std::path::Path;

use serde_json::{Value, json};
use toolflow_core::Dialogue;
use toolflow_export::formats::{self, Format};
use toolflow_export::python::python_json;
use toolflow_export::{ChatTemplate, dataset_info};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn dialogues() -> Vec<Dialogue> {
    toolflow_core::jsonl::read(&fixture("dialogues.jsonl")).unwrap()
}

/// What LLaMA-Factory's `qwen` template renders from one ShareGPT row read through
/// `entry` (our `dataset_info.json` entry): the system turn's tool lines, and the text
/// after the system turn.
fn llama_factory_qwen(record: &Value, entry: &Value) -> (Vec<String>, String) {
    let columns = &entry["columns"];
    let tags = &entry["tags"];
    let tag = |name: &str| tags[name].as_str().unwrap();
    let messages = record[columns["messages"].as_str().unwrap()]
        .as_array()
        .unwrap();
    let (even, odd) = (
        [tag("user_tag"), tag("observation_tag")],
        [tag("assistant_tag"), tag("function_tag")],
    );
    assert_eq!(messages.len() % 2, 0, "LLaMA-Factory drops an odd count");
    let mut text = String::new();
    for (position, message) in messages.iter().enumerate() {
        let role = message[tag("role_tag")].as_str().unwrap();
        let content = message[tag("content_tag")].as_str().unwrap();
        let allowed = if position % 2 == 0 { &even } else { &odd };
        assert!(
            allowed.contains(&role),
            "LLaMA-Factory drops the row: `{role}` at {position}"
        );
        if role == tag("user_tag") {
            text += &format!("<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n");
        } else if role == tag("assistant_tag") {
            text += &format!("{content}<|im_end|>\n");
        } else if role == tag("function_tag") {
            let calls = match serde_json::from_str::<Value>(content).unwrap() {
                Value::Array(calls) => calls,
                call => vec![call],
            };
            let blocks: Vec<String> = calls
                .iter()
                .map(|call| {
                    let call = json!({"name": call["name"], "arguments": call["arguments"]});
                    format!("<tool_call>\n{}\n</tool_call>", python_json(&call))
                })
                .collect();
            text += &format!("{}<|im_end|>\n", blocks.join("\n"));
        } else {
            text += &format!(
                "<|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
            );
        }
    }
    let tools: Vec<Value> =
        serde_json::from_str(record[columns["tools"].as_str().unwrap()].as_str().unwrap()).unwrap();
    let tool_lines = tools
        .into_iter()
        .map(|tool| {
            format!(
                "\n{}",
                python_json(&json!({"type": "function", "function": tool}))
            )
        })
        .collect();
    (tool_lines, text)
}

/// The text after the system turn. (LLaMA-Factory's user and observation slots open the
/// next assistant turn that the model's template opens with that turn: the concatenations
/// agree.)
fn after_system_turn(rendered: &str) -> &str {
    let end = "<|im_end|>\n";
    let system = rendered
        .find(end)
        .expect("the tools put a system turn first");
    &rendered[system + end.len()..]
}

#[test]
fn sharegpt_through_llama_factorys_qwen_template_renders_as_the_models_template() {
    let entry = &dataset_info()["toolflow_train"];
    let template = ChatTemplate::from_tokenizer_config(&fixture("tokenizer_config.json")).unwrap();
    let mut parallel_rounds = 0;
    for dialogue in dialogues() {
        let (record, dropped) = formats::to_record(Format::Sharegpt, &dialogue).unwrap();
        assert_eq!(dropped, 0);
        let (tool_lines, theirs) = llama_factory_qwen(&record, entry);
        let model = template.render(&dialogue).unwrap();
        let system = &model[..model.len() - after_system_turn(&model).len()];
        for line in &tool_lines {
            assert!(
                system.contains(line.as_str()),
                "{line} is not in the model's system turn\n{system}"
            );
        }
        assert_eq!(tool_lines.len(), dialogue.tools.len());
        assert_eq!(
            after_system_turn(&model),
            theirs,
            "the model's render (left) differs from LLaMA-Factory's (right) for {}",
            dialogue.id
        );
        parallel_rounds += theirs.matches("</tool_call>\n<tool_call>").count();
        // Two results of one round: two blocks, each holding one result's JSON as is.
        if dialogue.id == "d-parallel" {
            assert_eq!(theirs.matches("<tool_response>").count(), 2, "{theirs}");
        }
    }
    assert_eq!(parallel_rounds, 1, "the fixtures hold one parallel round");
}
