//! `[[mcp]]` servers in a run: their tools imported, and the synth writer's
//! [`ToolExecutor`] backed by [`toolflow_mcp::Executor`].

use std::path::Path;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::Value;
use toolflow_core::Tool;
use toolflow_mcp::{Executor, ResultCache, ServerConfig, Session};
use toolflow_synth::{Executed, ToolExecutor, ToolMode, ToolSession};

use crate::error::PipelineError;

/// The tools of every server in `servers`, in order, each keeping its server's name; a
/// name another tool already has gets `_SERVER` appended (the server still knows it by its
/// own name, kept in `meta.mcp_tool`).
pub fn import_servers(
    servers: &[ServerConfig],
    taken: &mut Vec<String>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Vec<Tool>, PipelineError> {
    let mut all = Vec::new();
    for server in servers {
        for mut tool in runtime.block_on(toolflow_mcp::import(server))? {
            if taken.contains(&tool.name) {
                tool.name = format!("{}_{}", tool.name, server.name);
            }
            taken.push(tool.name.clone());
            all.push(tool);
        }
    }
    Ok(all)
}

/// The executor a synthesis with `mode` uses: none when it simulates, or when there is no
/// server (then `auto` simulates everything, and `execute` fails each dialogue that calls
/// a tool). Results are recorded in the SQLite file `results`; dialogues' working
/// directories go under `workdirs`. Both belong to the run, not to the shared cache
/// directory: a result may name its dialogue's working directory.
pub fn executor(
    servers: &[ServerConfig],
    mode: ToolMode,
    results: &Path,
    workdirs: &Path,
    refresh: bool,
) -> Result<Option<Arc<dyn ToolExecutor>>, PipelineError> {
    if mode == ToolMode::Simulate || servers.is_empty() {
        return Ok(None);
    }
    let cache = ResultCache::open(results)?;
    let executor = Executor::new(servers.to_vec(), cache, workdirs.to_path_buf(), refresh)?;
    Ok(Some(Arc::new(McpTools(Arc::new(executor)))))
}

/// MCP servers as the writer's executor.
struct McpTools(Arc<Executor>);

impl ToolExecutor for McpTools {
    fn executes(&self, tool: &Tool) -> Result<(), String> {
        self.0
            .server_of(tool)
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    fn open(&self, index: u64) -> Box<dyn ToolSession> {
        Box::new(McpSession(self.0.session(index)))
    }
}

struct McpSession(Session);

impl ToolSession for McpSession {
    fn call<'a>(
        &'a mut self,
        tool: &'a Tool,
        arguments: &'a Value,
    ) -> BoxFuture<'a, Result<Executed, String>> {
        async move {
            self.0
                .call(tool, arguments)
                .await
                .map(|executed| Executed {
                    content: executed.content,
                    is_error: executed.is_error,
                    origin: executed.origin,
                })
                .map_err(|error| error.to_string())
        }
        .boxed()
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.0.close().boxed()
    }
}
