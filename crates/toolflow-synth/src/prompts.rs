//! The agents' prompts: templates written for toolflow (each implements every rule of the
//! paper's matching table), rendered with minijinja. Every prompt can be replaced from a
//! file, so users can tune wording without rebuilding.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The prompts toolflow sends, one per agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// Paper Table 14: write the dialogue plan.
    Planner,
    /// Paper Table 16: write the next user turn.
    User,
    /// Paper Table 17: the assistant's system prompt.
    Assistant,
    /// Paper Table 18: simulate tool results.
    Tool,
    /// Paper §3.4: fill a tool's missing descriptions and return schema.
    Enrich,
    /// Paper Table 15: score a dialogue's naturalness, coherence, helpfulness, accuracy.
    Judge,
}

impl PromptKind {
    /// Every prompt, in pipeline order.
    pub const ALL: [PromptKind; 6] = [
        PromptKind::Planner,
        PromptKind::User,
        PromptKind::Assistant,
        PromptKind::Tool,
        PromptKind::Enrich,
        PromptKind::Judge,
    ];

    /// The file stem users name to override this prompt, e.g. `planner.txt`.
    pub fn name(self) -> &'static str {
        match self {
            PromptKind::Planner => "planner",
            PromptKind::User => "user",
            PromptKind::Assistant => "assistant",
            PromptKind::Tool => "tool",
            PromptKind::Enrich => "enrich",
            PromptKind::Judge => "judge",
        }
    }

    fn default_template(self) -> &'static str {
        match self {
            PromptKind::Planner => include_str!("../prompts/planner.txt"),
            PromptKind::User => include_str!("../prompts/user.txt"),
            PromptKind::Assistant => include_str!("../prompts/assistant.txt"),
            PromptKind::Tool => include_str!("../prompts/tool.txt"),
            PromptKind::Enrich => include_str!("../prompts/enrich.txt"),
            PromptKind::Judge => include_str!("../prompts/judge.txt"),
        }
    }
}

/// Why a prompt could not be read, compiled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// An override file could not be read.
    #[error("reading prompt {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A template does not compile, or fails to render.
    #[error("prompt `{name}` ({origin}): {source}")]
    Template {
        /// The prompt's name.
        name: &'static str,
        /// `built-in`, or the file it came from.
        origin: String,
        /// minijinja's error.
        source: minijinja::Error,
    },
}

/// A compiled set of prompts: the built-in ones, with any overrides applied.
#[derive(Clone)]
pub struct Prompts {
    env: minijinja::Environment<'static>,
    origins: Vec<(PromptKind, String)>,
}

impl Prompts {
    /// The built-in prompts.
    pub fn builtin() -> Result<Self, PromptError> {
        Self::with_overrides(std::iter::empty())
    }

    /// The built-in prompts, or with `dir`'s files where one is given ([`Prompts::from_dir`]).
    pub fn load(dir: Option<&Path>) -> Result<Self, PromptError> {
        match dir {
            Some(dir) => Self::from_dir(dir),
            None => Self::builtin(),
        }
    }

    /// The built-in prompts, with `<dir>/<name>.txt` used instead wherever such a file exists.
    pub fn from_dir(dir: &Path) -> Result<Self, PromptError> {
        let overrides = PromptKind::ALL
            .into_iter()
            .map(|kind| (kind, dir.join(format!("{}.txt", kind.name()))))
            .filter(|(_, path)| path.exists());
        Self::with_overrides(overrides)
    }

    /// The built-in prompts, with each given file replacing its kind's template.
    pub fn with_overrides(
        overrides: impl IntoIterator<Item = (PromptKind, PathBuf)>,
    ) -> Result<Self, PromptError> {
        let mut templates: Vec<(PromptKind, String, String)> = PromptKind::ALL
            .into_iter()
            .map(|kind| {
                (
                    kind,
                    kind.default_template().to_string(),
                    "built-in".to_string(),
                )
            })
            .collect();
        for (kind, path) in overrides {
            let text = std::fs::read_to_string(&path).map_err(|source| PromptError::Read {
                path: path.clone(),
                source,
            })?;
            let slot = templates
                .iter_mut()
                .find(|(k, _, _)| *k == kind)
                .expect("every kind has a slot");
            slot.1 = text;
            slot.2 = path.display().to_string();
        }
        let mut env = minijinja::Environment::new();
        // Missing variables are template bugs: fail loudly rather than render blanks.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        let mut origins = Vec::new();
        for (kind, text, origin) in templates {
            env.add_template_owned(kind.name(), text)
                .map_err(|source| PromptError::Template {
                    name: kind.name(),
                    origin: origin.clone(),
                    source,
                })?;
            origins.push((kind, origin));
        }
        Ok(Prompts { env, origins })
    }

