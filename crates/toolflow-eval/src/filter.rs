//! The rule-based filter of paper §3.3: keeps the dialogues that pass, and rejects the others
//! with every reason found (rule, turn, JSON pointer, detail).
//!
//! Each [`Rule`] has a level — `off`, `warn` (reported, kept) or `reject` — set by default
//! and overridable in a TOML rules file:
//!
//! ```toml
//! judge-min = 3.5       # the judge gate: the lowest mean judge score kept (default: no gate);
//!                       # or per criterion: judge-min = { coherence = 4, accuracy = 4 }
//!
//! [rules]
//! ungrounded-argument = "reject"   # default "warn"
//! repeated-turn = "off"
//!
//! [near-duplicate]
//! threshold = 0.9       # estimated Jaccard at or above which a dialogue is a near-duplicate
//! shingle-words = 5
//! hashes = 128
//! bands = 32
//! seed = 0
//!
//! [off-plan]
//! threshold = 0.2       # cosine below which a user turn is far from its plan step
//! ```
//!
//! Duplicates are looked for only among dialogues that pass every other rule, in input
//! order, so the first of a group of duplicates is kept and a clean copy of a broken
//! dialogue is not thrown away with it. [`Rule::OffPlan`] needs sentence embeddings: the
//! caller passes an embedding function ([`Filter::check_with`], [`filter_file_with`]); this
//! crate loads no model. It too is measured only on dialogues no other rule rejects.
//! [`Rule::Judge`] comes last, on what every rule kept: the caller asks the judge and
//! [`apply_judge_gate`] moves the dialogues scored below `judge-min` to the rejected file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
pub use toolflow_core::rejection::{Level, Reason, Rule};
use toolflow_core::{Dialogue, OutcomeStatus, StepKind, Tool, Turn};

use crate::coherence::EmbedFn;
use crate::error::EvalError;
use crate::minhash::{LshIndex, MinHasher};
use crate::{input, text, words};

mod content;
mod judge_gate;

pub use judge_gate::{JudgeMin, apply_judge_gate};

/// The filter's settings, as read from a rules file; absent entries take defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilterConfig {
    /// Levels set in the file; a rule not named here runs at its [`Rule::default_level`].
    #[serde(default)]
    pub rules: BTreeMap<Rule, Level>,
    /// Settings of [`Rule::NearDuplicate`].
    #[serde(default)]
    pub near_duplicate: NearDuplicateConfig,
    /// Settings of [`Rule::OffPlan`].
    #[serde(default)]
    pub off_plan: OffPlanConfig,
    /// Turns [`Rule::Judge`] on: the judge's lowest acceptable scores.
    #[serde(default, alias = "judge_min")]
    pub judge_min: Option<JudgeMin>,
}

/// Settings of [`Rule::OffPlan`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct OffPlanConfig {
    /// The cosine (all-MiniLM-L6-v2 vectors) below which a user turn is off its plan step.
    pub threshold: f32,
}

impl Default for OffPlanConfig {
    fn default() -> Self {
        // Measured on the dev corpus (`toolflow-bench --bin gate` prints the cosines).
        OffPlanConfig {
            threshold: OFF_PLAN_THRESHOLD,
        }
    }
}

/// The default [`OffPlanConfig::threshold`].
pub const OFF_PLAN_THRESHOLD: f32 = 0.2;

/// Settings of [`Rule::NearDuplicate`]: the MinHash and LSH parameters of [`crate::minhash`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct NearDuplicateConfig {
    /// The estimated Jaccard similarity to a kept dialogue at or above which a dialogue is
    /// a near-duplicate; in (0, 1].
    pub threshold: f64,
    /// Words per shingle.
    pub shingle_words: usize,
    /// Hash functions, so slots in each signature.
    pub hashes: usize,
    /// LSH bands the signature is cut into; at most `hashes`.
    pub bands: usize,
    /// Seeds the hash functions, so the same seed finds the same duplicates.
    pub seed: u64,
}

impl Default for NearDuplicateConfig {
    fn default() -> Self {
        // 32 bands of 4 rows: a pair at Jaccard 0.9 becomes a candidate with probability
        // 1 - (1 - 0.9^4)^32 ≈ 1, one at 0.3 with ≈ 0.23 (and is then dropped on the estimate).
        NearDuplicateConfig {
            threshold: 0.9,
            shingle_words: 5,
            hashes: 128,
            bands: 32,
            seed: 0,
        }
    }
}

impl FilterConfig {
    /// The level `rule` runs at: set in the file, else its default; [`Rule::Judge`] is off
    /// without `judge-min`.
    pub fn level(&self, rule: Rule) -> Level {
        if rule == Rule::Judge && self.judge_min.is_none() {
            return Level::Off;
        }
        self.rules
            .get(&rule)
            .copied()
            .unwrap_or_else(|| rule.default_level())
    }

