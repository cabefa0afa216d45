//! MCP servers as a tool source and as executors.
//!
//! A `[[mcp]]` table of the run config ([`ServerConfig`]) names a server started as a child
//! process over stdio (`command`, `args`, `env`) or reached over Streamable HTTP (`url`).
//! [`import`] lists its tools (`tools/list`, every page) as toolflow [`Tool`] records:
//! `inputSchema` becomes `parameters`, `outputSchema` becomes `returns`, the title and
//! annotations go into `meta`, and `source` is `mcp:NAME`.
//!
//! [`Executor`] runs calls for synthesis. Each dialogue gets its own [`Session`]: a fresh
//! server instance, started when the dialogue first calls one of its tools, with a fresh
//! working directory (the `{workdir}` placeholder in `args`), so dialogues never see each
//! other's state. Results are recorded in a SQLite table (`tool-results.sqlite`) keyed by
//! the server's identity, the calls made before in the same dialogue, the tool and the
//! arguments; a rerun reads them back instead of executing, and a call that misses first
//! replays the dialogue's earlier calls on the fresh server to rebuild its state.
//!
//! The client is the official SDK, `rmcp`; this crate writes no JSON-RPC of its own.
//!
//! [`Tool`]: toolflow_core::Tool

#![warn(missing_docs)]

mod cache;
mod client;
mod config;
mod error;
mod executor;
mod import;
mod result;

pub use cache::ResultCache;
pub use client::Server;
pub use config::ServerConfig;
pub use error::McpError;
pub use executor::{Executed, Executor, Session};
pub use import::{import, tool_record};
pub use result::result_value;
