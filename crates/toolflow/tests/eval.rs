//! `toolflow eval --judge` end to end against the stand-in chat server: a toolflow file and
//! an SGD file side by side, each with a seeded sample judged; verdicts that never parse are
//! counted as failures without failing the command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use toolflow_llm::standin::{Reply, SeenRequest, StandInServer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eval")
        .join(name)
}

fn eval(dir: &Path, server: &StandInServer, extra: &[&str]) -> Output {
    let endpoints = format!(
        "[engine]\nmax_attempts = 1\n\n[[endpoint]]\nbase_url = \"{}\"\nmodel = \"judge-model\"\ntimeout_s = 5\n",
        server.base_url()
    );
    std::fs::write(dir.join("endpoints.toml"), endpoints).unwrap();
    Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .current_dir(dir)
        .arg("eval")
        .arg(fixture("kept.jsonl"))
        .arg(fixture("sgd_two_dialogues.json"))
        .args([
            "-o",
            "metrics.json",
            "--no-coherence",
            "--judge",
            "--judge-sample",
            "2",
        ])
        .args(["--endpoints", "endpoints.toml", "--no-cache", "--json"])
        .args(extra)
        .output()
        .expect("toolflow runs")
}

/// A judge that finds every dialogue natural (5) and scores accuracy 3 when tools were
/// called, 4 otherwise, so the means say which transcripts it read.
fn verdict(request: &SeenRequest) -> Reply {
    let prompt = request.body["messages"][0]["content"].as_str().unwrap();
    let accuracy = if prompt.contains("Assistant calls") {
        3
    } else {
        4
    };
    let criterion = |score: u8| json!({"score": score, "comment": format!("Scored {score}.")});
    Reply::Json(json!({
        "naturalness": criterion(5),
        "coherence": criterion(4),
        "helpfulness": criterion(4),
        "accuracy": criterion(accuracy),
    }))
}

fn ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn the_judge_scores_a_seeded_sample_of_each_run() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(StandInServer::start(verdict)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = eval(dir.path(), &server, &["--judge-seed", "7"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metrics: Value = serde_json::from_slice(&output.stdout).unwrap();
    let written: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics, written, "--json prints what metrics.json holds");

    let toolflow = &metrics["runs"][0]["judge"];
    assert_eq!(toolflow["model"], "judge-model");
    assert_eq!(toolflow["seed"], 7);
    assert_eq!(
        (toolflow["sampled"].as_u64(), toolflow["judged"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(toolflow["failed"], 0);
    assert_eq!(toolflow["value"]["nat"], 5.0);
    assert_eq!(toolflow["value"]["coh"], 4.0);
    let known = ids(&fixture("kept.jsonl"));
    for verdict in toolflow["verdicts"].as_array().unwrap() {
        assert!(
            known.contains(&verdict["id"].as_str().unwrap().to_owned()),
            "{verdict}"
        );
        assert_eq!(verdict["naturalness"]["comment"], "Scored 5.");
    }
    // The kept fixture's dialogues all call tools; the SGD dialogues come in as records too.
    assert_eq!(toolflow["value"]["acc"], 3.0);
    let sgd = &metrics["runs"][1]["judge"];
    assert_eq!(
        (sgd["sampled"].as_u64(), sgd["judged"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(sgd["value"]["acc"].as_f64().is_some(), "{sgd}");
    assert_eq!(server.request_count(), 4);

    // The same seed judges the same dialogues.
    let again = eval(dir.path(), &server, &["--judge-seed", "7"]);
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["runs"][0]["judge"]["verdicts"], toolflow["verdicts"]);
}

#[test]
fn verdicts_that_never_parse_are_failures_not_scores() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(StandInServer::start(|_| {
            Reply::Text("Great dialogue!".into())
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = eval(dir.path(), &server, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metrics: Value = serde_json::from_slice(&output.stdout).unwrap();
    let judge = &metrics["runs"][0]["judge"];
    assert!(judge["value"].is_null(), "{judge}");
    assert_eq!(judge["failed"], 2);
    assert_eq!(judge["judged"], 0);
    assert_eq!(
        judge["note"],
        "unavailable: no usable verdict (2 sampled, 2 failed)"
    );
    assert!(
        judge["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no usable verdict in 3 attempts"),
        "{judge}"
    );
}
