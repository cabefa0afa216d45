//! `tools/list` as toolflow tool records.

use serde_json::{Map, Value};
use toolflow_core::Tool;

use crate::client::Server;
use crate::config::ServerConfig;
use crate::error::McpError;

/// The `meta` key holding the tool's name on its server, which the executor calls it by
/// (a later stage may rename the record to keep names unique).
pub(crate) const MCP_NAME: &str = "mcp_tool";

/// Starts `config`'s server (a stdio server with a fresh temporary working directory),
/// lists its tools, keeps those its `tools` allow-list names, and stops it.
pub async fn import(config: &ServerConfig) -> Result<Vec<Tool>, McpError> {
    let workdir = tempfile::tempdir().map_err(|source| McpError::Workdir {
        server: config.name.clone(),
        path: std::env::temp_dir(),
        source,
    })?;
    let server = Server::start(config, workdir.path()).await?;
    let listed = server.list_tools().await;
    server.shutdown().await;
    let tools = listed?
        .into_iter()
        .filter(|tool| {
            config
                .tools
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|name| name == &tool.name))
        })
        .map(|tool| tool_record(&config.name, &tool))
        .collect();
    Ok(tools)
}

/// One MCP tool as a [`Tool`] from server `server`: `inputSchema` as `parameters`,
/// `outputSchema` as `returns`, `title` and `annotations` kept in `meta` (with the tool's
/// name on the server), `source = "mcp:SERVER"`.
pub fn tool_record(server: &str, tool: &rmcp::model::Tool) -> Tool {
    let mut meta = Map::new();
    meta.insert(MCP_NAME.into(), Value::String(tool.name.to_string()));
    if let Some(title) = &tool.title {
        meta.insert("title".into(), Value::String(title.clone()));
    }
    if let Some(annotations) = &tool.annotations {
        let annotations = serde_json::to_value(annotations).expect("annotations serialise");
        meta.insert("annotations".into(), annotations);
    }
    let mut parameters = Value::Object((*tool.input_schema).clone());
    // Some servers omit `properties` for a tool without arguments.
    if parameters.get("properties").is_none() {
        parameters["properties"] = Value::Object(Map::new());
    }
    Tool {
        name: tool.name.to_string(),
        description: tool.description.as_deref().unwrap_or_default().to_owned(),
        parameters,
        returns: tool
            .output_schema
            .as_ref()
            .map(|schema| Value::Object((**schema).clone())),
        source: format!("mcp:{server}"),
        meta,
    }
}
