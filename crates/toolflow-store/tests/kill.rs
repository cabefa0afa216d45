//! Crash safety: a writer process (this binary, started with `WRITER_ENV` naming the store)
//! commits dialogues in a loop as `toolflow run` does; the test kills it with SIGKILL at
//! random moments, reopens the store, checks it and starts the writer again, many times.
//! After a last uninterrupted resume, the store must hold every index exactly once and write
//! the same bytes as a store that was never interrupted.
//!
//! The moments are random: the seed is printed, and `TOOLFLOW_KILL_SEED` replays one.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use support::dialogue;
use toolflow_store::RunStore;

const WRITER_ENV: &str = "TOOLFLOW_STORE_KILL_WRITER";
const RUN_KEY: &str = "kill-test";
const SEED: u64 = 42;
const COUNT: u64 = 6000;
const SIZE: usize = 1000;
const KILLS: usize = 12;

fn main() {
    if let Some(path) = std::env::var_os(WRITER_ENV) {
        write_what_is_missing(Path::new(&path));
        return;
    }
    let started = Instant::now();
    let kills = killed_runs_resume_to_the_uninterrupted_output();
    println!(
        "kill: ok, {kills} kills, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The writer: what `toolflow run` does with its store, without the models.
fn write_what_is_missing(path: &Path) {
    let store = RunStore::open(path, RUN_KEY, &json!({"seed": SEED})).expect("open the store");
    let finished = store.finished().expect("read the finished indices");
    for index in (0..COUNT).filter(|index| !finished.contains(index)) {
        store.commit(&dialogue(SEED, index, SIZE)).expect("commit");
    }
}

fn killed_runs_resume_to_the_uninterrupted_output() -> usize {
    let seed = std::env::var("TOOLFLOW_KILL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("kill: TOOLFLOW_KILL_SEED={seed}");
    let mut random = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.sqlite");
    let writer = || {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.env(WRITER_ENV, &path).stdout(Stdio::null());
        command
    };

    let mut kills = 0;
    let mut finished_before = 0;
    let mut finished_at_kills = Vec::new();
    while kills < KILLS {
        let mut child = writer().spawn().unwrap();
        std::thread::sleep(Duration::from_micros(2_000 + random.next() % 40_000));
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the writer failed: {status}");
            break;
        }
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        kills += 1;
        let store = RunStore::open(&path, RUN_KEY, &json!({})).expect("a killed store reopens");
        let finished = store.finished().unwrap();
        assert!(
            finished.len() >= finished_before,
            "committed dialogues were lost"
        );
        assert!(finished.iter().all(|&index| index < COUNT));
        finished_before = finished.len();
        finished_at_kills.push(finished_before);
    }
    println!("kill: dialogues finished at each kill: {finished_at_kills:?}");
    assert!(
        kills >= 10 && finished_before < COUNT as usize,
        "the writer finished after {kills} kills, before the test was done with it: raise COUNT"
    );
    assert!(
        writer().status().unwrap().success(),
        "the last resume failed"
    );

    let resumed_output = dir.path().join("resumed.jsonl");
    let store = RunStore::open(&path, RUN_KEY, &json!({})).unwrap();
    assert_eq!(store.write_jsonl(&resumed_output).unwrap() as u64, COUNT);

    let uninterrupted =
        RunStore::open(&dir.path().join("whole.sqlite"), RUN_KEY, &json!({})).unwrap();
    for index in 0..COUNT {
        uninterrupted.commit(&dialogue(SEED, index, SIZE)).unwrap();
    }
    let uninterrupted_output = dir.path().join("whole.jsonl");
    uninterrupted.write_jsonl(&uninterrupted_output).unwrap();

    let resumed = std::fs::read(&resumed_output).unwrap();
    assert!(
        resumed == std::fs::read(&uninterrupted_output).unwrap(),
        "outputs differ"
    );
    let indices: Vec<u64> =
        toolflow_core::jsonl::stream::<toolflow_core::Dialogue>(&resumed_output)
            .unwrap()
            .map(|dialogue| dialogue.unwrap().index)
            .collect();
    assert_eq!(
        indices,
        (0..COUNT).collect::<Vec<_>>(),
        "every index once, in order"
    );
    kills
}

/// Enough randomness to pick moments, with no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
