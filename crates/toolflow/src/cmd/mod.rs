//! One module per subcommand; each owns its `Args` and a `run` that reads and writes the
//! pipeline's files through the library crates.

pub mod chat;
pub mod engine;
pub mod enrich;
pub mod eval;
pub mod export;
pub mod filter;
pub mod graph;
pub mod import;
pub mod merge;
pub mod overlap;
pub mod report;
pub mod run;
pub mod sample;
pub mod schema;
pub mod synth;

use std::path::PathBuf;

use toolflow_embed::{ModelOptions, Precision};

/// Options every subcommand takes.
#[derive(clap::Args)]
pub struct Global {
    /// Print a machine-readable JSON summary on stdout instead of the human one
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v info, -vv debug, -vvv trace); TOOLFLOW_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Where models, embeddings and responses are cached
    #[arg(long, global = true, env = "TOOLFLOW_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Matrix products of the embedding model: bf16 (needs AVX512-BF16; embedding about
    /// 1.5x faster, vectors within a cosine of 1e-4 of f32), f32, or auto (bf16 where it runs)
    #[arg(long, global = true, env = "TOOLFLOW_EMBED_PRECISION", default_value = "auto", value_parser = parse_precision)]
    pub embed_precision: Precision,
}

fn parse_precision(text: &str) -> Result<Precision, String> {
    text.parse()
}

impl Global {
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(toolflow_core::default_cache_dir)
    }

    /// Where and how the embedding model is found and run.
    pub fn model_options(&self, model_dir: Option<PathBuf>, offline: bool) -> ModelOptions {
        ModelOptions {
            model_dir,
            cache_dir: self.cache_dir(),
            offline,
            precision: self.embed_precision,
        }
    }

    /// Progress bars only for people: not with --json, --quiet, or when stderr is no terminal.
    pub fn show_progress(&self) -> bool {
        use std::io::IsTerminal;
        !self.json && !self.quiet && std::io::stderr().is_terminal()
    }
}
