//! Escaping and number formatting shared by the sections.

use serde_json::Value;

/// Text made safe for HTML content and for double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that can sit inside a `<script>` element: `<`, `>` and `&` become `\u` escapes so
/// that no string in it can end the element (`</script>`) or open a comment (`<!--`); the
/// line separators JavaScript once treated as newlines are escaped too. `JSON.parse` reads it
/// back unchanged.
pub fn json_for_script(value: &Value) -> String {
    let json = value.to_string();
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// An integer with thousands separators: `102,536`.
pub fn integer(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<String> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|group| group.iter().map(|&b| char::from(b)).collect())
        .collect();
    groups.join(",")
}

/// A JSON number as a table shows it: integers with separators, fractions to 3 places.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        if value >= 0.0 {
            integer(value as u64)
        } else {
            format!("-{}", integer((-value) as u64))
        }
    } else {
        format!("{value:.3}")
    }
}

/// A share in `[0, 1]` as a percentage: `45.3 %`.
pub fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// A paragraph standing in for a section whose input is absent.
pub(crate) fn absent_note(text: &str) -> String {
    format!("<p class=\"absent\">{}</p>\n", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"</script><img src=x onerror="alert('1')"> & co"#),
            "&lt;/script&gt;&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt; &amp; co"
        );
    }

    #[test]
    fn script_json_cannot_close_the_script_and_reads_back() {
        let value = json!({"text": "</script><!-- & \u{2028}"});
        let embedded = json_for_script(&value);
        assert!(!embedded.contains('<') && !embedded.contains('>') && !embedded.contains('&'));
        assert!(!embedded.contains('\u{2028}'));
        assert_eq!(serde_json::from_str::<Value>(&embedded).unwrap(), value);
    }

    #[test]
    fn numbers_read_like_a_table() {
        assert_eq!(integer(0), "0");
        assert_eq!(integer(999), "999");
        assert_eq!(integer(102_536), "102,536");
        assert_eq!(integer(1_000_000), "1,000,000");
        assert_eq!(number(4378.0), "4,378");
        assert_eq!(number(0.60547), "0.605");
        assert_eq!(percent(0.45296), "45.3 %");
    }
}
