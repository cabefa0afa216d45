//! The `flow` method: a tool graph of data flow. A `return-param` edge says that a return
//! field of the producer can be passed to a parameter of the consumer; a `param-param` edge
//! that two tools take the same specific slot.
//!
//! # Slots
//!
//! Return fields are read to [`MAX_DEPTH`] levels (`location.name`, `results[].id`), not only
//! the top level, through compositions too (`allOf`, `oneOf`, `anyOf`: an OpenAPI search
//! response is often `allOf: [PagingObject, {items}]`). Every name is split into tokens ([`crate::names::tokens`]) and *qualified*:
//! a name made only of role tokens (`id`, `name`, `code`) takes the subject of its nearest
//! owner in front (`artist.id` → `artist id`) or, when the owners are containers
//! (`results`, `data`, `items`), the subject of its tool: the last word of the OpenAPI path
//! (`meta.path`), else of the tool name, that is not a verb or API noise (`GET /search/person`
//! → `results[].id` reads `person id`; `Spotify_Get_Artist_ID_By_Name` → `artist`).
//! Parameters are qualified the same way by their own tool, except that a path parameter takes
//! the path segment before it (`id` of `GET /artists/{id}/albums` reads `artist id`, not
//! `album id`).
//!
//! # Signals of a return → parameter candidate
//!
//! - `types`: 1 for the same or interchangeable JSON types (integer and number), 0.5 when a
//!   side has none or a scalar can be written as a string, 0 otherwise (a boolean for a
//!   string, an object for a number): 0 rejects the candidate.
//! - `names`: 1 when the qualified names are the same tokens, 0.9 when the parameter's ends
//!   with the field's (`skyId` → `originSkyId`), 0.8 the other way round, else the share of
//!   the parameter's token weight (IDF over the tool set) that the field's tokens cover.
//! - `qualified_cosine`: cosine of the embeddings of the qualified names.
//! - `paper_cosine`: the paper's cosine of `"{name}: {description}"`.
//! - `specificity`: the IDF of the consumer's qualified parameter name over the tool set,
//!   divided by `ln(tools)`: 1 for a slot one tool has, 0 for one every tool has.
//!
//! Candidates come from the name index (same qualified name, or a suffix of it) and from
//! the two embedding joins (above [`FlowOptions::qualified_floor`] and τ); every candidate
//! is then scored on all signals. The score is
//! `max(rule score, embedding score) · (½ + ½·specificity) · types-factor`, where the rule
//! score is `names` when a name rule fired, the embedding score is the mean of the two
//! cosines, and the types factor is 1 or 0.85. A candidate is kept above
//! [`FlowOptions::threshold`], and each parameter keeps its [`FlowOptions::per_parameter`]
//! best producers (a text parameter such as `message` would take anything); among equal
//! scores a search (a tool that takes a free-text query) first, then a tool that needs no
//! identifier, then slot order.
//!
//! # Described sources
//!
//! A parameter whose description says where its value comes from ("Location ID obtained from
//! Tripadvisor's Search Restaurant Location API", "extracted from the Search Airport API")
//! names its producer outright. The words between `from` / `by` / `through` / `via` /
//! `using` and `API` / `endpoint` / `tool` / `function` / `method` / `operation` / `service`
//! (two words at least) are matched against the name and path tokens of every other tool of
//! the consumer's API (its RapidAPI tool or its OpenAPI file, when the import recorded one;
//! every tool otherwise): the tool that holds at least [`SOURCE_CONTAINMENT`] of the
//! phrase's tokens with the best Jaccard overlap (a tie names nobody) becomes a producer with
//! rule `described-source` and score
//! [`DESCRIBED_SOURCE_SCORE`], whatever the names and the slot's specificity say. The field
//! is the producer's field that shares most of the parameter's name tokens, then has the best
//! qualified cosine; an object without declared fields counts (the value sits inside it).
//! When no field shares a token, the link starts at the whole result (an empty path).
//!
//! # Parameter–parameter edges
//!
//! Two tools joined by the same qualified parameter name, or parameters whose paper cosine is
//! above τ, are joined when both slots' specificity is at least
//! [`FlowOptions::min_shared_specificity`]: `page`, `limit` or `language`, which many tools
//! have, link nothing on their own.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::Value;
use toolflow_core::{
    Edge, EdgeKind, Evidence, GraphMeta, GraphMethod, LinkRule, Signals, SlotLink, Tool, ToolGraph,
};

use crate::build::{BuildOptions, BuildReport, GraphError};
use crate::join::{Rows, exact_cosine, join};
use crate::names::{is_container_token, is_role_token, is_tool_noise, tokens};

/// How deep return schemas are read: `a.b.c` is depth 3.
pub const MAX_DEPTH: usize = 3;

/// Score factor of a return field that echoes one of its own tool's parameters.
const ECHO_FACTOR: f32 = 0.9;

/// Score of a link whose parameter's description names its producer.
pub const DESCRIBED_SOURCE_SCORE: f32 = 0.95;

/// Share of a described source's tokens that a tool must hold to be the one it names.
pub const SOURCE_CONTAINMENT: f32 = 0.75;