    /// Parses and checks a rules file's text; `path` only names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, EvalError> {
        let rules = |detail: String| EvalError::Rules {
            path: path.to_path_buf(),
            detail,
        };
        let config: FilterConfig =
            toml::from_str(text).map_err(|source| rules(source.to_string()))?;
        config.check().map_err(rules)?;
        Ok(config)
    }

    /// Whether the settings can work: which key is out of its range, if one is.
    pub fn check(&self) -> Result<(), String> {
        let near = &self.near_duplicate;
        let problem = if !(near.threshold > 0.0 && near.threshold <= 1.0) {
            Some("near-duplicate.threshold must be in (0, 1]".to_string())
        } else if near.hashes == 0 || near.bands == 0 || near.bands > near.hashes {
            Some("near-duplicate needs 1 ≤ bands ≤ hashes".to_string())
        } else if near.shingle_words == 0 {
            Some("near-duplicate.shingle-words must be at least 1".to_string())
        } else if !(-1.0..=1.0).contains(&self.off_plan.threshold) {
            Some("off-plan.threshold must be in [-1, 1]".to_string())
        } else {
            self.judge_min.as_ref().and_then(JudgeMin::problem)
        };
        problem.map_or(Ok(()), Err)
    }

    /// Reads, parses and checks the rules file at `path`.
    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }
}

/// Whether any reason rejects.
pub fn rejects(reasons: &[Reason]) -> bool {
    reasons.iter().any(|reason| reason.level == Level::Reject)
}

/// Applies the rules to one dialogue at a time, remembering kept ones for duplicates.
pub struct Filter {
    config: FilterConfig,
    /// Compiled argument schemas by their JSON text; the error text for one that does not
    /// compile.
    validators: HashMap<String, Result<jsonschema::Validator, String>>,
    exact: HashMap<[u8; 32], String>,
    hasher: MinHasher,
    index: LshIndex,
    indexed_ids: Vec<String>,
    off_plan_unmeasured: u64,
}

impl Filter {
    /// A filter that has seen no dialogues yet.
    pub fn new(config: FilterConfig) -> Self {
        let near = &config.near_duplicate;
        Filter {
            hasher: MinHasher::new(near.hashes, near.shingle_words, near.seed),
            index: LshIndex::new(near.bands),
            config,
            validators: HashMap::new(),
            exact: HashMap::new(),
            indexed_ids: Vec::new(),
            off_plan_unmeasured: 0,
        }
    }

    /// Every reason `dialogue` is flagged for; an empty list when it passes. A dialogue that
    /// is kept is remembered, so that later copies of it are duplicates. [`Rule::OffPlan`]
    /// is not measured: see [`Filter::check_with`].
    pub fn check(&mut self, dialogue: &Dialogue) -> Vec<Reason> {
        self.check_with(dialogue, None)
    }

    /// [`Filter::check`], measuring [`Rule::OffPlan`] with `embed` (one vector per text, in
    /// order, as all-MiniLM-L6-v2 gives them). Without it, or when it fails (logged), a
    /// dialogue with a plan is counted in [`Filter::off_plan_unmeasured`] instead.
    pub fn check_with(
        &mut self,
        dialogue: &Dialogue,
        embed: Option<&mut EmbedFn<'_>>,
    ) -> Vec<Reason> {
        let mut reasons = Reasons {
            config: &self.config,
            list: Vec::new(),
        };
        check_turns(dialogue, &mut self.validators, &mut reasons);
        check_ending(dialogue, &mut reasons);
        check_links(dialogue, &mut reasons);
        let mut reasons = reasons.list;
        if rejects(&reasons) {
            return reasons;
        }
        let off_plan_level = self.config.level(Rule::OffPlan);
        if off_plan_level != Level::Off && dialogue.plan.is_some() {
            let measured = embed
                .ok_or_else(|| "no embedding function given".to_string())
                .and_then(|embed| plan_similarities(dialogue, embed));
            match measured {
                Ok(similarities) => {
                    let threshold = self.config.off_plan.threshold;
                    for similarity in similarities.iter().filter(|s| s.cosine < threshold) {
                        reasons.push(Reason {
                            rule: Rule::OffPlan,
                            level: off_plan_level,
                            turn: Some(similarity.turn),
                            pointer: Some(format!("/turns/{}/content", similarity.turn)),
                            detail: format!(
                                "cosine {:.3} < {threshold} to plan step {}",
                                similarity.cosine, similarity.step
                            ),
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(dialogue = %dialogue.id, %error, "off-plan not measured");
                    self.off_plan_unmeasured += 1;
                }
            }
            if rejects(&reasons) {
                return reasons;
            }
        }
        let exact_level = self.config.level(Rule::ExactDuplicate);
        let near_level = self.config.level(Rule::NearDuplicate);
        let exact_key = (exact_level != Level::Off).then(|| exact_key(dialogue));
        if let Some(original) = exact_key.as_ref().and_then(|key| self.exact.get(key)) {
            reasons.push(Reason {
                rule: Rule::ExactDuplicate,
                level: exact_level,
                turn: None,
                pointer: None,
                detail: format!("same turns as dialogue {original}"),
            });
        }
        let mut signature = None;
        if near_level != Level::Off && !reasons.iter().any(|r| r.rule == Rule::ExactDuplicate) {
            let sig = self.hasher.signature(&dialogue_words(dialogue));
            let threshold = self.config.near_duplicate.threshold;
            if let Some((position, similarity)) = self.index.find(&sig, threshold) {
                reasons.push(Reason {
                    rule: Rule::NearDuplicate,
                    level: near_level,
                    turn: None,
                    pointer: None,
                    detail: format!(
                        "estimated Jaccard {similarity:.3} ≥ {threshold} with dialogue {}",
                        self.indexed_ids[position]
                    ),
                });
            }
            signature = Some(sig);
        }
        if !rejects(&reasons) {
            if let Some(key) = exact_key {
                self.exact.entry(key).or_insert_with(|| dialogue.id.clone());
            }
            if let Some(sig) = signature {
                self.index.insert(sig);
                self.indexed_ids.push(dialogue.id.clone());
            }
        }
        reasons
    }

    /// Dialogues with a plan, passing the other rules, whose [`Rule::OffPlan`] could not be
    /// measured (no embedding function, or it failed).
    pub fn off_plan_unmeasured(&self) -> u64 {
        self.off_plan_unmeasured
    }
}

/// How close the first user turn of a plan step is to the step's request.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSimilarity {
    /// The user turn's index in `turns`.
    pub turn: usize,
    /// The plan step's number.
    pub step: u32,
    /// The cosine of the two texts' embeddings.
    pub cosine: f32,
}

/// For each tool-call step of the plan, the cosine between its request and the first user
/// turn on it, all embedded in one call to `embed`. Later turns of a step answer the
/// assistant's questions ("for two, please"), and chitchat steps are small talk by nature
/// ("react to the forecast"), so they are not compared. Empty without a plan.
pub fn plan_similarities(
    dialogue: &Dialogue,
    embed: &mut EmbedFn<'_>,
) -> Result<Vec<PlanSimilarity>, String> {
    let Some(plan) = &dialogue.plan else {
        return Ok(Vec::new());
    };
    let mut pairs: Vec<(usize, u32, &str, &str)> = Vec::new();
    let mut previous_step = None;
    for (index, turn) in dialogue.turns.iter().enumerate() {
        let Turn::User(user) = turn else { continue };
        if let Some(number) = user.plan_step
            && previous_step != Some(number)
            && let Some(step) = plan.steps.iter().find(|s| s.number == number)
            && step.kind == StepKind::ToolCall
            && !user.content.trim().is_empty()
        {
            pairs.push((index, number, user.content.as_str(), step.request.as_str()));
        }
        previous_step = user.plan_step;
    }
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<String> = pairs
        .iter()
        .flat_map(|(_, _, user, step)| [user.to_string(), step.to_string()])
        .collect();
    let vectors = embed(&texts)?;
    if vectors.len() != texts.len() {
        return Err(format!(
            "the embedding function returned {} vectors for {} texts",
            vectors.len(),
            texts.len()
        ));
    }
    Ok(pairs
        .iter()
        .zip(vectors.chunks(2))
        .map(|((turn, step, _, _), pair)| PlanSimilarity {
            turn: *turn,
            step: *step,
            cosine: cosine(&pair[0], &pair[1]),
        })
        .collect())
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms =
        a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norms > 0.0 { dot / norms } else { 0.0 }
}

struct Reasons<'a> {
    config: &'a FilterConfig,
    list: Vec<Reason>,
}

impl Reasons<'_> {
    fn on(&self, rule: Rule) -> bool {
        self.config.level(rule) != Level::Off
    }

