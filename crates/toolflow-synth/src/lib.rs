//! Dialogue synthesis (paper §3.2–3.3): the prompts of the planner and of the user,
//! assistant and tool agents, the parsing of what they answer, and the [`Synthesizer`] that
//! drives them turn by turn into a [`toolflow_core::Dialogue`].

#![warn(missing_docs)]

pub mod config;
pub mod context;
pub mod enrich;
pub mod execute;
pub mod judge;
pub mod plan;
pub mod prompts;
pub mod role;
#[cfg(feature = "standin")]
pub mod scripted;
mod transcript;
mod writer;

pub use config::{SynthConfig, SynthConfigError, ToolChoicePolicy};
pub use execute::{Executed, ToolExecutor, ToolMode, ToolSession};
pub use plan::{PlanError, parse_plan, plan_schema};
pub use prompts::{PromptError, PromptKind, Prompts};
pub use role::Role;
pub use writer::{SynthError, Synthesizer};