/// Words after which a description names where a value comes from.
const SOURCE_MARKERS: [&str; 5] = ["from", "by", "through", "via", "using"];

/// Nouns that close the name of a source (`… Search Airport API`).
const SOURCE_NOUNS: [&str; 7] = [
    "api",
    "endpoint",
    "tool",
    "function",
    "method",
    "operation",
    "service",
];

/// The phrases of a description that name where a value comes from, as tokens: the words
/// between a marker (`from`) and a source noun (`API`), at most eight, within one clause.
fn source_phrases(description: &str) -> Vec<Vec<String>> {
    let words: Vec<&str> = description.split_whitespace().collect();
    let mut phrases = Vec::new();
    for (at, word) in words.iter().enumerate() {
        if !SOURCE_MARKERS.contains(&word.to_ascii_lowercase().as_str()) {
            continue;
        }
        let mut phrase: Vec<String> = Vec::new();
        for word in words[at + 1..].iter().take(8) {
            let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
            let noun = crate::names::singular(&bare.to_ascii_lowercase());
            if SOURCE_NOUNS.contains(&noun.as_str()) {
                // One word ("other endpoints", "the query endpoint") names no tool for sure.
                if phrase.len() >= 2 {
                    phrases.push(std::mem::take(&mut phrase));
                }
                break;
            }
            // A clause ends at punctuation: what follows no longer names the source.
            if word.ends_with(['.', ',', ';', ':', ')', '(']) {
                break;
            }
            phrase.extend(
                tokens(bare)
                    .into_iter()
                    .filter(|t| t.len() > 1 && !matches!(t.as_str(), "the" | "an" | "its")),
            );
        }
    }
    phrases
}

/// The tool a source phrase names: among the tools `among` admits that hold
/// [`SOURCE_CONTAINMENT`] of its tokens, the one with the best Jaccard overlap, when no other
/// ties it.
fn named_tool(
    phrase: &[String],
    tool_tokens: &[HashSet<String>],
    among: impl Fn(usize) -> bool,
) -> Option<u32> {
    let phrase: HashSet<&String> = phrase.iter().collect();
    let mut best: Option<(f32, u32)> = None;
    let mut tied = false;
    for (index, tokens) in tool_tokens.iter().enumerate() {
        if !among(index) {
            continue;
        }
        let shared = phrase.iter().filter(|t| tokens.contains(**t)).count();
        if (shared as f32) < SOURCE_CONTAINMENT * phrase.len() as f32 || shared == 0 {
            continue;
        }
        let jaccard = shared as f32 / (phrase.len() + tokens.len() - shared) as f32;
        match best {
            Some((score, _)) if jaccard < score => {}
            Some((score, _)) if jaccard == score => tied = true,
            _ => {
                best = Some((jaccard, index as u32));
                tied = false;
            }
        }
    }
    best.filter(|_| !tied).map(|(_, index)| index)
}

/// The API a tool belongs to, where its import says: the RapidAPI tool of a ToolBench API
/// (`meta.tool_name`, or `tool_name_std` in ToolBench's evaluation sets), else the file it
/// came from (`meta.origin`: one OpenAPI document).
fn api(tool: &Tool) -> Option<&str> {
    ["tool_name", "tool_name_std", "origin"]
        .iter()
        .find_map(|key| tool.meta.get(*key).and_then(Value::as_str))
}

/// The name and path tokens of every tool, for [`named_tool`].
fn tool_tokens(tools: &[Tool]) -> Vec<HashSet<String>> {
    tools
        .iter()
        .map(|tool| {
            let path = tool.meta.get("path").and_then(Value::as_str).unwrap_or("");
            tokens(&tool.name).into_iter().chain(tokens(path)).collect()
        })
        .collect()
}

/// The knobs of the flow method; [`FlowOptions::default`] is what `toolflow graph` uses (tuned
/// on NESTFUL and ToolBench G2, documented in the README with an ablation).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowOptions {
    /// Kept links score above this.
    pub threshold: f32,
    /// Qualified-name cosine above which the embedding join proposes a candidate.
    pub qualified_floor: f32,
    /// Producers kept per consumer parameter, best first.
    pub per_parameter: usize,
    /// Both parameters of a `param-param` link are at least this specific.
    pub min_shared_specificity: f32,
    /// Signals switched off for an ablation (their score reads 0 and their candidates are
    /// not proposed).
    pub without: SignalSet,
}

impl Default for FlowOptions {
    fn default() -> Self {
        FlowOptions {
            threshold: 0.75,
            qualified_floor: 0.75,
            per_parameter: 2,
            min_shared_specificity: 0.7,
            without: SignalSet::default(),
        }
    }
}

/// A set of signals, for ablations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalSet {
    /// The JSON type agreement of field and parameter.
    pub types: bool,
    /// The token match of the qualified names.
    pub names: bool,
    /// The cosine of the qualified names' embeddings.
    pub qualified_cosine: bool,
    /// The paper's cosine of `"{name}: {description}"`.
    pub paper_cosine: bool,
    /// How few tools have the consumer's parameter (scaled IDF).
    pub specificity: bool,
    /// Qualifying names by owner and tool context (without it, names are the raw tokens).
    pub context: bool,
    /// Producers named by a parameter's description.
    pub described_source: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Boolean,
    Object,
    Array,
    Unknown,
}

