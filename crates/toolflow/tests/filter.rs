//! `toolflow filter` with the judge gate: the scripted judge of a stand-in server scores
//! every dialogue the rules keep (accuracy 2, plus one per three user turns), and those
//! below `judge-min` move to the rejected file with a `judge` reason. The verdicts are
//! cached like every request. And the off-plan rule, measured with the real
//! all-MiniLM-L6-v2 (fetched into the cache on first use).

use std::path::Path;
use std::process::Command;

use toolflow_llm::standin::StandInServer;
use toolflow_synth::scripted::dialogue_script;

fn gate_corpus(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../toolflow-eval/tests/fixtures/gate")
        .join(file)
}

fn good_dialogues() -> std::path::PathBuf {
    gate_corpus("good.jsonl")
}

fn ids(path: &Path, inner: Option<&str>) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let dialogue = inner.map_or(&value, |key| &value[key]);
            dialogue["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_judge_gate_rejects_what_the_judge_scores_below_the_minimum() {
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoints = dir.path().join("endpoints.toml");
    std::fs::write(
        &endpoints,
        format!(
            "[[endpoint]]\nbase_url = \"{}\"\nmodel = \"scripted\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "judge-min = { accuracy = 3 }\n[rules]\noff-plan = \"off\"\n",
    )
    .unwrap();
    let filter = || {
        let output = Command::new(env!("CARGO_BIN_EXE_toolflow"))
            .current_dir(dir.path())
            .env("TOOLFLOW_CACHE_DIR", dir.path().join("cache"))
            .arg("filter")
            .arg(good_dialogues())
            .args(["--rules", "rules.toml", "--endpoints"])
            .arg(&endpoints)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let summary = filter();

    // Which dialogues the scripted judge scores at accuracy 3 or more: three user turns.
    let mut expected_kept = Vec::new();
    let mut expected_rejected = Vec::new();
    for line in std::fs::read_to_string(good_dialogues()).unwrap().lines() {
        let dialogue: toolflow_core::Dialogue = serde_json::from_str(line).unwrap();
        let users = dialogue
            .turns
            .iter()
            .filter(|turn| matches!(turn, toolflow_core::Turn::User(_)))
            .count();
        if users >= 3 {
            expected_kept.push(dialogue.id);
        } else {
            expected_rejected.push(dialogue.id);
        }
    }
    assert!(!expected_kept.is_empty() && !expected_rejected.is_empty());
    assert_eq!(ids(&dir.path().join("kept.jsonl"), None), expected_kept);
    assert_eq!(
        ids(&dir.path().join("rejected.jsonl"), Some("dialogue")),
        expected_rejected
    );
    let rejected = std::fs::read_to_string(dir.path().join("rejected.jsonl")).unwrap();
    for line in rejected.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["reasons"][0]["rule"], "judge", "{record}");
        assert_eq!(
            record["reasons"][0]["detail"], "judge scored accuracy 2 < 3",
            "{record}"
        );
    }
    let judge = summary["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|count| count["rule"] == "judge")
        .unwrap();
    assert_eq!(judge["level"], "reject");
    assert_eq!(judge["dialogues"], expected_rejected.len());
    assert_eq!(summary["kept"], expected_kept.len());
    assert_eq!(summary["judge_unscored"], 0);

    // The same gate again: every verdict comes from the cache.
    let asked = server.request_count();
    assert_eq!(asked, expected_kept.len() + expected_rejected.len());
    filter();
    assert_eq!(server.request_count(), asked);
}

#[test]
fn an_impossible_judge_minimum_names_the_rules_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        "judge-min = { coherance = 3 }\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .current_dir(dir.path())
        .arg("filter")
        .arg(good_dialogues())
        .args(["--rules", "rules.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rules.toml") && stderr.contains("`coherance`"),
        "{stderr}"
    );
}

#[test]
fn off_plan_is_measured_with_minilm() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .current_dir(dir.path())
        .arg("filter")
        .arg(gate_corpus("bad.jsonl"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["off_plan_unmeasured"], 0, "{summary}");
    let off_plan = summary["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|count| count["rule"] == "off-plan")
        .unwrap();
    // The corpus's two off-plan defects, and nothing else the rules keep (labels.json).
    assert_eq!(off_plan["level"], "warn");
    assert_eq!(off_plan["dialogues"], 2, "{summary}");
}
