//! Coherence between consecutive rounds (paper §4.2 and appendix A.1, after Dziri et al.
//! 2019): SS, the semantic similarity, and EnR, the entailment ratio.
//!
//! Definitions:
//! - A *round* is a user turn and everything up to the next user turn. Its *request* is the
//!   user's text; its *response* is the last assistant text of the round, i.e. the final
//!   reply the user read before speaking again (empty when the round has none, e.g. a
//!   dialogue cut off after a call).
//! - Tool calls and tool results are left out: they are JSON, not language, the final reply
//!   already puts their outcome into words, and leaving them out is what lets synthetic
//!   records be compared with human datasets whose service calls are annotations (the same
//!   choice as the diversity measures, see [`crate::text`]).
//! - A *pair* joins, within one dialogue, the previous round's request and response (the
//!   *premise*: request, a space, response) to the current round's request (the
//!   *hypothesis*). A dialogue of n rounds gives n − 1 pairs.
//! - **SS** is the cosine similarity of the premise's and the hypothesis's sentence
//!   embeddings, averaged over every pair of the dataset (a plain mean, so long dialogues
//!   weigh more, as in the paper's per-turn measure). The paper prints it ×100.
//! - **EnR** is the share of pairs that an NLI cross-encoder labels `entailment`.
//!
//! The models stay outside this crate: SS takes an embedding function and EnR a pair
//! classifier, so that the binary supplies the real ones and tests supply fixed ones.

use std::collections::HashMap;

use serde::Serialize;
use toolflow_core::metrics::{CoherenceMetrics, EnrMeasure, SsMeasure};
use toolflow_core::{Dialogue, Turn};

/// Embeds a batch of texts: one vector per text, in order.
pub type EmbedFn<'a> = dyn FnMut(&[String]) -> Result<Vec<Vec<f32>>, String> + 'a;

/// Says, for each (premise, hypothesis) pair in order, whether the premise entails it.
pub type EntailFn<'a> = dyn FnMut(&[Pair]) -> Result<Vec<bool>, String> + 'a;

/// Why SS or EnR could not be measured: the model failed or answered the wrong shape.
#[derive(Debug, thiserror::Error)]
pub enum CoherenceError {
    /// The embedding function returned an error, given here.
    #[error("SS: the embedding model failed: {0}")]
    Embed(String),
    /// The embedding function returned a different number of vectors than texts.
    #[error("SS: the embedding model returned {got} vectors for {expected} texts")]
    EmbedCount {
        /// Texts sent.
        expected: usize,
        /// Vectors returned.
        got: usize,
    },
    /// Two vectors of a pair differ in length, so they have no cosine.
    #[error("SS: vectors of different lengths ({0} and {1})")]
    EmbedDimensions(usize, usize),
    /// The entailment function returned an error, given here.
    #[error("EnR: the NLI model failed: {0}")]
    Classify(String),
    /// The entailment function returned a different number of labels than pairs.
    #[error("EnR: the NLI model returned {got} labels for {expected} pairs")]
    ClassifyCount {
        /// Pairs sent.
        expected: usize,
        /// Labels returned.
        got: usize,
    },
}

/// One user turn and the reply it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round<'a> {
    /// The user turn's text.
    pub request: &'a str,
    /// The last assistant text before the next user turn; empty when there is none.
    pub response: &'a str,
}

/// The previous round (premise) and the current request (hypothesis).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pair {
    /// The previous round's request, a space, and its response (just the request when it
    /// got none).
    pub premise: String,
    /// The current round's request.
    pub hypothesis: String,
}

/// The rounds of one dialogue, in order; turns before the first user turn belong to none.
pub fn rounds(dialogue: &Dialogue) -> Vec<Round<'_>> {
    let mut rounds: Vec<Round> = Vec::new();
    for turn in &dialogue.turns {
        match turn {
            Turn::User(user) => rounds.push(Round {
                request: &user.content,
                response: "",
            }),
            Turn::Assistant(assistant) => {
                if let (Some(round), Some(text)) = (rounds.last_mut(), &assistant.content)
                    && !text.trim().is_empty()
                {
                    round.response = text;
                }
            }
            Turn::Tool(_) => {}
        }
    }
    rounds
}

