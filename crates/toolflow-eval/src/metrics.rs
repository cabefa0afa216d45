//! Dataset measures that need no model: the paper's Table 1 statistics and the diversity
//! measures of Table 2 (Shannon entropy H of word frequencies and Distinct-3).
//!
//! Both are accumulated one dialogue at a time ([`DatasetMeasures::add`]) so that a dataset
//! is never held in memory; only the vocabulary and the set of distinct trigrams are.

use std::collections::{BTreeSet, HashMap, HashSet};

use toolflow_core::{Dialogue, StepKind, Turn};

use crate::{text, words};

pub use toolflow_core::metrics::{Diversity, Statistics};

/// Accumulates [`Statistics`] and [`Diversity`] over dialogues.
#[derive(Debug, Default)]
pub struct DatasetMeasures {
    dialogues: u64,
    user_turns: u64,
    assistant_turns: u64,
    tool_turns: u64,
    tokens: u64,
    utterance_tokens: u64,
    tool_calls: u64,
    call_turns: u64,
    rounds: u64,
    tool_rounds: u64,
    clarification_rounds: u64,
    chitchat_rounds: u64,
    plan_steps_seen: u64,
    plan_chitchat_steps: u64,
    calls_per_tool: HashMap<String, u64>,
    offered_tools: u64,
    called_tools: u64,
    chained_calls: u64,
    links_planned: u64,
    links_realised: u64,
    diversity: DiversityCounter,
}

impl DatasetMeasures {
    /// Counts one more dialogue.
    pub fn add(&mut self, dialogue: &Dialogue) {
        self.dialogues += 1;
        self.offered_tools += dialogue.tools.len() as u64;
        let mut called = BTreeSet::new();
        for turn in &dialogue.turns {
            for piece in text::turn_texts(turn) {
                self.tokens += words::count(&piece);
            }
            match turn {
                Turn::User(_) => self.user_turns += 1,
                Turn::Tool(_) => self.tool_turns += 1,
                Turn::Assistant(assistant) => {
                    self.assistant_turns += 1;
                    if !assistant.tool_calls.is_empty() {
                        self.call_turns += 1;
                    }
                    for call in &assistant.tool_calls {
                        self.tool_calls += 1;
                        *self.calls_per_tool.entry(call.name.clone()).or_default() += 1;
                        called.insert(call.name.as_str());
                    }
                }
            }
        }
        self.called_tools += called.len() as u64;
        self.chained_calls += toolflow_core::links::chained_calls(dialogue);
        self.links_planned += dialogue.links.len() as u64;
        self.links_realised += dialogue.links.iter().filter(|link| link.realised).count() as u64;
        for utterance in text::utterances(dialogue) {
            self.utterance_tokens += self.diversity.add_utterance(utterance);
        }
        self.add_rounds(dialogue);
    }

    fn add_rounds(&mut self, dialogue: &Dialogue) {
        let rounds = classify_rounds(&dialogue.turns);
        self.rounds += rounds.len() as u64;
        for round in rounds {
            match round {
                Round::Tool => self.tool_rounds += 1,
                Round::Clarification => self.clarification_rounds += 1,
                Round::Chitchat => self.chitchat_rounds += 1,
                Round::Unanswered => {}
            }
        }
        let Some(plan) = &dialogue.plan else { return };
        for turn in &dialogue.turns {
            let Turn::User(user) = turn else { continue };
            let Some(step) = user.plan_step else { continue };
            if let Some(step) = plan.steps.iter().find(|s| s.number == step) {
                self.plan_steps_seen += 1;
                if step.kind == StepKind::Chitchat {
                    self.plan_chitchat_steps += 1;
                }
            }
        }
    }

    /// The Table 1 statistics of the dialogues added so far.
    pub fn statistics(&self) -> Statistics {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Statistics {
            dialogues: self.dialogues,
            turns: self.user_turns + self.assistant_turns + self.tool_turns,
            user_turns: self.user_turns,
            assistant_turns: self.assistant_turns,
            tool_turns: self.tool_turns,
            tokens: self.tokens,
            utterance_tokens: self.utterance_tokens,
            tool_calls: self.tool_calls,
            call_turns: self.call_turns,
            rounds: self.rounds,
            tool_rounds: self.tool_rounds,
            clarification_rounds: self.clarification_rounds,
            chitchat_rounds: self.chitchat_rounds,
            chitchat_share: ratio(self.chitchat_rounds, self.rounds),
            plan_chitchat_share: (self.plan_steps_seen > 0)
                .then(|| ratio(self.plan_chitchat_steps, self.plan_steps_seen)),
            calls_per_tool: self
                .calls_per_tool
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            mean_calls_per_called_tool: ratio(self.tool_calls, self.calls_per_tool.len() as u64),
            mean_tools_per_dialogue: ratio(self.offered_tools, self.dialogues),
            mean_called_tools_per_dialogue: ratio(self.called_tools, self.dialogues),
            chained_calls: self.chained_calls,
            chained_call_share: ratio(self.chained_calls, self.tool_calls),
            links_planned: self.links_planned,
            links_realised: self.links_realised,
            links_realised_share: (self.links_planned > 0)
                .then(|| ratio(self.links_realised, self.links_planned)),
        }
    }

