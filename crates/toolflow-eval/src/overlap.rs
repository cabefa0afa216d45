//! Train/test overlap of tool sets (paper §7, Table 9): is a training tool leaked from a
//! test set?
//!
//! Two criteria, as the paper states them:
//!
//! - **n-gram**: a token of a tool is contaminated when it lies in a token n-gram longer
//!   than 10 (so n = 11 by default) that also occurs in the other set; a tool is leaked when
//!   more than 10% of the tokens of its JSON are contaminated (the LLaMA-2 rule).
//! - **similarity**: a tool is leaked when the cosine between its embedding and that of any
//!   tool of the other set exceeds 0.9.
//!
//! Choices the paper leaves open, made here:
//!
//! - *A tool's JSON* is [`canonical_json`]: the OpenAI-style definition `name`,
//!   `description`, `parameters` and `returns` (when known), keys sorted at every level,
//!   compact. `source` and `meta` are left out: they record toolflow's provenance, not the
//!   tool, and would make every tool from one importer share n-grams.
//! - *Tokens* are the project's `words-v1` words ([`crate::words`]), not a model's subwords:
//!   JSON punctuation is not a token, so the 11 tokens of an n-gram are 11 words.
//! - *The embedded text* is [`embedding_text`], `"{name}: {description}"`, the template the
//!   graph uses for slots: what a tool is for, without the schema boilerplate that makes any
//!   two tools' JSON look alike to a sentence encoder (and would be truncated anyway).
//! - *Who is leaked*: the brief counts training tools (the share of the training set that
//!   repeats a test tool), and Table 9's API-Bank figures (1.887% = 1/53, 3.774% = 2/53)
//!   read as shares of the test set's tools; both are reported, the same rule each way.
//!
//! n-grams are kept as 64-bit hashes of their tokens' hashes, so an index costs 8 bytes (plus
//! hash-set overhead) per distinct n-gram whatever the tokens' length; a false match needs a
//! 64-bit collision.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value};
use std::path::PathBuf;

use toolflow_core::Tool;
pub use toolflow_core::overlap::{
    LeakCount, LeakedTool, OverlapOptions, OverlapReport, SideSummary, TestSetOverlap,
};

use crate::words;

pub use toolflow_core::overlap::{DEFAULT_COSINE, DEFAULT_COVERAGE, DEFAULT_NGRAM};

/// What [`canonical_json`] keeps of a tool, recorded in reports.
pub const TOOL_JSON_RULE: &str = "{name, description, parameters, returns (when not null)}, keys sorted at every level, compact; source and meta left out";
/// What [`embedding_text`] embeds, recorded in reports.
pub const EMBEDDED_TEXT_RULE: &str = "\"{name}: {description}\"";

/// Why an overlap check could not run.
#[derive(Debug, thiserror::Error)]
pub enum OverlapError {
    /// The embedding function failed.
    #[error("embedding {what}: {message}")]
    Embedding {
        /// Whose tools were being embedded: the training tools or a named test set's.
        what: String,
        /// What the embedding function said.
        message: String,
    },
    /// The embedding function returned a different number of vectors than texts.
    #[error("embedding {what}: {got} vectors for {expected} texts")]
    EmbeddingCount {
        /// Whose tools were being embedded: the training tools or a named test set's.
        what: String,
        /// Texts sent.
        expected: usize,
        /// Vectors returned.
        got: usize,
    },
    /// An n-gram length of 0 was asked for.
    #[error("the n-gram length must be at least 1")]
    ZeroNgram,
}

/// Texts to vectors, in order: the caller's sentence encoder (any dimension, the same for
/// every call), or a message saying why it failed.
pub type Embed<'a> = dyn FnMut(&[String]) -> Result<Vec<Vec<f32>>, String> + 'a;

/// The tool's JSON string as the n-gram rule reads it; see [`TOOL_JSON_RULE`].
pub fn canonical_json(tool: &Tool) -> String {
    let mut object = Map::new();
    object.insert("description".into(), tool.description.clone().into());
    object.insert("name".into(), tool.name.clone().into());
    object.insert("parameters".into(), sorted(&tool.parameters));
    if let Some(returns) = tool.returns.as_ref().filter(|returns| !returns.is_null()) {
        object.insert("returns".into(), sorted(returns));
    }
    Value::Object(object).to_string()
}

/// `value` with the keys of every object in sorted order (the workspace's serde_json keeps
/// insertion order, so sorting is explicit).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|key| (key.clone(), sorted(&object[key])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The tokens of the tool's JSON string, in order.
pub fn tool_tokens(tool: &Tool) -> Vec<String> {
    words::words(&canonical_json(tool))
}

