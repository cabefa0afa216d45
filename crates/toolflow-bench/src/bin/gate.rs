//! The quality gate on its labelled dev corpus (`crates/toolflow-eval/tests/fixtures/gate`):
//! the share of bad dialogues rejected and of good ones kept, precision and recall per
//! rule, the off-plan cosines (all-MiniLM-L6-v2) the threshold was chosen from, and every
//! dialogue on which the filter and the labels disagree.
//!
//! usage: cargo run --release -p toolflow-bench --bin gate -- [CORPUS_DIR]

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use toolflow_embed::{ModelOptions, Precision, SentenceEmbedder, resolve_model};
use toolflow_eval::labelled::{GateScores, dev_corpus, judge_corpus};
use toolflow_eval::{FilterConfig, Rule, input, plan_similarities};

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "-".into(), |x| format!("{:.1}%", 100.0 * x))
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../toolflow-eval/tests/fixtures/gate"),
        PathBuf::from,
    );
    let (files, labels) = dev_corpus(&dir);

    let options = ModelOptions::with_cache_dir(toolflow_core::default_cache_dir());
    let model_dir = resolve_model(&options).context("all-MiniLM-L6-v2")?;
    let model = SentenceEmbedder::load(&model_dir, Precision::Auto)?;
    let mut embed = |texts: &[String]| {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        model.embed(&texts).map_err(|e| e.to_string())
    };

    // The corpus labels every rule but ungrounded-argument, a warning that values the model
    // resolved itself trip by design.
    let config = FilterConfig::from_toml(
        "[rules]\nungrounded-argument = \"off\"\n",
        Path::new("gate.toml"),
    )?;
    let started = Instant::now();
    let verdicts = judge_corpus(&files, &labels, &config, Some(&mut embed))?;
    let elapsed = started.elapsed();
    let scores = GateScores::of(&verdicts);
    println!(
        "gate on {} ({} dialogues: {} should be rejected, {} kept) in {:.2} s",
        dir.display(),
        verdicts.len(),
        scores.bad,
        scores.good,
        elapsed.as_secs_f64()
    );
    println!(
        "bad rejected {}/{} ({}), good kept {}/{} ({}), precision of rejections {}",
        scores.bad_rejected,
        scores.bad,
        percent(scores.bad_rejected_share()),
        scores.good_kept,
        scores.good,
        percent(scores.good_kept_share()),
        percent(scores.rejection_precision())
    );
    println!(
        "  {:<20} {:>7} {:>9} {:>3} {:>3} {:>3} {:>10} {:>7}",
        "rule", "level", "labelled", "tp", "fp", "fn", "precision", "recall"
    );
    for (rule, score) in &scores.rules {
        let level = format!("{:?}", config.level(*rule)).to_lowercase();
        println!(
            "  {:<20} {:>7} {:>9} {:>3} {:>3} {:>3} {:>10} {:>7}",
            rule.id(),
            level,
            score.true_positives + score.false_negatives,
            score.true_positives,
            score.false_positives,
            score.false_negatives,
            percent(score.precision()),
            percent(score.recall())
        );
    }

    // The cosines off-plan compares: every first user turn of a step in dialogues not
    // labelled off-plan, and the lowest one of each dialogue that is.
    let mut on_plan: Vec<f32> = Vec::new();
    let mut off_plan: Vec<(String, f32)> = Vec::new();
    for file in &files {
        input::for_each_dialogue(file, |dialogue, _| {
            let similarities = plan_similarities(&dialogue, &mut embed).map_err(|detail| {
                toolflow_eval::EvalError::Record {
                    path: file.clone(),
                    index: dialogue.index as usize,
                    detail,
                }
            })?;
            let labelled = verdicts
                .iter()
                .any(|v| v.id == dialogue.id && v.expected.contains(&Rule::OffPlan));
            if labelled {
                let lowest = similarities.iter().map(|s| s.cosine).fold(1.0, f32::min);
                off_plan.push((dialogue.id.clone(), lowest));
            } else {
                on_plan.extend(similarities.iter().map(|s| s.cosine));
            }
            Ok(())
        })?;
    }
    on_plan.sort_by(f32::total_cmp);
    let at = |q: f64| on_plan[((on_plan.len() - 1) as f64 * q).round() as usize];
    if !on_plan.is_empty() {
        println!(
            "off-plan cosines, first user turn of a step vs the step ({} turns not labelled off-plan): min {:.3}, 5% {:.3}, median {:.3}; threshold {}",
            on_plan.len(),
            on_plan[0],
            at(0.05),
            at(0.5),
            config.off_plan.threshold
        );
    }
    for (id, cosine) in &off_plan {
        println!("  labelled off-plan: {id}: lowest cosine {cosine:.3}");
    }

    // Real human data, with the default rules: how much of it the gate keeps.
    let sgd = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/dialogues/sgd_test_sample200.json");
    if sgd.exists() {
        let out = tempfile::tempdir()?;
        let summary = toolflow_eval::filter_file_with(
            &sgd,
            &out.path().join("kept.jsonl"),
            &out.path().join("rejected.jsonl"),
            FilterConfig::default(),
            Some(&mut embed),
        )?;
        let rejecting: Vec<String> = summary
            .rules
            .iter()
            .filter(|r| r.level == toolflow_eval::Level::Reject && r.dialogues > 0)
            .map(|r| format!("{} {}", r.rule.id(), r.dialogues))
            .collect();
        println!(
            "SGD sample ({}): {} of {} kept ({:.1}%), rejected by: {}",
            sgd.display(),
            summary.kept,
            summary.dialogues,
            100.0 * summary.kept as f64 / summary.dialogues.max(1) as f64,
            rejecting.join(", ")
        );
    } else {
        println!("SGD sample: {} is absent, skipped", sgd.display());
    }

    let wrong: Vec<_> = verdicts.iter().filter(|v| !v.agrees()).collect();
    println!("disagreements with the labels: {}", wrong.len());
    for verdict in wrong {
        println!(
            "  {}: labelled {:?}, flagged {:?}, rejected {}",
            verdict.id, verdict.expected, verdict.flagged, verdict.rejected
        );
    }
    Ok(())
}
