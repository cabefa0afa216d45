//! Every fault the stand-in injects, through the real HTTP backend and the engine: the
//! request is retried and succeeds, or fails with a clear error after N attempts, and
//! nothing else in flight is lost.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_llm::{
    BackendError, CacheMode, CancellationToken, EndpointConfig, EngineError, ToolSpec,
    TransientKind,
};

async fn recovers_from(
    fault: Reply,
) -> (
    StandInServer,
    Result<toolflow_llm::ChatResponse, EngineError>,
) {
    let server = StandInServer::queue(vec![fault], Reply::Echo)
        .await
        .unwrap();
    let answer = engine(&server, 4)
        .complete(MODEL, "user", &ask("hello"))
        .await;
    (server, answer)
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_servers_delay() {
    let started = Instant::now();
    let (server, answer) = recovers_from(Reply::RateLimited {
        retry_after: Some("1".into()),
    })
    .await;
    assert_eq!(answer.unwrap().text.as_deref(), Some("hello"));
    assert_eq!(server.request_count(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
}

#[tokio::test]
async fn rate_limit_with_an_http_date_is_retried() {
    let at = std::time::SystemTime::now() + Duration::from_secs(1);
    let (server, answer) = recovers_from(Reply::RateLimited {
        retry_after: Some(httpdate::fmt_http_date(at)),
    })
    .await;
    assert_eq!(answer.unwrap().text.as_deref(), Some("hello"));
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn server_errors_are_retried() {
    for status in [500, 502, 503] {
        let (server, answer) = recovers_from(Reply::Status(status)).await;
        assert_eq!(
            answer.unwrap().text.as_deref(),
            Some("hello"),
            "after {status}"
        );
        assert_eq!(server.request_count(), 2);
    }
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let started = Instant::now();
    let (server, answer) =
        recovers_from(Reply::Slow(Duration::from_secs(5), Box::new(Reply::Echo))).await;
    assert_eq!(answer.unwrap().text.as_deref(), Some("hello"));
    assert_eq!(server.request_count(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the 0.5 s timeout cut the slow answer short"
    );
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let (server, answer) = recovers_from(Reply::DropConnection).await;
    assert_eq!(answer.unwrap().text.as_deref(), Some("hello"));
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn invalid_json_is_retried() {
    let (server, answer) = recovers_from(Reply::InvalidJson).await;
    assert_eq!(answer.unwrap().text.as_deref(), Some("hello"));
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn truncated_bodies_are_retried() {
    let (server, answer) = recovers_from(Reply::Truncated).await;
    assert_eq!(answer.unwrap().text.as_deref(), Some("hello"));
    assert_eq!(server.request_count(), 2);
}

fn weather_request() -> toolflow_llm::ChatRequest {
    let mut request = ask("weather in Oslo?");
    request.tools.push(ToolSpec {
        name: "get_weather".into(),
        description: "Current weather".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    });
    request.seed = Some(7);
    request
}

#[tokio::test]
async fn wrong_tool_names_and_broken_arguments_are_resampled() {
    let good = Reply::ToolCalls(vec![("get_weather".into(), json!({"city": "Oslo"}))]);
    let server = StandInServer::queue(
        vec![
            Reply::ToolCalls(vec![("get_forecast".into(), json!({"city": "Oslo"}))]),
            Reply::ToolCalls(vec![("get_weather".into(), json!({"city": 42}))]),
            Reply::ToolCalls(vec![("get_weather".into(), json!("{\"city\": "))]),
        ],
        good,
    )
    .await
    .unwrap();
    let answer = engine(&server, 4)
        .complete(MODEL, "assistant", &weather_request())
        .await
        .unwrap();
    assert_eq!(answer.tool_calls[0].name, "get_weather");
    assert_eq!(answer.tool_calls[0].arguments, r#"{"city":"Oslo"}"#);
    let seeds: Vec<_> = server
        .requests()
        .iter()
        .map(|seen| seen.body["seed"].clone())
        .collect();
    assert_eq!(
        seeds,
        [json!(7), json!(8), json!(9), json!(10)],
        "each resample uses another seed"
    );
}

#[tokio::test]
async fn persistent_faults_end_in_a_clear_error_after_n_attempts() {
    use TransientKind::*;
    let cases: Vec<(Reply, &str, Option<TransientKind>)> = vec![
        (Reply::Status(500), "HTTP 500", Some(Server)),
        (
            Reply::RateLimited {
                retry_after: Some("0".into()),
            },
            "HTTP 429",
            Some(RateLimited),
        ),
        (Reply::DropConnection, "standin", Some(Connection)),
        (
            Reply::InvalidJson,
            "not a chat completion",
            Some(InvalidBody),
        ),
        (Reply::Truncated, "standin", Some(Connection)),
        (
            Reply::Slow(Duration::from_secs(3), Box::new(Reply::Echo)),
            "no answer within 0.5 s",
            Some(Timeout),
        ),
        (
            Reply::ToolCalls(vec![("get_forecast".into(), json!({}))]),
            "unknown tool `get_forecast` (offered: get_weather)",
            None,
        ),
        (
            Reply::ToolCalls(vec![("get_weather".into(), json!({"city": 42}))]),
            "at `/city`",
            None,
        ),
    ];
    for (fault, expected, kind) in cases {
        let server = StandInServer::queue(vec![], fault.clone()).await.unwrap();
        let error = engine(&server, 3)
            .complete(MODEL, "assistant", &weather_request())
            .await
            .unwrap_err();
        let message = error.to_string();
        let EngineError::Exhausted {
            attempts: 3, last, ..
        } = &error
        else {
            panic!("{fault:?}: {message}")
        };
        match (kind, last) {
            (Some(kind), BackendError::Transient { kind: seen, .. }) => {
                assert_eq!(*seen, kind, "{fault:?}: {message}")
            }
            (None, BackendError::InvalidOutput(_)) => {}
            _ => panic!("{fault:?}: unexpected {last:?}"),
        }
        assert!(
            message.contains("gave up after 3 attempts") && message.contains(expected),
            "{fault:?}: {message}"
        );
        assert_eq!(server.request_count(), 3, "{fault:?}");
    }
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = StandInServer::queue(vec![], Reply::Status(401))
        .await
        .unwrap();
    let error = engine(&server, 5)
        .complete(MODEL, "user", &ask("hello"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EngineError::Failed {
                error: BackendError::Permanent(_),
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("HTTP 401"), "{error}");
    assert_eq!(server.request_count(), 1);
}

/// 240 requests in flight at once while every kind of fault is injected into some of them:
/// each one completes with its own answer or fails on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_do_not_disturb_other_requests_in_flight() {
    const FAULTS: usize = 8;
    let attempts: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let server = StandInServer::start(move |seen| {
        let prompt = seen.last_user_text().to_owned();
        let index: usize = prompt.trim_start_matches("request ").parse().unwrap();
        let mut attempts = attempts.lock().unwrap();
        let attempt = attempts.entry(prompt).or_insert(0);
        *attempt += 1;
        let fault = match index % FAULTS {
            1 => Reply::RateLimited {
                retry_after: Some("0.05".into()),
            },
            2 => Reply::Status(500),
            3 => Reply::DropConnection,
            4 => Reply::InvalidJson,
            5 => Reply::Truncated,
            6 => Reply::Slow(Duration::from_secs(3), Box::new(Reply::Echo)),
            7 => return Reply::Status(503), // never recovers
            _ => Reply::Slow(Duration::from_millis(20), Box::new(Reply::Echo)),
        };
        if *attempt == 1 { fault } else { Reply::Echo }
    })
    .await
    .unwrap();
    let config = EndpointConfig {
        max_concurrency: 256,
        ..endpoint_config(&server)
    };
    let engine = shared(engine_with(config, 3, None, CacheMode::Off));
    let tasks: Vec<_> = (0..240)
        .map(|index| {
            let engine = engine.clone();
            tokio::spawn(async move {
                (
                    index,
                    engine
                        .complete(MODEL, "user", &ask(&format!("request {index}")))
                        .await,
                )
            })
        })
        .collect();
    let mut answered = 0;
    for task in tasks {
        let (index, answer) = task.await.unwrap();
        if index % FAULTS == 7 {
            let error = answer.unwrap_err().to_string();
            assert!(
                error.contains("gave up after 3 attempts") && error.contains("HTTP 503"),
                "{index}: {error}"
            );
        } else {
            assert_eq!(
                answer.unwrap().text,
                Some(format!("request {index}")),
                "request {index}"
            );
            answered += 1;
        }
    }
    assert_eq!(answered, 210);
    let tally = &engine.tallies()[0].tally;
    assert_eq!(tally.answers, 210);
    assert_eq!(tally.failures, 30);
    assert_eq!(tally.attempts as usize, server.request_count());
}

#[tokio::test]
async fn cancellation_frees_the_slot_at_once() {
    let server = StandInServer::queue(
        vec![Reply::Slow(Duration::from_secs(10), Box::new(Reply::Echo))],
        Reply::Echo,
    )
    .await
    .unwrap();
    let config = EndpointConfig {
        max_concurrency: 1,
        timeout_s: 30.0,
        ..endpoint_config(&server)
    };
    let engine = engine_with(config, 3, None, CacheMode::Off);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(SHORT).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let error = engine
        .complete_cancellable(MODEL, "user", &ask("slow"), &cancel)
        .await
        .unwrap_err();
    assert!(matches!(error, EngineError::Cancelled));
    assert!(started.elapsed() < Duration::from_secs(1));
    // With one slot, this answer proves the cancelled request gave its slot back.
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        engine.complete(MODEL, "user", &ask("next")),
    )
    .await;
    assert_eq!(
        answer.expect("the slot was freed").unwrap().text.as_deref(),
        Some("next")
    );
}

#[tokio::test]
async fn requests_per_minute_are_paced() {
    let server = StandInServer::queue(vec![], Reply::Echo).await.unwrap();
    let config = EndpointConfig {
        rpm: Some(120),
        ..endpoint_config(&server)
    };
    let engine = engine_with(config, 1, None, CacheMode::Off);
    let started = Instant::now();
    for index in 0..122 {
        engine
            .complete(MODEL, "user", &ask(&format!("{index}")))
            .await
            .unwrap();
    }
    // 120 burst, then one every half second.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}