/// The text embedded for the similarity rule; see [`EMBEDDED_TEXT_RULE`].
pub fn embedding_text(tool: &Tool) -> String {
    format!("{}: {}", tool.name, tool.description)
}

fn token_hashes(tool: &Tool) -> Vec<u64> {
    let mut hashes = Vec::new();
    words::for_each_word(&canonical_json(tool), |word| {
        let mut hasher = DefaultHasher::new();
        word.hash(&mut hasher);
        hashes.push(hasher.finish());
    });
    hashes
}

fn ngram_hash(window: &[u64]) -> u64 {
    let mut hasher = DefaultHasher::new();
    window.hash(&mut hasher);
    hasher.finish()
}

/// The distinct n-grams of a set of token sequences, as hashes.
#[derive(Debug, Clone)]
pub struct NgramIndex {
    n: usize,
    ngrams: HashSet<u64>,
}

impl NgramIndex {
    /// An empty index of `n`-grams; an error when `n` is 0.
    pub fn new(n: usize) -> Result<NgramIndex, OverlapError> {
        if n == 0 {
            return Err(OverlapError::ZeroNgram);
        }
        Ok(NgramIndex {
            n,
            ngrams: HashSet::new(),
        })
    }

    /// The index of every tool's JSON tokens.
    pub fn of_tools(n: usize, tools: &[Tool]) -> Result<NgramIndex, OverlapError> {
        let mut index = NgramIndex::new(n)?;
        for tool in tools {
            index.add_hashes(&token_hashes(tool));
        }
        Ok(index)
    }

    /// Adds the n-grams of one token sequence (none when it is shorter than n).
    pub fn add_tokens<S: AsRef<str>>(&mut self, tokens: &[S]) {
        self.add_hashes(&hash_tokens(tokens));
    }

    fn add_hashes(&mut self, hashes: &[u64]) {
        self.ngrams.extend(hashes.windows(self.n).map(ngram_hash));
    }

    /// Distinct n-grams held.
    pub fn len(&self) -> usize {
        self.ngrams.len()
    }

    /// Whether it holds no n-gram.
    pub fn is_empty(&self) -> bool {
        self.ngrams.is_empty()
    }

    /// How many of `tokens` lie in at least one n-gram of `tokens` that is in the index.
    pub fn contaminated_tokens<S: AsRef<str>>(&self, tokens: &[S]) -> usize {
        self.contaminated(&hash_tokens(tokens))
    }

    /// Contaminated tokens over all tokens; 0 for an empty sequence.
    pub fn coverage<S: AsRef<str>>(&self, tokens: &[S]) -> f64 {
        share(self.contaminated_tokens(tokens), tokens.len())
    }

    fn contaminated(&self, hashes: &[u64]) -> usize {
        let mut count = 0;
        // Tokens before `covered_until` are already counted: overlapping windows count once.
        let mut covered_until = 0;
        for (start, window) in hashes.windows(self.n).enumerate() {
            if self.ngrams.contains(&ngram_hash(window)) {
                let end = start + self.n;
                count += end - covered_until.max(start);
                covered_until = end;
            }
        }
        count
    }

    fn tool_coverage(&self, tool: &Tool) -> f64 {
        let hashes = token_hashes(tool);
        share(self.contaminated(&hashes), hashes.len())
    }
}

