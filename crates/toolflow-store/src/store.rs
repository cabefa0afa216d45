//! One SQLite file per run (or per shard of a run): a `meta` row saying which run it belongs
//! to, and one row per finished dialogue holding its JSON exactly as it will be written out.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;
use toolflow_core::{Dialogue, OutcomeStatus, Usage};

use crate::error::StoreError;

/// The table layout written by this version, kept in SQLite's `user_version`.
const LAYOUT: i64 = 1;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS meta (
        run_key TEXT NOT NULL,
        settings TEXT NOT NULL,
        created_at TEXT NOT NULL,
        tool_version TEXT NOT NULL
    ) STRICT;
    CREATE TABLE IF NOT EXISTS dialogues (
        idx INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('completed', 'turn-limit', 'failed')),
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        record TEXT NOT NULL
    ) STRICT;";

/// The finished dialogues of one run. Shareable between threads: every call takes the one
/// connection in turn. One process at a time has a store open.
pub struct RunStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

/// What a store says about the run it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreMeta {
    /// The caller's hash of everything that determines the dialogues.
    pub run_key: String,
    /// The run's settings as the caller gave them when the store was created.
    pub settings: Value,
    /// When the store was created, UTC, ISO 8601.
    pub created_at: String,
    /// The toolflow version that created it.
    pub tool_version: String,
}

/// How many stored dialogues ended each way, and what they cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StoreCounts {
    /// Dialogues that addressed every plan step.
    pub completed: u64,
    /// Dialogues cut off by the turn limit.
    pub turn_limit: u64,
    /// Dialogues that failed past their retries (kept, with the turns so far).
    pub failed: u64,
    /// The sum of the stored dialogues' usage.
    pub usage: Usage,
}

impl StoreCounts {
    /// Every stored dialogue, whatever its outcome.
    pub fn total(&self) -> u64 {
        self.completed + self.turn_limit + self.failed
    }
}

impl RunStore {
    /// Opens the store at `path` for the run identified by `run_key`, creating it (and its
    /// directory) when absent; `settings` is recorded in a new store so that it can say what
    /// it holds. `run_key` is the caller's hash of everything that determines the dialogues
    /// (inputs and settings, not the shard). A store made for another key is refused with
    /// [`StoreError::OtherRun`]; [`RunStore::create_fresh`] starts over instead.
    ///
    /// The store stays locked while it is open: another process opening it (the same
    /// shard started twice) is refused with [`StoreError::InUse`].
    pub fn open(path: &Path, run_key: &str, settings: &Value) -> Result<Self, StoreError> {
        Self::open_for_run(path, run_key, settings).map_err(in_use)
    }

