//! One reader per source format. A reader walks one record (a whole JSON/YAML document or
//! one JSON Lines line) and yields an [`Entry`] per tool definition it finds: a [`Tool`]
//! with the source's own name, or the [`Problem`] that stopped it. Schema repair,
//! validation, naming and deduplication happen afterwards, the same for every format.

pub(crate) mod apibank;
pub(crate) mod bfcl;
pub(crate) mod mcp;
pub(crate) mod openai;
pub(crate) mod openapi;
pub(crate) mod toolbench;

use std::path::Path;

use serde_json::{Map, Value};
use toolflow_core::Tool;

use crate::document::{kind, pointer};
use crate::format::Format;
use crate::report::Issue;
use crate::report::Problem;

pub(crate) struct Entry {
    /// Where the definition sits in the record.
    pub pointer: String,
    pub outcome: Result<Tool, Problem>,
    /// Repairs the reader already made (e.g. a `$ref` cycle cut), for `meta.schema_fixes`.
    pub fixes: Vec<String>,
}

impl Entry {
    pub(crate) fn ok(pointer: String, tool: Tool) -> Entry {
        Entry {
            pointer,
            outcome: Ok(tool),
            fixes: Vec::new(),
        }
    }

    pub(crate) fn failed(pointer: String, problem: Problem) -> Entry {
        Entry {
            pointer,
            outcome: Err(problem),
            fixes: Vec::new(),
        }
    }
}

/// What a reader knows about the file it reads.
pub(crate) struct Context<'a> {
    pub path: &'a Path,
}

/// Runs the reader for `format` over one record.
pub(crate) fn read(format: Format, value: &Value, context: &Context, out: &mut Vec<Entry>) {
    match format {
        Format::Openai | Format::Toolflow => openai::read(format, value, "", out),
        Format::Toolbench => toolbench::read(value, "", out),
        Format::Openapi => openapi::read(value, out),
        Format::Mcp => mcp::read(value, "", out),
        Format::Bfcl => bfcl::read(value, "", context, out),
        Format::Apibank => apibank::read(value, "", out),
    }
}

pub(crate) fn new_tool(
    name: String,
    description: String,
    parameters: Value,
    returns: Option<Value>,
    source: String,
) -> Tool {
    Tool {
        name,
        description,
        parameters,
        returns,
        source,
        meta: Map::new(),
    }
}

pub(crate) fn problem(issue: Issue, pointer: String, message: impl Into<String>) -> Problem {
    Problem {
        issue,
        pointer,
        message: message.into(),
    }
}

/// `value` as an object, or a wrong-type problem saying what it should have been.
pub(crate) fn as_object<'v>(
    value: &'v Value,
    at: &str,
    what: &str,
) -> Result<&'v Map<String, Value>, Problem> {
    value.as_object().ok_or_else(|| {
        problem(
            Issue::WrongType,
            at.to_string(),
            format!("expected {what}, found {}", kind(value)),
        )
    })
}

/// The non-empty string at `key`, or a missing-name problem.
pub(crate) fn name_field(
    object: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<String, Problem> {
    match object.get(key) {
        Some(Value::String(name)) if !name.trim().is_empty() => Ok(name.trim().to_string()),
        Some(Value::String(_)) => Err(problem(
            Issue::MissingName,
            pointer(at, key),
            format!("`{key}` is empty"),
        )),
        None | Some(Value::Null) => Err(problem(
            Issue::MissingName,
            at.to_string(),
            format!("no `{key}` field"),
        )),
        Some(other) => Err(problem(
            Issue::MissingName,
            pointer(at, key),
            format!("`{key}` must be a string, found {}", kind(other)),
        )),
    }
}

/// The string at `key`; absent or null reads as empty; other types are a problem.
pub(crate) fn text_field(
    object: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<String, Problem> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.trim().to_string()),
        Some(other) => Err(problem(
            Issue::WrongType,
            pointer(at, key),
            format!("`{key}` must be a string, found {}", kind(other)),
        )),
    }
}

/// The list at `key` (absent or null reads as empty).
pub(crate) fn list_field<'v>(
    object: &'v Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'v [Value], Problem> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(list)) => Ok(list),
        Some(other) => Err(problem(
            Issue::WrongType,
            pointer(at, key),
            format!("`{key}` must be a list, found {}", kind(other)),
        )),
    }
}

/// Calls `each` on every element of the list at `at`, or reports the non-list.
pub(crate) fn for_each_in(
    value: &Value,
    at: &str,
    out: &mut Vec<Entry>,
    mut each: impl FnMut(&Value, String, &mut Vec<Entry>),
) {
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                each(item, pointer(at, index), out);
            }
        }
        other => out.push(Entry::failed(
            at.to_string(),
            problem(
                Issue::WrongType,
                at.to_string(),
                format!("expected a list of tools, found {}", kind(other)),
            ),
        )),
    }
}
