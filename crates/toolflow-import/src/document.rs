//! Turning a file's text into JSON values: one JSON document, JSON Lines (one record per
//! line, bad lines reported and the rest kept), or YAML (OpenAPI specs are often YAML).

use serde_json::Value;

/// One JSON value of a file: the whole document, or one line of JSON Lines.
#[derive(Debug)]
pub(crate) struct Record {
    /// 1-based, for JSON Lines only.
    pub line: Option<usize>,
    pub value: Value,
}

#[derive(Debug)]
pub(crate) struct Document {
    pub records: Vec<Record>,
    /// JSON Lines lines that did not parse: line number and the parser's message.
    pub bad_lines: Vec<(usize, String)>,
}

/// The whole file failed to parse; the message names the line and column.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub line: Option<usize>,
    pub message: String,
}

/// Parses `text`: YAML when the extension says so; otherwise one JSON document, falling back
/// to JSON Lines when that fails and the first line is a JSON value of its own (or the
/// extension is `.jsonl`), and to YAML for text that is not JSON-shaped at all.
pub(crate) fn parse(text: &str, extension: &str) -> Result<Document, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let extension = extension.to_ascii_lowercase();
    if extension == "yaml" || extension == "yml" {
        return parse_yaml(text);
    }
    if extension == "jsonl" || extension == "ndjson" {
        return Ok(parse_lines(text));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Ok(Document {
            records: vec![Record { line: None, value }],
            bad_lines: Vec::new(),
        }),
        Err(error) => {
            let mut lines = text.lines().filter(|line| !line.trim().is_empty());
            let first = lines.next().unwrap_or("");
            let several = lines.next().is_some();
            if several && serde_json::from_str::<Value>(first).is_ok() {
                return Ok(parse_lines(text));
            }
            let starts_like_json =
                text.trim_start().starts_with(['{', '[', '"']) || text.trim().is_empty();
            if !starts_like_json
                && let Ok(document) = parse_yaml(text)
                && document
                    .records
                    .iter()
                    .all(|record| record.value.is_object())
            {
                return Ok(document);
            }
            Err(SyntaxError {
                line: Some(error.line()).filter(|&line| line > 0),
                message: format!("invalid JSON: {error}"),
            })
        }
    }
}

fn parse_lines(text: &str) -> Document {
    let mut document = Document {
        records: Vec::new(),
        bad_lines: Vec::new(),
    };
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => document.records.push(Record {
                line: Some(index + 1),
                value,
            }),
            Err(error) => document
                .bad_lines
                .push((index + 1, format!("invalid JSON: {error}"))),
        }
    }
    document
}

fn parse_yaml(text: &str) -> Result<Document, SyntaxError> {
    match serde_norway::from_str::<Value>(text) {
        Ok(value) => Ok(Document {
            records: vec![Record { line: None, value }],
            bad_lines: Vec::new(),
        }),
        Err(error) => Err(SyntaxError {
            line: error.location().map(|location| location.line()),
            message: format!("invalid YAML: {error}"),
        }),
    }
}

/// `base` extended by one reference token, escaped as RFC 6901 requires.
pub(crate) fn pointer(base: &str, token: impl std::fmt::Display) -> String {
    let token = token.to_string();
    if token.contains(['~', '/']) {
        format!("{base}/{}", token.replace('~', "~0").replace('/', "~1"))
    } else {
        format!("{base}/{token}")
    }
}

/// The JSON type of `value`, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_keep_good_lines_and_name_bad_ones() {
        let document = parse("{\"a\":1}\n\n{\"b\":\n{\"c\":3}\n", "json").unwrap();
        assert_eq!(document.records.len(), 2);
        assert_eq!(document.records[1].line, Some(4));
        assert_eq!(document.bad_lines.len(), 1);
        assert_eq!(document.bad_lines[0].0, 3);
    }

    #[test]
    fn truncated_json_names_its_line() {
        let error = parse("[\n {\"name\": \"x\",\n", "json").unwrap_err();
        assert_eq!(error.line, Some(3));
        assert!(error.message.contains("EOF"), "{}", error.message);
    }

    #[test]
    fn yaml_is_read_by_extension_or_shape() {
        let document = parse("openapi: 3.0.0\npaths: {}\n", "txt").unwrap();
        assert_eq!(document.records[0].value["openapi"], "3.0.0");
        let error = parse("a: [1, 2\n", "yaml").unwrap_err();
        assert!(
            error.message.starts_with("invalid YAML"),
            "{}",
            error.message
        );
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        assert_eq!(pointer("/paths", "/pets/{id}"), "/paths/~1pets~1{id}");
        assert_eq!(pointer("", "a~b"), "/a~0b");
    }
}
