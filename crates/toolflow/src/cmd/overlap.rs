//! `toolflow overlap`: is a training tool set leaked from test sets? The paper's §7 check —
//! token 11-gram coverage of each tool's JSON and embedding cosine — per test set, into
//! overlap.json.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};
use toolflow_core::Tool;
use toolflow_embed::CachedEmbedder;
use toolflow_eval::overlap::{OverlapOptions, OverlapReport, TestSet, TestSetOverlap, overlap};
use toolflow_import::{ImportOptions, Importer};

#[derive(clap::Args)]
pub struct Args {
    /// The training tools: tools.jsonl, dialogues.jsonl (the tools of its records, by name),
    /// or any tool file or directory `toolflow import` reads
    train: PathBuf,
    /// A test set: any tool file or directory `toolflow import` reads (BFCL, API-Bank, …);
    /// repeat for several, each reported apart
    #[arg(long, required = true, num_args = 1..)]
    against: Vec<PathBuf>,
    /// Where to write the report
    #[arg(short, long, default_value = "overlap.json")]
    output: PathBuf,
    /// Tokens per n-gram ("longer than 10 tokens")
    #[arg(long, default_value_t = toolflow_eval::overlap::DEFAULT_NGRAM)]
    ngram: usize,
    /// A tool is leaked when more than this share of its JSON tokens is in shared n-grams
    #[arg(long, default_value_t = toolflow_eval::overlap::DEFAULT_COVERAGE)]
    coverage: f64,
    /// A tool is leaked when its embedding cosine to any tool of the other set is above this
    #[arg(long, default_value_t = toolflow_eval::overlap::DEFAULT_COSINE)]
    cosine: f64,
    /// Use the all-MiniLM-L6-v2 files in this directory instead of resolving the model
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Never ask the Hugging Face hub for the model (as HF_HUB_OFFLINE=1 does)
    #[arg(long)]
    offline: bool,
    /// Leaked tools listed per test set in the table (all are in the report)
    #[arg(long, default_value_t = 10)]
    show: usize,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let started = Instant::now();
    anyhow::ensure!(args.ngram >= 1, "--ngram must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.coverage),
        "--coverage must be a share between 0 and 1, got {}",
        args.coverage
    );
    let train = read_train(&args.train)?;
    anyhow::ensure!(!train.is_empty(), "{}: no tools", args.train.display());
    let mut tests = Vec::with_capacity(args.against.len());
    for path in &args.against {
        let tools = import_tools(path)?;
        anyhow::ensure!(!tools.is_empty(), "{}: no tools read", path.display());
        tests.push(TestSet {
            name: set_name(path),
            tools,
        });
    }

    let mut embedder = CachedEmbedder::open(global.model_options(args.model_dir.clone(), args.offline))?;
    let options = OverlapOptions {
        ngram: args.ngram,
        coverage: args.coverage,
        cosine: args.cosine,
    };
    let mut embed = |texts: &[String]| embedder.embed(texts).map_err(|error| error.to_string());
    let report = overlap(&train, &tests, &options, &mut embed)?;
    let stats = embedder.stats();
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        cache_hits = stats.cache_hits,
        computed = stats.computed,
        "overlap measured"
    );

    let document = document(&report, &args, embedder.model_id());
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(&args.output, format!("{text}\n"))
        .with_context(|| format!("writing {}", args.output.display()))?;
    if global.json {
        println!("{text}");
    } else if !global.quiet {
        eprint!("{}", table(&report, &args));
        eprintln!(
            "wrote {} in {:.1}s",
            args.output.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The library's report with the inputs and the model named.
fn document(report: &OverlapReport, args: &Args, model: &str) -> Value {
    let mut document = serde_json::to_value(report).expect("the report serializes");
    document["model"] = model.into();
    document["train"] = json!({"path": args.train, "tools": report.train_tools});
    if let Some(sets) = document["test_sets"].as_array_mut() {
        for (set, path) in sets.iter_mut().zip(&args.against) {
            set["path"] = json!(path);
        }
    }
    document
}

/// A dialogues file gives the tools of its records; anything else goes through import.
fn read_train(path: &Path) -> anyhow::Result<Vec<Tool>> {
    if !is_dialogues(path)? {
        return import_tools(path);
    }
    let mut tools = Vec::new();
    let mut seen = HashSet::new();
    toolflow_eval::input::for_each_dialogue(path, |dialogue, _| {
        for tool in dialogue.tools {
            if seen.insert(tool.name.clone()) {
                tools.push(tool);
            }
        }
        Ok(())
    })
    .with_context(|| format!("reading the tools of the dialogues in {}", path.display()))?;
    Ok(tools)
}

/// Whether the first non-empty line of a file is a dialogue record (an object with `turns`
/// and `tools`).
fn is_dialogues(path: &Path) -> anyhow::Result<bool> {
    if path.is_dir() {
        return Ok(false);
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let first: Option<Value> = serde_json::from_str(&line).ok();
        return Ok(first.is_some_and(|value| {
            value.get("turns").is_some() && value.get("tools").is_some_and(Value::is_array)
        }));
    }
    Ok(false)
}

fn import_tools(path: &Path) -> anyhow::Result<Vec<Tool>> {
    let mut importer = Importer::new(ImportOptions::default());
    importer.add_path(path)?;
    let report = importer.finish();
    let summary = report.summary();
    if !report.diagnostics.is_empty() {
        tracing::warn!(
            path = %path.display(),
            skipped_or_repaired = report.diagnostics.len(),
            "read with problems (see `toolflow import` for the list)"
        );
    }
    tracing::info!(path = %path.display(), tools = report.tools.len(), ?summary, "tools read");
    Ok(report.tools)
}

/// `data/BFCL_v4_simple.json` → `BFCL_v4_simple`; a directory keeps its name.
fn set_name(path: &Path) -> String {
    let name = if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem()
    };
    name.map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn table(report: &OverlapReport, args: &Args) -> String {
    let mut out = format!(
        "train: {} ({} tools); leaked when n-gram ({}-token) coverage > {} or cosine > {}\n",
        args.train.display(),
        report.train_tools,
        args.ngram,
        args.coverage,
        args.cosine
    );
    out.push_str(&format!(
        "{:<28} {:>6} | {:>26} | {:>26}\n",
        "", "", "train tools leaked", "test tools leaked"
    ));
    out.push_str(&format!(
        "{:<28} {:>6} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}\n",
        "test set", "tools", "n-gram", "similar", "either", "n-gram", "similar", "either"
    ));
    let percent = |count: toolflow_eval::overlap::LeakCount| format!("{:.3}%", count.percent);
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
        out.push_str(&leaked_list(set, args.show));
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