/// The pairs of consecutive rounds of one dialogue.
pub fn pairs(dialogue: &Dialogue) -> Vec<Pair> {
    rounds(dialogue)
        .windows(2)
        .map(|window| {
            let (previous, current) = (&window[0], &window[1]);
            let premise = if previous.response.is_empty() {
                previous.request.to_string()
            } else {
                format!("{} {}", previous.request, previous.response)
            };
            Pair {
                premise,
                hypothesis: current.request.to_string(),
            }
        })
        .collect()
}

/// SS over a dataset's pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SemanticSimilarity {
    /// The mean cosine; `None` when there are no pairs.
    pub value: Option<f64>,
    /// Pairs averaged over.
    pub pairs: u64,
    /// Distinct texts actually embedded.
    pub texts: u64,
}

/// Embeds every distinct premise and hypothesis in one call and averages the pairs' cosines.
pub fn semantic_similarity(
    pairs: &[Pair],
    embed: &mut EmbedFn<'_>,
) -> Result<SemanticSimilarity, CoherenceError> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut texts: Vec<String> = Vec::new();
    let mut slots: Vec<(usize, usize)> = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let premise = text_slot(&pair.premise, &mut index, &mut texts);
        let hypothesis = text_slot(&pair.hypothesis, &mut index, &mut texts);
        slots.push((premise, hypothesis));
    }
    if pairs.is_empty() {
        return Ok(SemanticSimilarity {
            value: None,
            pairs: 0,
            texts: 0,
        });
    }
    let vectors = embed(&texts).map_err(CoherenceError::Embed)?;
    if vectors.len() != texts.len() {
        return Err(CoherenceError::EmbedCount {
            expected: texts.len(),
            got: vectors.len(),
        });
    }
    let mut sum = 0.0f64;
    for &(premise, hypothesis) in &slots {
        sum += cosine(&vectors[premise], &vectors[hypothesis])?;
    }
    Ok(SemanticSimilarity {
        value: Some(sum / pairs.len() as f64),
        pairs: pairs.len() as u64,
        texts: texts.len() as u64,
    })
}

/// Where `text` is (or is now) in `texts`: each distinct text is embedded once.
fn text_slot<'p>(
    text: &'p str,
    index: &mut HashMap<&'p str, usize>,
    texts: &mut Vec<String>,
) -> usize {
    *index.entry(text).or_insert_with(|| {
        texts.push(text.to_string());
        texts.len() - 1
    })
}

/// Cosine similarity, computed in f64; 0 when either vector is all zeros.
fn cosine(a: &[f32], b: &[f32]) -> Result<f64, CoherenceError> {
    if a.len() != b.len() {
        return Err(CoherenceError::EmbedDimensions(a.len(), b.len()));
    }
    let (mut dot, mut norm_a, mut norm_b) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    if norm_a == 0.0 || norm_b == 0.0 {
        return Ok(0.0);
    }
    Ok(dot / (norm_a.sqrt() * norm_b.sqrt()))
}

/// EnR over a dataset's pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntailmentRatio {
    /// Entailed pairs over pairs; `None` when there are no pairs.
    pub value: Option<f64>,
    /// Pairs classified, counting repeats.
    pub pairs: u64,
    /// Of those, the ones labelled `entailment`.
    pub entailed: u64,
}

/// Classifies every distinct pair in one call and counts the entailed ones over all pairs.
pub fn entailment_ratio(
    pairs: &[Pair],
    entails: &mut EntailFn<'_>,
) -> Result<EntailmentRatio, CoherenceError> {
    let mut index: HashMap<&Pair, usize> = HashMap::new();
    let mut distinct: Vec<Pair> = Vec::new();
    let slots: Vec<usize> = pairs
        .iter()
        .map(|pair| {
            *index.entry(pair).or_insert_with(|| {
                distinct.push(pair.clone());
                distinct.len() - 1
            })
        })
        .collect();
    if pairs.is_empty() {
        return Ok(EntailmentRatio {
            value: None,
            pairs: 0,
            entailed: 0,
        });
    }
    let labels = entails(&distinct).map_err(CoherenceError::Classify)?;
    if labels.len() != distinct.len() {
        return Err(CoherenceError::ClassifyCount {
            expected: distinct.len(),
            got: labels.len(),
        });
    }
    let entailed = slots.iter().filter(|&&at| labels[at]).count() as u64;
    Ok(EntailmentRatio {
        value: Some(entailed as f64 / pairs.len() as f64),
        pairs: pairs.len() as u64,
        entailed,
    })
}

