//! Names as tokens: camelCase / snake_case / kebab-case split, lowercased, plurals reduced,
//! and the vocabulary that tells a slot's identity from its role (`id`, `name`) and a
//! tool's subject from its verbs (`get`, `search`).

/// The tokens of a name: `originSkyId` → `origin sky id`, `person_ids` → `person id`,
/// `HTTPServerURL` → `http server url`, `GET /search/person` → `get search person`.
pub fn tokens(name: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            flush(&mut current, &mut words);
            continue;
        }
        if let Some(&previous) = i.checked_sub(1).and_then(|p| chars.get(p)) {
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            // A capital after a lower-case letter or a digit starts a word (`skyId`), and so does
            // the last capital of a run followed by a lower-case letter (`HTTPServer`).
            let boundary = c.is_uppercase()
                && (previous.is_lowercase()
                    || previous.is_ascii_digit()
                    || (previous.is_uppercase() && next_lower));
            if boundary {
                flush(&mut current, &mut words);
            }
        }
        current.extend(c.to_lowercase());
    }
    flush(&mut current, &mut words);
    words
}

fn flush(current: &mut String, words: &mut Vec<String>) {
    if !current.is_empty() {
        words.push(singular(current));
        current.clear();
    }
}

/// A plural's singular by the common English endings; short words and `-ss`, `-us`, `-is`
/// endings are kept (`address`, `status`, `analysis`).
pub fn singular(word: &str) -> String {
    if word.len() <= 2 || !word.is_ascii() || word.as_bytes()[0].is_ascii_digit() {
        return word.to_string();
    }
    if let Some(stem) = word.strip_suffix("ies").filter(|stem| stem.len() > 1) {
        return format!("{stem}y");
    }
    for ending in ["sses", "xes", "ches", "shes"] {
        if let Some(stem) = word.strip_suffix(ending) {
            return format!("{stem}{}", &ending[..ending.len() - 2]);
        }
    }
    if word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return word.to_string();
    }
    word.strip_suffix('s').unwrap_or(word).to_string()
}

/// Tokens that say what role a slot plays but not what it identifies: a field named only
/// with these (`id`, `name`, `code`) takes its owner's or its tool's subject in front.
pub fn is_role_token(token: &str) -> bool {
    matches!(
        token,
        "id" | "uid"
            | "uuid"
            | "guid"
            | "key"
            | "name"
            | "code"
            | "slug"
            | "title"
            | "type"
            | "value"
            | "url"
            | "uri"
            | "link"
            | "number"
            | "no"
            | "num"
            | "token"
            | "handle"
            | "ref"
            | "symbol"
            | "label"
    )
}

/// Names of containers that wrap results without saying what they hold (`results[].id` of
/// `/search/person` is a person's id, not a result's).
pub fn is_container_token(token: &str) -> bool {
    matches!(
        token,
        "result"
            | "data"
            | "item"
            | "response"
            | "list"
            | "record"
            | "hit"
            | "entry"
            | "content"
            | "payload"
            | "output"
            | "body"
            | "detail"
            | "info"
            | "object"
            | "node"
            | "edge"
            | "element"
            | "row"
            | "value"
            | "doc"
            | "document"
            | "match"
            | "page"
            | "collection"
            | "body_json"
    )
}

/// Words of a tool name that are verbs, prepositions or API noise rather than its subject.
pub fn is_tool_noise(token: &str) -> bool {
    is_container_token(token)
        || matches!(
            token,
            "get"
                | "search"
                | "find"
                | "list"
                | "fetch"
                | "retrieve"
                | "lookup"
                | "look"
                | "up"
                | "query"
                | "create"
                | "add"
                | "update"
                | "delete"
                | "remove"
                | "post"
                | "put"
                | "patch"
                | "set"
                | "check"
                | "api"
                | "v1"
                | "v2"
                | "v3"
                | "by"
                | "for"
                | "of"
                | "the"
                | "a"
                | "an"
                | "and"
                | "or"
                | "to"
                | "from"
                | "in"
                | "on"
                | "with"
                | "all"
                | "new"
                | "my"
                | "me"
                | "single"
                | "detail"
                | "specific"
                | "random"
                | "real"
                | "time"
                | "json"
                | "com"
                | "www"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_case_style_and_reduces_plurals() {
        assert_eq!(tokens("originSkyId"), ["origin", "sky", "id"]);
        assert_eq!(tokens("person_ids"), ["person", "id"]);
        assert_eq!(tokens("HTTPServerURL"), ["http", "server", "url"]);
        assert_eq!(tokens("GET /search/person"), ["get", "search", "person"]);
        assert_eq!(
            tokens("Spotify_Scraper_Get_Artist_ID_By_Name"),
            ["spotify", "scraper", "get", "artist", "id", "by", "name"]
        );
        assert_eq!(tokens("categories"), ["category"]);
        assert_eq!(tokens("addresses"), ["address"]);
        assert_eq!(tokens("status"), ["status"]);
        assert_eq!(tokens("v2Results"), ["v2", "result"]);
    }
}