fn kind(schema: &Value) -> Kind {
    let declared = match schema.get("type") {
        Some(Value::String(name)) => name.to_ascii_lowercase(),
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .find(|n| *n != "null")
            .unwrap_or("")
            .to_ascii_lowercase(),
        _ => String::new(),
    };
    match declared.as_str() {
        "string" | "str" => Kind::Text,
        "number" | "integer" | "int" | "float" | "double" => Kind::Number,
        "boolean" | "bool" => Kind::Boolean,
        "object" | "dict" => Kind::Object,
        "array" | "list" => Kind::Array,
        _ if schema.get("properties").is_some() => Kind::Object,
        _ if schema.get("items").is_some() => Kind::Array,
        // A composition (`allOf: [{$ref}]`, `oneOf`) is of the first kind its parts say.
        _ => parts(schema)
            .map(kind)
            .find(|kind| *kind != Kind::Unknown)
            .unwrap_or(Kind::Unknown),
    }
}

/// The schemas a schema composes: `allOf`'s (all apply) and `oneOf`'s and `anyOf`'s (any may
/// come back, so their fields are all fields it can have).
fn parts(schema: &Value) -> impl Iterator<Item = &Value> {
    ["allOf", "oneOf", "anyOf"]
        .into_iter()
        .filter_map(|key| schema.get(key).and_then(Value::as_array))
        .flatten()
}

/// The fields an object schema declares, its own and its parts' (OpenAPI documents often
/// build a response as `allOf: [PagingObject, {items}]`); the first of a name wins.
fn declared_properties(schema: &Value) -> Vec<(&String, &Value)> {
    let mut fields: Vec<(&String, &Value)> = Vec::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        fields.extend(properties);
    }
    for part in parts(schema) {
        for (name, property) in declared_properties(part) {
            if !fields.iter().any(|(known, _)| *known == name) {
                fields.push((name, property));
            }
        }
    }
    fields
}

/// The items schema of an array schema, its own or a part's.
fn items_of(schema: &Value) -> Option<&Value> {
    schema
        .get("items")
        .filter(|items| items.is_object())
        .or_else(|| parts(schema).find_map(items_of))
}

/// Type compatibility of a value of `from` passed as a parameter of type `to`.
fn type_score(from: Kind, to: Kind) -> f32 {
    use Kind::*;
    match (from, to) {
        (a, b) if a == b => 1.0,
        (Unknown, _) | (_, Unknown) => 0.5,
        (Number, Text) | (Text, Number) | (Array, Text) => 0.5,
        _ => 0.0,
    }
}

/// One slot: a parameter, or a return field.
struct Slot {
    tool: u32,
    /// The parameter name, or the field path (`results[].id`).
    path: String,
    kind: Kind,
    qualified: Vec<String>,
    /// Index of the qualified string and of the paper string in the embedded strings.
    qualified_string: u32,
    paper_string: u32,
}

impl Slot {
    fn key(&self) -> String {
        self.qualified.join(" ")
    }
}

/// The subject of a tool: the last word of its OpenAPI path (without `{parameters}`), else of
/// its name before `by`, that is not noise; none when every word is.
fn subject(tool: &Tool) -> Option<String> {
    let from_path = tool
        .meta
        .get("path")
        .and_then(Value::as_str)
        .and_then(|path| {
            let words: Vec<String> = path
                .split('/')
                .filter(|segment| !segment.starts_with('{') && !segment.starts_with(':'))
                .flat_map(tokens)
                .collect();
            last_subject(&words)
        });
    from_path.or_else(|| {
        let words = tokens(&tool.name);
        let before_by = words
            .iter()
            .position(|w| w == "by")
            .map_or(&words[..], |at| &words[..at]);
        last_subject(before_by)
    })
}

/// The path segment right before a path parameter (`artists` of `/artists/{id}/albums`), when
/// it says more than API noise: what the parameter identifies, which the path's last word (the
/// tool's subject, `album`) does not.
fn path_owner(tool: &Tool, parameter: &str) -> Option<String> {
    let path = tool.meta.get("path").and_then(Value::as_str)?;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments.iter().position(|segment| {
        segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) == Some(parameter)
            || segment.strip_prefix(':') == Some(parameter)
    })?;
    let before = segments[..at]
        .last()
        .filter(|s| !s.starts_with('{') && !s.starts_with(':'))?;
    let words = tokens(before);
    (!words.is_empty() && !words.iter().all(|w| is_tool_noise(w) || is_role_token(w)))
        .then(|| before.to_string())
}

fn last_subject(words: &[String]) -> Option<String> {
    words
        .iter()
        .rev()
        .find(|w| !is_tool_noise(w) && !is_role_token(w) && w.len() > 1)
        .cloned()
}

