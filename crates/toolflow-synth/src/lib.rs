//! Dialogue synthesis (paper §3.2–3.3): the prompts of the planner and of the user,
//! assistant and tool agents, and the parsing of what they answer.

pub mod enrich;
pub mod plan;
pub mod prompts;

pub use plan::{PlanError, parse_plan, plan_schema};
pub use prompts::{PromptError, PromptKind, Prompts};
