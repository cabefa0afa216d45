//! Why a pipeline run stopped. Each stage's own error passes through unchanged (it already
//! names its file, line or field); [`PipelineError::Stage`] says which stage it came from.

use std::path::PathBuf;

use toolflow_embed::EmbedError;

/// Everything that ends a run or a stage.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A stage failed; `error` says why.
    #[error("stage `{stage}`: {error}")]
    Stage {
        /// The stage's name, as in `run-state.json`.
        stage: String,
        /// What went wrong in it.
        error: Box<PipelineError>,
    },
    /// The run config is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A file or directory could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// A JSON Lines file could not be read or written.
    #[error(transparent)]
    Jsonl(#[from] toolflow_core::jsonl::JsonlError),
    /// A tool file could not be imported.
    #[error(transparent)]
    Import(#[from] toolflow_import::ImportError),
    /// An MCP server could not be started, listed or used.
    #[error(transparent)]
    Mcp(#[from] toolflow_mcp::McpError),
    /// Every tool entry was skipped, so there is nothing to build a graph of.
    #[error("no tools were imported")]
    NoTools,
    /// The embedding model could not be found, loaded or run.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The tool graph could not be built.
    #[error("building the graph of {path}: {error}")]
    Graph {
        /// The tools file.
        path: PathBuf,
        /// Why.
        error: toolflow_graph::GraphError<EmbedError>,
    },
    /// A file that should hold a tool graph does not.
    #[error("{path}: not a tool graph: {error}")]
    NotAGraph {
        /// The file.
        path: PathBuf,
        /// What JSON decoding said.
        error: serde_json::Error,
    },
    /// A graph edge names a tool the graph's nodes lack.
    #[error("{path}: {error}")]
    UnknownNode {
        /// The graph file.
        path: PathBuf,
        /// The node.
        error: toolflow_core::graph::UnknownNode,
    },
    /// A tool file or directory gave no tools.
    #[error("{}: no tools read", .0.display())]
    NoToolsIn(PathBuf),
    /// The overlap check could not run.
    #[error(transparent)]
    Overlap(#[from] toolflow_eval::overlap::OverlapError),
    /// A subset names a tool that the tools file lacks.
    #[error("subset {index} names `{tool}`, which tools.jsonl lacks")]
    UnknownTool {
        /// The subset's index.
        index: u64,
        /// The missing tool.
        tool: String,
    },
    /// The endpoints could not be set up.
    #[error(transparent)]
    Endpoints(#[from] toolflow_llm::ConfigError),
    /// The request engine could not be built.
    #[error(transparent)]
    Engine(#[from] toolflow_llm::EngineError),
    /// No endpoint is configured and the embedded model could not be loaded.
    #[error("no endpoint configured, so the embedded model answers: {0}")]
    EmbeddedModel(#[from] toolflow_local::LocalError),
    /// A prompt file is missing or malformed.
    #[error(transparent)]
    Prompts(#[from] toolflow_synth::PromptError),
    /// A model asked for by name is served by no endpoint.
    #[error("model {model}: no endpoint serves it (configured: {served})")]
    UnknownModel {
        /// The model asked for.
        model: String,
        /// The models the endpoints serve, comma-separated.
        served: String,
    },
    /// The synthesizer refused its settings.
    #[error(transparent)]
    Synth(#[from] toolflow_synth::SynthError),
    /// The run store failed.
    #[error(transparent)]
    Store(#[from] toolflow_store::StoreError),
    /// The run store holds the dialogues of a run with other settings.
    #[error(
        "{0}\nThe settings, tools, prompts or models changed since these dialogues were written: pass --force to start over, or choose another --out."
    )]
    OtherRun(toolflow_store::StoreError),
    /// Ctrl-C (or the caller's cancellation) stopped the synthesis stage.
    #[error(
        "interrupted: {written} of {expected} dialogues are in {}; run the same command again to resume",
        store.display()
    )]
    Interrupted {
        /// Dialogues the store holds.
        written: u64,
        /// Dialogues this run (shard) has.
        expected: u64,
        /// The store's file.
        store: PathBuf,
    },
    /// An endpoint turned out unusable (unreachable, or refusing every request the same
    /// way): synthesis stopped launching dialogues.
    #[error(
        "{why}\nStopped launching dialogues; {written} of {expected} are in {}: fix the endpoint and run the same command again to write the rest",
        store.display()
    )]
    EndpointUnusable {
        /// What the engine found, with what to change.
        why: String,
        /// Dialogues the store holds.
        written: u64,
        /// Dialogues this run (shard) has.
        expected: u64,
        /// The store's file.
        store: PathBuf,
    },
    /// Dialogues were written but none completed or reached the turn limit.
    #[error(
        "no dialogue was completed ({failed} failed; see the warnings above): nothing usable was written"
    )]
    NothingCompleted {
        /// Dialogues that failed.
        failed: u64,
    },
    /// A dialogue file could not be filtered or measured.
    #[error(transparent)]
    Eval(#[from] toolflow_eval::EvalError),
    /// The NLI checkpoint is there but unusable.
    #[error(transparent)]
    Nli(#[from] toolflow_nli::NliError),
    /// An export could not be written.
    #[error(transparent)]
    Export(#[from] toolflow_export::ExportError),
    /// A config value names something that does not exist (an import or export format).
    #[error("{0}")]
    ConfigValue(String),
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] toolflow_report::ReportError),
    /// The async runtime could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl PipelineError {
    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
        move |error| PipelineError::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    /// This error, said to come from `stage`.
    pub fn in_stage(self, stage: &str) -> PipelineError {
        PipelineError::Stage {
            stage: stage.to_string(),
            error: Box::new(self),
        }
    }
}
