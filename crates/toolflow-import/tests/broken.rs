//! Broken inputs: each gets a clear message naming the file and the line or JSON pointer,
//! the rest of the input is still imported, nothing panics, and `strict` turns the first
//! problem into an error.

use std::io::Write;
use std::path::PathBuf;

use toolflow_import::{Diagnostic, ImportError, ImportOptions, ImportReport, Issue, import_paths};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/broken")
        .join(name)
}

fn import(name: &str) -> ImportReport {
    import_paths(&[fixture(name)], &ImportOptions::default()).unwrap()
}

fn strict(name: &str) -> String {
    let options = ImportOptions {
        strict: true,
        ..ImportOptions::default()
    };
    match import_paths(&[fixture(name)], &options) {
        Err(error @ ImportError::Strict(_)) => error.to_string(),
        other => panic!("strict import of {name} should fail, got {other:?}"),
    }
}

fn skipped(report: &ImportReport) -> Vec<&Diagnostic> {
    report
        .diagnostics
        .iter()
        .filter(|d| d.issue.is_skip())
        .collect()
}

fn names(report: &ImportReport) -> Vec<&str> {
    report.tools.iter().map(|tool| tool.name.as_str()).collect()
}

#[test]
fn truncated_json_fails_the_file_with_line_and_column() {
    let report = import("truncated.json");
    assert!(report.tools.is_empty());
    let summary = report.summary();
    assert_eq!(summary.files_failed, 1);
    let text = report.diagnostics[0].to_string();
    assert!(text.contains("truncated.json:3"), "{text}");
    assert!(text.contains("EOF while parsing"), "{text}");
    assert!(strict("truncated.json").contains("truncated.json:3"));
}

#[test]
fn wrong_types_are_skipped_with_pointers() {
    let report = import("wrong_types.json");
    assert_eq!(names(&report), ["fine"]);
    let found: Vec<(Issue, String, String)> = skipped(&report)
        .iter()
        .map(|d| (d.issue, d.location.pointer.clone(), d.message.clone()))
        .collect();
    let expect = [
        (
            Issue::WrongType,
            "/0",
            "`parameters` must be a JSON Schema object, found a string",
        ),
        (
            Issue::MissingName,
            "/1/name",
            "`name` must be a string, found a number",
        ),
        (
            Issue::WrongType,
            "/2/description",
            "`description` must be a string, found an array",
        ),
        (
            Issue::NonObjectParameters,
            "/3",
            "`parameters` must describe an object",
        ),
        (Issue::InvalidSchema, "/4", "at /properties/n/minimum"),
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for ((issue, pointer, message), (want_issue, want_pointer, want_message)) in
        found.iter().zip(expect)
    {
        assert_eq!(
            (*issue, pointer.as_str()),
            (want_issue, want_pointer),
            "{message}"
        );
        assert!(message.contains(want_message), "{message}");
    }
    let summary = report.summary();
    assert_eq!((summary.read, summary.kept, summary.skipped), (6, 1, 5));
    assert!(strict("wrong_types.json").contains("wrong_types.json#/0: `parameters` must be"));
}

#[test]
fn missing_names_name_their_lines() {
    let report = import("missing_names.jsonl");
    assert_eq!(names(&report), ["ok_tool"]);
    let lines: Vec<Option<usize>> = skipped(&report).iter().map(|d| d.location.line).collect();
    assert_eq!(lines, [Some(2), Some(3), Some(4), Some(5)]);
    assert!(
        skipped(&report)
            .iter()
            .all(|d| d.issue == Issue::MissingName)
    );
    assert!(
        report.diagnostics[0]
            .to_string()
            .contains("missing_names.jsonl:2: no `name` field"),
        "{}",
        report.diagnostics[0]
    );
    assert!(
        report.diagnostics[3]
            .to_string()
            .contains("missing_names.jsonl:5#/function: no `name` field"),
        "{}",
        report.diagnostics[3]
    );
}

#[test]
fn bad_json_lines_are_skipped_one_by_one() {
    let report = import("bad_lines.jsonl");
    assert_eq!(names(&report), ["first", "fourth"]);
    let problems: Vec<String> = skipped(&report).iter().map(|d| d.to_string()).collect();
    assert!(
        problems[0].contains("bad_lines.jsonl:2: invalid JSON"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("bad_lines.jsonl:3#/0: expected a tool object, found a string"),
        "{problems:?}"
    );
    assert_eq!(report.summary().skipped, 4);
    assert!(strict("bad_lines.jsonl").contains("bad_lines.jsonl:2"));
}

#[test]
fn ref_cycles_are_cut_and_bad_refs_reported() {
    let report = import("ref_cycle.json");
    assert_eq!(names(&report), ["listNodes"]);
    let nodes = &report.tools[0];
    let inner = &nodes.returns.as_ref().unwrap()["properties"]["b"]["properties"]["a"];
    assert_eq!(
        inner,
        &serde_json::json!({"x-circular-ref": "#/components/schemas/A"})
    );
    assert!(
        nodes.meta["schema_fixes"][0]
            .as_str()
            .unwrap()
            .contains("$ref-cycle:#/components/schemas/A")
    );

    let problems: Vec<String> = skipped(&report).iter().map(|d| d.to_string()).collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("ref_cycle.json#/paths/~1missing/get/parameters/0/$ref: `$ref` to `#/components/parameters/Nope` points nowhere"), "{problems:#?}");
    assert!(
        problems[1].contains("`$ref` to `other.yaml#/Thing` is not supported"),
        "{problems:#?}"
    );
    assert!(
        problems[1]
            .contains("#/paths/~1external/get/responses/200/content/application~1json/schema/$ref"),
        "{problems:#?}"
    );
    assert!(problems[2].contains("never ends"), "{problems:#?}");
    assert!(
        skipped(&report)
            .iter()
            .all(|d| d.issue == Issue::BadReference)
    );
}

#[test]
fn unrecognized_files_say_what_they_saw() {
    let report = import("unrecognized.json");
    let text = report.diagnostics[0].to_string();
    assert_eq!(report.diagnostics[0].issue, Issue::UnrecognizedFormat);
    assert!(text.contains("unrecognized.json: not a recognized tool format (an object with keys: id, ground_truth)"), "{text}");
}

#[test]
fn toolbench_entries_fail_alone() {
    let report = import("toolbench_bad.json");
    assert_eq!(names(&report), ["good_for_t"]);
    let problems: Vec<String> = skipped(&report).iter().map(|d| d.to_string()).collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].contains("#/0/api_list/0: no `api_name` field"),
        "{problems:#?}"
    );
    assert!(problems[1].contains("#/0/api_list/1/required_parameters: `required_parameters` must be a list, found an object"), "{problems:#?}");
    assert!(
        problems[2].contains("#/1/api_list: `api_list` must be a list, found a string"),
        "{problems:#?}"
    );
}

