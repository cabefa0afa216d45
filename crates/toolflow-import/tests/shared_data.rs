//! Imports every file under `../shared/data/raw/` and `../shared/data/tools/` (relative to
//! the repository root) when that read-only data is present, printing the counts per file
//! (`cargo test -p toolflow-import --test shared_data -- --nocapture`). Skips, saying so,
//! when it is absent.

use std::path::{Path, PathBuf};

use toolflow_import::{ImportOptions, Issue, import_paths};

fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: shared data not found at {}", dir.display());
        None
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// BFCL's `possible_answer/` files hold expected calls, not function docs.
fn is_answer_key(path: &Path) -> bool {
    path.components()
        .any(|component| component.as_os_str() == "possible_answer")
}

#[test]
fn every_shared_file_imports() {
    let Some(data) = shared_data() else { return };
    let mut files = Vec::new();
    files_under(&data.join("raw"), &mut files);
    files_under(&data.join("tools"), &mut files);
    assert!(!files.is_empty());
    println!(
        "{:<60} {:>9} {:>6} {:>6} {:>7} {:>6} {:>8}",
        "file", "format", "read", "kept", "renamed", "dedup", "skipped"
    );
    for path in &files {
        let report = import_paths(&[path], &ImportOptions::default()).unwrap();
        let summary = report.summary();
        let name = path.strip_prefix(&data).unwrap().display().to_string();
        if is_answer_key(path) {
            // Answer keys are not tool definitions: the importer must say so, not guess.
            assert_eq!(summary.files_failed, 1, "{name}");
            assert_eq!(
                report.diagnostics[0].issue,
                Issue::UnrecognizedFormat,
                "{name}"
            );
            println!(
                "{name:<60} {:>9} (answer key, refused: {})",
                "-",
                report.diagnostics[0].issue.describe()
            );
            continue;
        }
        let file = &summary.per_file[0];
        println!(
            "{name:<60} {:>9} {:>6} {:>6} {:>7} {:>6} {:>8}",
            file.format.map_or("?", |format| format.name()),
            file.read,
            file.kept,
            file.renamed,
            file.deduplicated,
            file.skipped
        );
        for group in &summary.issues {
            println!(
                "    {} × {}: {}",
                group.count,
                group.issue.describe(),
                group.examples.first().map_or("", String::as_str)
            );
        }
        assert_eq!(
            summary.files_failed,
            0,
            "{name}: {:?}",
            report.diagnostics.first()
        );
        assert!(summary.kept > 0, "{name}: nothing kept");
        assert_eq!(
            file.read,
            file.kept + file.deduplicated + file.skipped,
            "{name}"
        );
        let mut seen = std::collections::HashSet::new();
        for tool in &report.tools {
            assert!(
                seen.insert(tool.name.as_str()),
                "{name}: duplicate name {}",
                tool.name
            );
            let valid_name = (1..=64).contains(&tool.name.len())
                && tool
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            assert!(valid_name, "{name}: invalid name {:?}", tool.name);
            jsonschema::validator_for(&tool.parameters)
                .unwrap_or_else(|e| panic!("{name}: {}: {e}", tool.name));
            if let Some(returns) = &tool.returns {
                jsonschema::validator_for(returns)
                    .unwrap_or_else(|e| panic!("{name}: {}: returns: {e}", tool.name));
            }
        }
    }
}

/// The ToolBench raw files come out as the shared ToolBench corpus has them: every API whose
/// name, description, parameters and returns appear in `tools_toolbench.jsonl` under the same
/// name must match one of the corpus's definitions of it.
#[test]
fn toolbench_matches_the_shared_corpus() {
    let Some(data) = shared_data() else { return };
    let corpus = import_paths(
        &[data.join("tools/tools_toolbench.jsonl")],
        &ImportOptions::default(),
    )
    .unwrap();
    let mut by_name: std::collections::HashMap<String, Vec<&toolflow_core::Tool>> =
        std::collections::HashMap::new();
    for tool in &corpus.tools {
        let name = tool
            .meta
            .get("original_name")
            .and_then(|name| name.as_str())
            .unwrap_or(&tool.name);
        by_name.entry(name.to_string()).or_default().push(tool);
    }
    let mut raw = Vec::new();
    files_under(&data.join("raw/toolbench"), &mut raw);
    let (mut compared, mut matched) = (0, 0);
    for path in raw {
        let report = import_paths(&[&path], &ImportOptions::default()).unwrap();
        for tool in &report.tools {
            let name = tool
                .meta
                .get("original_name")
                .and_then(|name| name.as_str())
                .unwrap_or(&tool.name);
            let Some(candidates) = by_name.get(name) else {
                continue;
            };
            compared += 1;
            let same = candidates.iter().any(|other| {
                other.description == tool.description
                    && other.parameters == tool.parameters
                    && other.returns == tool.returns
            });
            matched += usize::from(same);
        }
    }
    println!("toolbench raw vs corpus: {matched}/{compared} definitions identical");
    assert!(compared > 500, "only {compared} compared");
    assert!(
        matched as f64 >= 0.99 * compared as f64,
        "{matched}/{compared}"
    );
}
