//! A content-addressed store of embeddings in SQLite: key = hash of (model id, text),
//! value = the vector as little-endian f32 bytes.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::EmbedError;

/// Embeddings on disk in SQLite, keyed by the model identity and the text's hash.
pub struct EmbeddingCache {
    connection: Connection,
    path: PathBuf,
}

impl EmbeddingCache {
    /// Opens (creating if needed) the cache database at `path`.
    pub fn open(path: &Path) -> Result<Self, EmbedError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(EmbedError::io(parent))?;
        }
        let sql_error = |source| EmbedError::Cache {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(sql_error)?;
        // Several toolflow processes may share a cache: WAL lets readers run beside a
        // writer, and the busy timeout makes writers queue instead of failing.
        connection
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql_error)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS embeddings (
                     key TEXT PRIMARY KEY,
                     vector BLOB NOT NULL
                 ) STRICT, WITHOUT ROWID;",
            )
            .map_err(sql_error)?;
        Ok(Self {
            connection,
            path: path.to_path_buf(),
        })
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cache key of `text` embedded by `model_id`.
    pub fn key(model_id: &str, text: &str) -> String {
        toolflow_core::content_hash(&[model_id.as_bytes(), text.as_bytes()])
    }

    /// The cached vector of each text, `None` where there is none.
    pub fn get_many(
        &self,
        model_id: &str,
        texts: &[&str],
    ) -> Result<Vec<Option<Vec<f32>>>, EmbedError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT vector FROM embeddings WHERE key = ?1")
            .map_err(|source| self.sql_error(source))?;
        texts
            .iter()
            .map(|text| {
                let key = Self::key(model_id, text);
                let blob: Option<Vec<u8>> = statement
                    .query_row([&key], |row| row.get(0))
                    .optional()
                    .map_err(|source| self.sql_error(source))?;
                blob.map(|bytes| self.decode(&key, &bytes)).transpose()
            })
            .collect()
    }

    /// Stores vectors, all in one transaction; an existing entry is replaced.
    pub fn put_many(
        &mut self,
        model_id: &str,
        entries: &[(&str, &[f32])],
    ) -> Result<(), EmbedError> {
        let path = self.path.clone();
        let sql_error = |source| EmbedError::Cache {
            path: path.clone(),
            source,
        };
        let transaction = self.connection.transaction().map_err(sql_error)?;
        {
            let mut statement = transaction
                .prepare_cached("INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?1, ?2)")
                .map_err(sql_error)?;
            for (text, vector) in entries {
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|value| value.to_le_bytes())
                    .collect();
                statement
                    .execute(params![Self::key(model_id, text), bytes])
                    .map_err(sql_error)?;
            }
        }
        transaction.commit().map_err(sql_error)
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<Vec<f32>, EmbedError> {
        if !bytes.chunks_exact(4).remainder().is_empty() {
            return Err(EmbedError::CorruptCacheEntry {
                path: self.path.clone(),
                key: key.to_string(),
                len: bytes.len(),
            });
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes(chunk.try_into().expect("chunks of four")))
            .collect())
    }

    fn sql_error(&self, source: rusqlite::Error) -> EmbedError {
        EmbedError::Cache {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("embeddings.sqlite");
        let vector = [0.1f32, -0.0, f32::MIN_POSITIVE, 1.0 / 3.0, -7.5e-12];
        {
            let mut cache = EmbeddingCache::open(&path).unwrap();
            cache.put_many("m", &[("hello", &vector)]).unwrap();
        }
        let cache = EmbeddingCache::open(&path).unwrap();
        let got = cache.get_many("m", &["hello", "other"]).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(got[0].as_ref().unwrap()), bits(&vector));
        assert!(got[1].is_none());
        // The model id is part of the key.
        assert!(cache.get_many("other-model", &["hello"]).unwrap()[0].is_none());
    }

    #[test]
    fn a_truncated_blob_is_reported_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("embeddings.sqlite");
        let cache = EmbeddingCache::open(&path).unwrap();
        cache
            .connection
            .execute(
                "INSERT INTO embeddings (key, vector) VALUES (?1, ?2)",
                params![EmbeddingCache::key("m", "x"), vec![1u8, 2, 3]],
            )
            .unwrap();
        let message = cache.get_many("m", &["x"]).unwrap_err().to_string();
        assert!(message.contains("not a multiple of 4"), "{message}");
    }
}
