//! Executed tools: what the writer asks of whatever runs real tools (the pipeline backs it
//! with MCP servers), so that this crate needs no process or network code.
//!
//! The writer opens one [`ToolSession`] per dialogue and closes it when the dialogue ends;
//! within it, calls come one at a time in the dialogue's order, since a stateful tool's
//! result depends on the calls before it.

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolflow_core::Tool;

/// `[synth] tools`: which tool results are executed rather than simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolMode {
    /// The tool agent simulates every result (the paper's method).
    #[default]
    Simulate,
    /// Every call is executed; a dialogue that calls a tool no executor runs fails.
    Execute,
    /// Tools an executor runs are executed, the rest simulated.
    Auto,
}

impl ToolMode {
    /// Whether this is the default, which the stage keys leave out so that runs made
    /// before the setting existed stay current.
    pub fn is_simulate(&self) -> bool {
        *self == ToolMode::Simulate
    }
}

/// A result a real tool gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// The tool turn's content; for an error, an object with an `error` field.
    pub content: Value,
    /// The tool flagged the result as an error.
    pub is_error: bool,
    /// How it was made, recorded as the turn's `origin` (e.g. `mcp:memory`).
    pub origin: String,
}

/// Runs real tools for the writer.
pub trait ToolExecutor: Send + Sync {
    /// Why `tool` cannot be executed, or `Ok` when it can.
    fn executes(&self, tool: &Tool) -> Result<(), String>;
    /// A session for dialogue `index`: its own tool state, apart from every other
    /// dialogue's.
    fn open(&self, index: u64) -> Box<dyn ToolSession>;
}

/// One dialogue's executed tools.
pub trait ToolSession: Send {
    /// Executes `tool` with `arguments`. An error is the reason the dialogue fails (the
    /// tool did not start, crashed, hung or answered nonsense); a result the tool flagged
    /// as an error is an `Ok` with `is_error`.
    fn call<'a>(
        &'a mut self,
        tool: &'a Tool,
        arguments: &'a Value,
    ) -> BoxFuture<'a, Result<Executed, String>>;
    /// Ends the session, stopping whatever it started.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}
