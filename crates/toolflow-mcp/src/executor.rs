//! Executing calls for synthesis: one [`Session`] per dialogue, results recorded and read
//! back.
//!
//! A call's key is the hash of the server instance's identity (how it is started, with its
//! working directory), every call the dialogue made on that server before it, the tool and
//! the arguments. Since a fresh instance starts each
//! dialogue, that sequence decides the server's state, so a recorded result is the result
//! the server would give again. A call whose key is recorded is not executed; the first
//! call that is not recorded starts the server and replays the dialogue's earlier calls on
//! it first, so the state it runs against is the one the record assumes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use toolflow_core::Tool;

use crate::cache::ResultCache;
use crate::client::Server;
use crate::config::ServerConfig;
use crate::error::McpError;
use crate::import::MCP_NAME;
use crate::result::result_value;

/// The servers of a run, the result cache, and where dialogues' working directories go.
pub struct Executor {
    servers: Vec<ServerConfig>,
    cache: ResultCache,
    workdirs: PathBuf,
    refresh: bool,
    executed: AtomicU64,
    replayed: AtomicU64,
}

/// One executed (or recorded) result.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// The tool turn's content (see [`crate::result_value`]).
    pub content: Value,
    /// The server flagged the result as an error.
    pub is_error: bool,
    /// `mcp:NAME`: which server made it.
    pub origin: String,
}

impl Executor {
    /// An executor over `servers`, recording in `cache`; dialogue `i`'s working directory
    /// for server `s` is `workdirs/s/i`. With `refresh`, recorded results are not read:
    /// every call executes and its record is replaced.
    pub fn new(
        servers: Vec<ServerConfig>,
        cache: ResultCache,
        workdirs: PathBuf,
        refresh: bool,
    ) -> Result<Executor, McpError> {
        for (at, server) in servers.iter().enumerate() {
            server.check()?;
            if servers[..at].iter().any(|other| other.name == server.name) {
                return Err(McpError::Config {
                    server: server.name.clone(),
                    detail: "two [[mcp]] tables have this name".into(),
                });
            }
        }
        // Absolute: the server runs in its working directory, and the path is its argument.
        let workdirs = std::path::absolute(&workdirs).map_err(|source| McpError::Workdir {
            server: servers
                .first()
                .map(|server| server.name.clone())
                .unwrap_or_default(),
            path: workdirs.clone(),
            source,
        })?;
        Ok(Executor {
            servers,
            cache,
            workdirs,
            refresh,
            executed: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
        })
    }

    /// The server that executes `tool`, or why none does: the tool must come from a
    /// configured server (`source = "mcp:NAME"`), and a tool annotated
    /// `destructiveHint: true` must be named in that server's `allow_destructive`.
    pub fn server_of(&self, tool: &Tool) -> Result<&ServerConfig, McpError> {
        let not = |detail: String| McpError::NotExecutable {
            tool: tool.name.clone(),
            detail,
        };
        let Some(name) = tool.source.strip_prefix("mcp:") else {
            return Err(not(format!(
                "its source is `{}`, not an MCP server",
                tool.source
            )));
        };
        let server = self
            .servers
            .iter()
            .find(|server| server.name == name)
            .ok_or_else(|| not(format!("no [[mcp]] table is named `{name}`")))?;
        let destructive = tool
            .meta
            .get("annotations")
            .and_then(|annotations| annotations.get("destructiveHint"))
            .and_then(Value::as_bool)
            == Some(true);
        if destructive && !server.allow_destructive.contains(&tool.name) {
            return Err(not(format!(
                "it is annotated destructive and `{name}`'s allow_destructive does not name it"
            )));
        }
        Ok(server)
    }

    /// A session for dialogue `dialogue`.
    pub fn session(self: &Arc<Self>, dialogue: u64) -> Session {
        Session {
            executor: Arc::clone(self),
            dialogue,
            servers: BTreeMap::new(),
        }
    }

