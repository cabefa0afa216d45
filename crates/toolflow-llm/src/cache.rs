//! The response cache: one SQLite table keyed by the hash of the request and the model,
//! so that a rerun of the pipeline costs nothing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::request::{ChatRequest, ChatResponse};

/// How the engine uses the response cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheMode {
    /// Answer from the cache when it can, store every new answer.
    #[default]
    ReadWrite,
    /// Neither read nor write (`--no-cache`).
    Off,
    /// Answer only from the cache; a miss is an error (replays without any model).
    Only,
}

/// SQLite failed on the response cache.
#[derive(Debug, thiserror::Error)]
#[error("response cache {path}: {source}")]
pub struct CacheError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

/// Chat answers on disk in SQLite, keyed by [`cache_key`].
pub struct ResponseCache {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl ResponseCache {
    /// The cache file under a cache directory.
    pub fn path_in(cache_dir: &Path) -> PathBuf {
        cache_dir.join("responses.sqlite3")
    }

    /// Opens (creating) the cache file.
    pub fn open(path: &Path) -> Result<Self, CacheError> {
        let error = |source| CacheError {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            // A missing directory shows up as SQLite's "unable to open" just below.
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = Connection::open(path).map_err(error)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS responses (
                     key TEXT PRIMARY KEY,
                     model TEXT NOT NULL,
                     response TEXT NOT NULL
                 ) STRICT;",
            )
            .map_err(error)?;
        Ok(ResponseCache {
            path: path.to_owned(),
            connection: Mutex::new(connection),
        })
    }

    /// The answer stored under `key`; `None` for a miss or a row this version cannot read.
    pub fn get(&self, key: &str) -> Result<Option<ChatResponse>, CacheError> {
        let connection = self.connection.lock().expect("cache connection");
        let stored: Option<String> = connection
            .query_row(
                "SELECT response FROM responses WHERE key = ?1",
                [key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|source| CacheError {
                path: self.path.clone(),
                source,
            })?;
        // A row this version cannot read is a miss, not an error: it is simply rewritten.
        Ok(stored.and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Stores `response` under `key`, replacing what was there.
    pub fn put(&self, key: &str, model: &str, response: &ChatResponse) -> Result<(), CacheError> {
        let text = serde_json::to_string(response).expect("a response serialises");
        let connection = self.connection.lock().expect("cache connection");
        connection
            .execute(
                "INSERT OR REPLACE INTO responses (key, model, response) VALUES (?1, ?2, ?3)",
                (key, model, text),
            )
            .map_err(|source| CacheError {
                path: self.path.clone(),
                source,
            })?;
        Ok(())
    }
}

/// The cache key of a request sent to a model: the hash of its canonical JSON (object
/// keys sorted at every depth, so that two equal schemas written in different key orders
/// share an entry) and the model id.
pub fn cache_key(model: &str, request: &ChatRequest) -> String {
    let value = serde_json::to_value(request).expect("a request serialises");
    let canonical = serde_json::to_vec(&canonical(value)).expect("JSON serialises");
    toolflow_core::content_hash(&[b"toolflow-llm/chat/v1", model.as_bytes(), &canonical])
}

fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, canonical(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Message;
    use serde_json::json;

    #[test]
    fn key_ignores_key_order_and_depends_on_model_and_content() {
        let mut first = ChatRequest::new(vec![Message::user("hi")]);
        first.json_schema =
            Some(json!({"type": "object", "properties": {"a": {"type": "string"}}}));
        let mut second = first.clone();
        second.json_schema =
            Some(json!({"properties": {"a": {"type": "string"}}, "type": "object"}));
        assert_eq!(cache_key("m", &first), cache_key("m", &second));
        assert_ne!(cache_key("m", &first), cache_key("other", &first));
        second.seed = Some(1);
        assert_ne!(cache_key("m", &first), cache_key("m", &second));
    }
}