fn hash_tokens<S: AsRef<str>>(tokens: &[S]) -> Vec<u64> {
    tokens
        .iter()
        .map(|token| {
            let mut hasher = DefaultHasher::new();
            token.as_ref().hash(&mut hasher);
            hasher.finish()
        })
        .collect()
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One test set: a label and its tools.
#[derive(Debug, Clone)]
pub struct TestSet {
    /// How the set is named in the report.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// Its tools.
    pub tools: Vec<Tool>,
}

fn leak_count(leaked: usize, tools: usize) -> LeakCount {
    LeakCount {
        leaked,
        percent: 100.0 * share(leaked, tools),
    }
}

/// Per-tool measures of one side against the other.
struct Side {
    coverage: Vec<f64>,
    best: Vec<BestMatch>,
}

/// The index of the other side's closest tool, and the cosine to it.
type BestMatch = (usize, f32);

/// Measures `train` against every test set. `embed` maps texts to vectors (any length, the
/// same for all); it is called once for the training tools and once per test set.
pub fn overlap(
    train: &[Tool],
    tests: &[TestSet],
    options: &OverlapOptions,
    embed: &mut Embed,
) -> Result<OverlapReport, OverlapError> {
    let train_index = NgramIndex::of_tools(options.ngram, train)?;
    let train_vectors = embed_tools(train, "the training tools", embed)?;
    let mut test_sets = Vec::with_capacity(tests.len());
    for test in tests {
        let test_index = NgramIndex::of_tools(options.ngram, &test.tools)?;
        let test_vectors = embed_tools(&test.tools, &format!("test set {}", test.name), embed)?;
        let (train_best, test_best) = best_matches(&train_vectors, &test_vectors);
        let train_side = Side {
            coverage: train.iter().map(|t| test_index.tool_coverage(t)).collect(),
            best: train_best,
        };
        let test_side = Side {
            coverage: test
                .tools
                .iter()
                .map(|t| train_index.tool_coverage(t))
                .collect(),
            best: test_best,
        };
        let (train_summary, leaked) = judge(train, &test.tools, &train_side, options);
        let (test_summary, leaked_test_tools) = judge(&test.tools, train, &test_side, options);
        tracing::info!(
            test_set = %test.name,
            test_ngrams = test_index.len(),
            train_leaked = train_summary.either.leaked,
            test_leaked = test_summary.either.leaked,
            "overlap measured"
        );
        test_sets.push(TestSetOverlap {
            name: test.name.clone(),
            train: train_summary,
            test: test_summary,
            leaked,
            leaked_test_tools,
            path: test.path.clone(),
        });
    }
    Ok(OverlapReport {
        options: *options,
        tokenizer: words::TOKENIZER.into(),
        tool_json: TOOL_JSON_RULE.into(),
        embedded_text: EMBEDDED_TEXT_RULE.into(),
        train_tools: train.len(),
        test_sets,
    })
}

fn judge(
    tools: &[Tool],
    others: &[Tool],
    side: &Side,
    options: &OverlapOptions,
) -> (SideSummary, Vec<LeakedTool>) {
    let mut leaked = Vec::new();
    let (mut by_ngram, mut by_similarity) = (0, 0);
    for (index, tool) in tools.iter().enumerate() {
        let coverage = side.coverage[index];
        let (best, cosine) = side.best[index];
        let ngram_leak = coverage > options.coverage;
        let similarity_leak = f64::from(cosine) > options.cosine;
        by_ngram += usize::from(ngram_leak);
        by_similarity += usize::from(similarity_leak);
        if ngram_leak || similarity_leak {
            leaked.push(LeakedTool {
                name: tool.name.clone(),
                ngram_coverage: coverage,
                best_match: others.get(best).map(|t| t.name.clone()).unwrap_or_default(),
                cosine,
                by_ngram: ngram_leak,
                by_similarity: similarity_leak,
            });
        }
    }
    let summary = SideSummary {
        tools: tools.len(),
        ngram: leak_count(by_ngram, tools.len()),
        similarity: leak_count(by_similarity, tools.len()),
        either: leak_count(leaked.len(), tools.len()),
        max_ngram_coverage: side.coverage.iter().copied().fold(0.0, f64::max),
        max_cosine: side
            .best
            .iter()
            .map(|&(_, cosine)| cosine)
            .fold(-1.0, f32::max),
    };
    (summary, leaked)
}

/// Unit vectors of the tools' [`embedding_text`]s.
fn embed_tools(
    tools: &[Tool],
    what: &str,
    embed: &mut Embed,
) -> Result<Vec<Vec<f32>>, OverlapError> {
    if tools.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<String> = tools.iter().map(embedding_text).collect();
    let vectors = embed(&texts).map_err(|message| OverlapError::Embedding {
        what: what.to_string(),
        message,
    })?;
    if vectors.len() != texts.len() {
        return Err(OverlapError::EmbeddingCount {
            what: what.to_string(),
            expected: texts.len(),
            got: vectors.len(),
        });
    }
    Ok(vectors.into_iter().map(unit).collect())
}

/// `vector` scaled to length 1 (a zero vector stays zero, so its cosines are 0).
fn unit(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// For each row of `a` the best column of `b` and its cosine, and the same for `b`'s rows
/// against `a`; `(0, -1.0)` when the other side is empty. Unit vectors in, so a dot product
/// is the cosine.
fn best_matches(a: &[Vec<f32>], b: &[Vec<f32>]) -> (Vec<BestMatch>, Vec<BestMatch>) {
    let mut best_a = vec![(0, -1.0f32); a.len()];
    let mut best_b = vec![(0, -1.0f32); b.len()];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            let cosine: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            if cosine > best_a[i].1 {
                best_a[i] = (j, cosine);
            }
            if cosine > best_b[j].1 {
                best_b[j] = (i, cosine);
            }
        }
    }
    (best_a, best_b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, description: &str) -> Tool {
        serde_json::from_value(json!({"name": name, "description": description})).unwrap()
    }

    /// `count` distinct words `{prefix}0`, `{prefix}1`, …
    fn distinct_words(prefix: &str, count: usize) -> Vec<String> {
        (0..count).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_provenance() {
        let t: Tool = serde_json::from_value(json!({
            "name": "weather", "description": "Get it",
            "parameters": {"type": "object", "properties": {"z": {"type": "string"}, "a": {"type": "integer"}}},
            "returns": null, "source": "openai", "meta": {"origin": "x.json"}
        }))
        .unwrap();
        assert_eq!(
            canonical_json(&t),
            r#"{"description":"Get it","name":"weather","parameters":{"properties":{"a":{"type":"integer"},"z":{"type":"string"}},"type":"object"}}"#
        );
        assert_eq!(
            tool_tokens(&t),
            [
                "description",
                "get",
                "it",
                "name",
                "weather",
                "parameters",
                "properties",
                "a",
                "type",
                "integer",
                "z",
                "type",
                "string",
                "type",
                "object"
            ]
        );
        assert_eq!(embedding_text(&t), "weather: Get it");
    }

    #[test]
    fn overlapping_windows_count_each_token_once() {
        let mut index = NgramIndex::new(3).unwrap();
        index.add_tokens(&["a", "b", "c", "d", "x"]);
        // abc and bcd are shared: a, b, c, d contaminated; e and f not.
        assert_eq!(
            index.contaminated_tokens(&["a", "b", "c", "d", "e", "f"]),
            4
        );
        // Two separate shared runs.
        assert_eq!(
            index.contaminated_tokens(&["a", "b", "c", "q", "b", "c", "d"]),
            6
        );
        assert_eq!(index.contaminated_tokens(&["a", "b"]), 0);
        assert_eq!(index.coverage::<&str>(&[]), 0.0);
    }

    #[test]
    fn a_shared_run_of_ten_tokens_is_not_an_11_gram() {
        let shared = distinct_words("s", 10);
        let mut test = distinct_words("t", 20);
        test.splice(5..5, shared.iter().cloned());
        let mut index = NgramIndex::new(DEFAULT_NGRAM).unwrap();
        index.add_tokens(&test);
        let mut train = distinct_words("r", 30);
        train.splice(7..7, shared.iter().cloned());
        assert_eq!(index.contaminated_tokens(&train), 0);
        // One more shared token makes one 11-gram: exactly 11 tokens contaminated.
        let mut test = test.clone();
        test.insert(15, "s10".into());
        let mut train = train.clone();
        train.insert(17, "s10".into());
        let mut index = NgramIndex::new(DEFAULT_NGRAM).unwrap();
        index.add_tokens(&test);
        assert_eq!(index.contaminated_tokens(&train), 11);
    }

    /// A tool whose JSON is `description <words> name <name> parameters properties type
    /// object`: 7 tokens plus its description's words.
    fn tool_with_words(name: &str, words: &[String]) -> Tool {
        tool(name, &words.join(" "))
    }

    /// One-hot vectors, a new axis for every text embedded: every cosine is 0.
    fn orthogonal_embedding() -> impl FnMut(&[String]) -> Result<Vec<Vec<f32>>, String> {
        let mut next_axis = 0;
        move |texts: &[String]| {
            Ok(texts
                .iter()
                .map(|_| {
                    let mut vector = vec![0.0; 64];
                    vector[next_axis] = 1.0;
                    next_axis += 1;
                    vector
                })
                .collect())
        }
    }

    #[test]
    fn coverage_just_above_and_just_below_ten_percent() {
        let shared = distinct_words("shared", 11);
        let mut test_words = distinct_words("test", 30);
        test_words.splice(10..10, shared.iter().cloned());
        let test = TestSet {
            path: "test.json".into(),
            name: "t".into(),
            tools: vec![tool_with_words("other", &test_words)],
        };
        // 93 description words + 7 JSON tokens = 100 tokens, 11 contaminated: 11% > 10%.
        let mut above = distinct_words("a", 82);
        above.splice(40..40, shared.iter().cloned());
        // 103 + 7 = 110 tokens, 11 contaminated: exactly 10%, not more.
        let mut at = distinct_words("b", 92);
        at.splice(40..40, shared.iter().cloned());
        // 114 + 7 = 121 tokens: 9.09%.
        let mut below = distinct_words("c", 103);
        below.splice(40..40, shared.iter().cloned());
        let train = vec![
            tool_with_words("above", &above),
            tool_with_words("at", &at),
            tool_with_words("below", &below),
        ];
        assert_eq!(tool_tokens(&train[0]).len(), 100);
        assert_eq!(tool_tokens(&train[1]).len(), 110);
        assert_eq!(tool_tokens(&train[2]).len(), 121);

        let report = overlap(
            &train,
            &[test],
            &OverlapOptions::default(),
            &mut orthogonal_embedding(),
        )
        .unwrap();
        let set = &report.test_sets[0];
        assert_eq!(set.leaked.len(), 1);
        let leaked = &set.leaked[0];
        assert_eq!(leaked.name, "above");
        assert!((leaked.ngram_coverage - 0.11).abs() < 1e-12);
        assert!(leaked.by_ngram && !leaked.by_similarity);
        // One of three training tools: 33.3%.
        assert_eq!(set.train.ngram.leaked, 1);
        assert!((set.train.ngram.percent - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(set.train.similarity.leaked, 0);
        assert_eq!(set.train.either.leaked, 1);
        assert!((set.train.max_ngram_coverage - 0.11).abs() < 1e-12);
        // The test tool: 41 + 7 = 48 tokens, 11 contaminated (22.9%): leaked into training.
        assert_eq!(
            set.test.ngram,
            LeakCount {
                leaked: 1,
                percent: 100.0
            }
        );
        assert!((set.leaked_test_tools[0].ngram_coverage - 11.0 / 48.0).abs() < 1e-12);
    }

    #[test]
    fn cosine_above_the_threshold_leaks() {
        let train = vec![tool("a", "x"), tool("b", "y")];
        let test = TestSet {
            path: "test.json".into(),
            name: "t".into(),
            tools: vec![tool("p", "u"), tool("q", "v")],
        };
        // a·p = 0.95, b·q = 0.85, every other pair 0.
        let mut embed = |texts: &[String]| -> Result<Vec<Vec<f32>>, String> {
            let along = |cosine: f32, axis: usize| {
                let mut v = vec![0.0; 4];
                v[axis] = cosine;
                v[axis + 1] = (1.0 - cosine * cosine).sqrt();
                v
            };
            let e = |x: f32, y: f32, z: f32, w: f32| vec![x, y, z, w];
            Ok(match texts[0].as_str() {
                "a: x" => vec![e(1.0, 0.0, 0.0, 0.0), e(0.0, 0.0, 1.0, 0.0)],
                _ => vec![along(0.95, 0), along(0.85, 2)],
            })
        };
        let report = overlap(&train, &[test], &OverlapOptions::default(), &mut embed).unwrap();
        let set = &report.test_sets[0];
        assert_eq!(set.leaked.len(), 1);
        assert_eq!(set.leaked[0].name, "a");
        assert_eq!(set.leaked[0].best_match, "p");
        assert!((set.leaked[0].cosine - 0.95).abs() < 1e-6);
        assert!(set.leaked[0].by_similarity && !set.leaked[0].by_ngram);
        assert_eq!(
            set.train.similarity,
            LeakCount {
                leaked: 1,
                percent: 50.0
            }
        );
        assert_eq!(set.train.ngram.leaked, 0);
        assert_eq!(
            set.test.similarity,
            LeakCount {
                leaked: 1,
                percent: 50.0
            }
        );
        assert_eq!(set.leaked_test_tools[0].name, "p");
        assert_eq!(set.leaked_test_tools[0].best_match, "a");
        assert!((set.train.max_cosine - 0.95).abs() < 1e-6);
        assert_eq!(set.train.max_ngram_coverage, 0.0);
    }

    #[test]
    fn embedding_errors_name_the_set() {
        let mut failing =
            |_: &[String]| -> Result<Vec<Vec<f32>>, String> { Err("no model".into()) };
        let error = overlap(
            &[tool("a", "")],
            &[],
            &OverlapOptions::default(),
            &mut failing,
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "embedding the training tools: no model");
        let mut short = |_: &[String]| -> Result<Vec<Vec<f32>>, String> { Ok(vec![]) };
        let error = overlap(
            &[tool("a", "")],
            &[],
            &OverlapOptions::default(),
            &mut short,
        )
        .unwrap_err();
        assert!(matches!(
            error,
            OverlapError::EmbeddingCount {
                expected: 1,
                got: 0,
                ..
            }
        ));
    }
}