#[test]
fn missing_files_and_empty_path_lists() {
    let report = import("does_not_exist.json");
    assert_eq!(report.diagnostics[0].issue, Issue::UnreadableFile);
    assert!(
        report.diagnostics[0]
            .to_string()
            .contains("does_not_exist.json: cannot read")
    );
    let none: [PathBuf; 0] = [];
    assert!(matches!(
        import_paths(&none, &ImportOptions::default()),
        Err(ImportError::NoInputs)
    ));
}

/// A 50 MB JSON Lines file with a broken line deep inside and a truncated last line imports
/// everything else, names both lines, and a 50 MB JSON array cut short fails with its line.
#[test]
fn fifty_megabytes_of_tools() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let padding = "x".repeat(200);
    let mut written = 0usize;
    let mut lines = 0usize;
    let broken_line = 100_000;
    while written < 50 * 1024 * 1024 {
        lines += 1;
        let line = if lines == broken_line {
            "{\"name\": \"broken\", \"parameters\": {\"type\": \"object\",\n".to_string()
        } else {
            format!(
                "{{\"name\": \"tool_{lines}\", \"description\": \"Tool {lines}. {padding}\", \"parameters\": {{\"type\": \"object\", \"properties\": {{\"q\": {{\"type\": \"string\"}}, \"n\": {{\"type\": \"int\"}}}}, \"required\": [\"q\"]}}}}\n"
            )
        };
        written += line.len();
        out.write_all(line.as_bytes()).unwrap();
    }
    out.write_all(b"{\"name\": \"cut\", \"param").unwrap();
    out.flush().unwrap();
    drop(out);

    let report = import_paths(&[&path], &ImportOptions::default()).unwrap();
    let summary = report.summary();
    assert_eq!(summary.kept, lines - 1);
    assert_eq!(summary.repaired, lines - 1, "every `int` is repaired");
    let problems: Vec<String> = skipped(&report).iter().map(|d| d.to_string()).collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].contains(&format!("big.jsonl:{broken_line}: invalid JSON")),
        "{problems:#?}"
    );
    assert!(
        problems[1].contains(&format!("big.jsonl:{}: invalid JSON", lines + 1)),
        "{problems:#?}"
    );

    let array = dir.path().join("big.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let body: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("{\"name\": \"tool_"))
        .collect();
    std::fs::write(&array, format!("[\n{}\n", body.join(",\n"))).unwrap();
    let report = import_paths(&[&array], &ImportOptions::default()).unwrap();
    let diagnostic = &report.diagnostics[0];
    assert!(
        diagnostic.message.contains("EOF while parsing a list"),
        "{diagnostic}"
    );
    assert!(
        diagnostic
            .location
            .line
            .is_some_and(|line| line > body.len()),
        "{diagnostic}"
    );
}
