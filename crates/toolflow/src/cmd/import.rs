use std::path::PathBuf;

use anyhow::Context;
use toolflow_import::{Format, ImportOptions, import_paths};

#[derive(clap::Args)]
pub struct Args {
    /// Files of tool definitions, or directories to search for .json/.jsonl/.yaml files
    #[arg(required = true)]
    paths: Vec<PathBuf>,
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
    let report = import_paths(&args.paths, &options)?;
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
            "wrote {} tools to {}",
            report.tools.len(),
            args.output.display()
        );
    }
    Ok(())
}
