//! The template export renders exactly what transformers renders from the TRL row (as
//! TRL's SFTTrainer does, `chat_template_kwargs` included). Needs a Python with
//! transformers and jinja2 (`TOOLFLOW_PYTHON`, else `python3`); skips, saying so, without.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use toolflow_export::formats::Format;
use toolflow_export::{ChatTemplate, export_file};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn template_export_equals_transformers_render_of_the_trl_rows() {
    let python = std::env::var("TOOLFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let usable = Command::new(&python)
        .args([
            "-c",
            "import transformers.utils.chat_template_utils, jinja2",
        ])
        .output()
        .is_ok_and(|output| output.status.success());
    if !usable {
        eprintln!(
            "skipping: `{python}` cannot import transformers and jinja2 (set TOOLFLOW_PYTHON)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (trl, text) = (dir.path().join("trl"), dir.path().join("template"));
    export_file(&fixture("dialogues.jsonl"), Format::Trl, &trl, 0.0, 1, None).unwrap();
    let template = ChatTemplate::from_tokenizer_config(&fixture("tokenizer_config.json")).unwrap();
    export_file(
        &fixture("dialogues.jsonl"),
        Format::Template,
        &text,
        0.0,
        1,
        Some(&template),
    )
    .unwrap();
    let output = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render_check.py"))
        .arg(fixture("tokenizer_config.json"))
        .arg(trl.join("train.jsonl"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    let ours: Vec<String> = std::fs::read_to_string(text.join("train.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ours.len(), 2);
    assert_eq!(ours, theirs);
}
