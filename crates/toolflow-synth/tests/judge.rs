//! The LLM judge against the stand-in: a seeded sample, scores averaged, and answers that
//! never parse counted as failures.

use std::sync::Arc;

use serde_json::json;
use toolflow_core::{SamplingStrategy, Tool};
use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_llm::{CacheMode, Endpoint, EndpointConfig, Engine, EngineConfig, http_client};
use toolflow_synth::judge::{JudgeOptions, judge, sample_ids};
use toolflow_synth::scripted::dialogue_script;
use toolflow_synth::{Prompts, SynthConfig, Synthesizer};

fn engine_of(server: &StandInServer) -> Arc<Engine> {
    let config = EndpointConfig::new(server.base_url(), "scripted");
    let endpoint = Endpoint::http(&config, http_client().unwrap()).unwrap();
    let policy = EngineConfig {
        max_attempts: 2,
        backoff_base_ms: 5,
        backoff_cap_ms: 10,
        max_retry_after_s: 1.0,
    };
    Arc::new(Engine::new(vec![endpoint], policy, None, CacheMode::Off).unwrap())
}

#[tokio::test]
async fn a_seeded_sample_is_scored_and_broken_verdicts_fail() {
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let engine = engine_of(&server);
    let tool: Tool = serde_json::from_value(json!({
        "name": "lookup", "description": "Look a word up.", "source": "t",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
        "returns": {"type": "object", "properties": {"meaning": {"type": "string"}}}
    }))
    .unwrap();
    let synth = Synthesizer::new(
        engine.clone(),
        Prompts::builtin().unwrap(),
        SynthConfig::default(),
    )
    .unwrap();
    let mut dialogues = Vec::new();
    for index in 0..6 {
        dialogues.push(
            synth
                .write(index, SamplingStrategy::Graph, vec![tool.clone()])
                .await,
        );
    }
    let options = JudgeOptions {
        sample: 4,
        seed: 3,
        ..JudgeOptions::default()
    };
    let chosen = sample_ids(&dialogues, 4, 3);
    let mut reversed = dialogues.clone();
    reversed.reverse();
    assert_eq!(
        sample_ids(&reversed, 4, 3),
        chosen,
        "the sample does not depend on file order"
    );
    assert_ne!(sample_ids(&dialogues, 4, 4), chosen);

    let report = judge(&engine, &Prompts::builtin().unwrap(), &dialogues, &options).await;
    assert_eq!(report.sampled, 4);
    assert_eq!(report.verdicts.len(), 4);
    assert!(report.failures.is_empty());
    assert_eq!(
        report
            .verdicts
            .iter()
            .map(|v| v.id.clone())
            .collect::<Vec<_>>(),
        chosen
    );
    // The scripted judge gives 2 + turns/3 for accuracy: the mean is what the verdicts say.
    let accuracy: f64 = report
        .verdicts
        .iter()
        .map(|v| f64::from(v.scores[3]))
        .sum::<f64>()
        / 4.0;
    let means = report.means.expect("verdicts give means");
    assert_eq!(means.acc, accuracy);
    // metrics.json's form: the means under the paper's short keys, each verdict by name.
    let metrics = serde_json::to_value(report.to_metrics(&options)).unwrap();
    assert_eq!(metrics["value"]["acc"], json!(accuracy));
    assert_eq!(metrics["value"]["nat"], json!(means.nat));
    assert_eq!(
        (
            metrics["sampled"].clone(),
            metrics["judged"].clone(),
            metrics["failed"].clone()
        ),
        (json!(4), json!(4), json!(0))
    );
    assert_eq!(metrics["seed"], json!(3));
    assert_eq!(metrics["verdicts"][0]["id"], json!(chosen[0]));
    assert_eq!(
        metrics["verdicts"][0]["accuracy"]["score"],
        json!(report.verdicts[0].scores[3])
    );
    assert_eq!(
        metrics["verdicts"][0]["naturalness"]["comment"],
        json!("Scripted verdict.")
    );
    assert!(metrics.get("note").is_none());
    assert!(
        report
            .verdicts
            .iter()
            .all(|v| v.comments[0] == "Scripted verdict.")
    );

    let garbage = StandInServer::start(|_| Reply::Text("Looks fine to me!".into()))
        .await
        .unwrap();
    let report = judge(
        &engine_of(&garbage),
        &Prompts::builtin().unwrap(),
        &dialogues,
        &options,
    )
    .await;
    assert!(report.verdicts.is_empty());
    assert_eq!(report.failures.len(), 4);
    assert!(report.means.is_none());
    let metrics = serde_json::to_value(report.to_metrics(&options)).unwrap();
    assert!(metrics["value"].is_null());
    assert_eq!(metrics["failed"], json!(4));
    assert_eq!(
        metrics["note"],
        json!("unavailable: no usable verdict (4 sampled, 4 failed)")
    );
    let text_form = JudgeOptions {
        structured: false,
        attempts: 2,
        ..options
    };
    let report = judge(
        &engine_of(&garbage),
        &Prompts::builtin().unwrap(),
        &dialogues,
        &text_form,
    )
    .await;
    assert!(
        report.failures[0]
            .error
            .contains("no usable verdict in 2 attempts"),
        "{}",
        report.failures[0].error
    );
}
