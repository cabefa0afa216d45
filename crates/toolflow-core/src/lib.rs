//! The records that flow between toolflow's pipeline stages.
//!
//! Every stage reads and writes these types, and nothing else, so that stages stay
//! independent: `tools.jsonl` ([`Tool`]) → `graph.json` ([`ToolGraph`]) →
//! `subsets.jsonl` ([`Subset`]) → `dialogues.jsonl` ([`Dialogue`]). Each record has a
//! JSON Schema ([`schemas`]) published under `schemas/` in the repository.

#![warn(missing_docs)]

pub mod dialogue;
pub mod graph;
pub mod jsonl;
pub mod links;
pub mod metrics;
pub mod names;
pub mod overlap;
pub mod rejection;
pub mod run_state;
pub mod subset;
pub mod tool;

pub use dialogue::{
    AssistantTurn, CHECKED, Dialogue, DialogueSettings, Generation, Outcome, OutcomeStatus, Plan,
    PlanStep, SIMULATED, StepKind, SystemContext, ToolCall, ToolTurn, Turn, Usage, UserTurn,
};
pub use graph::{
    Edge, EdgeKind, Evidence, GraphMeta, GraphMethod, LinkRule, Signals, SlotLink, ToolGraph,
};
pub use links::DialogueLink;
pub use metrics::MetricsDocument;
pub use rejection::{Level, Reason, Rejection, Rule};
pub use run_state::{RunState, StageRecord};
pub use subset::{SamplingStrategy, Subset, SubsetLink};
pub use tool::Tool;

/// A stable, content-derived hex digest (BLAKE3, first 16 bytes) used for ids and cache keys.
pub fn content_hash(parts: &[&[u8]]) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        // Length-prefix each part so that ("ab","c") and ("a","bc") hash differently.
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_hex()[..32].to_string()
}

/// Where models, embeddings and responses are cached when no `--cache-dir` is given:
/// `$TOOLFLOW_CACHE_DIR`, else `$XDG_CACHE_HOME/toolflow`, else `~/.cache/toolflow`.
pub fn default_cache_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some(dir) = std::env::var_os("TOOLFLOW_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("toolflow")
}

/// The JSON Schema of every published record, by file stem.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    fn of<T: schemars::JsonSchema>() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(T)).expect("a schema serialises")
    }
    vec![
        ("tool", of::<Tool>()),
        ("graph", of::<ToolGraph>()),
        ("subset", of::<Subset>()),
        ("dialogue", of::<Dialogue>()),
        ("run-state", of::<RunState>()),
        ("metrics", of::<MetricsDocument>()),
        ("rejected", of::<Rejection>()),
        ("overlap", of::<overlap::OverlapDocument>()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_separates_parts() {
        assert_ne!(content_hash(&[b"ab", b"c"]), content_hash(&[b"a", b"bc"]));
        assert_eq!(content_hash(&[b"x"]), content_hash(&[b"x"]));
        assert_eq!(content_hash(&[b"x"]).len(), 32);
    }

    /// The committed files under `schemas/` must match the types; regenerate them with
    /// `toolflow schema --write schemas/` when this fails.
    #[test]
    fn published_schemas_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        for (stem, schema) in schemas() {
            let path = dir.join(format!("{stem}.schema.json"));
            let on_disk = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let expected = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            assert_eq!(on_disk, expected, "{} is stale", path.display());
        }
    }
}