/// Tokens of a slot name, with its context in front when the name says only a role.
fn qualify(
    name_tokens: Vec<String>,
    owners: &[String],
    tool_subject: Option<&str>,
    use_context: bool,
) -> Vec<String> {
    if !use_context || name_tokens.is_empty() || !name_tokens.iter().all(|t| is_role_token(t)) {
        return name_tokens;
    }
    let owner = owners.iter().rev().find(|o| {
        let words = tokens(o);
        !words.is_empty()
            && !words
                .iter()
                .all(|w| is_container_token(w) || is_role_token(w))
    });
    let mut context: Vec<String> = match owner {
        Some(owner) => tokens(owner)
            .into_iter()
            .filter(|w| !is_container_token(w))
            .collect(),
        None => tool_subject
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
    };
    if context.last() == name_tokens.first() {
        context.pop();
    }
    context.extend(name_tokens);
    context
}

/// Return fields of a schema to [`MAX_DEPTH`], with their owners' names.
fn walk_fields<'a>(
    schema: &'a Value,
    path: &str,
    owners: &mut Vec<String>,
    depth: usize,
    out: &mut Vec<(String, Vec<String>, &'a str, &'a Value)>,
) {
    let mut schema = schema;
    let mut path = path.to_string();
    while kind(schema) == Kind::Array {
        match items_of(schema) {
            Some(items) => {
                schema = items;
                path.push_str("[]");
            }
            None => return,
        }
    }
    for (name, property) in declared_properties(schema) {
        let field_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        out.push((field_path.clone(), owners.clone(), name.as_str(), property));
        if depth < MAX_DEPTH {
            owners.push(name.clone());
            walk_fields(property, &field_path, owners, depth + 1, out);
            owners.pop();
        }
    }
}

/// Distinct strings to embed, with their index.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    index: HashMap<String, u32>,
}

impl Strings {
    fn add(&mut self, text: String) -> u32 {
        match self.index.entry(text) {
            Entry::Occupied(entry) => *entry.get(),
            Entry::Vacant(entry) => {
                self.list.push(entry.key().clone());
                *entry.insert(self.list.len() as u32 - 1)
            }
        }
    }
}

fn collect_slots(tools: &[Tool], use_context: bool) -> (Vec<Slot>, Vec<Slot>, Strings) {
    let mut strings = Strings::default();
    let (mut parameters, mut fields) = (Vec::new(), Vec::new());
    for (index, tool) in tools.iter().enumerate() {
        let tool_subject = subject(tool);
        let description = |schema: &Value| {
            schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if let Some(properties) = tool.parameters.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let owner: Vec<String> = path_owner(tool, name).into_iter().collect();
                let qualified = qualify(tokens(name), &owner, tool_subject.as_deref(), use_context);
                let paper_string = strings.add(format!("{name}: {}", description(property)));
                let qualified_string = strings.add(qualified.join(" "));
                parameters.push(Slot {
                    tool: index as u32,
                    path: name.clone(),
                    kind: kind(property),
                    qualified,
                    qualified_string,
                    paper_string,
                });
            }
        }
        if let Some(returns) = &tool.returns {
            let mut found = Vec::new();
            walk_fields(returns, "", &mut Vec::new(), 1, &mut found);
            for (path, owners, name, property) in found {
                let qualified =
                    qualify(tokens(name), &owners, tool_subject.as_deref(), use_context);
                let paper_string = strings.add(format!("{name}: {}", description(property)));
                let qualified_string = strings.add(qualified.join(" "));
                fields.push(Slot {
                    tool: index as u32,
                    path,
                    kind: kind(property),
                    qualified,
                    qualified_string,
                    paper_string,
                });
            }
        }
    }
    (parameters, fields, strings)
}

/// Normalised IDF over tools: `ln(N / df) / ln(N)`, in [0, 1].
fn idf(tools: usize, df: usize) -> f32 {
    if tools <= 1 || df == 0 {
        return 1.0;
    }
    ((tools as f64 / df as f64).ln() / (tools as f64).ln()) as f32
}

/// Document frequencies over tools of each qualified parameter name and of each token.
struct Specificity {
    tools: usize,
    slot_df: HashMap<String, usize>,
    token_df: HashMap<String, usize>,
}

impl Specificity {
    fn of(parameters: &[Slot], tools: usize) -> Self {
        let mut slot_seen: HashSet<(String, u32)> = HashSet::new();
        let mut token_seen: HashSet<(String, u32)> = HashSet::new();
        let (mut slot_df, mut token_df) = (HashMap::new(), HashMap::new());
        for slot in parameters {
            if slot_seen.insert((slot.key(), slot.tool)) {
                *slot_df.entry(slot.key()).or_insert(0) += 1;
            }
            for token in &slot.qualified {
                if token_seen.insert((token.clone(), slot.tool)) {
                    *token_df.entry(token.clone()).or_insert(0) += 1;
                }
            }
        }
        Specificity {
            tools,
            slot_df,
            token_df,
        }
    }

    fn slot(&self, slot: &Slot) -> f32 {
        idf(
            self.tools,
            self.slot_df.get(&slot.key()).copied().unwrap_or(1),
        )
    }

    fn token(&self, token: &str) -> f32 {
        idf(self.tools, self.token_df.get(token).copied().unwrap_or(1))
    }
}