    /// The diversity measures (H and Distinct-3) of the dialogues added so far.
    pub fn diversity(&self) -> Diversity {
        self.diversity.finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    Tool,
    Clarification,
    Chitchat,
    /// The dialogue ended before the assistant answered.
    Unanswered,
}

/// One class per round; turns before the first user turn belong to no round.
fn classify_rounds(turns: &[Turn]) -> Vec<Round> {
    // Per round: whether it has a call, and whether its last assistant text is a question.
    let mut rounds: Vec<(bool, Option<bool>)> = Vec::new();
    for turn in turns {
        match turn {
            Turn::User(_) => rounds.push((false, None)),
            Turn::Assistant(assistant) => {
                let Some(round) = rounds.last_mut() else {
                    continue;
                };
                round.0 |= !assistant.tool_calls.is_empty();
                if let Some(text) = assistant
                    .content
                    .as_deref()
                    .filter(|t| !t.trim().is_empty())
                {
                    round.1 = Some(text.trim_end().ends_with('?'));
                }
            }
            Turn::Tool(_) => {}
        }
    }
    let mut classes = vec![Round::Unanswered; rounds.len()];
    // Backwards, so that a question counts as a clarification when the round after it calls
    // a tool or is itself a clarification.
    let mut next_leads_to_call = false;
    for (index, &(has_call, question)) in rounds.iter().enumerate().rev() {
        classes[index] = match (has_call, question) {
            (true, _) => Round::Tool,
            (false, Some(true)) if next_leads_to_call => Round::Clarification,
            (false, Some(_)) => Round::Chitchat,
            (false, None) => Round::Unanswered,
        };
        next_leads_to_call = matches!(classes[index], Round::Tool | Round::Clarification);
    }
    classes
}

/// Word counts and distinct trigrams; words are interned to keep trigrams small.
#[derive(Debug, Default)]
pub struct DiversityCounter {
    ids: HashMap<String, u32>,
    counts: Vec<u64>,
    trigrams: HashSet<[u32; 3]>,
    total_trigrams: u64,
    utterance: Vec<u32>,
}

impl DiversityCounter {
    /// Adds one utterance; returns its number of words.
    pub fn add_utterance(&mut self, utterance: &str) -> u64 {
        let mut ids = std::mem::take(&mut self.utterance);
        ids.clear();
        words::for_each_word(utterance, |word| {
            let id = match self.ids.get(word) {
                Some(&id) => id,
                None => {
                    let id = self.counts.len() as u32;
                    self.ids.insert(word.to_string(), id);
                    self.counts.push(0);
                    id
                }
            };
            self.counts[id as usize] += 1;
            ids.push(id);
        });
        for window in ids.windows(3) {
            self.trigrams.insert([window[0], window[1], window[2]]);
            self.total_trigrams += 1;
        }
        let n = ids.len() as u64;
        self.utterance = ids;
        n
    }

