//! Tool names: what chat APIs accept, and the conventions of the sources.

/// The longest function name the OpenAI API accepts.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// Makes `name` a valid OpenAI function name (`^[a-zA-Z0-9_-]{1,64}$`).
///
/// Every run of other characters becomes one `_` (so BFCL's `math.factorial` becomes
/// `math_factorial`), and names longer than 64 characters keep their first 64. The importer
/// keeps the source's spelling in `meta.original_name` whenever this changes it. An empty
/// result means the source gave no usable name (one without a letter or digit).
pub(crate) fn function_name(name: &str) -> String {
    if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
        return String::new();
    }
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out.truncate(MAX_NAME_LEN);
    out
}

/// `name` with the suffix `_{n}`, cut so that the whole stays within 64 characters.
pub(crate) fn with_suffix(name: &str, n: usize) -> String {
    let suffix = format!("_{n}");
    let keep = name.len().min(MAX_NAME_LEN - suffix.len());
    format!("{}{suffix}", &name[..keep])
}

/// `GET /albums/{id}/tracks` → `get_albums_id_tracks`: lowercase words joined by `_`, for
/// OpenAPI operations without an `operationId`.
pub(crate) fn snake_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<char> = None;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            let starts_word = c.is_ascii_uppercase()
                && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
            if starts_word && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
        previous = Some(c);
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// ToolBench's `standardize`: characters other than ASCII letters, digits, `_`, `^` and CJK
/// ideographs become `_`, runs of `_` collapse, the result is lowercased and trimmed of `_`,
/// and a leading digit gets a `get_` prefix.
pub(crate) fn toolbench_standardize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let kept = c.is_ascii_alphanumeric()
            || c == '_'
            || c == '^'
            || ('\u{4e00}'..='\u{9fa5}').contains(&c);
        let c = if kept { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.to_lowercase();
    let out = out.trim_matches('_');
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("get_{out}")
    } else {
        out.to_string()
    }
}

/// ToolBench's `change_name`: words that are keywords in Python get an `is_` prefix.
pub(crate) fn toolbench_change_name(name: String) -> String {
    const RESERVED: [&str; 7] = ["from", "class", "return", "false", "true", "id", "and"];
    if RESERVED.contains(&name.as_str()) {
        format!("is_{name}")
    } else {
        name
    }
}

/// ToolBench's function name: `{api}_for_{tool}`, standardized, keeping the *last* 64
/// characters as ToolBench does.
pub(crate) fn toolbench_function_name(api_name: &str, tool_name: &str) -> String {
    let api = toolbench_change_name(toolbench_standardize(api_name));
    let full = format!("{api}_for_{}", toolbench_standardize(tool_name));
    let chars = full.chars().count();
    full.chars()
        .skip(chars.saturating_sub(MAX_NAME_LEN))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_made_valid() {
        assert_eq!(function_name("math.factorial"), "math_factorial");
        assert_eq!(function_name("a .. b"), "a_b");
        assert_eq!(function_name("get-an-album"), "get-an-album");
        assert_eq!(function_name(&"x".repeat(80)).len(), 64);
        assert_eq!(function_name("  "), "");
        assert_eq!(function_name("..."), "");
        assert_eq!(with_suffix(&"y".repeat(64), 12).len(), 64);
        assert!(with_suffix(&"y".repeat(64), 12).ends_with("y_12"));
    }

    #[test]
    fn snake_case_of_method_and_path() {
        assert_eq!(
            snake_case("GET /albums/{id}/tracks"),
            "get_albums_id_tracks"
        );
        assert_eq!(
            snake_case("post /userAccounts/{accountId}"),
            "post_user_accounts_account_id"
        );
    }

    #[test]
    fn toolbench_names_follow_toolbench() {
        assert_eq!(
            toolbench_function_name("Songkick concert", "TheClique"),
            "songkick_concert_for_theclique"
        );
        assert_eq!(
            toolbench_change_name(toolbench_standardize("from")),
            "is_from"
        );
        assert_eq!(
            toolbench_function_name(
                "Tomorrow Sure VIP BTTS/ Goal Goal",
                "168predict VIP Football Predictions"
            ),
            "e_vip_btts_goal_goal_for_get_168predict_vip_football_predictions"
        );
    }
}