    fn push(&mut self, rule: Rule, turn: Option<usize>, pointer: Option<String>, detail: String) {
        let level = self.config.level(rule);
        if level != Level::Off {
            self.list.push(Reason {
                rule,
                level,
                turn,
                pointer,
                detail,
            });
        }
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
fn segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn check_turns(
    dialogue: &Dialogue,
    validators: &mut HashMap<String, Result<jsonschema::Validator, String>>,
    reasons: &mut Reasons,
) {
    let tools: HashMap<&str, &Tool> = dialogue
        .tools
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let tool_names: Vec<&str> = dialogue.tools.iter().map(|t| t.name.as_str()).collect();
    let rejected_calls: HashSet<&str> = dialogue
        .turns
        .iter()
        .filter_map(|turn| match turn {
            Turn::Tool(result) if result.is_error => Some(result.tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut evidence = Evidence::default();
    evidence.add_text(&dialogue.context.current_time);
    evidence.add_text(&dialogue.context.location);
    let mut last_user: Option<&str> = None;
    let mut last_assistant: Option<&str> = None;
    let mut copies = Copies::default();
    // Values of this round's results, for the answer that follows them.
    let mut round_values = content::ResultValues::default();
    // The messages of this round's error results, which an answer must not just repeat.
    let mut round_errors: Vec<String> = Vec::new();
    for (index, turn) in dialogue.turns.iter().enumerate() {
        let at = Some(index);
        let content_pointer = || Some(format!("/turns/{index}/content"));
        check_finish(turn, index, reasons);
        match turn {
            Turn::User(user) => {
                let text = user.content.trim();
                if text.is_empty() {
                    reasons.push(
                        Rule::EmptyTurn,
                        at,
                        content_pointer(),
                        "user turn with blank text".into(),
                    );
                } else if last_user == Some(text) {
                    reasons.push(
                        Rule::RepeatedTurn,
                        at,
                        content_pointer(),
                        "same text as the previous user turn".into(),
                    );
                }
                if !text.is_empty() {
                    last_user = Some(text);
                }
                check_placeholder(text, index, reasons);
                if reasons.on(Rule::OutOfRole)
                    && let Some(words) = content::out_of_role(text)
                {
                    reasons.push(
                        Rule::OutOfRole,
                        at,
                        content_pointer(),
                        format!("the user says \"{words}\": words of the assistant or of the instructions"),
                    );
                }
                if reasons.on(Rule::Degenerate)
                    && let Some(why) = copies.degenerate(text, Role::User)
                {
                    reasons.push(Rule::Degenerate, at, content_pointer(), why);
                }
                evidence.add_text(&user.content);
                round_values = content::ResultValues::default();
                round_errors.clear();
            }
            Turn::Assistant(assistant) => {
                let text = assistant
                    .content
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty());
                match text {
                    None if assistant.tool_calls.is_empty() => reasons.push(
                        Rule::EmptyTurn,
                        at,
                        content_pointer(),
                        "assistant turn with neither text nor tool calls".into(),
                    ),
                    Some(text) if last_assistant == Some(text) => reasons.push(
                        Rule::RepeatedTurn,
                        at,
                        content_pointer(),
                        "same text as the previous assistant turn".into(),
                    ),
                    _ => {}
                }
                if text.is_some() {
                    last_assistant = text;
                }
                if let Some(text) = text {
                    check_assistant_text(text, index, &tool_names, reasons);
                    if reasons.on(Rule::Truncated)
                        && assistant.tool_calls.is_empty()
                        && text.ends_with([',', ':', ';'])
                    {
                        reasons.push(
                            Rule::Truncated,
                            at,
                            content_pointer(),
                            "the answer stops mid-sentence, on a comma, colon or semicolon".into(),
                        );
                    }
                    if reasons.on(Rule::Degenerate)
                        && let Some(why) = copies.degenerate(text, Role::Assistant)
                    {
                        reasons.push(Rule::Degenerate, at, content_pointer(), why);
                    }
                    if reasons.on(Rule::Degenerate)
                        && round_errors
                            .iter()
                            .any(|error| content::same_words(text, error))
                    {
                        reasons.push(
                            Rule::Degenerate,
                            at,
                            content_pointer(),
                            "the answer is the tool's error message, word for word".into(),
                        );
                    }
                    if assistant.tool_calls.is_empty() && !round_values.is_empty() {
                        if !round_values.shared_with(text) {
                            reasons.push(
                                Rule::UngroundedAnswer,
                                at,
                                content_pointer(),
                                "the answer repeats no value (number, name, date) of the results before it".into(),
                            );
                        }
                        round_values = content::ResultValues::default();
                    }
                }
                for (number, call) in assistant.tool_calls.iter().enumerate() {
                    let base = format!("/turns/{index}/tool_calls/{number}");
                    if reasons.on(Rule::Placeholder) {
                        check_placeholder_json(
                            &call.arguments,
                            format!("{base}/arguments"),
                            index,
                            reasons,
                        );
                    }
                    if reasons.on(Rule::Degenerate) {
                        check_degenerate_json(
                            &call.arguments,
                            format!("{base}/arguments"),
                            index,
                            reasons,
                        );
                    }
                    let rejected = rejected_calls.contains(call.id.as_str());
                    check_call(
                        call, &base, index, &tools, validators, &evidence, rejected, reasons,
                    );
                }
            }
            Turn::Tool(tool) => {
                if !(tool.content.is_object() || tool.content.is_array()) {
                    let what = match &tool.content {
                        Value::String(s)
                            if serde_json::from_str::<Value>(s)
                                .is_ok_and(|v| v.is_object() || v.is_array()) =>
                        {
                            "a string holding JSON text (not parsed)"
                        }
                        Value::String(_) => "a string",
                        Value::Number(_) => "a number",
                        Value::Bool(_) => "a boolean",
                        _ => "null",
                    };
                    reasons.push(
                        Rule::ResultNotJson,
                        at,
                        content_pointer(),
                        format!(
                            "result of `{}` is {what}, not a JSON object or array",
                            tool.name
                        ),
                    );
                } else if !tool.is_error
                    && reasons.on(Rule::ResultSchema)
                    && let Some(returns) = tools
                        .get(tool.name.as_str())
                        .and_then(|t| t.returns.as_ref())
                {
                    check_result_schema(tool, returns, index, validators, reasons);
                }
                if reasons.on(Rule::Placeholder) {
                    check_placeholder_json(
                        &tool.content,
                        format!("/turns/{index}/content"),
                        index,
                        reasons,
                    );
                }
                if !tool.is_error && reasons.on(Rule::UngroundedAnswer) {
                    round_values.add(&tool.content);
                }
                if tool.is_error {
                    round_errors.extend(content::long_strings(&tool.content));
                }
                evidence.add_json(&tool.content);
            }
        }
    }
}

/// [`Rule::Truncated`]: the turn's generation stopped at the token limit.
fn check_finish(turn: &Turn, index: usize, reasons: &mut Reasons) {
    let (generation, role) = match turn {
        Turn::User(t) => (&t.generation, "user"),
        Turn::Assistant(t) => (&t.generation, "assistant"),
        Turn::Tool(t) => (&t.generation, "tool"),
    };
    if let Some(generation) = generation
        && generation.finish_reason.as_deref() == Some("length")
    {
        reasons.push(
            Rule::Truncated,
            Some(index),
            Some(format!("/turns/{index}/generation/finish_reason")),
            format!(
                "the {role} turn stopped at the token limit ({} tokens)",
                generation.usage.completion_tokens
            ),
        );
    }
}

/// [`Rule::CallInText`], [`Rule::JsonAnswer`] and [`Rule::Placeholder`] on assistant text.
fn check_assistant_text(text: &str, index: usize, tools: &[&str], reasons: &mut Reasons) {
    let pointer = || Some(format!("/turns/{index}/content"));
    let call = reasons
        .on(Rule::CallInText)
        .then(|| content::call_in_text(text, tools))
        .flatten();
    let is_call = call.is_some();
    if let Some(why) = call {
        reasons.push(Rule::CallInText, Some(index), pointer(), why);
    }
    // A call written as JSON is reported once, as a call.
    if !is_call
        && reasons.on(Rule::JsonAnswer)
        && let Some(why) = content::json_answer(text)
    {
        reasons.push(Rule::JsonAnswer, Some(index), pointer(), why);
    }
    check_placeholder(text, index, reasons);
}

fn check_placeholder(text: &str, index: usize, reasons: &mut Reasons) {
    if reasons.on(Rule::Placeholder)
        && let Some(found) = content::placeholder(text)
    {
        reasons.push(
            Rule::Placeholder,
            Some(index),
            Some(format!("/turns/{index}/content")),
            format!("template residue {found:?}"),
        );
    }
}

/// [`Rule::Placeholder`] on the strings of a JSON value; the first one found is reported.
fn check_placeholder_json(value: &Value, pointer: String, index: usize, reasons: &mut Reasons) {
    if let Some((pointer, found)) = find_string(value, pointer, &content::placeholder) {
        reasons.push(
            Rule::Placeholder,
            Some(index),
            Some(pointer),
            format!("template residue {found:?}"),
        );
    }
}

/// [`Rule::Degenerate`] in a call's arguments: a string value dominated by repetition (a
/// small model looping inside an argument: "Beijing to Beijing to Shanghai to ...").
fn check_degenerate_json(value: &Value, pointer: String, index: usize, reasons: &mut Reasons) {
    let repeated = |s: &str| content::repetition(&content::word_hashes(s));
    if let Some((pointer, why)) = find_string(value, pointer, &repeated) {
        reasons.push(
            Rule::Degenerate,
            Some(index),
            Some(pointer),
            format!("argument value: {why}"),
        );
    }
}

/// The first string in `value` (depth first) that `check` finds something in, with its
/// JSON pointer under `pointer`.
fn find_string(
    value: &Value,
    pointer: String,
    check: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, String)> {
    match value {
        Value::String(s) => check(s).map(|found| (pointer, found)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_string(item, format!("{pointer}/{i}"), check)),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            find_string(item, format!("{pointer}/{}", segment(key)), check)
        }),
        _ => None,
    }
}

/// [`Rule::ResultSchema`]: the result against the tool's `returns` schema, the first error
/// reported with how many there are.
fn check_result_schema(
    tool: &toolflow_core::ToolTurn,
    returns: &Value,
    index: usize,
    validators: &mut HashMap<String, Result<jsonschema::Validator, String>>,
    reasons: &mut Reasons,
) {
    let validator = validators
        .entry(returns.to_string())
        .or_insert_with(|| jsonschema::validator_for(returns).map_err(|e| e.to_string()));
    // A return schema that does not compile cannot be held against the result.
    let Ok(validator) = validator else { return };
    let mut errors = validator.iter_errors(&tool.content);
    if let Some(first) = errors.next() {
        let more = errors.count();
        let others = if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        };
        reasons.push(
            Rule::ResultSchema,
            Some(index),
            Some(format!("/turns/{index}/content{}", first.instance_path())),
            format!(
                "result of `{}` breaks its returns schema: {first}{others}",
                tool.name
            ),
        );
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    User,
    Assistant,
}

/// The word trigrams of earlier user and assistant turns, for [`Rule::Degenerate`].
#[derive(Default)]
struct Copies {
    user: Vec<Vec<u64>>,
    assistant: Vec<Vec<u64>>,
}

impl Copies {
    /// Why `text`, of `role`, is degenerate, if it is; remembers it for later turns.
    fn degenerate(&mut self, text: &str, role: Role) -> Option<String> {
        let words = content::word_hashes(text);
        if let Some(why) = content::repetition(&words) {
            return Some(why);
        }
        if words.len() < content::MIN_WORDS {
            return None;
        }
        let grams = content::trigram_set(&words);
        let (own, other, other_name) = match role {
            Role::User => (&mut self.user, &self.assistant, "assistant"),
            Role::Assistant => (&mut self.assistant, &self.user, "user"),
        };
        let copied = other
            .iter()
            .map(|earlier| content::copied_share(&grams, earlier))
            .fold(0.0, f64::max);
        own.push(grams);
        (copied >= content::COPY_SHARE).then(|| {
            format!(
                "{:.0}% of its word trigrams copy an earlier {other_name} turn",
                copied * 100.0
            )
        })
    }
}

/// The first top-level argument whose string value is its parameter's own description (a
/// small model filling the call from the tool's definition: `"date": "Date to list events
/// for, YYYY-MM-DD"`). Descriptions of fewer than three words are left alone: a short one
/// can be a real value.
fn copied_description<'a>(tool: &'a Tool, arguments: &'a Value) -> Option<(&'a str, &'a str)> {
    let properties = tool.parameters.get("properties")?.as_object()?;
    arguments.as_object()?.iter().find_map(|(name, value)| {
        let value = value.as_str()?.trim();
        let description = properties.get(name)?.get("description")?.as_str()?.trim();
        (description.split_whitespace().nth(2).is_some() && value.eq_ignore_ascii_case(description))
            .then_some((name.as_str(), value))
    })
}

/// The top-level arguments the tool does not declare. JSON Schema allows extra properties
/// unless `additionalProperties` forbids them, but a function call names only parameters
/// the tool has: an argument outside `properties` is one the model made up. A schema that
/// lists no `properties`, or that says itself what else it takes (`additionalProperties`,
/// `patternProperties`: the validator then judges), is left alone.
fn undeclared_arguments<'a>(tool: &Tool, arguments: &'a Value) -> Vec<&'a str> {
    let Some(properties) = tool.parameters.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let schema_decides = ["additionalProperties", "patternProperties"]
        .iter()
        .any(|key| tool.parameters.get(key).is_some());
    if schema_decides {
        return Vec::new();
    }
    arguments
        .as_object()
        .into_iter()
        .flat_map(|map| map.keys())
        .filter(|name| !properties.contains_key(name.as_str()))
        .map(String::as_str)
        .collect()
}