    /// H and Distinct-3 over the utterances added so far; it can go on adding after.
    pub fn finish(&self) -> Diversity {
        let words: u64 = self.counts.iter().sum();
        let entropy_bits = if words == 0 {
            0.0
        } else {
            let total = words as f64;
            -self
                .counts
                .iter()
                .map(|&c| {
                    let p = c as f64 / total;
                    p * p.log2()
                })
                .sum::<f64>()
        };
        let distinct_trigrams = self.trigrams.len() as u64;
        Diversity {
            entropy_bits,
            distinct_3: if self.total_trigrams == 0 {
                0.0
            } else {
                distinct_trigrams as f64 / self.total_trigrams as f64
            },
            words,
            vocabulary: self.counts.len() as u64,
            trigrams: self.total_trigrams,
            distinct_trigrams,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diversity(utterances: &[&str]) -> Diversity {
        let mut counter = DiversityCounter::default();
        for u in utterances {
            counter.add_utterance(u);
        }
        counter.finish()
    }

    #[test]
    fn entropy_by_hand() {
        // Four equally frequent words: exactly 2 bits.
        assert_eq!(diversity(&["a b c d"]).entropy_bits, 2.0);
        // "the cat the dog": p(the) = 1/2, p(cat) = p(dog) = 1/4 →
        // H = 1/2·1 + 2·(1/4·2) = 1.5 bits. Case does not matter.
        let d = diversity(&["The cat", "the DOG"]);
        assert!((d.entropy_bits - 1.5).abs() < 1e-12, "{}", d.entropy_bits);
        assert_eq!((d.words, d.vocabulary), (4, 3));
        // One word repeated: no uncertainty.
        assert_eq!(diversity(&["go go go"]).entropy_bits, 0.0);
        assert_eq!(diversity(&[]).entropy_bits, 0.0);
    }

    #[test]
    fn distinct_3_by_hand() {
        // "a b c a b c": trigrams abc, bca, cab, abc → 3 distinct of 4.
        let d = diversity(&["a b c a b c"]);
        assert_eq!((d.distinct_trigrams, d.trigrams), (3, 4));
        assert_eq!(d.distinct_3, 0.75);
        // Trigrams never cross utterances: "a b" + "c d" has none.
        assert_eq!(diversity(&["a b", "c d"]).trigrams, 0);
        // Over the whole dataset: three utterances, two alike up to case and punctuation,
        // give 2 distinct trigrams of 3.
        let d = diversity(&["I like tea.", "i LIKE tea", "you like tea"]);
        assert_eq!((d.distinct_trigrams, d.trigrams), (2, 3));
        assert!((d.distinct_3 - 2.0 / 3.0).abs() < 1e-12);
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;
    use serde_json::json;

    /// A dialogue whose second call takes the id the first returned, with its links.
    fn chained(person_id: serde_json::Value, realised: bool) -> Dialogue {
        serde_json::from_value(json!({
            "id": "d", "index": 0, "tools": [], "plan": null,
            "links": [{"producer": "search_person", "field": "results[].id",
                       "consumer": "person_films", "parameter": "person_id", "realised": realised}],
            "context": {"current_time": "2024-05-14T09:30:00", "location": "Lyon"},
            "turns": [
                {"role": "user", "content": "Who plays Ana?", "plan_step": null, "generation": null},
                {"role": "assistant", "content": null, "generation": null, "tool_calls": [
                    {"id": "call_0", "name": "search_person", "arguments": {"query": "Ana", "page": 1}}]},
                {"role": "tool", "tool_call_id": "call_0", "name": "search_person",
                 "content": {"page": 1, "results": [{"id": 7021}]}, "generation": null},
                {"role": "assistant", "content": null, "generation": null, "tool_calls": [
                    {"id": "call_1", "name": "person_films", "arguments": {"person_id": person_id, "page": 1}}]},
                {"role": "tool", "tool_call_id": "call_1", "name": "person_films",
                 "content": {"films": ["Nine"]}, "generation": null},
                {"role": "assistant", "content": "Nine.", "generation": null, "tool_calls": []}
            ],
            "settings": {"sampler": "chain", "plan": false, "target_turns": 1, "max_turns": 2,
                         "user_style": "terse", "seed": 0, "models": {}, "temperature": 0.0},
            "outcome": {"status": "completed", "reason": null, "steps_done": 1},
            "usage": {"prompt_tokens": 0, "completion_tokens": 0}
        }))
        .unwrap()
    }

    #[test]
    fn chained_calls_and_realised_links_are_counted() {
        let mut measures = DatasetMeasures::default();
        measures.add(&chained(json!(7021), true));
        // `page: 1` matches the result's page, but 1 is too common to count.
        measures.add(&chained(json!(12), false));
        let statistics = measures.statistics();
        assert_eq!(statistics.tool_calls, 4);
        assert_eq!(statistics.chained_calls, 1);
        assert_eq!(statistics.chained_call_share, 0.25);
        assert_eq!(
            (statistics.links_planned, statistics.links_realised),
            (2, 1)
        );
        assert_eq!(statistics.links_realised_share, Some(0.5));
        let mut unlinked = DatasetMeasures::default();
        let mut dialogue = chained(json!(7021), true);
        dialogue.links.clear();
        unlinked.add(&dialogue);
        assert_eq!(unlinked.statistics().links_realised_share, None);
        assert_eq!(unlinked.statistics().chained_calls, 1);
    }
}
