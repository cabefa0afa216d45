//! The source formats toolflow reads tools from.

use serde::Serialize;

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// OpenAI function or tool lists.
    Openai,
    /// ToolBench API lists.
    Toolbench,
    /// OpenAPI 3.x and Swagger 2.0 documents.
    Openapi,
    /// MCP `tools/list` results.
    Mcp,
    /// BFCL function docs.
    Bfcl,
    /// toolflow's own `tools.jsonl`.
    Toolflow,
    /// API-Bank API dumps.
    Apibank,
}

impl Format {
    /// Every format the importer reads.
    pub const ALL: [Format; 7] = [
        Format::Openai,
        Format::Toolbench,
        Format::Openapi,
        Format::Mcp,
        Format::Bfcl,
        Format::Toolflow,
        Format::Apibank,
    ];

    /// The name `--format` and `[tools] format` take.
    pub fn name(self) -> &'static str {
        match self {
            Format::Openai => "openai",
            Format::Toolbench => "toolbench",
            Format::Openapi => "openapi",
            Format::Mcp => "mcp",
            Format::Bfcl => "bfcl",
            Format::Toolflow => "toolflow",
            Format::Apibank => "apibank",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Format, String> {
        let text = text.to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|format| format.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|format| format.name()).collect();
                format!(
                    "unknown format `{text}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}
