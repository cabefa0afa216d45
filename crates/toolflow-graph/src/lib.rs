//! The ToolFlow tool graph (paper §3.1): building it from tools and an embedding function,
//! by the paper's exact blocked similarity join ([`build_graph`]) or by data flow
//! ([`build_flow_graph`], the default), scoring it against known links ([`quality`]), its statistics ([`GraphStats`]),
//! GraphML output ([`write_graphml`]), and tool-subset sampling ([`sample_subsets`]: the
//! random walk of Algorithm 1 made total, the chain walk along data flow, or the uniform
//! baseline).
//!
//! The crate takes an embedding *function*, not a model, so it does not depend on the
//! embedding crate and its tests run on fake embedders.

#![warn(missing_docs)]

pub mod build;
pub mod flow;
pub mod graphml;
pub mod join;
pub mod names;
pub mod quality;
pub mod sample;
pub mod stats;

pub use build::{BuildOptions, BuildReport, GraphError, SlotStrings, build_graph};
pub use flow::{FlowOptions, SignalSet, build_flow_graph};
pub use graphml::write_graphml;
pub use quality::{CoUsageScore, DataFlowLink, LinkScore, score_co_usage, score_links};
pub use sample::{ForwardStep, SampledNodes, Sampler, forward_steps, sample_subsets, subset_seed};
pub use stats::GraphStats;