    /// Dialogue `dialogue`'s working directory for `config`'s server.
    fn workdir(&self, config: &ServerConfig, dialogue: u64) -> PathBuf {
        self.workdirs.join(&config.name).join(dialogue.to_string())
    }

    /// Calls executed on a server so far (replays not counted).
    pub fn executed(&self) -> u64 {
        self.executed.load(Ordering::Relaxed)
    }

    /// Recorded calls executed again to rebuild a server's state.
    pub fn replayed(&self) -> u64 {
        self.replayed.load(Ordering::Relaxed)
    }
}

/// One dialogue's servers: started when first needed, stopped by [`Session::close`] (or
/// killed when dropped).
pub struct Session {
    executor: Arc<Executor>,
    dialogue: u64,
    servers: BTreeMap<String, ServerState>,
}

struct ServerState {
    /// The key of the last call (the server's identity before any).
    chain: String,
    /// Recorded calls not yet made on the running instance.
    pending: Vec<(String, Value)>,
    live: Option<Server>,
}

fn hash(parts: &Value) -> String {
    blake3::hash(parts.to_string().as_bytes())
        .to_hex()
        .to_string()
}

impl Session {
    /// Executes `tool` with `arguments`, or reads its recorded result.
    pub async fn call(&mut self, tool: &Tool, arguments: &Value) -> Result<Executed, McpError> {
        let executor = Arc::clone(&self.executor);
        let config = executor.server_of(tool)?;
        let name = tool
            .meta
            .get(MCP_NAME)
            .and_then(Value::as_str)
            .unwrap_or(&tool.name)
            .to_owned();
        let workdir = executor.workdir(config, self.dialogue);
        let state = self
            .servers
            .entry(config.name.clone())
            .or_insert_with(|| ServerState {
                chain: hash(&serde_json::json!([
                    "toolflow-mcp/server",
                    config.instance_identity(&workdir)
                ])),
                pending: Vec::new(),
                live: None,
            });
        let key = hash(&serde_json::json!([state.chain, name, arguments]));
        let origin = format!("mcp:{}", config.name);
        if !executor.refresh
            && let Some((content, is_error)) = executor.cache.get(&key)?
        {
            state.chain = key;
            state.pending.push((name, arguments.clone()));
            return Ok(Executed {
                content,
                is_error,
                origin,
            });
        }
        let outcome =
            Self::execute(&executor, self.dialogue, config, state, &name, arguments).await;
        if outcome.is_err() {
            // A server that failed once is not trusted with the rest of the dialogue.
            drop(state.live.take());
        }
        let (content, is_error) = outcome?;
        executor.cache.put(&key, &content, is_error)?;
        state.chain = key;
        Ok(Executed {
            content,
            is_error,
            origin,
        })
    }

    async fn execute(
        executor: &Executor,
        dialogue: u64,
        config: &ServerConfig,
        state: &mut ServerState,
        name: &str,
        arguments: &Value,
    ) -> Result<(Value, bool), McpError> {
        if state.live.is_none() {
            let workdir = executor.workdir(config, dialogue);
            if config.wants_workdir() {
                let fresh = || {
                    if workdir.exists() {
                        std::fs::remove_dir_all(&workdir)?;
                    }
                    std::fs::create_dir_all(&workdir)
                };
                fresh().map_err(|source| McpError::Workdir {
                    server: config.name.clone(),
                    path: workdir.clone(),
                    source,
                })?;
            }
            state.live = Some(Server::start(config, &workdir).await?);
        }
        let server = state.live.as_ref().expect("started above");
        for (tool, arguments) in std::mem::take(&mut state.pending) {
            server.call(&tool, &arguments).await?;
            executor.replayed.fetch_add(1, Ordering::Relaxed);
        }
        let result = server.call(name, arguments).await?;
        executor.executed.fetch_add(1, Ordering::Relaxed);
        Ok(result_value(&result))
    }

    /// Stops the dialogue's servers.
    pub async fn close(mut self) {
        for state in std::mem::take(&mut self.servers).into_values() {
            if let Some(server) = state.live {
                server.shutdown().await;
            }
        }
    }
}
