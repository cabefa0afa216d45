//! A `tools/call` result as the value a tool turn records.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

/// The recorded value of `result` and whether it is an error: the server's
/// `structuredContent` when it gave one; else its text content (the text blocks joined by
/// newlines) parsed as JSON when it is JSON, else `{"text": …}`. A result with `isError`
/// becomes `{"error": text}`, the form every error tool turn has.
pub fn result_value(result: &CallToolResult) -> (Value, bool) {
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(text.text.as_str()),
            _ => None,
        })
        .collect();
    let text = text.join("\n");
    if result.is_error == Some(true) {
        let message = if text.is_empty() {
            "the tool reported an error".to_owned()
        } else {
            text
        };
        return (json!({ "error": message }), true);
    }
    if let Some(structured) = &result.structured_content {
        return (structured.clone(), false);
    }
    if text.is_empty() && !result.content.is_empty() {
        // Images, audio, resources: kept as the server sent them.
        return (json!({ "content": result.content }), false);
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => (value, false),
        Err(_) => (json!({ "text": text }), false),
    }
}
