//! Graph-build benchmark: `toolflow graph` against `../shared/bench/reference_graph.py`
//! (sentence-transformers + numpy), on the ToolBench and Seal-Tools tool sets, in one run.
//!
//! For each tool set it runs, one after the other on the same file and the same model
//! directory: the reference script, then for each method (`paper`, `flow`) `toolflow graph`
//! cold (a fresh, empty cache directory) and warm (the same cache again, so no string reaches
//! the model). It
//! prints wall time, peak memory (the child's `ru_maxrss`), strings/s of the embedding and of
//! the join separately, the speed-up over the reference, and the Jaccard similarity of the two
//! edge sets over undirected tool pairs (`paper` only: that method reproduces the script), and
//! the cost of `flow` over `paper` cold.
//!
//! usage: cargo build --release -p toolflow && \
//!        cargo run --release -p toolflow-bench --bin graph -- [--model-dir DIR] [--ref-python PY] [FILE.jsonl...]
//!
//! The model directory is all-MiniLM-L6-v2 as sentence-transformers saves it (see
//! `../shared/bench/README.md`); default `$TOOLFLOW_MODEL_DIR`, else toolflow's cached copy.
//! The Python is `--ref-python`, `$TOOLFLOW_REF_PYTHON`, or `.venv-ref/bin/python` in the
//! repository or next to it; without one the reference is skipped.

#[path = "../common.rs"]
mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use common::{
    Measured, mib, repo_root, run_measured, shared_dir, toolflow_binary, unique_names_copy,
};
use serde_json::Value;

struct Options {
    model_dir: PathBuf,
    python: Option<PathBuf>,
    files: Vec<PathBuf>,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut model_dir = std::env::var_os("TOOLFLOW_MODEL_DIR").map(PathBuf::from);
    let mut python = std::env::var_os("TOOLFLOW_REF_PYTHON").map(PathBuf::from);
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--model-dir" => {
                model_dir = Some(args.next().context("--model-dir needs a directory")?.into())
            }
            "--ref-python" => {
                python = Some(args.next().context("--ref-python needs a path")?.into())
            }
            _ if arg.starts_with('-') => bail!("unknown option {arg}"),
            _ => files.push(PathBuf::from(arg)),
        }
    }
    let model_dir = model_dir.unwrap_or_else(|| {
        toolflow_core::default_cache_dir()
            .join("models")
            .join("all-MiniLM-L6-v2")
    });
    if !model_dir.join("model.safetensors").exists() {
        bail!(
            "no model at {}: pass --model-dir (all-MiniLM-L6-v2 as in ../shared/bench/README.md) or run `toolflow graph` once to cache it",
            model_dir.display()
        );
    }
    let python = python.or_else(|| {
        [
            repo_root().join(".venv-ref/bin/python"),
            repo_root().join("../.venv-ref/bin/python"),
        ]
        .into_iter()
        .find(|p| p.exists())
    });
    if files.is_empty() {
        let tools = shared_dir().join("data/tools");
        files = vec![
            tools.join("tools_toolbench.jsonl"),
            tools.join("tools_sealtools.jsonl"),
        ];
    }
    Ok(Options {
        model_dir,
        python,
        files,
    })
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let toolflow = toolflow_binary()?;
    let reference_script = shared_dir().join("bench/reference_graph.py");
    println!("model directory: {}", options.model_dir.display());
    match &options.python {
        Some(python) => println!(
            "reference: {} {}",
            python.display(),
            reference_script.display()
        ),
        None => println!(
            "reference: skipped (no python with sentence-transformers; set TOOLFLOW_REF_PYTHON)"
        ),
    }
    for file in &options.files {
        if !file.exists() {
            println!("\n{}: absent, skipped", file.display());
            continue;
        }
        bench_file(file, &toolflow, &reference_script, &options)?;
    }
    Ok(())
}

