mod support;

use std::collections::BTreeSet;

use serde_json::json;
use support::dialogue;
use toolflow_core::OutcomeStatus;
use toolflow_store::{RunStore, StoreError};

#[test]
fn commits_round_trip_in_index_order_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run").join("store.sqlite");
    let store = RunStore::open(&path, "key", &json!({})).unwrap();
    let order = [5u64, 0, 9, 2, 7, 1, 8, 3, 6, 4];
    for &index in &order {
        assert!(
            store.commit(&dialogue(1, index, 300)).unwrap(),
            "{index} is new"
        );
    }
    // A second commit of an index stores nothing, even with other content.
    assert!(!store.commit(&dialogue(1, 5, 300)).unwrap());
    let mut changed = dialogue(1, 2, 300);
    changed.turns.clear();
    assert!(!store.commit(&changed).unwrap());
    assert_eq!(
        store.finished().unwrap(),
        (0..10).collect::<BTreeSet<u64>>()
    );

    let out = dir.path().join("dialogues.jsonl");
    assert_eq!(store.write_jsonl(&out).unwrap(), 10);
    let expected: String = (0..10)
        .map(|index| serde_json::to_string(&dialogue(1, index, 300)).unwrap() + "\n")
        .collect();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
    assert!(!dir.path().join("dialogues.jsonl.partial").exists());

    let counts = store.counts().unwrap();
    // Every seventh (0 and 7) failed, 3 hit the turn limit.
    assert_eq!(
        (counts.completed, counts.turn_limit, counts.failed),
        (7, 1, 2)
    );
    assert_eq!(counts.total(), 10);
    assert_eq!(
        counts.usage.prompt_tokens,
        (0..10).map(|i| 100 + i).sum::<u64>()
    );
    assert_eq!(counts.usage.completion_tokens, 100);
}

#[test]
fn a_reopened_store_keeps_its_dialogues_and_meta() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let settings = json!({"seed": 1, "count": 10, "plan": true});
    {
        let store = RunStore::open(&path, "key", &settings).unwrap();
        store.commit(&dialogue(1, 3, 100)).unwrap();
    }
    // The settings given on reopening do not replace the recorded ones.
    let store = RunStore::open(&path, "key", &json!({"other": true})).unwrap();
    assert_eq!(store.finished().unwrap(), BTreeSet::from([3]));
    let meta = store.meta().unwrap();
    assert_eq!(meta.run_key, "key");
    assert_eq!(meta.settings, settings);
    assert_eq!(meta.tool_version, env!("CARGO_PKG_VERSION"));
    assert!(
        meta.created_at.ends_with('Z') && meta.created_at.len() == 20,
        "{}",
        meta.created_at
    );

    drop(store);
    let read_only = RunStore::open_existing(&path).unwrap();
    assert_eq!(read_only.meta().unwrap(), meta);
    assert!(RunStore::open_existing(&dir.path().join("absent.sqlite")).is_err());
    assert!(!dir.path().join("absent.sqlite").exists());
}

#[test]
fn a_store_of_another_run_is_refused_until_created_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    RunStore::open(&path, "first", &json!({}))
        .unwrap()
        .commit(&dialogue(1, 0, 100))
        .unwrap();

    let error = RunStore::open(&path, "second", &json!({}))
        .err()
        .expect("refused");
    match &error {
        StoreError::OtherRun {
            path: named,
            found,
            expected,
        } => {
            assert_eq!(named, &path);
            assert_eq!((found.as_str(), expected.as_str()), ("first", "second"));
        }
        other => panic!("{other}"),
    }
    assert!(error.to_string().contains("store.sqlite"), "{error}");
    // Refusing changed nothing.
    let first = RunStore::open(&path, "first", &json!({})).unwrap();
    assert_eq!(first.finished().unwrap().len(), 1);
    drop(first);

    let fresh = RunStore::create_fresh(&path, "second", &json!({"n": 2})).unwrap();
    assert!(fresh.finished().unwrap().is_empty());
    assert_eq!(fresh.meta().unwrap().run_key, "second");
    assert!(RunStore::open(&path, "first", &json!({})).is_err());
    // Creating fresh where there is nothing yet works too.
    RunStore::create_fresh(&dir.path().join("new.sqlite"), "k", &json!({})).unwrap();
}

#[test]
fn forgetting_failed_dialogues_lets_a_rerun_redo_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::open(&dir.path().join("s.sqlite"), "key", &json!({})).unwrap();
    for index in 0..15 {
        store.commit(&dialogue(1, index, 100)).unwrap();
    }
    assert_eq!(store.counts().unwrap().failed, 3);
    assert_eq!(store.forget_failed().unwrap(), 3);
    let finished = store.finished().unwrap();
    assert_eq!(finished.len(), 12);
    assert!(!finished.contains(&0) && !finished.contains(&7) && !finished.contains(&14));
    assert_eq!(store.counts().unwrap().failed, 0);
    let mut redone = dialogue(1, 7, 100);
    redone.outcome.status = OutcomeStatus::Completed;
    assert!(store.commit(&redone).unwrap());
    assert_eq!(store.forget_failed().unwrap(), 0);
}

#[test]
fn one_id_at_two_indices_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::open(&dir.path().join("s.sqlite"), "key", &json!({})).unwrap();
    store.commit(&dialogue(1, 1, 100)).unwrap();
    let mut clash = dialogue(1, 2, 100);
    clash.id = dialogue(1, 1, 100).id;
    match store.commit(&clash) {
        Err(StoreError::IdTaken {
            index: 2,
            taken_by: 1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(store.finished().unwrap(), BTreeSet::from([1]));
}

#[test]
fn a_file_that_is_not_a_store_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "not a database, just some text that is long enough ".repeat(20),
    )
    .unwrap();
    let error = RunStore::open(&path, "key", &json!({}))
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("notes.txt"), "{error}");
}

#[test]
fn the_store_is_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RunStore>();
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::open(&dir.path().join("s.sqlite"), "key", &json!({})).unwrap();
    std::thread::scope(|scope| {
        for worker in 0..4u64 {
            let store = &store;
            scope.spawn(move || {
                for index in (worker..40).step_by(4) {
                    assert!(store.commit(&dialogue(1, index, 100)).unwrap());
                }
            });
        }
    });
    assert_eq!(store.finished().unwrap(), (0..40).collect());
}

#[test]
fn a_store_open_in_another_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let running = RunStore::open(&path, "key", &json!({})).unwrap();
    running.commit(&dialogue(1, 0, 100)).unwrap();
    // Another connection stands for another process: SQLite's locks tell them apart too.
    match RunStore::open(&path, "key", &json!({})) {
        Err(StoreError::InUse { path: named }) => assert_eq!(named, path),
        other => panic!("{:?}", other.err()),
    }
    assert!(matches!(
        RunStore::open_existing(&path),
        Err(StoreError::InUse { .. })
    ));
    // The run goes on undisturbed, and once it is closed the store opens again.
    running.commit(&dialogue(1, 1, 100)).unwrap();
    drop(running);
    let reopened = RunStore::open(&path, "key", &json!({})).unwrap();
    assert_eq!(reopened.finished().unwrap(), BTreeSet::from([0, 1]));
    assert!(
        !dir.path().join("s.sqlite-shm").exists(),
        "no shared-memory file"
    );
}
