//! What the quality rules read in a turn's text: a tool call written out as text, template
//! residue, degenerate repetition, a copy of another turn, and whether an answer shares a
//! value with the results it follows. Each function returns what it found, for the reason's
//! detail.

use serde_json::Value;

use crate::words;

/// Markers of a tool call in the formats chat templates write them in.
const CALL_MARKERS: [&str; 7] = [
    "<tool_call>",
    "</tool_call>",
    "[tool_calls]",
    "<|python_tag|>",
    "<function=",
    "<functioncall>",
    "<|tool_call|>",
];

/// Why `text` reads as a tool call that should have been structured, if it does: a chat
/// template's call marker, JSON (or a Python dict) with a name and arguments,
/// `functions.x(...)`, or `tool(...)` for one of `tools`.
pub(super) fn call_in_text(text: &str, tools: &[&str]) -> Option<String> {
    let lowered = text.to_lowercase();
    if let Some(marker) = CALL_MARKERS.iter().find(|m| lowered.contains(**m)) {
        return Some(format!("the text holds the call marker `{marker}`"));
    }
    if has_key(&lowered, "name")
        && ["arguments", "parameters", "args"]
            .iter()
            .any(|key| has_key(&lowered, key))
    {
        return Some("the text holds a JSON call with a name and arguments".into());
    }
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices("functions.") {
        let name_end = identifier_end(bytes, at + "functions.".len());
        if name_end > at + "functions.".len() && next_non_space(bytes, name_end) == Some(b'(') {
            return Some(format!("the text calls `{}`", &text[at..name_end]));
        }
    }
    for tool in tools.iter().filter(|tool| !tool.is_empty()) {
        for (at, _) in text.match_indices(*tool) {
            let starts_word = at == 0 || !is_identifier_byte(bytes[at - 1]);
            let end = at + tool.len();
            let ends_word = end == bytes.len() || !is_identifier_byte(bytes[end]);
            if starts_word && ends_word && next_non_space(bytes, end) == Some(b'(') {
                return Some(format!("the text calls the tool `{tool}(...)` in code"));
            }
        }
    }
    None
}

/// Whether `text` (lowercased) has `"key"` or `'key'` followed by a colon.
fn has_key(text: &str, key: &str) -> bool {
    ['"', '\''].iter().any(|quote| {
        let quoted = format!("{quote}{key}{quote}");
        text.match_indices(&quoted)
            .any(|(at, _)| next_non_space(text.as_bytes(), at + quoted.len()) == Some(b':'))
    })
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn identifier_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && (is_identifier_byte(bytes[at]) || bytes[at] == b'.') {
        at += 1;
    }
    at
}

fn next_non_space(bytes: &[u8], mut at: usize) -> Option<u8> {
    while at < bytes.len() && bytes[at].is_ascii_whitespace() {
        at += 1;
    }
    bytes.get(at).copied()
}

/// What a template slot is called: words that stand for a value someone was to fill in.
const SLOT_WORDS: [&str; 40] = [
    "name",
    "first name",
    "last name",
    "full name",
    "user name",
    "username",
    "email",
    "email address",
    "e-mail",
    "address",
    "phone",
    "phone number",
    "date",
    "time",
    "date and time",
    "location",
    "city",
    "country",
    "number",
    "amount",
    "price",
    "company",
    "company name",
    "recipient",
    "recipient name",
    "sender",
    "product",
    "product name",
    "destination",
    "value",
    "placeholder",
    "id",
    "order id",
    "zip code",
    "url",
    "link",
    "message",
    "subject",
    "title",
    "description",
];

/// Words that open an instruction to whoever fills the template in.
const SLOT_OPENERS: [&str; 9] = [
    "your",
    "insert",
    "enter",
    "add",
    "specify",
    "put",
    "type",
    "user's",
    "recipient's",
];