    fn open_for_run(path: &Path, run_key: &str, settings: &Value) -> Result<Self, StoreError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let sql = sql_error(path);
        let mut connection = Self::connect(path, OpenFlags::default())?;
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let layout: i64 = transaction
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(sql)?;
        if layout > LAYOUT {
            return Err(StoreError::UnknownLayout {
                path: path.to_path_buf(),
                found: layout,
                known: LAYOUT,
            });
        }
        transaction.execute_batch(SCHEMA).map_err(sql)?;
        transaction
            .pragma_update(None, "user_version", LAYOUT)
            .map_err(sql)?;
        let found: Option<String> = transaction
            .query_row("SELECT run_key FROM meta", [], |row| row.get(0))
            .optional()
            .map_err(sql)?;
        match found {
            None => {
                transaction
                    .execute(
                        "INSERT INTO meta (run_key, settings, created_at, tool_version)
                         VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?3)",
                        params![run_key, settings.to_string(), env!("CARGO_PKG_VERSION")],
                    )
                    .map_err(sql)?;
            }
            Some(found) if found == run_key => {}
            Some(found) => {
                return Err(StoreError::OtherRun {
                    path: path.to_path_buf(),
                    found,
                    expected: run_key.to_string(),
                });
            }
        }
        transaction.commit().map_err(sql)?;
        Ok(Self {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    /// Deletes the store at `path` (with its `-wal` and `-shm` files) if there is one, then
    /// creates it empty for `run_key`: what `--force` does with a store of another run.
    pub fn create_fresh(path: &Path, run_key: &str, settings: &Value) -> Result<Self, StoreError> {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = PathBuf::from(file);
            match std::fs::remove_file(&file) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StoreError::Io {
                        path: file,
                        source: error,
                    });
                }
                _ => {}
            }
        }
        Self::open(path, run_key, settings)
    }

    /// Opens an existing store whatever run it belongs to, to read it: see
    /// [`RunStore::meta`]. Creates nothing. Refused with [`StoreError::InUse`] while a run
    /// has the store open.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        Self::open_any_run(path).map_err(in_use)
    }

    fn open_any_run(path: &Path) -> Result<Self, StoreError> {
        let connection = Self::connect(path, OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE)?;
        let store = Self {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        };
        let layout: i64 = store
            .lock()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(sql_error(path))?;
        if layout != LAYOUT {
            return Err(StoreError::UnknownLayout {
                path: path.to_path_buf(),
                found: layout,
                known: LAYOUT,
            });
        }
        Ok(store)
    }

    fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
        let sql = sql_error(path);
        let connection = Connection::open_with_flags(path, flags).map_err(sql)?;
        // The lock of a store held by a process that has just exited (or was killed) is
        // released by the kernel at once; waiting a little covers a run being restarted.
        connection.busy_timeout(IN_USE_WAIT).map_err(sql)?;
        // WAL with synchronous = NORMAL: a commit has written its pages to the -wal file
        // (to the OS, not yet to the disk) before it returns, so a committed dialogue
        // survives the process being killed (kill -9, the OOM killer, a preempted Slurm
        // job). Only a power cut or a kernel crash can lose the last commits, never corrupt
        // the store, and a rerun redoes what was lost. FULL would fsync every commit for
        // no gain against the failures a long run actually meets.
        //
        // Exclusive locking, set before WAL is entered: the connection holds the store's
        // lock until it closes, so two processes never write one store (each would redo
        // the other's dialogues), and SQLite keeps the WAL index in memory instead of a
        // shared-memory -shm file, which is what lets WAL work on the network filesystems
        // that Slurm and Kubernetes jobs write to.
        connection
            .execute_batch(
                "PRAGMA locking_mode = EXCLUSIVE;
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;",
            )
            .map_err(sql)?;
        Ok(connection)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run this store belongs to.
    pub fn meta(&self) -> Result<StoreMeta, StoreError> {
        let (run_key, settings, created_at, tool_version): (String, String, String, String) = self
            .lock()
            .query_row(
                "SELECT run_key, settings, created_at, tool_version FROM meta",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .map_err(sql_error(&self.path))?;
        let settings = serde_json::from_str(&settings).map_err(|source| StoreError::Settings {
            path: self.path.clone(),
            source,
        })?;
        Ok(StoreMeta {
            run_key,
            settings,
            created_at,
            tool_version,
        })
    }

    /// The indices of the dialogues already committed: the ones a resumed run skips.
    pub fn finished(&self) -> Result<BTreeSet<u64>, StoreError> {
        let sql = sql_error(&self.path);
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT idx FROM dialogues")
            .map_err(sql)?;
        let indices = statement
            .query_map([], |row| row.get::<_, u64>(0))
            .map_err(sql)?;
        indices.collect::<Result<_, _>>().map_err(sql)
    }

    /// Commits one finished dialogue in its own transaction: once this returns, the
    /// dialogue survives a kill of the process. Its JSON is serialized once, here, and is
    /// what [`RunStore::write_jsonl`] writes byte for byte. Returns `Ok(false)`, storing
    /// nothing, when a dialogue with this index is already there (the first one stays), and
    /// `Ok(true)` when it was inserted.
    pub fn commit(&self, dialogue: &Dialogue) -> Result<bool, StoreError> {
        let record = serde_json::to_string(dialogue).map_err(|source| StoreError::Serialize {
            index: dialogue.index,
            source,
        })?;
        let status = match dialogue.outcome.status {
            OutcomeStatus::Completed => "completed",
            OutcomeStatus::TurnLimit => "turn-limit",
            OutcomeStatus::Failed => "failed",
        };
        let sql = sql_error(&self.path);
        let mut connection = self.lock();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let inserted = transaction
            .prepare_cached(
                "INSERT INTO dialogues (idx, id, status, prompt_tokens, completion_tokens, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (idx) DO NOTHING",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    dialogue.index,
                    dialogue.id,
                    status,
                    dialogue.usage.prompt_tokens,
                    dialogue.usage.completion_tokens,
                    record,
                ])
            });
        let inserted = match inserted {
            Ok(rows) => rows == 1,
            // Only the id's uniqueness can fail here: the index's conflict is handled above.
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == ErrorCode::ConstraintViolation =>
            {
                let taken_by = transaction
                    .query_row(
                        "SELECT idx FROM dialogues WHERE id = ?1",
                        [&dialogue.id],
                        |row| row.get(0),
                    )
                    .map_err(sql)?;
                return Err(StoreError::IdTaken {
                    path: self.path.clone(),
                    id: dialogue.id.clone(),
                    index: dialogue.index,
                    taken_by,
                });
            }
            Err(source) => return Err(sql(source)),
        };
        transaction.commit().map_err(sql)?;
        Ok(inserted)
    }

    /// Removes the failed dialogues so that the next run redoes them (`--retry-failed`);
    /// returns how many were removed.
    pub fn forget_failed(&self) -> Result<usize, StoreError> {
        self.lock()
            .execute("DELETE FROM dialogues WHERE status = 'failed'", [])
            .map_err(sql_error(&self.path))
    }

    /// The stored dialogues by outcome, with their summed usage.
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.lock()
            .query_row(
                "SELECT COALESCE(SUM(status = 'completed'), 0),
                        COALESCE(SUM(status = 'turn-limit'), 0),
                        COALESCE(SUM(status = 'failed'), 0),
                        COALESCE(SUM(prompt_tokens), 0),
                        COALESCE(SUM(completion_tokens), 0)
                 FROM dialogues",
                [],
                |row| {
                    Ok(StoreCounts {
                        completed: row.get(0)?,
                        turn_limit: row.get(1)?,
                        failed: row.get(2)?,
                        usage: Usage {
                            prompt_tokens: row.get(3)?,
                            completion_tokens: row.get(4)?,
                        },
                    })
                },
            )
            .map_err(sql_error(&self.path))
    }

    /// Writes every stored dialogue to `path` as JSON Lines, ordered by index, bytes exactly
    /// as committed, through a temporary file renamed into place. Returns how many.
    pub fn write_jsonl(&self, path: &Path) -> Result<usize, StoreError> {
        let sql = sql_error(&self.path);
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT record FROM dialogues ORDER BY idx")
            .map_err(sql)?;
        let mut rows = statement.query([]).map_err(sql)?;
        let mut written = 0;
        // A failure to read the store is kept aside so that it is not reported as one of
        // writing the output file.
        let mut read_failure = None;
        toolflow_core::jsonl::write_atomically(path, |out| {
            loop {
                let row = match rows.next() {
                    Ok(Some(row)) => row,
                    Ok(None) => return Ok(()),
                    Err(source) => {
                        read_failure = Some(sql(source));
                        return Err(std::io::Error::other("reading the run store failed"));
                    }
                };
                let record = match row.get_ref(0).and_then(|value| Ok(value.as_str()?)) {
                    Ok(record) => record,
                    Err(source) => {
                        read_failure = Some(sql(source));
                        return Err(std::io::Error::other("reading the run store failed"));
                    }
                };
                out.write_all(record.as_bytes())?;
                out.write_all(b"\n")?;
                written += 1;
            }
        })
        .map_err(|error| read_failure.take().unwrap_or(StoreError::Jsonl(error)))?;
        Ok(written)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere while holding the lock leaves SQLite consistent: an unfinished
        // transaction is rolled back when it is dropped.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A store that stays locked this long is taken to be open in another process.
const IN_USE_WAIT: Duration = Duration::from_secs(2);

/// SQLite's "busy" or "locked" on opening means another process has the store open.
fn in_use(error: StoreError) -> StoreError {
    match error {
        StoreError::Sql {
            path,
            source: rusqlite::Error::SqliteFailure(failure, _),
        } if matches!(
            failure.code,
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
        ) =>
        {
            StoreError::InUse { path }
        }
        other => other,
    }
}

fn sql_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sql {
        path: path.to_path_buf(),
        source,
    }
}
