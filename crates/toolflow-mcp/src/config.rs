//! `[[mcp]]`: one MCP server of the run config.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::McpError;

/// One `[[mcp]]` table: a server, how to reach it, and which of its tools to use.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The server's name; its tools get `source = "mcp:NAME"`.
    pub name: String,
    /// The program to start (stdio transport), e.g. `npx`.
    #[serde(default)]
    pub command: Option<String>,
    /// Its arguments; `{workdir}` is replaced by the instance's own fresh directory.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables set for it, beside the inherited ones; `{workdir}` is
    /// replaced as in `args`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The Streamable HTTP endpoint, instead of `command`.
    #[serde(default)]
    pub url: Option<String>,
    /// Only these tools are imported (all when absent).
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Tools annotated as destructive that may still be executed.
    #[serde(default)]
    pub allow_destructive: Vec<String>,
    /// Seconds a tool call may take.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Seconds starting the server (process and handshake) may take; a first `npx` run
    /// downloads the package.
    #[serde(default = "default_start_timeout")]
    pub start_timeout: f64,
}

fn default_timeout() -> f64 {
    30.0
}

fn default_start_timeout() -> f64 {
    120.0
}

impl ServerConfig {
    /// A stdio server running `command` with `args`, with the default timeouts.
    pub fn stdio(name: &str, command: &str, args: &[&str]) -> Self {
        ServerConfig {
            name: name.into(),
            command: Some(command.into()),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            env: BTreeMap::new(),
            url: None,
            tools: None,
            allow_destructive: Vec::new(),
            timeout: default_timeout(),
            start_timeout: default_start_timeout(),
        }
    }

    /// Checks that exactly one transport is named and the timeouts are positive.
    pub fn check(&self) -> Result<(), McpError> {
        let fail = |detail: &str| {
            Err(McpError::Config {
                server: self.name.clone(),
                detail: detail.into(),
            })
        };
        if self.name.is_empty() || self.name.contains(char::is_whitespace) {
            return fail("`name` must be a non-empty word");
        }
        match (&self.command, &self.url) {
            (Some(_), Some(_)) => return fail("give `command` or `url`, not both"),
            (None, None) => return fail("give `command` (stdio) or `url` (Streamable HTTP)"),
            _ => {}
        }
        if !(self.timeout > 0.0 && self.start_timeout > 0.0) {
            return fail("`timeout` and `start_timeout` must be positive");
        }
        Ok(())
    }

    /// `args` with `{workdir}` replaced by `workdir`.
    pub fn args_for(&self, workdir: &Path) -> Vec<String> {
        let dir = workdir.to_string_lossy();
        self.args
            .iter()
            .map(|arg| arg.replace("{workdir}", &dir))
            .collect()
    }

    /// `env` with `{workdir}` replaced by `workdir`.
    pub fn env_for(&self, workdir: &Path) -> BTreeMap<String, String> {
        let dir = workdir.to_string_lossy();
        self.env
            .iter()
            .map(|(name, value)| (name.clone(), value.replace("{workdir}", &dir)))
            .collect()
    }

    /// Whether an argument or a variable names `{workdir}`.
    pub fn wants_workdir(&self) -> bool {
        self.args
            .iter()
            .chain(self.env.values())
            .any(|arg| arg.contains("{workdir}"))
    }

    /// What identifies the server's behaviour: how it is started or reached, not its
    /// timeouts (the run's stage keys use it).
    pub fn identity(&self) -> String {
        serde_json::json!({
            "command": self.command,
            "args": self.args,
            "env": self.env,
            "url": self.url,
        })
        .to_string()
    }

    /// [`ServerConfig::identity`] of the instance with working directory `workdir`, which
    /// keys its recorded results: a result may name the directory, so instances with
    /// different directories never share one.
    pub fn instance_identity(&self, workdir: &Path) -> String {
        serde_json::json!({
            "command": self.command,
            "args": self.args_for(workdir),
            "env": self.env_for(workdir),
            "url": self.url,
        })
        .to_string()
    }
}
