//! Stage results as plain-text tables, the way the command line shows them to a person.

use std::path::Path;

use toolflow_core::metrics::{JudgeMeans, RunMetrics};
use toolflow_eval::FilterSummary;
use toolflow_eval::overlap::{LeakCount, OverlapOptions, OverlapReport, TestSetOverlap};
use toolflow_graph::GraphStats;
use toolflow_llm::{ProbeReport, TallyRow};

use crate::build::BuiltGraph;

/// What `toolflow graph` wrote: tools and edges, and where the strings' embeddings came from.
pub fn graph_line(output: &Path, built: &BuiltGraph, stats: &GraphStats) -> String {
    let (report, embedding) = (&built.report, &built.embedding);
    format!(
        "{}: {} tools, {} edges ({} strings: {} from cache, {} embedded in {:.2}s; join {:.3}s)",
        output.display(),
        stats.nodes,
        stats.edges,
        report.strings,
        embedding.cache_hits,
        embedding.computed,
        report.embed_time.as_secs_f64(),
        report.join_time.as_secs_f64(),
    )
}

/// SS ×100 and EnR in percent, as the paper's Table 2 prints them; `-` for no value.
/// `chained`: the share of calls taking a value of an earlier result; `links`: planned
/// data-flow links realised / planned (`-` when no dialogue has links).
pub fn metrics_table(runs: &[RunMetrics]) -> String {
    let mut out = format!(
        "{:<24} {:>9} {:>8} {:>11} {:>8} {:>10} {:>9} {:>8} {:>9} {:>8} {:>7} {:>6} {:>6}\n",
        "run",
        "dialogues",
        "turns",
        "tokens",
        "calls",
        "call turns",
        "chitchat",
        "chained",
        "links",
        "H (bits)",
        "D-3",
        "SS",
        "EnR"
    );
    for run in runs {
        let (s, d) = (&run.statistics, &run.diversity);
        let percent = |value: Option<f64>| match value {
            Some(value) => format!("{:.2}", 100.0 * value),
            None => "-".to_string(),
        };
        let links = if s.links_planned == 0 {
            "-".to_string()
        } else {
            format!("{}/{}", s.links_realised, s.links_planned)
        };
        out.push_str(&format!(
            "{:<24} {:>9} {:>8} {:>11} {:>8} {:>10} {:>8.1}% {:>7.1}% {:>9} {:>8.2} {:>7.4} {:>6} {:>6}\n",
            run.name,
            s.dialogues,
            s.turns,
            s.tokens,
            s.tool_calls,
            s.call_turns,
            100.0 * s.chitchat_share,
            100.0 * s.chained_call_share,
            links,
            d.entropy_bits,
            d.distinct_3,
            percent(run.coherence.ss.value),
            percent(run.coherence.enr.value),
        ));
    }
    out
}

/// The judge's mean scores per run, with how many dialogues it judged and how many failed.
pub fn judge_table(runs: &[RunMetrics]) -> String {
    let mut out = format!(
        "{:<24} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6}\n",
        "judge", "NAT", "COH", "HELP", "ACC", "judged", "failed"
    );
    for run in runs {
        let judge = &run.judge;
        let score = |mean: fn(&JudgeMeans) -> f64| match &judge.value {
            Some(means) => format!("{:.2}", mean(means)),
            None => "-".to_string(),
        };
        out.push_str(&format!(
            "{:<24} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6}\n",
            run.name,
            score(|m| m.nat),
            score(|m| m.coh),
            score(|m| m.help),
            score(|m| m.acc),
            judge.judged.unwrap_or_default(),
            judge.failed.unwrap_or_default(),
        ));
    }
    out
}

/// Why a coherence column is empty, once per distinct reason.
pub fn coherence_notes(runs: &[RunMetrics]) -> Vec<String> {
    let mut notes = Vec::new();
    for run in runs {
        let coherence = &run.coherence;
        for (note, label) in [(&coherence.ss.note, "SS"), (&coherence.enr.note, "EnR")] {
            if let Some(note) = note {
                let line = format!("{label}: {note}");
                if !notes.contains(&line) {
                    notes.push(line);
                }
            }
        }
    }
    notes
}