fn bench_file(
    file: &Path,
    toolflow: &Path,
    reference_script: &Path,
    options: &Options,
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let tools = scratch.path().join("tools.jsonl");
    let renamed = unique_names_copy(file, &tools)?;
    println!(
        "\n== {} ({} duplicate names suffixed)",
        file.display(),
        renamed
    );

    let reference = match &options.python {
        Some(python) => {
            let edges = scratch.path().join("reference-edges.tsv");
            let measured = run_measured(
                Command::new(python)
                    .arg(reference_script)
                    .arg(file)
                    .arg(&options.model_dir)
                    .args(["--tau", "0.82", "--out"])
                    .arg(&edges),
                scratch.path(),
            )?;
            let figures: Value =
                serde_json::from_str(measured.stdout.trim()).context("reference output")?;
            Some((measured, figures, read_reference_edges(&edges)?))
        }
        None => None,
    };

    let number = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    if let Some((measured, figures, _)) = &reference {
        let strings = number(figures, "/unique_strings");
        let seconds = |key: &str| number(figures, &format!("/seconds/{key}"));
        println!(
            "reference: wall {:.3}s, peak {:.0} MiB; load {:.3}s, embed {:.3}s ({:.0} strings/s), join {:.3}s ({:.0} strings/s), total {:.3}s, edges {}",
            measured.wall.as_secs_f64(),
            mib(measured.max_rss_bytes),
            seconds("load_model"),
            seconds("embed"),
            strings / seconds("embed"),
            seconds("join"),
            strings / seconds("join"),
            seconds("total"),
            figures["edges"],
        );
    }
    let mut cold_walls = Vec::new();
    for method in ["paper", "flow"] {
        // A fresh cache per method: each cold run embeds every string it needs.
        let cache = scratch.path().join(format!("cache-{method}"));
        let graph_path = scratch.path().join(format!("graph-{method}.json"));
        let run_toolflow = || {
            run_measured(
                Command::new(toolflow)
                    .arg("--json")
                    .arg("--cache-dir")
                    .arg(&cache)
                    .arg("graph")
                    .arg(&tools)
                    .arg("-o")
                    .arg(&graph_path)
                    .arg("--model-dir")
                    .arg(&options.model_dir)
                    .args(["--method", method, "--tau", "0.82"]),
                scratch.path(),
            )
        };
        let cold = run_toolflow()?;
        let warm_runs: Vec<Measured> = (0..3)
            .map(|_| run_toolflow())
            .collect::<anyhow::Result<_>>()?;
        let warm = warm_runs
            .into_iter()
            .min_by_key(|m| m.wall)
            .expect("three warm runs");
        cold_walls.push(cold.wall.as_secs_f64());

        let cold_figures: Value = serde_json::from_str(cold.stdout.trim())?;
        let warm_figures: Value = serde_json::from_str(warm.stdout.trim())?;
        let strings = number(&cold_figures, "/build/strings");
        println!(
            "{method}: {} distinct strings ({} parameter slots, {} return slots)",
            strings,
            number(&cold_figures, "/build/parameter_slots"),
            number(&cold_figures, "/build/return_slots")
        );
        for (label, measured, figures) in [
            ("cold", &cold, &cold_figures),
            ("warm", &warm, &warm_figures),
        ] {
            let embed = number(figures, "/build/embed_time");
            let join = number(figures, "/build/join_time");
            println!(
                "toolflow {method} {label}: wall {:.3}s, peak {:.0} MiB; embed {:.3}s ({:.0} strings/s; model load {:.3}s), join {:.3}s ({:.0} strings/s), edges {}, density {:.4}",
                measured.wall.as_secs_f64(),
                mib(measured.max_rss_bytes),
                embed,
                strings / embed,
                number(figures, "/embedding/model_load_seconds"),
                join,
                strings / join,
                number(figures, "/stats/edges"),
                number(figures, "/stats/density"),
            );
        }
        let tokens = number(&cold_figures, "/embedding/tokens");
        let model_seconds = number(&cold_figures, "/embedding/model_seconds");
        println!(
            "model compute: {tokens} tokens in {model_seconds:.3}s = {:.0} tokens/s; the 2-core limit (~5 s per 90k tokens) would be {:.3}s ({:.2}x of it)",
            tokens / model_seconds,
            tokens / 90_000.0 * 5.0,
            model_seconds / (tokens / 90_000.0 * 5.0)
        );
        if let Some((measured, _, reference_pairs)) = &reference {
            let reference_wall = measured.wall.as_secs_f64();
            println!(
                "{method} speed-up over the reference (wall): cold {:.2}x (target >= 2.5x), warm {:.1}x (target >= 50x)",
                reference_wall / cold.wall.as_secs_f64(),
                reference_wall / warm.wall.as_secs_f64()
            );
            if method == "paper" {
                let toolflow_pairs = graph_pairs(&graph_path)?;
                let common = toolflow_pairs.intersection(reference_pairs).count();
                let union = toolflow_pairs.union(reference_pairs).count();
                println!(
                    "undirected pairs: toolflow {}, reference {}, both {}, only toolflow {}, only reference {}; Jaccard {:.5} (target >= 0.999)",
                    toolflow_pairs.len(),
                    reference_pairs.len(),
                    common,
                    toolflow_pairs.len() - common,
                    reference_pairs.len() - common,
                    if union == 0 {
                        1.0
                    } else {
                        common as f64 / union as f64
                    }
                );
            }
        }
    }
    println!(
        "cost of flow over paper, cold wall: {:.2}x",
        cold_walls[1] / cold_walls[0]
    );
    Ok(())
}

fn read_reference_edges(path: &Path) -> anyhow::Result<HashSet<(u32, u32)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(|line| {
            let (i, j) = line
                .split_once('\t')
                .with_context(|| format!("{}: bad line {line:?}", path.display()))?;
            Ok((i.parse()?, j.parse()?))
        })
        .collect()
}

/// Undirected pairs of node indexes (= tool lines) joined by any edge.
fn graph_pairs(path: &Path) -> anyhow::Result<HashSet<(u32, u32)>> {
    let graph: toolflow_core::ToolGraph = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let adjacency = graph.adjacency()?;
    Ok(adjacency
        .iter()
        .enumerate()
        .flat_map(|(i, neighbours)| {
            neighbours
                .iter()
                .filter(move |&&j| j > i as u32)
                .map(move |&j| (i as u32, j))
        })
        .collect())
}
