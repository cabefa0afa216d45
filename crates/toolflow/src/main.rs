//! `toolflow`: the command-line front of the pipeline. Each subcommand is one stage that
//! reads and writes the files of the pipeline; see ARCHITECTURE.md for the map.

mod cmd;
mod progress;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "toolflow", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: cmd::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline end to end into one directory, skipping stages that are current
    Run(cmd::run::Args),
    /// Read tool definitions (OpenAI, ToolBench, OpenAPI/Swagger, MCP, BFCL) into tools.jsonl
    Import(cmd::import::Args),
    /// Fill empty tool and parameter descriptions and missing return schemas with the chat model
    Enrich(cmd::enrich::Args),
    /// Build the tool graph: embed every parameter and return value, join on cosine > τ
    Graph(cmd::graph::Args),
    /// Sample tool subsets by random walk on the graph (or uniformly, the ablation)
    Sample(cmd::sample::Args),
    /// Write one dialogue per subset (plan, user, assistant and tool agents), resumable
    Synth(cmd::synth::Args),
    /// Send one prompt through the configured chat backend and print the answer and usage
    Chat(cmd::chat::Args),
    /// Keep the dialogues that pass the filter rules; reject the others with every reason
    Filter(cmd::filter::Args),
    /// Join the dialogues.jsonl files of a run's shards into one, ordered by index
    Merge(cmd::merge::Args),
    /// Measure dialogue files (Table 1 statistics, H, Distinct-3) into metrics.json
    Eval(cmd::eval::Args),
    /// Check a training tool set for leaks from test sets (paper §7: 11-gram coverage, cosine)
    Overlap(cmd::overlap::Args),
    /// Export dialogues as SFT data: TRL, ShareGPT, Hermes, or a model's chat template
    Export(cmd::export::Args),
    /// Write one self-contained HTML report of a run: metrics, graph, rejections, tool usage, dialogues
    Report(cmd::report::Args),
    /// Print or write the JSON Schema of each record toolflow reads and writes
    Schema(cmd::schema::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args, &cli.global),
        Command::Import(args) => cmd::import::run(args, &cli.global),
        Command::Enrich(args) => cmd::enrich::run(args, &cli.global),
        Command::Graph(args) => cmd::graph::run(args, &cli.global),
        Command::Sample(args) => cmd::sample::run(args, &cli.global),
        Command::Schema(args) => cmd::schema::run(args, &cli.global),
        Command::Filter(args) => cmd::filter::run(args, &cli.global),
        Command::Merge(args) => cmd::merge::run(args, &cli.global),
        Command::Eval(args) => cmd::eval::run(args, &cli.global),
        Command::Overlap(args) => cmd::overlap::run(args, &cli.global),
        Command::Export(args) => cmd::export::run(args, &cli.global),
        Command::Report(args) => cmd::report::run(args, &cli.global),
        Command::Chat(args) => cmd::chat::run(args, &cli.global),
        Command::Synth(args) => cmd::synth::run(args, &cli.global),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so that stdout stays clean for `--json` and for data.
fn init_logging(global: &cmd::Global) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_env("TOOLFLOW_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
