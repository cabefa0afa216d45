//! The Python conventions chat templates and trainers expect of the values they are given:
//! JSON as `json.dumps` writes it, dates as Llama's templates print them.

use serde_json::Value;

/// JSON as Python's `json.dumps` writes it by default: `", "` and `": "` separators,
/// non-ASCII characters kept.
pub fn python_json(value: &Value) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    serde::Serialize::serialize(value, &mut serializer).expect("JSON values serialise");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separator(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separator(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `json.dumps`' item separator, before every item but the first.
fn separator<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

/// `2024-05-14T09:30:00` → `14 May 2024`; None when the text does not start with a date.
pub fn date_string(time: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let date = time.get(..10)?;
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    let month: usize = month.parse().ok()?;
    let day: u32 = day.parse().ok()?;
    let name = MONTHS.get(month.checked_sub(1)?)?;
    (year.len() == 4 && year.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("{day:02} {name} {year}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_matches_json_dumps() {
        let value = serde_json::json!({"a": [1, 2], "b": {"c": "l'été <b>"}});
        assert_eq!(
            python_json(&value),
            r#"{"a": [1, 2], "b": {"c": "l'été <b>"}}"#
        );
    }

    #[test]
    fn dates_for_llama_templates() {
        assert_eq!(
            date_string("2024-05-04T09:30:00").as_deref(),
            Some("04 May 2024")
        );
        assert_eq!(date_string("soon"), None);
        assert_eq!(date_string(""), None);
    }
}
