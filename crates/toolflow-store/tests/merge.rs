mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::dialogue;
use toolflow_store::{RunStore, Shard, StoreError, merge};

/// The dialogues.jsonl a run (or one shard of it) writes, through a store.
fn run_output(dir: &Path, shard: Shard, total: u64) -> PathBuf {
    let name = format!("shard-{}-of-{}", shard.index, shard.count);
    let store = RunStore::open(&dir.join(format!("{name}.sqlite")), "key", &json!({})).unwrap();
    for index in shard.indices(total) {
        store.commit(&dialogue(1, index, 200)).unwrap();
    }
    let output = dir.join(format!("{name}.jsonl"));
    store.write_jsonl(&output).unwrap();
    output
}

#[test]
fn shards_merge_into_the_unsharded_output() {
    let dir = tempfile::tempdir().unwrap();
    let whole = run_output(dir.path(), Shard::ALL, 11);
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| run_output(dir.path(), Shard::new(i, 3).unwrap(), 11))
        .collect();
    let merged = dir.path().join("merged.jsonl");
    let report = merge(&shards, &merged, Some(11)).unwrap();
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(&whole).unwrap()
    );
    assert_eq!(
        (report.files, report.read, report.written, report.duplicates),
        (3, 11, 11, 0)
    );
    assert_eq!(report.missing, Some(vec![]));

    // A shard left out shows as missing indices.
    let report = merge(&shards[..2], &merged, Some(11)).unwrap();
    assert_eq!(report.missing, Some(vec![2, 5, 8]));
    assert_eq!(report.written, 8);
    assert_eq!(merge(&shards[..2], &merged, None).unwrap().missing, None);
}

#[test]
fn exact_duplicates_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let whole = run_output(dir.path(), Shard::ALL, 6);
    let shard = run_output(dir.path(), Shard::new(1, 2).unwrap(), 6);
    let merged = dir.path().join("merged.jsonl");
    // The shard's dialogues are all in the whole run too; the output may be an input.
    std::fs::copy(&whole, &merged).unwrap();
    let report = merge(&[merged.clone(), shard], &merged, Some(6)).unwrap();
    assert_eq!((report.read, report.written, report.duplicates), (9, 6, 3));
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(&whole).unwrap()
    );
}

#[test]
fn different_dialogues_for_one_index_or_id_are_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    let line = |d: &toolflow_core::Dialogue| serde_json::to_string(d).unwrap() + "\n";

    // Same index, other content.
    let mut other = dialogue(1, 1, 100);
    other.turns.pop();
    std::fs::write(
        &first,
        line(&dialogue(1, 0, 100)) + &line(&dialogue(1, 1, 100)),
    )
    .unwrap();
    std::fs::write(&second, "\n".to_string() + &line(&other)).unwrap();
    let output = dir.path().join("out.jsonl");
    let error = merge(&[first.clone(), second.clone()], &output, None).unwrap_err();
    assert!(
        matches!(error, StoreError::MergeConflict { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("first.jsonl:2") && message.contains("second.jsonl:2"),
        "{message}"
    );
    assert!(message.contains("index 1"), "{message}");
    assert!(!output.exists(), "nothing is written when refused");

    // Same id at another index.
    let mut moved = dialogue(1, 5, 100);
    moved.id = dialogue(1, 0, 100).id;
    std::fs::write(&second, line(&moved)).unwrap();
    let message = merge(&[first, second], &output, None)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("first.jsonl:1") && message.contains("second.jsonl:1"),
        "{message}"
    );
    assert!(message.contains(&format!("id {}", moved.id)), "{message}");
}

#[test]
fn a_malformed_line_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = run_output(dir.path(), Shard::ALL, 2);
    let bad = dir.path().join("bad.jsonl");
    let valid = serde_json::to_string(&dialogue(1, 4, 100)).unwrap();
    std::fs::write(&bad, format!("{valid}\n{{\"id\": \"x\", \"index\": 3}}\n")).unwrap();
    let output = dir.path().join("out.jsonl");
    let message = merge(&[good, bad], &output, None).unwrap_err().to_string();
    assert!(message.contains("bad.jsonl:2:"), "{message}");

    let message = merge(&[dir.path().join("absent.jsonl")], &output, None)
        .unwrap_err()
        .to_string();
    assert!(message.contains("absent.jsonl"), "{message}");
}

#[test]
fn crlf_line_ends_are_read_and_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let whole = run_output(dir.path(), Shard::ALL, 3);
    let crlf = dir.path().join("crlf.jsonl");
    std::fs::write(
        &crlf,
        std::fs::read_to_string(&whole)
            .unwrap()
            .replace('\n', "\r\n"),
    )
    .unwrap();
    let merged = dir.path().join("merged.jsonl");
    let report = merge(&[crlf, whole.clone()], &merged, None).unwrap();
    assert_eq!(report.duplicates, 3);
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(&whole).unwrap()
    );
}
