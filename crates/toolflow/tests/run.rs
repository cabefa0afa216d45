//! `toolflow run` end to end on the bundled demo tools, with the dialogues written by the
//! scripted model on a stand-in server: every stage writes its file, a rerun skips every
//! stage, a changed setting reruns only what depends on it, and a run killed with SIGKILL
//! again and again resumes to the same bytes as one never interrupted.
//! Uses the real all-MiniLM-L6-v2 for the graph, fetched into the cache on first use.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use toolflow_llm::standin::{Reply, StandInServer};
use toolflow_synth::scripted::dialogue_script;

fn toolflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_toolflow"))
        .current_dir(dir)
        .args(args)
        .arg("--json")
        .output()
        .expect("toolflow runs")
}

fn summary(dir: &Path, args: &[&str]) -> serde_json::Value {
    let output = toolflow(dir, args);
    assert!(
        output.status.success(),
        "toolflow {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON object")
}

fn skipped(summary: &serde_json::Value) -> Vec<(String, bool)> {
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| {
            (
                stage["stage"].as_str().unwrap().to_string(),
                stage["skipped"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn ran(summary: &serde_json::Value) -> Vec<String> {
    skipped(summary)
        .into_iter()
        .filter(|(_, skipped)| !skipped)
        .map(|(stage, _)| stage)
        .collect()
}

/// A config whose dialogues the stand-in at `server` writes.
fn config(server: &StandInServer, extra: &str) -> String {
    format!(
        "{extra}\n[[endpoint]]\nbase_url = \"{}\"\nmodel = \"scripted\"\nmax_concurrency = 64\n",
        server.base_url()
    )
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_run_once_and_rerun_only_when_their_inputs_change() {
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("run.toml"),
        config(
            &server,
            "[sample]\ncount = 4\n[synth]\nturns = [4, 4]\n[judge]\nsample = 2\nseed = 5\n",
        ),
    )
    .unwrap();
    let first = summary(dir.path(), &["run", "run.toml", "--no-cache"]);
    let all = [
        "import",
        "graph",
        "sample",
        "synth",
        "filter",
        "eval",
        "export trl",
        "export sharegpt",
        "report",
    ];
    assert_eq!(ran(&first), all);
    let out = dir.path().join("toolflow-out");
    assert_eq!(lines(&out.join("tools.jsonl")), 16);
    let graph: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("graph.json")).unwrap()).unwrap();
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 16);
    assert!(!graph["edges"].as_array().unwrap().is_empty());
    assert_eq!(lines(&out.join("subsets.jsonl")), 4);
    assert_eq!(lines(&out.join("dialogues.jsonl")), 4);
    assert_eq!(first["synth"]["completed"], 4, "{}", first["synth"]);
    assert_eq!(
        lines(&out.join("kept.jsonl")) + lines(&out.join("rejected.jsonl")),
        4
    );
    assert!(
        lines(&out.join("kept.jsonl")) >= 1,
        "{}",
        std::fs::read_to_string(out.join("rejected.jsonl")).unwrap()
    );
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert!(
        metrics["runs"][0]["statistics"]["tool_calls"]
            .as_u64()
            .unwrap()
            > 0
    );
    // The judge scored a seeded sample of the kept dialogues through the run's endpoint.
    let judge = &metrics["runs"][0]["judge"];
    let kept = lines(&out.join("kept.jsonl")).min(2);
    assert_eq!(judge["sampled"], kept as u64, "{judge}");
    assert_eq!(judge["judged"], kept as u64, "{judge}");
    assert_eq!(judge["seed"], 5);
    assert_eq!(judge["verdicts"].as_array().unwrap().len(), kept);
    for key in ["nat", "coh", "help", "acc"] {
        let mean = judge["value"][key].as_f64().unwrap();
        assert!((1.0..=5.0).contains(&mean), "{key}: {mean}");
    }
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("<th>judge NAT</th>"));
    assert!(report.contains("<th>judge ACC</th>"));
    for format in ["trl", "sharegpt"] {
        let dir = out.join("exports").join(format);
        assert_eq!(
            lines(&dir.join("train.jsonl")) + lines(&dir.join("validation.jsonl")),
            lines(&out.join("kept.jsonl"))
        );
    }
    assert!(
        first["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["role"] == "assistant")
    );

    let asked = server.request_count();
    let again = summary(dir.path(), &["run", "run.toml", "--no-cache"]);
    assert!(ran(&again).is_empty(), "{:?}", skipped(&again));
    assert_eq!(server.request_count(), asked, "a current run asks no model");

    // More dialogues: the sample reruns, synthesis writes only the new ones.
    std::fs::write(
        dir.path().join("run.toml"),
        config(
            &server,
            "[sample]\ncount = 6\n[synth]\nturns = [4, 4]\n[judge]\nsample = 2\nseed = 5\n",
        ),
    )
    .unwrap();
    let more = summary(dir.path(), &["run", "run.toml", "--no-cache"]);
    assert_eq!(ran(&more)[..2], ["sample", "synth"]);
    assert_eq!(more["synth"]["resumed"], 4);
    assert_eq!(more["synth"]["written"], 2);
    assert_eq!(lines(&out.join("dialogues.jsonl")), 6);

    // An output edited by hand is no longer current: its stage and those after it rerun.
    std::fs::write(out.join("graph.json"), "{}").unwrap();
    assert_eq!(
        ran(&summary(dir.path(), &["run", "run.toml", "--no-cache"])),
        ["graph"]
    );

    // Changed synthesis settings do not mix with the stored dialogues.
    std::fs::write(
        dir.path().join("run.toml"),
        config(&server, "[sample]\ncount = 6\n[synth]\nturns = [4, 5]\n"),
    )
    .unwrap();
    let refused = toolflow(dir.path(), &["run", "run.toml", "--no-cache"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let forced = summary(dir.path(), &["run", "run.toml", "--no-cache", "--force"]);
    assert_eq!(forced["synth"]["written"], 6);

    // The embedding precision is part of the graph's key: asking for f32 leaves no graph
    // built at bf16 in place (on CPUs without bf16, `auto` already was f32). The graph
    // stage runs first, whatever the later stages make of its new edges.
    toolflow(
        dir.path(),
        &["run", "run.toml", "--no-cache", "--embed-precision", "f32"],
    );
    let graph: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("graph.json")).unwrap()).unwrap();
    assert_eq!(
        graph["meta"]["model"],
        "sentence-transformers/all-MiniLM-L6-v2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_merge_into_the_unsharded_run() {
    let server = StandInServer::start(dialogue_script).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("run.toml"),
        config(&server, "[sample]\ncount = 5\n"),
    )
    .unwrap();
    summary(
        dir.path(),
        &["run", "run.toml", "--no-cache", "--out", "whole"],
    );
    for shard in ["0/2", "1/2"] {
        let out = format!("shard-{}", &shard[..1]);
        let result = summary(
            dir.path(),
            &[
                "run",
                "run.toml",
                "--no-cache",
                "--shard",
                shard,
                "--out",
                &out,
            ],
        );
        assert_eq!(
            ran(&result).last().unwrap(),
            "synth",
            "a shard stops after synthesis"
        );
    }
    assert_eq!(lines(&dir.path().join("shard-0/dialogues.jsonl")), 3);
    summary(
        dir.path(),
        &[
            "merge",
            "shard-0/dialogues.jsonl",
            "shard-1/dialogues.jsonl",
            "-o",
            "merged.jsonl",
        ],
    );
    assert_eq!(
        std::fs::read(dir.path().join("merged.jsonl")).unwrap(),
        std::fs::read(dir.path().join("whole/dialogues.jsonl")).unwrap()
    );
}

/// Kills `toolflow run` with SIGKILL at random moments until one attempt finishes, then
/// compares its dialogues with those of a run never interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_again_and_again_resumes_to_the_same_bytes() {
    // Slow answers stretch the synthesis stage over a few seconds, so kills land in it.
    let server = StandInServer::start(|request| {
        Reply::Slow(
            Duration::from_millis(10),
            Box::new(dialogue_script(request)),
        )
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("run.toml"),
        config(&server, "[sample]\ncount = 48\n[synth]\nconcurrency = 2\n"),
    )
    .unwrap();
    summary(
        dir.path(),
        &["run", "run.toml", "--no-cache", "--out", "whole"],
    );
    let whole = std::fs::read(dir.path().join("whole/dialogues.jsonl")).unwrap();

    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut kills = 0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts <= 100, "no attempt finished in 100 tries");
        let mut child = Command::new(env!("CARGO_BIN_EXE_toolflow"))
            .current_dir(dir.path())
            .args(["run", "run.toml", "--no-cache", "--out", "resumed", "-q"])
            .spawn()
            .unwrap();
        // xorshift: kill after 0.15 to 1.2 s; a dialogue takes about 0.3 s.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let deadline = Instant::now() + Duration::from_millis(150 + seed % 1050);
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        match finished {
            Some(status) => {
                assert!(status.success(), "attempt {attempts} failed: {status}");
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    assert!(
        kills >= 8,
        "only {kills} kills landed before the run finished"
    );
    let resumed = std::fs::read(dir.path().join("resumed/dialogues.jsonl")).unwrap();
    let indices: Vec<u64> = String::from_utf8_lossy(&resumed)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(indices, (0..48).collect::<Vec<_>>(), "each dialogue once");
    assert!(
        resumed == whole,
        "the resumed run's dialogues differ from the uninterrupted run's"
    );
    println!("{kills} kills over {attempts} attempts");
}

#[test]
fn a_config_with_an_unknown_key_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[sample]\ncuont = 3\n").unwrap();
    let output = toolflow(dir.path(), &["run", "bad.toml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("cuont"),
        "{stderr}"
    );
}
