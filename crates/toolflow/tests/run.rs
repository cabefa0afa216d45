//! `toolflow run` end to end on the bundled demo: every stage writes its file, a rerun skips
//! every stage, and a changed setting reruns only the stages downstream of it.
//! Uses the real all-MiniLM-L6-v2, fetched into the cache on first use.

use std::path::Path;
use std::process::Command;

fn toolflow(dir: &Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .current_dir(dir)
        .args(args)
        .arg("--json")
        .output()
        .expect("toolflow runs");
    assert!(
        output.status.success(),
        "toolflow {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON object")
}

fn skipped(summary: &serde_json::Value) -> Vec<bool> {
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["skipped"].as_bool().unwrap())
        .collect()
}

#[test]
fn stages_run_once_and_rerun_only_when_their_inputs_change() {
    let dir = tempfile::tempdir().unwrap();
    let first = toolflow(dir.path(), &["run"]);
    assert_eq!(skipped(&first), [false, false, false]);
    let out = dir.path().join("toolflow-out");
    for file in [
        "tools.jsonl",
        "graph.json",
        "subsets.jsonl",
        "run-state.json",
    ] {
        assert!(out.join(file).exists(), "{file} was not written");
    }
    let tools = std::fs::read_to_string(out.join("tools.jsonl")).unwrap();
    assert_eq!(tools.lines().count(), 16);
    let graph: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("graph.json")).unwrap()).unwrap();
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 16);
    assert!(!graph["edges"].as_array().unwrap().is_empty());
    let subsets = std::fs::read_to_string(out.join("subsets.jsonl")).unwrap();
    assert_eq!(subsets.lines().count(), 8);

    assert_eq!(skipped(&toolflow(dir.path(), &["run"])), [true, true, true]);

    // A different sample count changes only the sample stage's key.
    std::fs::write(dir.path().join("run.toml"), "[sample]\ncount = 3\n").unwrap();
    assert_eq!(
        skipped(&toolflow(dir.path(), &["run", "run.toml"])),
        [true, true, false]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("subsets.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );

    // An output edited by hand is no longer current: its stage and those after it rerun.
    std::fs::write(out.join("graph.json"), "{}").unwrap();
    assert_eq!(
        skipped(&toolflow(dir.path(), &["run", "run.toml"])),
        [true, false, true]
    );
    assert_eq!(
        std::fs::read(out.join("graph.json")).unwrap(),
        serde_json::to_vec(&graph)
            .unwrap()
            .into_iter()
            .chain(*b"\n")
            .collect::<Vec<u8>>()
    );
}

#[test]
fn a_config_with_an_unknown_key_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[sample]\ncuont = 3\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .current_dir(dir.path())
        .args(["run", "bad.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("cuont"),
        "{stderr}"
    );
}