/// The first template residue in `text`, if any: `{{var}}`, lorem ipsum, a `TODO`, a
/// `[slot]` bracket or an instruction in angle brackets (also one that opens the text and is
/// cut before its bracket closes). Brackets that hold data (`[1]`,
/// `[Draft]`, a markdown link's `[text](url)`, HTML tags) are not residue.
pub(super) fn placeholder(text: &str) -> Option<String> {
    if let Some(at) = text.find("{{") {
        if let Some(end) = text[at..].find("}}").filter(|end| *end <= 60) {
            return Some(text[at..at + end + 2].to_string());
        }
    }
    let lowered = text.to_lowercase();
    if lowered.contains("lorem ipsum") {
        return Some("lorem ipsum".into());
    }
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices("TODO") {
        let before = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let after = bytes
            .get(at + 4)
            .is_none_or(|byte| !byte.is_ascii_alphanumeric());
        if before && after {
            return Some("TODO".into());
        }
    }
    for (open, close) in [('[', ']'), ('<', '>')] {
        for (at, _) in text.match_indices(open) {
            let rest = &text[at + 1..];
            let Some(end) = rest.find([close, open, '\n']).filter(|end| *end <= 80) else {
                // An instruction cut before its bracket closes, running to the end of the
                // text (`{"error": "<a short, realistic error message"}`).
                let opens_a_value = text[..at].trim_end().is_empty();
                let inner = rest.trim_end_matches(['.', '"', '\'']);
                if opens_a_value
                    && !rest.contains([close, open, '\n'])
                    && rest.len() <= 80
                    && is_slot(inner, open == '<')
                {
                    return Some(format!("{open}{inner}"));
                }
                continue;
            };
            if !rest[end..].starts_with(close) {
                continue;
            }
            let inner = &rest[..end];
            let markdown_link = open == '[' && rest[end + 1..].starts_with('(');
            if !markdown_link && is_slot(inner, open == '<') {
                return Some(format!("{open}{inner}{close}"));
            }
        }
    }
    None
}

/// Whether the text inside brackets reads as a slot to fill: in square brackets a slot word
/// (`[name]`) or lowercase snake_case (`[email_address]`); an instruction (`your name`,
/// `insert date`); in angle brackets, several words (`<a short error message>`).
fn is_slot(inner: &str, angle: bool) -> bool {
    // A space inside the bracket's edge reads as arithmetic (`x < 5 and y > 3`), not a slot.
    if inner.is_empty()
        || inner.starts_with(char::is_whitespace)
        || inner.ends_with(char::is_whitespace)
        || !inner.chars().next().is_some_and(char::is_alphabetic)
        || !inner
            .chars()
            .all(|c| c.is_alphanumeric() || " _-',.".contains(c))
    {
        return false;
    }
    let normal = inner.to_lowercase().replace('_', " ");
    let words: Vec<&str> = normal.split_whitespace().collect();
    if words.len() > 8 {
        return false;
    }
    // In angle brackets snake_case is an XML tag (`<tool_call>`).
    let snake_case = !angle
        && inner.contains('_')
        && !inner.contains(' ')
        && inner
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    // A lone word in angle brackets is an HTML or XML tag (`<title>`), not a slot.
    (!angle && SLOT_WORDS.contains(&normal.as_str()))
        || snake_case
        || (words.len() >= 2 && SLOT_OPENERS.contains(&words[0]))
        || (angle && inner.split_whitespace().nth(1).is_some())
}

/// What a user says only when out of the user's part: the assistant's offers of help, and
/// the words of the instructions a user agent is given (the outline's completed steps, the
/// user named in the third person). Each is matched as whole words, case aside; none occurs
/// in a user turn of SGD's 200-dialogue test sample. Words a real request may hold (`JSON`,
/// `the conversation with Bob`, `the outline of my essay`) are not listed, though small
/// models echo them too.
const OUT_OF_ROLE: [&str; 14] = [
    "here to help you",
    "how can i help you",
    "how may i help you",
    "how can i assist you",
    "how may i assist you",
    "i can help you with",
    "happy to help you",
    "completed steps",
    "the user's",
    "the user wants",
    "the user asks",
    "the user requested",
    "the user will",
    "the user needs",
];