/// The name signal and the rule it makes fire, if any. A parameter that names alternatives
/// (`username_or_id_or_url`) takes any one of them, so each is matched on its own.
fn name_signal(
    field: &[String],
    parameter: &[String],
    specificity: &Specificity,
) -> (f32, Option<LinkRule>) {
    if parameter.iter().any(|t| t == "or") {
        return parameter
            .split(|t| t == "or")
            .filter(|alternative| !alternative.is_empty())
            .map(|alternative| single_name_signal(field, alternative, specificity))
            .max_by(|x, y| x.0.total_cmp(&y.0))
            .unwrap_or((0.0, None));
    }
    single_name_signal(field, parameter, specificity)
}

fn single_name_signal(
    field: &[String],
    parameter: &[String],
    specificity: &Specificity,
) -> (f32, Option<LinkRule>) {
    if field.is_empty() || parameter.is_empty() {
        return (0.0, None);
    }
    if field == parameter {
        return (1.0, Some(LinkRule::SameName));
    }
    let specific =
        |tokens: &[String]| tokens.len() >= 2 || tokens.iter().any(|t| !is_role_token(t));
    if parameter.ends_with(field) && specific(field) {
        return (0.9, Some(LinkRule::NameSuffix));
    }
    if field.ends_with(parameter) && specific(parameter) && parameter.len() >= 2 {
        return (0.8, Some(LinkRule::NameSuffix));
    }
    let weight = |t: &String| specificity.token(t);
    let total: f32 = parameter.iter().map(weight).sum();
    let shared: f32 = parameter
        .iter()
        .filter(|t| field.contains(t))
        .map(weight)
        .sum();
    (if total > 0.0 { shared / total } else { 0.0 }, None)
}

/// Best link so far per (a, b, kind).
type Found = HashMap<(u32, u32, EdgeKind), Vec<SlotLink>>;

