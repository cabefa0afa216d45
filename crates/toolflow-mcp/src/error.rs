//! What can go wrong with an MCP server.

/// A server that could not be used; the text names the server and is recorded as a failed
/// dialogue's reason, so its wording is part of the data.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The `[[mcp]]` table is unusable.
    #[error("[[mcp]] `{server}`: {detail}")]
    Config {
        /// The server's name.
        server: String,
        /// Which key, and why.
        detail: String,
    },
    /// The process could not be started, or the MCP handshake failed.
    #[error("mcp:{server}: the server did not start: {detail}")]
    Start {
        /// The server's name.
        server: String,
        /// What went wrong.
        detail: String,
    },
    /// The server did not answer within its timeout.
    #[error("mcp:{server}: `{method}` got no answer within {seconds} s")]
    Timeout {
        /// The server's name.
        server: String,
        /// The request, e.g. `tools/call get_weather`.
        method: String,
        /// The timeout.
        seconds: f64,
    },
    /// The request failed: the server exited, closed its stream, or answered something
    /// that is not a valid JSON-RPC response.
    #[error("mcp:{server}: `{method}` failed: {detail}")]
    Request {
        /// The server's name.
        server: String,
        /// The request.
        method: String,
        /// What the SDK said.
        detail: String,
    },
    /// The tool cannot be executed (not from a configured server, or destructive and not
    /// allowed by name).
    #[error("`{tool}` cannot be executed: {detail}")]
    NotExecutable {
        /// The tool's name.
        tool: String,
        /// Why.
        detail: String,
    },
    /// The result cache could not be read or written.
    #[error("tool result cache {path}: {source}")]
    Cache {
        /// The cache file.
        path: std::path::PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A working directory could not be made.
    #[error("mcp:{server}: working directory {path}: {source}")]
    Workdir {
        /// The server's name.
        server: String,
        /// The directory.
        path: std::path::PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}
