//! The executed results, kept so that a rerun reads them instead of executing again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::error::McpError;

/// Executed tool results by key (see [`crate::Executor`] for what a key covers), in one
/// SQLite file shared by every run that uses the same cache directory.
pub struct ResultCache {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl ResultCache {
    /// Opens (or creates) the cache file at `path`.
    pub fn open(path: &Path) -> Result<ResultCache, McpError> {
        let fail = |source| McpError::Cache {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            // A missing directory surfaces as SQLite's open error below.
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = Connection::open(path).map_err(fail)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA busy_timeout = 10000;
                 CREATE TABLE IF NOT EXISTS results (
                     key TEXT PRIMARY KEY,
                     content TEXT NOT NULL,
                     is_error INTEGER NOT NULL
                 ) STRICT;",
            )
            .map_err(fail)?;
        Ok(ResultCache {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    fn fail(&self, source: rusqlite::Error) -> McpError {
        McpError::Cache {
            path: self.path.clone(),
            source,
        }
    }

    /// The result recorded under `key`.
    pub fn get(&self, key: &str) -> Result<Option<(Value, bool)>, McpError> {
        let connection = self.connection.lock().expect("no panic holds the lock");
        let row: Option<(String, i64)> = connection
            .query_row(
                "SELECT content, is_error FROM results WHERE key = ?1",
                params![key],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|error| self.fail(error))?;
        Ok(row.and_then(|(content, is_error)| {
            serde_json::from_str(&content)
                .ok()
                .map(|content| (content, is_error != 0))
        }))
    }

    /// Records `content` under `key`, replacing what was there.
    pub fn put(&self, key: &str, content: &Value, is_error: bool) -> Result<(), McpError> {
        let connection = self.connection.lock().expect("no panic holds the lock");
        connection
            .execute(
                "INSERT OR REPLACE INTO results (key, content, is_error) VALUES (?1, ?2, ?3)",
                params![key, content.to_string(), i64::from(is_error)],
            )
            .map_err(|error| self.fail(error))?;
        Ok(())
    }

    /// How many results are recorded.
    pub fn len(&self) -> Result<u64, McpError> {
        let connection = self.connection.lock().expect("no panic holds the lock");
        connection
            .query_row("SELECT COUNT(*) FROM results", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|count| count as u64)
            .map_err(|error| self.fail(error))
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> Result<bool, McpError> {
        Ok(self.len()? == 0)
    }
}