/// Builds the flow graph of `tools`. `embed` receives each distinct string once (qualified
/// names and the paper's `"{name}: {description}"` strings) and returns unit vectors.
pub fn build_flow_graph<E: std::error::Error + 'static>(
    tools: &[Tool],
    options: &BuildOptions,
    flow: &FlowOptions,
    embed: impl FnOnce(&[String]) -> Result<Vec<Vec<f32>>, E>,
) -> Result<(ToolGraph, BuildReport), GraphError<E>> {
    crate::build::check_inputs(tools, options)?;
    let off = flow.without;
    let (parameters, fields, strings) = collect_slots(tools, !off.context);
    let started = Instant::now();
    let vectors = if strings.list.is_empty() {
        Vec::new()
    } else {
        embed(&strings.list).map_err(GraphError::Embed)?
    };
    let embed_time = started.elapsed();
    let dim = crate::build::check_vectors(&vectors, strings.list.len())?;

    let started = Instant::now();
    let specificity = Specificity::of(&parameters, tools.len());
    let vector = |string: u32| vectors[string as usize].as_slice();
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };

    // Candidates (field, parameter): by name, then by either embedding join.
    let mut candidates: HashSet<(u32, u32)> = HashSet::new();
    if !off.names {
        // Suffixes of each name (of each alternative of `a_or_b`), with the name's length.
        let mut by_suffix: HashMap<&[String], Vec<(u32, usize)>> = HashMap::new();
        for (p, slot) in parameters.iter().enumerate() {
            for name in slot.qualified.split(|t| t == "or") {
                for start in 0..name.len() {
                    by_suffix
                        .entry(&name[start..])
                        .or_default()
                        .push((p as u32, name.len()));
                }
            }
        }
        for (f, field) in fields.iter().enumerate() {
            for start in 0..field.qualified.len() {
                let suffix = &field.qualified[start..];
                // The parameter ends with the whole field name, or the field with a
                // two-token parameter name.
                if start > 0 && (suffix.len() < 2 || !by_suffix.contains_key(suffix)) {
                    continue;
                }
                for &(p, name_length) in by_suffix.get(suffix).into_iter().flatten() {
                    if start == 0 || name_length == suffix.len() {
                        candidates.insert((f as u32, p));
                    }
                }
            }
        }
    }
    let matrix_of = |slots: &[Slot], pick: fn(&Slot) -> u32| {
        let mut ids: Vec<u32> = slots.iter().map(pick).collect();
        ids.sort_unstable();
        ids.dedup();
        let data: Vec<f32> = ids
            .iter()
            .flat_map(|&s| vector(s).iter().copied())
            .collect();
        (ids, data)
    };
    let mut joined_pairs = 0;
    let by_string = |slots: &[Slot], pick: fn(&Slot) -> u32| {
        let mut owners: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, slot) in slots.iter().enumerate() {
            owners.entry(pick(slot)).or_default().push(i as u32);
        }
        owners
    };
    let signal_joins: [(bool, fn(&Slot) -> u32, f32); 2] = [
        (
            !off.qualified_cosine,
            |s| s.qualified_string,
            flow.qualified_floor,
        ),
        (!off.paper_cosine, |s| s.paper_string, options.tau),
    ];
    for (on, pick, floor) in signal_joins {
        if !on {
            continue;
        }
        let (field_ids, field_data) = matrix_of(&fields, pick);
        let (parameter_ids, parameter_data) = matrix_of(&parameters, pick);
        let field_owners = by_string(&fields, pick);
        let parameter_owners = by_string(&parameters, pick);
        let hits = join(
            Rows {
                data: &field_data,
                dim,
            },
            Rows {
                data: &parameter_data,
                dim,
            },
            floor,
            false,
            threads,
        );
        joined_pairs += hits.len();
        for hit in hits {
            let (fs, ps) = (
                field_ids[hit.left as usize],
                parameter_ids[hit.right as usize],
            );
            for &f in &field_owners[&fs] {
                for &p in &parameter_owners[&ps] {
                    candidates.insert((f, p));
                }
            }
        }
    }

    // A tool that takes a slot and returns it again only echoes the value; a tool that returns
    // it without taking it is where the value comes from, and ranks first. A parameter that
    // names alternatives (`username_or_id_or_url`) takes each of them.
    let own_parameters: HashSet<(u32, String)> = parameters
        .iter()
        .flat_map(|s| {
            s.qualified
                .split(|t| t == "or")
                .filter(|alternative| !alternative.is_empty())
                .map(|alternative| (s.tool, alternative.join(" ")))
                .chain([(s.tool, s.key())])
        })
        .collect();
    // (producer, field or `WHOLE_RESULT`, parameter, link)
    let mut scored: Vec<(u32, u32, u32, SlotLink)> = Vec::new();
    // The signals of a field passed as a parameter, and the rule a name match makes fire. A
    // signal switched off for an ablation reads 0, or 1 where it is a factor (types,
    // specificity).
    let slot_specificity = |parameter: &Slot| {
        if off.specificity {
            1.0
        } else {
            specificity.slot(parameter)
        }
    };
    let signals_of = |field: &Slot, parameter: &Slot| {
        let (names, rule) = if off.names {
            (0.0, None)
        } else {
            name_signal(&field.qualified, &parameter.qualified, &specificity)
        };
        let cosine = |on: bool, pick: fn(&Slot) -> u32| {
            if on {
                exact_cosine(vector(pick(field)), vector(pick(parameter)))
            } else {
                0.0
            }
        };
        let signals = Signals {
            types: if off.types {
                1.0
            } else {
                type_score(field.kind, parameter.kind)
            },
            names,
            qualified_cosine: cosine(!off.qualified_cosine, |s| s.qualified_string),
            paper_cosine: cosine(!off.paper_cosine, |s| s.paper_string),
            specificity: slot_specificity(parameter),
        };
        (signals, rule)
    };
    for (f, p) in candidates {
        let (field, parameter) = (&fields[f as usize], &parameters[p as usize]);
        if field.tool == parameter.tool {
            continue;
        }
        let (signals, rule) = signals_of(field, parameter);
        if signals.types == 0.0 {
            continue;
        }
        let embedding = embedding_score(signals.qualified_cosine, signals.paper_cosine, off);
        let (base, rule) = match rule {
            Some(rule) => (signals.names.max(embedding), rule),
            None if signals.names >= 0.5 && embedding >= 0.5 => (
                (signals.names + embedding) / 2.0 + 0.1,
                LinkRule::SharedTokens,
            ),
            None => (embedding, LinkRule::Embedding),
        };
        let base = base.min(1.0);
        let types_factor = if signals.types >= 1.0 { 1.0 } else { 0.85 };
        let echo_factor = if own_parameters.contains(&(field.tool, field.key())) {
            ECHO_FACTOR
        } else {
            1.0
        };
        let score = base * (0.5 + 0.5 * signals.specificity) * types_factor * echo_factor;
        if score > flow.threshold {
            let link = SlotLink {
                from: field.path.clone(),
                to: parameter.path.clone(),
                score,
                rule,
                signals,
            };
            scored.push((field.tool, f, p, link));
        }
    }
    if !off.described_source {
        scored.extend(described_source_links(
            tools,
            &parameters,
            &fields,
            |field, parameter| match field {
                Some(field) => signals_of(field, parameter).0,
                // The whole result: no name and no string of its own.
                None => Signals {
                    types: 0.5,
                    names: 0.0,
                    qualified_cosine: 0.0,
                    paper_cosine: 0.0,
                    specificity: slot_specificity(parameter),
                },
            },
        ));
    }

    // Each parameter keeps its best producers (distinct tools), best first. Among equals, a
    // search (a tool that takes a free-text query) comes first, then a tool that needs no
    // identifier (the current user's profile): a chain starts there from what a user says.
    // Then slot order.
    let (mut takes_query, mut takes_identifier) =
        (vec![false; tools.len()], vec![false; tools.len()]);
    for slot in &parameters {
        let takes = |words: &[&str]| slot.qualified.iter().any(|t| words.contains(&t.as_str()));
        takes_query[slot.tool as usize] |= takes(&["q", "query", "keyword", "search", "term"]);
        takes_identifier[slot.tool as usize] |= takes(&["id", "uid", "uuid", "guid"]);
    }
    let start_rank: Vec<u8> = (0..tools.len())
        .map(|tool| match (takes_query[tool], takes_identifier[tool]) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 2,
        })
        .collect();
    scored.sort_by(|x, y| {
        x.2.cmp(&y.2)
            .then(y.3.score.total_cmp(&x.3.score))
            .then(start_rank[x.0 as usize].cmp(&start_rank[y.0 as usize]))
            .then(x.1.cmp(&y.1))
    });
    let mut found: Found = HashMap::new();
    let mut at = 0;
    while at < scored.len() {
        let p = scored[at].2;
        let mut producers: Vec<u32> = Vec::new();
        while at < scored.len() && scored[at].2 == p {
            let (producer, _, _, link) = &scored[at];
            let producer = *producer;
            let consumer = parameters[p as usize].tool;
            if producers.contains(&producer) || producers.len() < flow.per_parameter {
                if !producers.contains(&producer) {
                    producers.push(producer);
                }
                found
                    .entry((producer, consumer, EdgeKind::ReturnParam))
                    .or_default()
                    .push(link.clone());
            }
            at += 1;
        }
    }

    param_param_links(
        &parameters,
        &specificity,
        flow,
        options.tau,
        &vectors,
        dim,
        threads,
        &mut found,
        &mut joined_pairs,
    );

    let mut keys: Vec<(u32, u32, EdgeKind)> = found.keys().copied().collect();
    keys.sort_unstable_by_key(|&(a, b, kind)| (a.min(b), a.max(b), kind, a));
    let text = |string: u32| strings.list[string as usize].clone();
    let by_path = |slots: &[Slot], tool: u32, path: &str| {
        slots
            .iter()
            .find(|s| s.tool == tool && s.path == path)
            .map(|s| text(s.qualified_string))
            .unwrap_or_default()
    };
    let edges: Vec<Edge> = keys
        .into_iter()
        .map(|key| {
            let mut links = found.remove(&key).expect("a found key");
            links.sort_by(|x, y| {
                y.score
                    .total_cmp(&x.score)
                    .then_with(|| (&x.from, &x.to).cmp(&(&y.from, &y.to)))
            });
            links.dedup_by(|x, y| x.from == y.from && x.to == y.to);
            let (a, b, kind) = key;
            let best = &links[0];
            let a_slots = if kind == EdgeKind::ReturnParam {
                &fields
            } else {
                &parameters
            };
            Edge {
                a: tools[a as usize].name.clone(),
                b: tools[b as usize].name.clone(),
                kind,
                score: best.score,
                evidence: Evidence {
                    a: by_path(a_slots, a, &best.from),
                    b: by_path(&parameters, b, &best.to),
                    links,
                },
            }
        })
        .collect();
    let join_time = started.elapsed();

    let graph = ToolGraph {
        nodes: tools.iter().map(|tool| tool.name.clone()).collect(),
        edges,
        meta: GraphMeta {
            method: GraphMethod::Flow,
            tau: options.tau,
            model: options.model.clone(),
            tools_hash: options.tools_hash.clone(),
            strings: strings.list.len(),
        },
    };
    let report = BuildReport {
        parameter_slots: parameters.len(),
        return_slots: fields.len(),
        strings: strings.list.len(),
        parameter_strings: parameters
            .iter()
            .map(|s| s.paper_string)
            .collect::<HashSet<_>>()
            .len(),
        return_strings: fields
            .iter()
            .map(|s| s.paper_string)
            .collect::<HashSet<_>>()
            .len(),
        string_pairs: joined_pairs,
        embed_time,
        join_time,
    };
    tracing::info!(
        strings = report.strings,
        edges = graph.edges.len(),
        embed_s = embed_time.as_secs_f64(),
        join_s = join_time.as_secs_f64(),
        "built the flow graph"
    );
    Ok((graph, report))
}