/// The first words of [`OUT_OF_ROLE`] in a user turn's `text`.
pub(super) fn out_of_role(text: &str) -> Option<&'static str> {
    let lowered = text.to_lowercase().replace('’', "'");
    OUT_OF_ROLE.into_iter().find(|phrase| {
        lowered.match_indices(phrase).any(|(at, _)| {
            let before = lowered[..at].chars().next_back();
            let after = lowered[at + phrase.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

/// Strings shorter than this, in words, may rightly be repeated word for word (`Room not
/// available.`); longer ones are a message the answer should put in its own words.
pub(super) const MIN_COPY_WORDS: usize = 4;

/// The strings of at least [`MIN_COPY_WORDS`] words inside `value`.
pub(super) fn long_strings(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) if s.split_whitespace().nth(MIN_COPY_WORDS - 1).is_some() => {
                found.push(s.clone());
            }
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    found
}

/// Whether two texts are the same words, case and punctuation aside.
pub(super) fn same_words(a: &str, b: &str) -> bool {
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let a = words(a);
    !a.is_empty() && a == words(b)
}

/// The share of a turn's word trigrams that repeat an earlier trigram of the same turn, at or
/// above which the turn is degenerate.
pub(super) const REPEATED_TRIGRAM_SHARE: f64 = 0.5;
/// The share of a turn's words one word may take, at or above which the turn is degenerate.
pub(super) const ONE_WORD_SHARE: f64 = 0.5;
/// The share of a turn's trigrams found in an earlier turn of the other role at or above
/// which the turn is a copy of it.
pub(super) const COPY_SHARE: f64 = 0.7;
/// Turns shorter than this, in words, are too short to judge repetition or copying on.
pub(super) const MIN_WORDS: usize = 8;

/// A turn's words as hashes (`words-v1` words, FNV-1a), enough to count repeats: this runs
/// on every turn, so it allocates no string per word.
pub(super) fn word_hashes(text: &str) -> Vec<u64> {
    let mut hashes = Vec::new();
    words::for_each_word(text, |word| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in word.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        hashes.push(hash);
    });
    hashes
}

/// The turn's word trigrams, hashed, in order.
fn trigrams(words: &[u64]) -> Vec<u64> {
    words
        .windows(3)
        .map(|w| {
            w[0].rotate_left(42) ^ w[1].rotate_left(21) ^ w[2].wrapping_mul(0x9e37_79b9_7f4a_7c15)
        })
        .collect()
}

/// Why a turn of `words` (see [`word_hashes`]) is dominated by repetition, if it is.
pub(super) fn repetition(words: &[u64]) -> Option<String> {
    if words.len() < MIN_WORDS {
        return None;
    }
    let mut sorted = words.to_vec();
    sorted.sort_unstable();
    let most = sorted
        .chunk_by(|a, b| a == b)
        .map(<[u64]>::len)
        .max()
        .unwrap_or(0);
    if most as f64 >= ONE_WORD_SHARE * words.len() as f64 {
        return Some(format!("one word is {most} of its {} words", words.len()));
    }
    let mut grams = trigrams(words);
    let total = grams.len();
    grams.sort_unstable();
    grams.dedup();
    let repeated = total - grams.len();
    (repeated as f64 >= REPEATED_TRIGRAM_SHARE * total as f64)
        .then(|| format!("{repeated} of its {total} word trigrams repeat an earlier one"))
}

/// The distinct word trigrams of a turn, sorted, for copy detection.
pub(super) fn trigram_set(words: &[u64]) -> Vec<u64> {
    let mut grams = trigrams(words);
    grams.sort_unstable();
    grams.dedup();
    grams
}

/// The share of `turn`'s trigrams that `earlier` holds (both from [`trigram_set`]).
pub(super) fn copied_share(turn: &[u64], earlier: &[u64]) -> f64 {
    if turn.is_empty() {
        return 0.0;
    }
    let shared = turn
        .iter()
        .filter(|gram| earlier.binary_search(gram).is_ok())
        .count();
    shared as f64 / turn.len() as f64
}

/// The values of tool results an answer can repeat: numbers (those written in strings too,
/// so `2024-05-14` holds 14), strings of 3 to 40 characters, and the long words of longer
/// strings (prose is paraphrased, not quoted).
#[derive(Default)]
pub(super) struct ResultValues {
    numbers: Vec<f64>,
    strings: Vec<String>,
}

/// Strings longer than this, in characters, count by their long words.
const PROSE_CHARS: usize = 40;
/// The shortest word of a long string that counts as a value.
const PROSE_WORD_CHARS: usize = 5;

impl ResultValues {
    pub(super) fn add(&mut self, value: &Value) {
        match value {
            Value::Number(n) => self.numbers.extend(n.as_f64()),
            Value::String(s) => {
                let s = s.trim().to_lowercase();
                self.numbers.extend(super::numbers_in(&s));
                if s.chars().count() > PROSE_CHARS {
                    for word in words::words(&s) {
                        if word.chars().count() >= PROSE_WORD_CHARS
                            && word.chars().all(char::is_alphabetic)
                        {
                            self.strings.push(word);
                        }
                    }
                } else if s.chars().count() >= 3 {
                    self.strings.push(s);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.add(item)),
            Value::Object(map) => map.values().for_each(|item| self.add(item)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.numbers.is_empty() && self.strings.is_empty()
    }

    /// Whether `answer` repeats any of the values.
    pub(super) fn shared_with(&self, answer: &str) -> bool {
        let lowered = answer.to_lowercase();
        if self.strings.iter().any(|s| lowered.contains(s.as_str())) {
            return true;
        }
        let numbers = super::numbers_in(answer);
        self.numbers.iter().any(|x| {
            numbers
                .iter()
                .any(|y| (x - y).abs() <= 1e-9 * x.abs().max(1.0))
        })
    }
}

/// Why an assistant's text is a JSON value written for a machine, if it is: the whole text
/// (a fenced block's body included) parses as a JSON object or array.
pub(super) fn json_answer(text: &str) -> Option<String> {
    let body = text.trim();
    let body = body
        .strip_prefix("```json")
        .or_else(|| body.strip_prefix("```"))
        .and_then(|inner| inner.trim_end().strip_suffix("```"))
        .unwrap_or(body)
        .trim();
    if !(body.starts_with('{') || body.starts_with('[')) {
        return None;
    }
    let value: Value = serde_json::from_str(body).ok()?;
    let what = if value.is_object() {
        "a JSON object"
    } else {
        "a JSON array"
    };
    Some(format!("the whole text is {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_written_as_text_are_found_in_every_form() {
        let tools = ["get_weather"];
        for text in [
            r#"{"name": "get_weather", "arguments": {"city": "Lyon"}}"#,
            r#"Sure! {"name":"get_weather","parameters":{"city":"Lyon"}}"#,
            "<tool_call>\n{\"city\": \"Lyon\"}\n</tool_call>",
            "[TOOL_CALLS] [{\"city\": \"Lyon\"}]",
            "functions.get_weather({\"city\": \"Lyon\"})",
            "```python\nget_weather(city=\"Lyon\")\n```",
            "{'name': 'get_weather', 'arguments': {'city': 'Lyon'}}",
        ] {
            assert!(call_in_text(text, &tools).is_some(), "{text}");
        }
        for text in [
            "I checked the weather in Lyon: 21 degrees.",
            "The get_weather tool says it is sunny.",
            "Your name is on the list (get_weathers(x) is not a tool).",
            r#"The event "name": Jazz night."#,
        ] {
            assert_eq!(call_in_text(text, &tools), None, "{text}");
        }
    }

    #[test]
    fn template_residue_is_found_and_data_in_brackets_is_not() {
        for (text, found) in [
            ("Sending Mail to [name] at [email_address]", "[name]"),
            ("Hello {{user}}, welcome", "{{user}}"),
            (
                r#"{"error": "<a short, realistic error message>"}"#,
                "<a short, realistic error message>",
            ),
            ("Lorem ipsum dolor sit amet", "lorem ipsum"),
            ("TODO: fill in the answer", "TODO"),
            ("Regards, [Your Name]", "[Your Name]"),
            ("Ship to <insert address here>", "<insert address here>"),
            ("Order [order_id] is ready", "[order_id]"),
            (
                "<a short, realistic error message",
                "<a short, realistic error message",
            ),
        ] {
            assert_eq!(placeholder(text).as_deref(), Some(found), "{text}");
        }
        for text in [
            "See [1] and [2], and the [Draft] Q3 report.",
            "Read the [docs](https://docs.example.org) first.",
            "The list is [3, 4, 5] and x < 5 and y > 3.",
            "Use <b>bold</b> or <a href=\"x\">a link</a>, <title>Home</title>.",
            "Item [x] done; todo list has 3 items; TODOS none.",
            r#"["Lyon", "Paris"]"#,
            "{\"results\": [{\"name\": \"Ana\"}]}",
            "Call me at 555-0100 [mobile].",
            "<3 thanks so much",
            "if a <b then c",
            "Prices under <50 dollars",
        ] {
            assert_eq!(placeholder(text), None, "{text}");
        }
    }

    #[test]
    fn a_user_out_of_role_is_found_and_a_plain_request_is_not() {
        for (text, found) in [
            (
                "Hello, I am here to help you find the perfect product.",
                "here to help you",
            ),
            (
                "Your completed steps are done; the current step is 2.",
                "completed steps",
            ),
            (
                "The user requested a meeting in Nairobi.",
                "the user requested",
            ),
            ("The user’s calendar has events.", "the user's"),
        ] {
            assert_eq!(out_of_role(text), Some(found), "{text}");
        }
        for text in [
            "Can you help me book a table for two?",
            "Can you tell me the user rating for this place?",
            "Add a task for my step class, then chat with Ana about jsonnet.",
            "What's the assistant manager's name at the store?",
            "Export the conversation with Bob as JSON, then show the outline.",
            "Tell me the users' scores and the user ratings.",
        ] {
            assert_eq!(out_of_role(text), None, "{text}");
        }
    }

    #[test]
    fn repetition_and_copies() {
        let loop_text =
            word_hashes("I can help with that. I can help with that. I can help with that.");
        assert!(repetition(&loop_text).is_some());
        assert!(repetition(&word_hashes("no no no no no no no no no")).is_some());
        let natural = word_hashes(
            "The forecast for Lyon shows sun on Tuesday, light rain on Wednesday and a cooler Thursday with wind.",
        );
        assert_eq!(repetition(&natural), None);
        let set = |text: &str| trigram_set(&word_hashes(text));
        let asked = set("Can you find me an Italian restaurant in San Jose for tonight?");
        let echoed = set("can you find me an ITALIAN restaurant in San Jose for tonight");
        let answered = set("I found Pasta Nostra, an Italian restaurant in San Jose.");
        assert!(copied_share(&echoed, &asked) >= COPY_SHARE);
        assert!(copied_share(&answered, &asked) < COPY_SHARE);
        // The embedded model's echo, pronoun swapped: 7 of its 9 trigrams.
        let asked = set("I'm on a meeting today. What's the next task?");
        let echoed = set("You're on a meeting today. What's the next task?");
        assert!(copied_share(&echoed, &asked) >= COPY_SHARE);
    }

    #[test]
    fn answers_share_values_with_results() {
        let mut values = ResultValues::default();
        values.add(
            &serde_json::json!({"city": "Lyon", "temp": 21.5, "date": "2024-05-14",
            "summary": "Mostly sunny with a gentle breeze from the northwest in the afternoon"}),
        );
        assert!(values.shared_with("It will be 21.5 degrees."));
        assert!(values.shared_with("In LYON it stays dry."));
        assert!(values.shared_with("On May 14 it is dry."));
        assert!(values.shared_with("Expect a breeze later."));
        assert!(!values.shared_with("I could not find anything, sorry."));
        assert!(ResultValues::default().is_empty());
    }

    #[test]
    fn json_answers() {
        assert!(json_answer(r#"{"error": "Service unavailable"}"#).is_some());
        assert!(json_answer("```json\n[1, 2]\n```").is_some());
        assert_eq!(json_answer("The result is {\"a\": 1}."), None);
        assert_eq!(json_answer("{not json at all}"), None);
    }
}
