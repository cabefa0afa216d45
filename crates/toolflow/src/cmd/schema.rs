use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Write `<record>.schema.json` files into this directory instead of printing
    #[arg(long)]
    write: Option<PathBuf>,
    /// Only this record: tool, graph, subset or dialogue
    record: Option<String>,
}

pub fn run(args: Args, _global: &super::Global) -> anyhow::Result<()> {
    let mut schemas = toolflow_core::schemas();
    if let Some(record) = &args.record {
        schemas.retain(|(stem, _)| stem == record);
        anyhow::ensure!(
            !schemas.is_empty(),
            "no record named `{record}` (try tool, graph, subset, dialogue)"
        );
    }
    for (stem, schema) in schemas {
        let text = serde_json::to_string_pretty(&schema)? + "\n";
        match &args.write {
            Some(dir) => {
                let path = dir.join(format!("{stem}.schema.json"));
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            None => print!("{text}"),
        }
    }
    Ok(())
}
