//! One running server: started, asked, and stopped through the `rmcp` client.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use process_wrap::tokio::{CommandWrap, ProcessGroup};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};

use crate::config::ServerConfig;
use crate::error::McpError;

/// A connected server. Dropping it ends the connection and kills a stdio server's whole
/// process group (`npx` starts `node` beneath itself), so no server outlives its owner.
pub struct Server {
    config: ServerConfig,
    service: Option<RunningService<RoleClient, ()>>,
    /// The stdio server's process group, killed on drop.
    group: Option<i32>,
}

impl Server {
    /// Starts the server (for stdio, with `workdir` for `{workdir}`) and completes the MCP
    /// handshake within `start_timeout`.
    pub async fn start(config: &ServerConfig, workdir: &Path) -> Result<Server, McpError> {
        config.check()?;
        let start_error = |detail: String| McpError::Start {
            server: config.name.clone(),
            detail,
        };
        let limit = Duration::from_secs_f64(config.start_timeout);
        let (service, group) = if let Some(url) = &config.url {
            // The workspace builds reqwest without a TLS crypto provider, and rmcp builds its
            // own client: ring is installed first or an https URL panics. A second install
            // is harmlessly refused.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let transport = StreamableHttpClientTransport::from_uri(url.as_str());
            let service = tokio::time::timeout(limit, ().serve(transport))
                .await
                .map_err(|_| {
                    start_error(format!("no handshake within {} s", config.start_timeout))
                })?
                .map_err(|error| start_error(error.to_string()))?;
            (service, None)
        } else {
            let program = config.command.as_deref().unwrap_or_default();
            let args = config.args_for(workdir);
            let env = config.env_for(workdir);
            let mut command = CommandWrap::with_new(program, |command| {
                command.args(&args).envs(&env);
                if config.wants_workdir() {
                    command.current_dir(workdir);
                }
            });
            // Its own process group, so that killing it reaches the processes it starts.
            command.wrap(ProcessGroup::leader());
            let (transport, _) = TokioChildProcess::builder(command)
                .stderr(Stdio::null())
                .spawn()
                .map_err(|error| start_error(format!("`{program}`: {error}")))?;
            let group = transport.id().map(|pid| pid as i32);
            let guard = Killer(group);
            let service = tokio::time::timeout(limit, ().serve(transport))
                .await
                .map_err(|_| {
                    start_error(format!("no handshake within {} s", config.start_timeout))
                })?
                .map_err(|error| start_error(error.to_string()))?;
            std::mem::forget(guard);
            (service, group)
        };
        Ok(Server {
            config: config.clone(),
            service: Some(service),
            group,
        })
    }

    /// The server's config.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    fn service(&self) -> &RunningService<RoleClient, ()> {
        self.service.as_ref().expect("present until dropped")
    }

    /// Every tool the server lists, all pages, in its order.
    pub async fn list_tools(&self) -> Result<Vec<rmcp::model::Tool>, McpError> {
        let method = "tools/list";
        let limit = Duration::from_secs_f64(self.config.timeout);
        tokio::time::timeout(limit, self.service().peer().list_all_tools())
            .await
            .map_err(|_| self.timeout(method))?
            .map_err(|error| self.failed(method, error))
    }

    /// Calls `tool` with `arguments` (an object, or null for none) within the timeout.
    pub async fn call(
        &self,
        tool: &str,
        arguments: &serde_json::Value,
    ) -> Result<CallToolResult, McpError> {
        let method = format!("tools/call {tool}");
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let serde_json::Value::Object(object) = arguments {
            params = params.with_arguments(object.clone());
        }
        let limit = Duration::from_secs_f64(self.config.timeout);
        tokio::time::timeout(limit, self.service().peer().call_tool(params))
            .await
            .map_err(|_| self.timeout(&method))?
            .map_err(|error| self.failed(&method, error))
    }

    /// Closes the connection and waits for the server to go (a stdio server gets its
    /// stdin closed, then is killed if it lingers).
    pub async fn shutdown(mut self) {
        if let Some(service) = self.service.take() {
            let limit = Duration::from_secs(5);
            if tokio::time::timeout(limit, service.cancel()).await.is_err() {
                tracing::warn!(server = self.config.name, "the server did not stop in 5 s");
            }
        }
        // Drop kills whatever of the group is left.
    }

    fn timeout(&self, method: &str) -> McpError {
        McpError::Timeout {
            server: self.config.name.clone(),
            method: method.to_owned(),
            seconds: self.config.timeout,
        }
    }

    fn failed(&self, method: &str, error: rmcp::ServiceError) -> McpError {
        McpError::Request {
            server: self.config.name.clone(),
            method: method.to_owned(),
            detail: error.to_string(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.service.take());
        drop(Killer(self.group));
    }
}

/// Kills a process group when dropped: the SDK's own cleanup needs a running tokio
/// runtime, and reaches only the process it started, not the ones that started beneath it.
struct Killer(Option<i32>);

impl Drop for Killer {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            // SAFETY: killpg takes plain integers; a group that is gone gives ESRCH.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }
}
