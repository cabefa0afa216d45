//! Every rule on the labelled dev corpus in `tests/fixtures/gate/`: hand-written good
//! dialogues (toolflow records and SGD-style files), one targeted defect per rule, and the
//! defects small models write, and real output of the embedded model. Each dialogue must be flagged by exactly the rules of its
//! label, bad ones rejected and the others kept. `toolflow-bench --bin gate` prints the
//! same comparison as precision and recall.

use std::path::{Path, PathBuf};

use toolflow_embed::{ModelOptions, Precision, SentenceEmbedder, resolve_model};
use toolflow_eval::labelled::{GateScores, Verdict, dev_corpus, judge_corpus};
use toolflow_eval::{FilterConfig, Rule};

/// The default rules, but `ungrounded-argument`: a warning that values the model resolved
/// itself trip by design, and that the corpus does not label.
fn config() -> FilterConfig {
    FilterConfig::from_toml(
        "[rules]\nungrounded-argument = \"off\"\n",
        Path::new("gate.toml"),
    )
    .unwrap()
}

fn corpus() -> (Vec<PathBuf>, PathBuf) {
    dev_corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gate"))
}

fn disagreements(verdicts: &[Verdict], ignore: &[Rule]) -> Vec<String> {
    verdicts
        .iter()
        .filter_map(|v| {
            let expected: Vec<_> = v.expected.iter().filter(|r| !ignore.contains(r)).collect();
            let flagged: Vec<_> = v.flagged.iter().filter(|r| !ignore.contains(r)).collect();
            (expected != flagged || v.should_reject != v.rejected).then(|| {
                format!(
                    "{}: labelled {expected:?}, flagged {flagged:?}, rejected {}",
                    v.id, v.rejected
                )
            })
        })
        .collect()
}

#[test]
fn every_rule_flags_exactly_its_labelled_dialogues() {
    let (files, labels) = corpus();
    let verdicts = judge_corpus(&files, &labels, &config(), None).unwrap();
    // Without an embedding function off-plan is not measured; the test below measures it.
    let wrong = disagreements(&verdicts, &[Rule::OffPlan]);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // One targeted defect per rule at least, good dialogues of both formats, and bad ones.
    // The judge gate needs a judge: `crates/toolflow/tests/filter.rs` checks it.
    for rule in Rule::ALL
        .into_iter()
        .filter(|rule| ![Rule::UngroundedArgument, Rule::Judge].contains(rule))
    {
        assert!(
            verdicts.iter().any(|v| v.expected.contains(&rule)),
            "no dialogue of the corpus is labelled {}",
            rule.id()
        );
    }
    let scores = GateScores::of(&verdicts);
    assert!(scores.good >= 30 && scores.bad >= 35, "{scores:?}");
    assert!(
        verdicts
            .iter()
            .any(|v| v.id.starts_with("sgd-") && !v.rejected)
    );
}

#[test]
fn off_plan_with_minilm_flags_exactly_its_labelled_dialogues() {
    let options = ModelOptions::with_cache_dir(toolflow_core::default_cache_dir());
    let dir = resolve_model(&options).expect("all-MiniLM-L6-v2 (cache, hub or pip)");
    let model = SentenceEmbedder::load(&dir, Precision::Auto).expect("a loadable model");
    let mut embed = |texts: &[String]| {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        model.embed(&texts).map_err(|e| e.to_string())
    };
    let (files, labels) = corpus();
    let verdicts = judge_corpus(&files, &labels, &config(), Some(&mut embed)).unwrap();
    let wrong = disagreements(&verdicts, &[]);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_label_for_a_dialogue_not_in_the_corpus_is_an_error() {
    let (files, _) = corpus();
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.json");
    std::fs::write(&labels, r#"{"no-such-dialogue": ["placeholder"]}"#).unwrap();
    let error = judge_corpus(&files, &labels, &FilterConfig::default(), None).unwrap_err();
    assert!(error.to_string().contains("no-such-dialogue"), "{error}");
    std::fs::write(&labels, r#"{"good-stocks": ["no-such-rule"]}"#).unwrap();
    let error = judge_corpus(&files, &labels, &FilterConfig::default(), None).unwrap_err();
    assert!(error.to_string().contains("bad labels file"), "{error}");
}