// One call's checks need its place, the tools, the cache of compiled schemas, what was said
// before it and how the tool answered it.
#[allow(clippy::too_many_arguments)]
fn check_call(
    call: &toolflow_core::ToolCall,
    base: &str,
    index: usize,
    tools: &HashMap<&str, &Tool>,
    validators: &mut HashMap<String, Result<jsonschema::Validator, String>>,
    evidence: &Evidence,
    rejected_by_tool: bool,
    reasons: &mut Reasons,
) {
    let at = Some(index);
    if let Some(raw) = &call.arguments_raw {
        let shown: String = raw.chars().take(80).collect();
        reasons.push(
            Rule::UnparsedArguments,
            at,
            Some(format!("{base}/arguments_raw")),
            format!("arguments of `{}` are not JSON: {shown:?}", call.name),
        );
        return;
    }
    if !call.arguments.is_object() {
        reasons.push(
            Rule::UnparsedArguments,
            at,
            Some(format!("{base}/arguments")),
            format!(
                "arguments of `{}` are {}, not a JSON object",
                call.name,
                kind(&call.arguments)
            ),
        );
        return;
    }
    let Some(tool) = tools.get(call.name.as_str()) else {
        let mut known: Vec<&str> = tools.keys().copied().collect();
        known.sort_unstable();
        reasons.push(
            Rule::UnknownTool,
            at,
            Some(format!("{base}/name")),
            format!(
                "no tool `{}` among this dialogue's tools ({})",
                call.name,
                known.join(", ")
            ),
        );
        return;
    };
    let arguments_pointer = format!("{base}/arguments");
    if reasons.on(Rule::Placeholder)
        && let Some((name, _)) = copied_description(tool, &call.arguments)
    {
        reasons.push(
            Rule::Placeholder,
            at,
            Some(format!("{arguments_pointer}/{}", segment(name))),
            format!(
                "argument `{name}` of `{}` copies the parameter's description",
                call.name
            ),
        );
    }
    let schema_checked = !rejected_by_tool;
    for required in tool
        .required_parameters()
        .into_iter()
        .filter(|_| schema_checked)
    {
        if call.arguments.get(required).is_none() {
            reasons.push(
                Rule::MissingRequired,
                at,
                Some(arguments_pointer.clone()),
                format!(
                    "required argument `{required}` of `{}` is missing",
                    call.name
                ),
            );
        }
    }
    if schema_checked && reasons.on(Rule::SchemaViolation) {
        let validator = validators
            .entry(tool.parameters.to_string())
            .or_insert_with(|| {
                jsonschema::validator_for(&tool.parameters).map_err(|e| e.to_string())
            });
        match validator {
            Ok(validator) => {
                for error in validator.iter_errors(&call.arguments) {
                    if matches!(
                        error.kind(),
                        jsonschema::error::ValidationErrorKind::Required { .. }
                    ) {
                        continue;
                    }
                    reasons.push(
                        Rule::SchemaViolation,
                        at,
                        Some(format!("{arguments_pointer}{}", error.instance_path())),
                        format!("`{}`: {error}", call.name),
                    );
                }
            }
            Err(error) => reasons.push(
                Rule::SchemaViolation,
                at,
                Some(arguments_pointer.clone()),
                format!(
                    "the parameters schema of `{}` does not compile: {error}",
                    call.name
                ),
            ),
        }
        for name in undeclared_arguments(tool, &call.arguments) {
            reasons.push(
                Rule::SchemaViolation,
                at,
                Some(format!("{arguments_pointer}/{}", segment(name))),
                format!("`{}` has no parameter `{name}`", call.name),
            );
        }
    }
    if reasons.on(Rule::UngroundedArgument) {
        let mut leaves = Vec::new();
        argument_leaves(
            &call.arguments,
            Some(&tool.parameters),
            arguments_pointer,
            &mut leaves,
        );
        for (pointer, value) in leaves {
            if !evidence.grounds(value) {
                reasons.push(
                    Rule::UngroundedArgument,
                    at,
                    Some(pointer),
                    format!(
                        "value {value} of `{}` appears nowhere earlier in the dialogue or context",
                        call.name
                    ),
                );
            }
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The string and number values inside `value` that need grounding, with their pointers.
fn argument_leaves<'a>(
    value: &'a Value,
    schema: Option<&Value>,
    pointer: String,
    out: &mut Vec<(String, &'a Value)>,
) {
    if let Some(schema) = schema {
        if schema.get("enum").is_some() || schema.get("const").is_some() {
            return;
        }
        if schema.get("default") == Some(value) {
            return;
        }
    }
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let sub = schema
                    .and_then(|s| s.get("properties"))
                    .and_then(|p| p.get(key));
                argument_leaves(item, sub, format!("{pointer}/{}", segment(key)), out);
            }
        }
        Value::Array(items) => {
            let sub = schema
                .and_then(|s| s.get("items"))
                .filter(|s| s.is_object());
            for (index, item) in items.iter().enumerate() {
                argument_leaves(item, sub, format!("{pointer}/{index}"), out);
            }
        }
        Value::String(s) if s.trim().is_empty() => {}
        Value::String(_) | Value::Number(_) => out.push((pointer, value)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// The text a call's arguments may be grounded in: lowercased pieces and the numbers in them.
#[derive(Default)]
struct Evidence {
    text: String,
    numbers: Vec<f64>,
}

impl Evidence {
    fn add_text(&mut self, text: &str) {
        self.text.extend(text.chars().flat_map(char::to_lowercase));
        self.text.push('\n');
        self.numbers.extend(numbers_in(text));
    }

    fn add_json(&mut self, value: &Value) {
        match value {
            Value::String(s) => self.add_text(s),
            Value::Number(n) => self.numbers.extend(n.as_f64()),
            Value::Array(items) => items.iter().for_each(|item| self.add_json(item)),
            Value::Object(map) => map.values().for_each(|item| self.add_json(item)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn grounds(&self, value: &Value) -> bool {
        match value {
            Value::String(s) => {
                let needle: String = s.trim().chars().flat_map(char::to_lowercase).collect();
                self.text.contains(&needle)
            }
            Value::Number(n) => n.as_f64().is_some_and(|x| {
                self.numbers
                    .iter()
                    .any(|&y| (x - y).abs() <= 1e-9 * x.abs().max(1.0))
            }),
            _ => true,
        }
    }
}

/// Numbers written in text: digit runs with an optional `.digits` part and a leading `-`
/// when it follows no letter or digit.
fn numbers_in(text: &str) -> Vec<f64> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut start = i;
        if start > 0
            && bytes[start - 1] == b'-'
            && (start < 2 || !bytes[start - 2].is_ascii_alphanumeric())
        {
            start -= 1;
        }
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        found.extend(text[start..i].parse::<f64>().ok());
    }
    found
}

fn check_ending(dialogue: &Dialogue, reasons: &mut Reasons) {
    if reasons.on(Rule::NoToolCall)
        && !dialogue
            .turns
            .iter()
            .any(|t| matches!(t, Turn::Assistant(a) if !a.tool_calls.is_empty()))
    {
        reasons.push(
            Rule::NoToolCall,
            None,
            Some("/turns".into()),
            "no assistant turn calls a tool".into(),
        );
    }
    let mut results = dialogue.turns.iter().filter_map(|turn| match turn {
        Turn::Tool(result) => Some(result),
        _ => None,
    });
    if reasons.on(Rule::NoToolCall)
        && let Some(first) = results.next()
        && first.is_error
        && results.all(|result| result.is_error)
    {
        reasons.push(
            Rule::NoToolCall,
            None,
            Some("/turns".into()),
            "every tool call was answered with an error: none succeeded".into(),
        );
    }
    let last = dialogue.turns.len().checked_sub(1);
    let ending = match dialogue.turns.last() {
        None => Some("the dialogue has no turns"),
        Some(Turn::User(_)) => Some("ends on a user turn the assistant never answered"),
        Some(Turn::Tool(_)) => Some("ends on a tool result the assistant never answered"),
        Some(Turn::Assistant(a)) if !a.tool_calls.is_empty() => {
            Some("ends on a tool call without its result")
        }
        Some(Turn::Assistant(_)) => None,
    };
    if let Some(detail) = ending {
        reasons.push(
            Rule::Incomplete,
            last,
            last.map(|i| format!("/turns/{i}")),
            detail.into(),
        );
    }
    let outcome = &dialogue.outcome;
    if outcome.status != OutcomeStatus::Completed {
        let status = serde_json::to_value(outcome.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        reasons.push(
            Rule::Incomplete,
            None,
            Some("/outcome/status".into()),
            format!(
                "outcome is {} ({})",
                status.unwrap_or_default(),
                outcome.reason.as_deref().unwrap_or("no reason given")
            ),
        );
    }
    if let Some(plan) = &dialogue.plan {
        if (outcome.steps_done as usize) < plan.steps.len() {
            reasons.push(
                Rule::Incomplete,
                None,
                Some("/outcome/steps_done".into()),
                format!(
                    "plan steps left: {} of {} done",
                    outcome.steps_done,
                    plan.steps.len()
                ),
            );
        }
    }
}

/// [`Rule::UnrealisedLink`]: one reason per planned link the dialogue did not realise.
fn check_links(dialogue: &Dialogue, reasons: &mut Reasons) {
    if !reasons.on(Rule::UnrealisedLink) {
        return;
    }
    for (index, link) in dialogue.links.iter().enumerate() {
        if !link.realised {
            reasons.push(
                Rule::UnrealisedLink,
                None,
                Some(format!("/links/{index}")),
                format!(
                    "planned link {}{}{} → {}.{} was not realised: no call of {} passed a value of an earlier {} result as `{}`",
                    link.producer,
                    if link.field.is_empty() { "" } else { "." },
                    link.field,
                    link.consumer,
                    link.parameter,
                    link.consumer,
                    link.producer,
                    link.parameter
                ),
            );
        }
    }
}

/// What makes two dialogues exact duplicates: their turns, generation metadata aside.
fn exact_key(dialogue: &Dialogue) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for turn in &dialogue.turns {
        let mut turn = turn.clone();
        match &mut turn {
            Turn::User(t) => t.generation = None,
            Turn::Assistant(t) => t.generation = None,
            Turn::Tool(t) => t.generation = None,
        }
        let bytes = serde_json::to_vec(&turn).expect("a turn serialises");
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    *hasher.finalize().as_bytes()
}

fn dialogue_words(dialogue: &Dialogue) -> Vec<String> {
    let mut out = Vec::new();
    for turn in &dialogue.turns {
        for piece in text::turn_texts(turn) {
            words::for_each_word(&piece, |w| out.push(w.to_string()));
        }
    }
    out
}

/// Counts per rule for one filter run.
#[derive(Debug, Clone, Serialize)]
pub struct FilterSummary {
    /// The dialogue file filtered.
    pub input: PathBuf,
    /// Dialogues read.
    pub dialogues: u64,
    /// Dialogues kept, with or without warnings.
    pub kept: u64,
    /// Dialogues rejected.
    pub rejected: u64,
    /// Kept dialogues that carry warnings.
    pub kept_with_warnings: u64,
    /// Dialogues with a plan, passing the other rules, that [`Rule::OffPlan`] could not
    /// measure (no embedding function given, or it failed).
    pub off_plan_unmeasured: u64,
    /// Kept dialogues the judge gate could not score (no usable verdict): kept, not judged.
    pub judge_unscored: u64,
    /// In [`Rule::ALL`] order.
    pub rules: Vec<RuleCount>,
}

/// What one rule did over a filter run.
#[derive(Debug, Clone, Serialize)]
pub struct RuleCount {
    /// The rule.
    pub rule: Rule,
    /// The level it ran at.
    pub level: Level,
    /// Dialogues with at least one reason from this rule.
    pub dialogues: u64,
    /// Reasons from this rule, over all dialogues.
    pub reasons: u64,
}

impl FilterSummary {
    fn new(input: &Path, config: &FilterConfig) -> Self {
        FilterSummary {
            input: input.to_path_buf(),
            dialogues: 0,
            kept: 0,
            rejected: 0,
            kept_with_warnings: 0,
            off_plan_unmeasured: 0,
            judge_unscored: 0,
            rules: Rule::ALL
                .iter()
                .map(|&rule| RuleCount {
                    rule,
                    level: config.level(rule),
                    dialogues: 0,
                    reasons: 0,
                })
                .collect(),
        }
    }

    fn count(&mut self, reasons: &[Reason]) {
        self.dialogues += 1;
        if rejects(reasons) {
            self.rejected += 1;
        } else {
            self.kept += 1;
            if !reasons.is_empty() {
                self.kept_with_warnings += 1;
            }
        }
        for count in &mut self.rules {
            let n = reasons.iter().filter(|r| r.rule == count.rule).count() as u64;
            count.reasons += n;
            count.dialogues += u64::from(n > 0);
        }
    }
}

/// Filters the dialogues of `input` (any format [`input::for_each_dialogue`] reads) into
/// `kept` (dialogue records; a JSON Lines input's lines copied unchanged) and `rejected`
/// (`{"reasons": [...], "dialogue": {...}}` per line). Both files are written under a
/// `.partial` name and renamed when complete. [`Rule::OffPlan`] is not measured: see
/// [`filter_file_with`].
pub fn filter_file(
    input: &Path,
    kept: &Path,
    rejected: &Path,
    config: FilterConfig,
) -> Result<FilterSummary, EvalError> {
    filter_file_with(input, kept, rejected, config, None)
}

/// [`filter_file`], measuring [`Rule::OffPlan`] with `embed` (see [`Filter::check_with`]).
pub fn filter_file_with(
    input: &Path,
    kept: &Path,
    rejected: &Path,
    config: FilterConfig,
    mut embed: Option<&mut EmbedFn<'_>>,
) -> Result<FilterSummary, EvalError> {
    let mut summary = FilterSummary::new(input, &config);
    let mut filter = Filter::new(config);
    let mut kept_out = PartialFile::create(kept)?;
    let mut rejected_out = PartialFile::create(rejected)?;
    input::for_each_dialogue(input, |dialogue, raw| {
        let reasons = filter.check_with(&dialogue, embed.as_deref_mut());
        summary.count(&reasons);
        let record = match raw {
            Some(raw) => raw.to_string(),
            None => serde_json::to_string(&dialogue).expect("a dialogue serialises"),
        };
        if rejects(&reasons) {
            let reasons = serde_json::to_string(&reasons).expect("reasons serialise");
            rejected_out.line(&format!("{{\"reasons\":{reasons},\"dialogue\":{record}}}"))
        } else {
            kept_out.line(&record)
        }
    })?;
    kept_out.finish()?;
    rejected_out.finish()?;
    summary.off_plan_unmeasured = filter.off_plan_unmeasured();
    Ok(summary)
}

/// A file written under `NAME.partial` and renamed to `NAME` once complete.
struct PartialFile {
    path: PathBuf,
    partial: PathBuf,
    out: BufWriter<File>,
}

impl PartialFile {
    fn create(path: &Path) -> Result<Self, EvalError> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let out = File::create(&partial).map_err(|source| EvalError::Io {
            path: partial.clone(),
            source,
        })?;
        Ok(PartialFile {
            path: path.to_path_buf(),
            partial,
            out: BufWriter::new(out),
        })
    }

    fn line(&mut self, line: &str) -> Result<(), EvalError> {
        let io = |source| EvalError::Io {
            path: self.partial.clone(),
            source,
        };
        self.out.write_all(line.as_bytes()).map_err(io)?;
        self.out.write_all(b"\n").map_err(io)
    }

    fn finish(self) -> Result<(), EvalError> {
        let io = |source| EvalError::Io {
            path: self.path.clone(),
            source,
        };
        self.out
            .into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)?;
        std::fs::rename(&self.partial, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests;
