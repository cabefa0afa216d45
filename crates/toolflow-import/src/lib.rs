//! Reads tool definitions from the formats tool-calling datasets ship in — OpenAI function
//! lists, ToolBench API lists, OpenAPI 3.x / Swagger 2.0, MCP `tools/list` results, BFCL
//! function docs, API-Bank API dumps and toolflow's own `tools.jsonl` — into [`Tool`] records for the rest of
//! the pipeline.
//!
//! Every file is parsed once (JSON, JSON Lines or YAML), its format detected from its shape
//! (or forced), and each definition read by that format's reader. Then, the same for all:
//!
//! - `parameters` and `returns` are repaired where a known small problem allows it (listed
//!   in `meta.schema_fixes`) and must then compile as JSON Schema, or the entry is skipped;
//! - names are made valid OpenAI function names (`^[a-zA-Z0-9_-]{1,64}$`: each run of other
//!   characters becomes `_`, so BFCL's `math.factorial` is `math_factorial`, and longer
//!   names keep their first 64), the source's spelling kept in `meta.original_name`;
//! - a definition identical to one already kept (same name, description and schemas) is
//!   dropped silently — the same API listed by many queries is one tool — while a different
//!   definition under a taken name gets `_2`, `_3`… in input order, `meta.name_collision`
//!   and a warning;
//! - `source` is the format (`bfcl:{category}` for BFCL; toolflow lines keep theirs) and
//!   `meta.origin` the file path as given (toolflow lines that already have one keep it, so
//!   re-importing a tool set does not erase where it came from).
//!
//! Problems never stop the import unless [`ImportOptions::strict`] is set: each skipped
//! file or entry becomes a [`Diagnostic`] naming the file, the line (JSON Lines) and a JSON
//! pointer. Nothing is printed; warnings go through `tracing`, one per file and kind.

#![warn(missing_docs)]

mod detect;
mod document;
mod format;
mod formats;
mod importer;
mod names;
mod report;
mod schema;

pub use format::Format;
pub use importer::{ImportError, ImportOptions, ImportReport, Importer, import_paths};
pub use report::{Diagnostic, FileSummary, Issue, IssueGroup, Location, Summary};
