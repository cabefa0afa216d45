//! Rendering dialogues through a model's own chat template (the `chat_template` of its
//! `tokenizer_config.json`) with minijinja, the way `transformers` renders it:
//!
//! - `trim_blocks` and `lstrip_blocks` on, as `transformers` compiles chat templates;
//! - Python string methods (`.strip()`, `.startswith()`, …) from `minijinja-contrib`'s
//!   pycompat;
//! - a `raise_exception(message)` function that fails the render with that message;
//! - `tojson` replaced: `transformers`' version is `json.dumps(x, ensure_ascii=False)`, so
//!   `", "` and `": "` separators, no HTML escaping (minijinja's built-in writes `'` as
//!   `\u0027`), and `indent=N` pretty-printing;
//! - `date_string` set from the dialogue's context date (`%d %b %Y`, as Llama 3.1's template
//!   uses it), so renders do not depend on today's date.
//!
//! The context is `messages` (OpenAI style, tool-call arguments as objects), `tools`
//! (OpenAI function definitions), `add_generation_prompt = false`, `bos_token`, `eos_token`.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Serde};
use minijinja::{Environment, Error, ErrorKind};
use serde_json::Value;
use toolflow_core::Dialogue;

use crate::error::ExportError;
use crate::formats::to_trl;
use crate::python::python_json;

fn tojson(value: minijinja::Value, kwargs: Kwargs) -> Result<minijinja::Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    // Accepted for compatibility; the output always matches transformers' defaults.
    for ignored in ["ensure_ascii", "sort_keys", "separators"] {
        let _: Option<minijinja::Value> = kwargs.get(ignored)?;
    }
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    let text = match indent {
        None => python_json(&json),
        Some(width) => {
            let indent = " ".repeat(width);
            let mut out = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(&json, &mut serializer).expect("JSON values serialise");
            String::from_utf8(out).expect("serde_json writes UTF-8")
        }
    };
    Ok(minijinja::Value::from_safe_string(text))
}

/// A chat template ready to render dialogues.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    source: PathBuf,
}

const TEMPLATE_NAME: &str = "chat";

impl ChatTemplate {
    /// Reads `chat_template` from a `tokenizer_config.json`: a string, or a list of
    /// `{name, template}` of which `tool_use` is preferred, then `default`.
    pub fn from_tokenizer_config(path: &Path) -> Result<Self, ExportError> {
        let fail = |detail: String| ExportError::Template {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ExportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
        let template = match &config["chat_template"] {
            Value::String(template) => template.clone(),
            Value::Array(named) => {
                let find = |wanted: &str| {
                    named
                        .iter()
                        .find(|entry| entry["name"] == wanted)
                        .and_then(|entry| entry["template"].as_str())
                };
                find("tool_use")
                    .or_else(|| find("default"))
                    .ok_or_else(|| {
                        fail("chat_template list has neither `tool_use` nor `default`".into())
                    })?
                    .to_string()
            }
            _ => return Err(fail("no `chat_template` string or list".into())),
        };
        // Special tokens are strings or `{"content": ...}` objects (AddedToken).
        let token = |name: &str| match &config[name] {
            Value::String(token) => token.clone(),
            other => other["content"].as_str().unwrap_or_default().to_string(),
        };
        Self::new(template, token("bos_token"), token("eos_token"), path)
    }

    /// Compiles `template` (Jinja source) with the special tokens it is rendered with;
    /// `source` names it in errors.
    pub fn new(
        template: String,
        bos_token: String,
        eos_token: String,
        source: &Path,
    ) -> Result<Self, ExportError> {
        let fail = |e: Error| ExportError::Template {
            path: source.to_path_buf(),
            detail: format!("{e:#}"),
        };
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(fail)?;
        env.set_syntax(syntax);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<minijinja::Value, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, template)
            .map_err(fail)?;
        Ok(ChatTemplate {
            env,
            bos_token,
            eos_token,
            source: source.to_path_buf(),
        })
    }

    /// The training text of one dialogue.
    pub fn render(&self, dialogue: &Dialogue) -> Result<String, ExportError> {
        let template = self.env.get_template(TEMPLATE_NAME).expect("added in new");
        // Exactly what TRL renders from the TRL row: its messages and tools, and its
        // `chat_template_kwargs` as template variables, nothing else.
        let row = to_trl(dialogue);
        let mut context = serde_json::json!({
            "messages": row["messages"],
            "tools": row["tools"],
            "add_generation_prompt": false,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        });
        if let Some(kwargs) = row["chat_template_kwargs"].as_object() {
            for (name, value) in kwargs {
                context[name.as_str()] = value.clone();
            }
        }
        template
            .render(minijinja::Value::from(Serde(&context)))
            .map_err(|e| ExportError::Dialogue {
                id: dialogue.id.clone(),
                detail: format!("chat template {}: {e:#}", self.source.display()),
            })
    }
}