/// The NLI model EnR is measured with, or why there is none.
pub enum Nli<'a> {
    /// A model to classify the pairs with.
    Model {
        /// The checkpoint's name or directory, recorded next to the value.
        name: String,
        /// The classifier itself.
        entails: &'a mut EntailFn<'a>,
    },
    /// What was tried; EnR is then reported as unavailable with this note.
    Unavailable(String),
}

/// The models coherence is measured with.
pub struct Coherence<'a> {
    /// The sentence embedding model's name, recorded next to SS.
    pub embed_model: String,
    /// The sentence embedding function SS is measured with.
    pub embed: &'a mut EmbedFn<'a>,
    /// The NLI model EnR is measured with, or why there is none.
    pub nli: Nli<'a>,
}

/// Gathers the pairs of a dataset one dialogue at a time.
#[derive(Debug, Default)]
pub struct CoherencePairs {
    pairs: Vec<Pair>,
}

impl CoherencePairs {
    /// Adds the pairs of `dialogue`.
    pub fn add(&mut self, dialogue: &Dialogue) {
        self.pairs.extend(pairs(dialogue));
    }

    /// Every pair gathered so far, in order.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    /// SS and EnR for `metrics.json`: each a `value` with its `pairs` and `model`, or no
    /// value with a note when it cannot be measured.
    pub fn measure(
        &self,
        coherence: &mut Coherence<'_>,
    ) -> Result<CoherenceMetrics, CoherenceError> {
        let ss = semantic_similarity(&self.pairs, coherence.embed)?;
        let ss = SsMeasure {
            value: ss.value,
            pairs: Some(ss.pairs),
            texts: Some(ss.texts),
            model: Some(coherence.embed_model.clone()),
            note: None,
        };
        let enr = match &mut coherence.nli {
            Nli::Model { name, entails } => {
                let enr = entailment_ratio(&self.pairs, *entails)?;
                EnrMeasure {
                    value: enr.value,
                    pairs: Some(enr.pairs),
                    entailed: Some(enr.entailed),
                    model: Some(name.clone()),
                    note: None,
                }
            }
            Nli::Unavailable(why) => EnrMeasure::unavailable(&format!("unavailable: {why}")),
        };
        Ok(CoherenceMetrics { ss, enr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn sgd(turns: &[(&str, &str)]) -> Dialogue {
        let turns: Vec<Value> = turns
            .iter()
            .map(|(speaker, utterance)| json!({"speaker": speaker, "utterance": utterance, "frames": []}))
            .collect();
        crate::sgd::convert(
            json!({"dialogue_id": "1_0", "services": [], "turns": turns}),
            0,
        )
        .expect("a valid SGD dialogue")
    }

    #[test]
    fn rounds_take_the_last_assistant_text() {
        let dialogue = sgd(&[
            ("USER", "Find me a flight."),
            ("SYSTEM", "Where to?"),
            ("SYSTEM", "And when?"),
            ("USER", "Paris, Monday."),
        ]);
        let rounds = rounds(&dialogue);
        assert_eq!(
            rounds,
            [
                Round {
                    request: "Find me a flight.",
                    response: "And when?"
                },
                Round {
                    request: "Paris, Monday.",
                    response: ""
                },
            ]
        );
        assert_eq!(
            pairs(&dialogue),
            [Pair {
                premise: "Find me a flight. And when?".into(),
                hypothesis: "Paris, Monday.".into()
            }]
        );
    }

    /// Two dialogues whose pairs are ("a b", "c"), ("c d", "e") and ("a b", "f").
    fn fixture() -> CoherencePairs {
        let mut pairs = CoherencePairs::default();
        pairs.add(&sgd(&[
            ("USER", "a"),
            ("SYSTEM", "b"),
            ("USER", "c"),
            ("SYSTEM", "d"),
            ("USER", "e"),
        ]));
        pairs.add(&sgd(&[("USER", "a"), ("SYSTEM", "b"), ("USER", "f")]));
        pairs
    }

    fn fixed_vector(text: &str) -> Vec<f32> {
        match text {
            "a b" | "c" => vec![1.0, 0.0],
            "c d" => vec![3.0, 4.0],
            "e" => vec![4.0, 3.0],
            "f" => vec![0.0, 2.0],
            other => panic!("unexpected text {other:?}"),
        }
    }

    #[test]
    fn ss_by_hand() {
        let pairs = fixture();
        let mut calls = Vec::new();
        let mut embed = |texts: &[String]| {
            calls.push(texts.to_vec());
            Ok(texts.iter().map(|t| fixed_vector(t)).collect())
        };
        let ss = semantic_similarity(pairs.pairs(), &mut embed).unwrap();
        // cos("a b", "c") = 1; cos([3,4], [4,3]) = 24/25; cos("a b", "f") = 0.
        let expected = (1.0 + 24.0 / 25.0 + 0.0) / 3.0;
        assert!((ss.value.unwrap() - expected).abs() < 1e-12, "{ss:?}");
        assert_eq!((ss.pairs, ss.texts), (3, 5));
        // One batch, each distinct text once.
        assert_eq!(calls, [["a b", "c", "c d", "e", "f"]]);
    }

    #[test]
    fn enr_by_hand_and_the_json_shape() {
        let pairs = fixture();
        let mut embed = |texts: &[String]| Ok(texts.iter().map(|t| fixed_vector(t)).collect());
        let mut batches = Vec::new();
        let mut entails = |pairs: &[Pair]| {
            batches.push(pairs.len());
            Ok(pairs.iter().map(|p| p.premise == "a b").collect())
        };
        let mut coherence = Coherence {
            embed_model: "fixed".into(),
            embed: &mut embed,
            nli: Nli::Model {
                name: "premise-is-a-b".into(),
                entails: &mut entails,
            },
        };
        let measured = serde_json::to_value(pairs.measure(&mut coherence).unwrap()).unwrap();
        assert_eq!(measured["enr"]["entailed"], 2);
        assert_eq!(measured["enr"]["pairs"], 3);
        assert!((measured["enr"]["value"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(measured["enr"]["model"], "premise-is-a-b");
        assert_eq!(measured["ss"]["pairs"], 3);
        assert_eq!(measured["ss"]["model"], "fixed");
        drop(coherence);
        assert_eq!(batches, [3]);

        let mut embed = |texts: &[String]| Ok(texts.iter().map(|t| fixed_vector(t)).collect());
        let mut coherence = Coherence {
            embed_model: "fixed".into(),
            embed: &mut embed,
            nli: Nli::Unavailable("no NLI model (tried: nothing)".into()),
        };
        let measured = serde_json::to_value(pairs.measure(&mut coherence).unwrap()).unwrap();
        assert_eq!(
            measured["enr"],
            json!({"value": null, "note": "unavailable: no NLI model (tried: nothing)"})
        );
    }

    #[test]
    fn no_pairs_no_value_and_no_model_call() {
        let mut pairs = CoherencePairs::default();
        pairs.add(&sgd(&[("USER", "only one round"), ("SYSTEM", "ok")]));
        let mut embed = |_: &[String]| -> Result<Vec<Vec<f32>>, String> { panic!("not called") };
        let ss = semantic_similarity(pairs.pairs(), &mut embed).unwrap();
        assert_eq!((ss.value, ss.pairs), (None, 0));
    }

    #[test]
    fn model_failures_and_wrong_counts_are_errors() {
        let pairs = fixture();
        let mut failing = |_: &[String]| Err("model missing".to_string());
        let err = semantic_similarity(pairs.pairs(), &mut failing).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SS: the embedding model failed: model missing"
        );
        let mut short = |_: &[String]| Ok(vec![vec![1.0]]);
        assert!(matches!(
            semantic_similarity(pairs.pairs(), &mut short),
            Err(CoherenceError::EmbedCount {
                expected: 5,
                got: 1
            })
        ));
        let mut short = |_: &[Pair]| Ok(vec![true]);
        assert!(matches!(
            entailment_ratio(pairs.pairs(), &mut short),
            Err(CoherenceError::ClassifyCount {
                expected: 3,
                got: 1
            })
        ));
    }
}