/// Stands for the producer's whole result in a described-source link where no field of the
/// producer shares the parameter's name.
const WHOLE_RESULT: u32 = u32::MAX;

/// The links of parameters whose description names their producer (see the module docs):
/// `(producer, field or WHOLE_RESULT, parameter, link)`. `signals` scores a field (or the
/// whole result, `None`) against a parameter, for the evidence.
fn described_source_links(
    tools: &[Tool],
    parameters: &[Slot],
    fields: &[Slot],
    signals: impl Fn(Option<&Slot>, &Slot) -> Signals,
) -> Vec<(u32, u32, u32, SlotLink)> {
    let tool_tokens = tool_tokens(tools);
    let mut links = Vec::new();
    for (p, parameter) in parameters.iter().enumerate() {
        let description = tools[parameter.tool as usize]
            .parameters
            .get("properties")
            .and_then(|properties| properties.get(&parameter.path))
            .and_then(|schema| schema.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let consumer_api = api(&tools[parameter.tool as usize]);
        let mut named: Vec<u32> = source_phrases(description)
            .iter()
            .filter_map(|phrase| {
                // A description names an endpoint of its own API: "the Get Languages API" in
                // an Airbnb endpoint's docs is Airbnb's, not a translator's namesake.
                named_tool(phrase, &tool_tokens, |index| {
                    consumer_api.is_none() || api(&tools[index]) == consumer_api
                })
            })
            .filter(|&producer| producer != parameter.tool)
            .collect();
        named.sort_unstable();
        named.dedup();
        for producer in named {
            // The producer's field that shares most of the parameter's name (an undeclared
            // object may hold it); when none shares any, the whole result.
            let field = fields
                .iter()
                .enumerate()
                .filter(|(_, field)| field.tool == producer)
                .filter(|(_, field)| {
                    matches!(field.kind, Kind::Object | Kind::Array)
                        || type_score(field.kind, parameter.kind) > 0.0
                })
                .map(|(f, field)| (f as u32, signals(Some(field), parameter)))
                .filter(|(_, signals)| signals.names > 0.0)
                .max_by(|(fx, x), (fy, y)| {
                    x.names
                        .total_cmp(&y.names)
                        .then(x.qualified_cosine.total_cmp(&y.qualified_cosine))
                        .then(fy.cmp(fx))
                });
            let (f, from, link_signals) = match field {
                Some((f, link_signals)) => (f, fields[f as usize].path.clone(), link_signals),
                None => (WHOLE_RESULT, String::new(), signals(None, parameter)),
            };
            let link = SlotLink {
                from,
                to: parameter.path.clone(),
                score: DESCRIBED_SOURCE_SCORE,
                rule: LinkRule::DescribedSource,
                signals: link_signals,
            };
            links.push((producer, f, p as u32, link));
        }
    }
    links
}

fn embedding_score(qualified: f32, paper: f32, off: SignalSet) -> f32 {
    match (off.qualified_cosine, off.paper_cosine) {
        (false, false) => (qualified + paper) / 2.0,
        (true, false) => paper,
        (false, true) => qualified,
        (true, true) => 0.0,
    }
}

/// `param-param` links: the same qualified name, or a paper cosine above τ, between slots that
/// are both specific enough.
#[allow(clippy::too_many_arguments)]
fn param_param_links(
    parameters: &[Slot],
    specificity: &Specificity,
    flow: &FlowOptions,
    tau: f32,
    vectors: &[Vec<f32>],
    dim: usize,
    threads: usize,
    found: &mut Found,
    joined_pairs: &mut usize,
) {
    let off = flow.without;
    let slot_specificity: Vec<f32> = parameters
        .iter()
        .map(|s| {
            if off.specificity {
                1.0
            } else {
                specificity.slot(s)
            }
        })
        .collect();
    let specific: Vec<u32> = (0..parameters.len() as u32)
        .filter(|&p| slot_specificity[p as usize] >= flow.min_shared_specificity)
        .collect();
    let mut pairs: HashSet<(u32, u32)> = HashSet::new();
    if !off.names {
        let mut by_key: HashMap<String, Vec<u32>> = HashMap::new();
        for &p in &specific {
            by_key
                .entry(parameters[p as usize].key())
                .or_default()
                .push(p);
        }
        for group in by_key.values() {
            for (i, &x) in group.iter().enumerate() {
                for &y in &group[i + 1..] {
                    pairs.insert((x, y));
                }
            }
        }
    }
    if !off.paper_cosine && !specific.is_empty() {
        let mut ids: Vec<u32> = specific
            .iter()
            .map(|&p| parameters[p as usize].paper_string)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut owners: HashMap<u32, Vec<u32>> = HashMap::new();
        for &p in &specific {
            owners
                .entry(parameters[p as usize].paper_string)
                .or_default()
                .push(p);
        }
        let data: Vec<f32> = ids
            .iter()
            .flat_map(|&s| vectors[s as usize].iter().copied())
            .collect();
        let rows = Rows { data: &data, dim };
        let hits = join(rows, rows, tau, true, threads);
        *joined_pairs += hits.len();
        for hit in hits {
            for &x in &owners[&ids[hit.left as usize]] {
                for &y in &owners[&ids[hit.right as usize]] {
                    if x != y {
                        pairs.insert((x.min(y), x.max(y)));
                    }
                }
            }
        }
    }
    for (x, y) in pairs {
        let (px, py) = (&parameters[x as usize], &parameters[y as usize]);
        if px.tool == py.tool {
            continue;
        }
        let names: f32 = if px.qualified == py.qualified && !off.names {
            1.0
        } else {
            0.0
        };
        let paper_cosine = if off.paper_cosine {
            0.0
        } else {
            exact_cosine(
                &vectors[px.paper_string as usize],
                &vectors[py.paper_string as usize],
            )
        };
        let qualified_cosine = exact_cosine(
            &vectors[px.qualified_string as usize],
            &vectors[py.qualified_string as usize],
        );
        let least = slot_specificity[x as usize].min(slot_specificity[y as usize]);
        let score = names.max(paper_cosine) * (0.5 + 0.5 * least);
        if score <= flow.threshold {
            continue;
        }
        let types = type_score(px.kind, py.kind);
        let signals = Signals {
            types,
            names,
            qualified_cosine,
            paper_cosine,
            specificity: least,
        };
        // `a` is the earlier tool, and its slot is `from`.
        let (first, second) = if px.tool < py.tool {
            (px, py)
        } else {
            (py, px)
        };
        let link = SlotLink {
            from: first.path.clone(),
            to: second.path.clone(),
            score,
            rule: LinkRule::SharedSlot,
            signals,
        };
        found
            .entry((first.tool, second.tool, EdgeKind::ParamParam))
            .or_default()
            .push(link);
    }
}
