//! The ToolFlow tool graph (paper §3.1): building it from tools and an embedding function
//! with an exact blocked similarity join ([`build_graph`]), its statistics ([`GraphStats`]),
//! GraphML output ([`write_graphml`]), and tool-subset sampling ([`sample_subsets`]: the
//! random walk of Algorithm 1 made total, or the uniform baseline).
//!
//! The crate takes an embedding *function*, not a model, so it does not depend on the
//! embedding crate and its tests run on fake embedders.

pub mod build;
pub mod graphml;
pub mod join;
pub mod sample;
pub mod stats;

pub use build::{BuildOptions, BuildReport, GraphError, SlotStrings, build_graph};
pub use graphml::write_graphml;
pub use sample::{SampledNodes, Sampler, sample_subsets, subset_seed};
pub use stats::GraphStats;
