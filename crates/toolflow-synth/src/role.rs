//! The agents that write a dialogue, each of which may be served by its own model.

use serde::{Deserialize, Serialize};

/// An agent of the synthesis (paper §3.2–3.3), as `[synth] models` and a dialogue's
/// `settings.models` name it.
///
/// The variants are declared in the alphabetical order of their names, so that a map keyed
/// by roles serialises in the same order as one keyed by the names: the run store's key is
/// a hash of the serialised `[synth]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Answers the user, calling tools when it needs them.
    Assistant,
    /// Outlines the dialogue before it is written (paper §3.2).
    Planner,
    /// Simulates each tool call's result.
    Tool,
    /// Writes the user's turns, following the plan.
    User,
}

impl Role {
    /// Every role, in the order the variants sort.
    pub const ALL: [Role; 4] = [Role::Assistant, Role::Planner, Role::Tool, Role::User];

    /// The role's name, as configs, records and the engine's tallies spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Assistant => "assistant",
            Role::Planner => "planner",
            Role::Tool => "tool",
            Role::User => "user",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_sort_and_serialise_as_their_names() {
        let names: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(Role::ALL.is_sorted());
        for role in Role::ALL {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
    }
}
