//! `toolflow overlap` end to end with the real all-MiniLM-L6-v2: mixed input formats on small
//! fixtures, then the shared corpus when it is there.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/overlap")
        .join(name)
}

/// Runs `toolflow --json overlap TRAIN --against TESTS…` and returns the printed report,
/// after checking it equals the written overlap.json.
fn overlap(train: &Path, tests: &[PathBuf], dir: &Path) -> Value {
    let output_path = dir.join("overlap.json");
    let output = Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .args(["--json", "overlap"])
        .arg(train)
        .arg("--against")
        .args(tests)
        .arg("-o")
        .arg(&output_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&output_path).unwrap()).unwrap();
    assert_eq!(printed, written);
    printed
}

#[test]
fn mixed_formats_and_the_report_percentages() {
    let dir = tempfile::tempdir().unwrap();
    let report = overlap(
        &fixture("train_apibank.json"),
        &[
            fixture("test_openai.json"),
            fixture("BFCL_v4_tiny_overlap.json"),
        ],
        dir.path(),
    );
    assert_eq!(report["train_tools"], 2);
    assert_eq!(report["options"]["ngram"], 11);
    let model = report["model"].as_str().unwrap();
    assert!(
        model.starts_with("sentence-transformers/all-MiniLM-L6-v2"),
        "{model}"
    );

    // QueryStock, read from API-Bank and from OpenAI tools, has the same JSON: every token
    // contaminated and a cosine of 1. One of two tools on each side: 50%.
    let openai = &report["test_sets"][0];
    assert_eq!(openai["name"], "test_openai");
    for side in ["train", "test"] {
        assert_eq!(openai[side]["tools"], 2);
        for criterion in ["ngram", "similarity", "either"] {
            assert_eq!(openai[side][criterion]["leaked"], 1, "{side} {criterion}");
            assert_eq!(
                openai[side][criterion]["percent"], 50.0,
                "{side} {criterion}"
            );
        }
    }
    let leaked = &openai["leaked"][0];
    assert_eq!(leaked["name"], "QueryStock");
    assert_eq!(leaked["best_match"], "QueryStock");
    assert_eq!(leaked["ngram_coverage"], 1.0);
    assert!(leaked["cosine"].as_f64().unwrap() > 0.999);
    assert_eq!(openai["leaked"].as_array().unwrap().len(), 1);

    // The BFCL question shares nothing.
    let bfcl = &report["test_sets"][1];
    assert_eq!(bfcl["test"]["tools"], 1);
    assert_eq!(bfcl["train"]["either"]["leaked"], 0);
    assert_eq!(bfcl["train"]["either"]["percent"], 0.0);
    assert!(bfcl["train"]["max_cosine"].as_f64().unwrap() < 0.9);
    assert!(bfcl["leaked"].as_array().unwrap().is_empty());
}

#[test]
fn dialogues_give_their_tools_once_each() {
    let dir = tempfile::tempdir().unwrap();
    // Two dialogue records, both with get_weather: two distinct tools.
    let report = overlap(
        &fixture("train_dialogues.jsonl"),
        &[fixture("test_openai.json")],
        dir.path(),
    );
    assert_eq!(report["train_tools"], 2);
    assert_eq!(report["test_sets"][0]["train"]["tools"], 2);
    assert_eq!(report["test_sets"][0]["train"]["ngram"]["leaked"], 0);
}

#[test]
fn bad_test_set_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "[]").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .arg("overlap")
        .arg(fixture("train_apibank.json"))
        .arg("--against")
        .arg(&empty)
        .arg("-o")
        .arg(dir.path().join("overlap.json"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("empty.json: no tools read"), "{stderr}");
}

/// ToolBench tools (the first 500) against BFCL, then BFCL's own non-live functions against
/// BFCL as the control that must leak.
#[test]
fn shared_toolbench_and_bfcl() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if !shared.is_dir() {
        println!("skipped: {} is absent", shared.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let toolbench = std::fs::read_to_string(shared.join("tools/tools_toolbench.jsonl")).unwrap();
    let first_500: Vec<&str> = toolbench.lines().take(500).collect();
    let train = dir.path().join("toolbench_500.jsonl");
    std::fs::write(&train, first_500.join("\n") + "\n").unwrap();
    let bfcl = shared.join("raw/bfcl");
    let report = overlap(&train, std::slice::from_ref(&bfcl), dir.path());
    let set = &report["test_sets"][0];
    println!(
        "ToolBench (first {}) vs BFCL ({} tools): train leaked n-gram {:.3}%, similarity {:.3}%, either {:.3}%; \
         test leaked either {:.3}%; closest cosine {:.3}, coverage {:.3}",
        report["train_tools"],
        set["test"]["tools"],
        set["train"]["ngram"]["percent"].as_f64().unwrap(),
        set["train"]["similarity"]["percent"].as_f64().unwrap(),
        set["train"]["either"]["percent"].as_f64().unwrap(),
        set["test"]["either"]["percent"].as_f64().unwrap(),
        set["train"]["max_cosine"].as_f64().unwrap(),
        set["train"]["max_ngram_coverage"].as_f64().unwrap(),
    );
    assert_eq!(report["train_tools"], 500);
    assert!(set["test"]["tools"].as_u64().unwrap() > 1000);
    // Different sources: no tool JSON repeats another's.
    assert_eq!(set["train"]["ngram"]["leaked"], 0);

    let control = overlap(
        &shared.join("tools/tools_bfcl_nonlive.jsonl"),
        &[bfcl.join("BFCL_v4_simple_python.json")],
        dir.path(),
    );
    let set = &control["test_sets"][0];
    println!(
        "control, BFCL non-live vs BFCL simple_python: test leaked n-gram {:.3}%, similarity {:.3}%",
        set["test"]["ngram"]["percent"].as_f64().unwrap(),
        set["test"]["similarity"]["percent"].as_f64().unwrap(),
    );
    assert_eq!(set["test"]["either"]["percent"], 100.0);
}
