//! The word tokenizer behind every count and diversity figure: `words-v1`.
//!
//! A word is a maximal run of alphanumeric characters (Unicode `char::is_alphanumeric`),
//! lowercased (Unicode `to_lowercase`). Everything else — spaces, punctuation, apostrophes,
//! JSON syntax — separates words and is not itself counted: `"Don't BOOK it!"` is
//! `don`, `t`, `book`, `it`. It is deliberately simple and model-independent so that figures
//! compare across runs and datasets; it is not a subword tokenizer, so its token counts are
//! lower than a BPE model's for the same text.

/// The name metrics files record for this tokenizer.
pub const TOKENIZER: &str = "words-v1";

/// A one-line description recorded next to the name in metrics files.
pub const TOKENIZER_RULE: &str =
    "maximal runs of Unicode alphanumeric characters, lowercased; punctuation and spaces dropped";

/// Calls `each` with every word of `text`, lowercased, in order.
pub fn for_each_word(text: &str, mut each: impl FnMut(&str)) {
    let mut lowered = String::new();
    for run in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|run| !run.is_empty())
    {
        if run.chars().any(char::is_uppercase) {
            lowered.clear();
            lowered.extend(run.chars().flat_map(char::to_lowercase));
            each(&lowered);
        } else {
            each(run);
        }
    }
}

/// The words of `text`, lowercased.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(text, |word| out.push(word.to_string()));
    out
}

/// The number of words in `text`.
pub fn count(text: &str) -> u64 {
    let mut n = 0;
    for_each_word(text, |_| n += 1);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_non_alphanumerics_and_lowercases() {
        assert_eq!(words("Don't BOOK it!"), ["don", "t", "book", "it"]);
        assert_eq!(
            words(r#"{"city":"Lyon","n":3}"#),
            ["city", "lyon", "n", "3"]
        );
        assert_eq!(
            words("Ärger über 2024-05-14"),
            ["ärger", "über", "2024", "05", "14"]
        );
        assert_eq!(count("  ... "), 0);
    }
}
