use std::path::PathBuf;

use anyhow::Context;
use toolflow_import::{Format, ImportOptions, import_paths};

#[derive(clap::Args)]
pub struct Args {
    /// Files of tool definitions, or directories to search for .json/.jsonl/.yaml files
    #[arg(required_unless_present = "mcp")]
    paths: Vec<PathBuf>,
    /// Also list the tools of this `[[mcp]]` server of the --config file (repeatable)
    #[arg(long, value_name = "NAME", requires = "config")]
    mcp: Vec<String>,
    /// The run config whose `[[mcp]]` tables --mcp names
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to write the tools, one JSON object per line
    #[arg(short, long)]
    output: PathBuf,
    /// Read every file as this format instead of detecting it per file
    #[arg(long, default_value = "auto", value_parser = ["auto", "openai", "toolbench", "openapi", "mcp", "bfcl", "apibank", "toolflow"])]
    format: String,
    /// Fail on the first file or entry that would be skipped, instead of skipping it
    #[arg(long)]
    strict: bool,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let format = match args.format.as_str() {
        "auto" => None,
        name => Some(name.parse::<Format>().map_err(anyhow::Error::msg)?),
    };
    let options = ImportOptions {
        format,
        strict: args.strict,
    };
    let mut report = import_paths(&args.paths, &options)?;
    let served = match &args.config {
        Some(file) => {
            let (config, _) = toolflow_pipeline::RunConfig::load(Some(file))?;
            let servers = args
                .mcp
                .iter()
                .map(|name| {
                    config.mcp_server(name).cloned().with_context(|| {
                        format!("{}: no [[mcp]] table is named `{name}`", file.display())
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let runtime = toolflow_pipeline::chat::runtime()?;
            let mut taken: Vec<String> =
                report.tools.iter().map(|tool| tool.name.clone()).collect();
            toolflow_pipeline::mcp::import_servers(&servers, &mut taken, &runtime)?
        }
        None => Vec::new(),
    };
    let from_servers = served.len();
    report.tools.extend(served);
    let summary = report.summary();
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !global.quiet {
        eprint!("{summary}");
    }
    anyhow::ensure!(
        !report.tools.is_empty(),
        "no tools imported, so {} was not written",
        args.output.display()
    );
    toolflow_core::jsonl::write(&args.output, &report.tools)
        .with_context(|| format!("writing {}", args.output.display()))?;
    if !global.json && !global.quiet {
        eprintln!(
            "wrote {} tools ({from_servers} from MCP servers) to {}",
            report.tools.len(),
            args.output.display()
        );
    }
    Ok(())
}