/// The leak shares per test set, the closest matches, and the first `show` leaked training
/// tools of each set.
pub fn overlap_table(
    report: &OverlapReport,
    train: &Path,
    options: &OverlapOptions,
    show: usize,
) -> String {
    let mut out = format!(
        "train: {} ({} tools); leaked when n-gram ({}-token) coverage > {} or cosine > {}\n",
        train.display(),
        report.train_tools,
        options.ngram,
        options.coverage,
        options.cosine
    );
    out.push_str(&format!(
        "{:<28} {:>6} | {:>26} | {:>26}\n",
        "", "", "train tools leaked", "test tools leaked"
    ));
    out.push_str(&format!(
        "{:<28} {:>6} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}\n",
        "test set", "tools", "n-gram", "similar", "either", "n-gram", "similar", "either"
    ));
    let percent = |count: LeakCount| format!("{:.3}%", count.percent);
    for set in &report.test_sets {
        out.push_str(&format!(
            "{:<28} {:>6} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}\n",
            set.name,
            set.test.tools,
            percent(set.train.ngram),
            percent(set.train.similarity),
            percent(set.train.either),
            percent(set.test.ngram),
            percent(set.test.similarity),
            percent(set.test.either),
        ));
    }
    out.push_str("closest: highest n-gram coverage / cosine of any train tool, of any test tool\n");
    for set in &report.test_sets {
        out.push_str(&format!(
            "{:<28} train {:>5.1}% / {:.3}   test {:>5.1}% / {:.3}\n",
            set.name,
            100.0 * set.train.max_ngram_coverage,
            set.train.max_cosine,
            100.0 * set.test.max_ngram_coverage,
            set.test.max_cosine
        ));
    }
    for set in &report.test_sets {
        out.push_str(&leaked_list(set, show));
    }
    out
}

fn leaked_list(set: &TestSetOverlap, show: usize) -> String {
    if set.leaked.is_empty() || show == 0 {
        return String::new();
    }
    let mut out = format!(
        "\nleaked training tools vs {} ({}, first {}):\n",
        set.name,
        set.leaked.len(),
        show.min(set.leaked.len())
    );
    for tool in set.leaked.iter().take(show) {
        out.push_str(&format!(
            "  {:<40} n-gram {:>5.1}%  cosine {:.3} to {}\n",
            tool.name,
            100.0 * tool.ngram_coverage,
            tool.cosine,
            tool.best_match
        ));
    }
    out
}

/// The kept and rejected counts, then each rule's level and how many dialogues and reasons
/// it found.
pub fn filter_table(summary: &FilterSummary) -> String {
    let mut out = format!(
        "{} dialogues: {} kept ({} with warnings), {} rejected\n",
        summary.dialogues, summary.kept, summary.kept_with_warnings, summary.rejected
    );
    out.push_str(&format!(
        "  {:<22} {:>7} {:>10} {:>8}\n",
        "rule", "level", "dialogues", "reasons"
    ));
    for count in &summary.rules {
        out.push_str(&format!(
            "  {:<22} {:>7} {:>10} {:>8}\n",
            count.rule.id(),
            count.level.id(),
            count.dialogues,
            count.reasons
        ));
    }
    if summary.off_plan_unmeasured > 0 {
        out.push_str(&format!(
            "  off-plan could not be measured on {} dialogues\n",
            summary.off_plan_unmeasured
        ));
    }
    if summary.judge_unscored > 0 {
        out.push_str(&format!(
            "  the judge gave no usable verdict on {} kept dialogues\n",
            summary.judge_unscored
        ));
    }
    out
}

/// Every endpoint's capability checks, one line each, and the capabilities it is used with.
pub fn probe_table(reports: &[ProbeReport]) -> String {
    let mut out = String::new();
    for report in reports {
        out.push_str(&format!("{}\n", report.endpoint));
        for check in &report.checks {
            let outcome = serde_json::to_value(&check.outcome).expect("an outcome serialises");
            out.push_str(&format!(
                "  {:<40} {:<10} {}\n",
                check.feature,
                outcome.as_str().unwrap_or_default(),
                check.detail.replace('\n', " ")
            ));
        }
        let capabilities =
            serde_json::to_string(&report.capabilities).expect("capabilities serialise");
        out.push_str(&format!("  => {capabilities}\n"));
    }
    out
}

/// One line per model: its tokens and cost, and whether the cache answered.
pub fn usage_lines(tallies: &[TallyRow]) -> Vec<String> {
    let mut lines = Vec::new();
    for row in tallies {
        let tally = &row.tally;
        let source = if tally.cache_hits > 0 {
            ", from the cache".to_owned()
        } else {
            format!(", {} attempt(s)", tally.attempts)
        };
        lines.push(format!(
            "{}: {} prompt + {} completion tokens, ${:.6}{source}",
            row.model, tally.prompt_tokens, tally.completion_tokens, tally.cost_usd
        ));
    }
    lines
}