    /// Renders `kind` with the given variables.
    pub fn render(
        &self,
        kind: PromptKind,
        variables: impl Serialize,
    ) -> Result<String, PromptError> {
        let template = self
            .env
            .get_template(kind.name())
            .expect("every kind is compiled");
        template
            .render(minijinja::Value::from(minijinja::value::Serde(variables)))
            .map_err(|source| PromptError::Template {
                name: kind.name(),
                origin: self.origin(kind).to_string(),
                source,
            })
    }

    /// A hash of every template's text: runs whose prompts differ must not share results.
    pub fn fingerprint(&self) -> String {
        let sources: Vec<String> = PromptKind::ALL
            .into_iter()
            .map(|kind| {
                self.env
                    .get_template(kind.name())
                    .expect("every kind is compiled")
                    .source()
                    .to_owned()
            })
            .collect();
        toolflow_core::content_hash(
            &sources
                .iter()
                .map(|source| source.as_bytes())
                .collect::<Vec<_>>(),
        )
    }

    /// `built-in`, or the path the prompt was read from.
    pub fn origin(&self, kind: PromptKind) -> &str {
        &self
            .origins
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("every kind has an origin")
            .1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_prompts_render_with_their_variables() {
        let prompts = Prompts::builtin().unwrap();
        let planner = prompts
            .render(
                PromptKind::Planner,
                json!({"tools": "[...]", "target_turns": 5, "structured": false, "links": ""}),
            )
            .unwrap();
        assert!(planner.contains("Write exactly 5 turns"));
        assert!(planner.contains("N. Chitchat:"));
        assert!(!planner.contains("can take what another one returns"));
        let linked = prompts
            .render(
                PromptKind::Planner,
                json!({"tools": "[...]", "target_turns": 5, "structured": false,
                       "links": "- search_person returns `results[].id`, which person_films takes as `person_id`"}),
            )
            .unwrap();
        assert!(linked.contains("can take what another one returns:\n- search_person returns"));
        assert!(linked.contains("names neither a tool, nor a field, nor the value itself"));
        let user = prompts
            .render(
                PromptKind::User,
                json!({"context": "It is 09:00.", "tools": "[]", "plan": "1. Chitchat: hi\n2. Chitchat: bye",
                       "history": "(empty)", "style": "casual", "structured": true,
                       "completed_steps": "1", "current_step": 2, "linked_parameters": ""}),
            )
            .unwrap();
        assert!(user.contains("casual style"));
        assert!(user.contains("\"current_step\""));
        assert!(user.contains("steps done so far: 1; the message you write belongs to step 2."));
        assert!(!user.contains("never state a value yourself"));
        let user_without_plan = prompts
            .render(
                PromptKind::User,
                json!({"context": "", "tools": "[]", "plan": null, "history": "", "style": "terse",
                       "structured": false, "completed_steps": "", "current_step": null,
                       "linked_parameters": "`person_id` of person_films (from what search_person returns)"}),
            )
            .unwrap();
        assert!(user_without_plan.contains("There is no outline"));
        assert!(!user_without_plan.contains("Current step"));
        // Without a plan there is no rule 6 of the outline, so the linked values' rule is 6.
        assert!(user_without_plan.contains(
            "6. Whatever rule 5 says, never state a value yourself that the assistant should take \
             from what a tool returned earlier in the conversation: `person_id` of person_films"
        ));
    }

    #[test]
    fn a_missing_variable_is_an_error_naming_the_prompt() {
        let prompts = Prompts::builtin().unwrap();
        let error = prompts
            .render(PromptKind::Tool, json!({"tools": "[]"}))
            .unwrap_err();
        assert!(
            error.to_string().starts_with("prompt `tool` (built-in)"),
            "{error}"
        );
    }

    #[test]
    fn overrides_replace_only_their_prompt() {
        let dir = std::env::temp_dir().join(format!("toolflow-prompts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("planner.txt"),
            "Plan {{ target_turns }} turns for {{ tools }}.",
        )
        .unwrap();
        let prompts = Prompts::from_dir(&dir).unwrap();
        assert_eq!(
            prompts
                .render(
                    PromptKind::Planner,
                    json!({"tools": "T", "target_turns": 3})
                )
                .unwrap(),
            "Plan 3 turns for T."
        );
        assert!(prompts.origin(PromptKind::Planner).ends_with("planner.txt"));
        assert_eq!(prompts.origin(PromptKind::User), "built-in");
        std::fs::write(dir.join("planner.txt"), "{% if %}").unwrap();
        let error = Prompts::from_dir(&dir).err().unwrap().to_string();
        assert!(error.contains("planner.txt"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
