//! SS with the real all-MiniLM-L6-v2: a dialogue that stays on its topic scores higher
//! than one whose every request changes the subject.

use std::path::Path;

use serde_json::{Value, json};
use toolflow_embed::{ModelOptions, Precision, SentenceEmbedder, resolve_model};
use toolflow_eval::coherence::{CoherencePairs, semantic_similarity};
use toolflow_eval::{Coherence, Nli, evaluate_file_with};

fn embedder() -> SentenceEmbedder {
    let options = ModelOptions::with_cache_dir(toolflow_core::default_cache_dir());
    let dir = resolve_model(&options).expect("all-MiniLM-L6-v2 (cache, hub or pip)");
    SentenceEmbedder::load(&dir, Precision::Auto).expect("a loadable model")
}

fn sgd(turns: &[&str]) -> toolflow_core::Dialogue {
    let turns: Vec<Value> = turns
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let speaker = if i % 2 == 0 { "USER" } else { "SYSTEM" };
            json!({"speaker": speaker, "utterance": text, "frames": []})
        })
        .collect();
    toolflow_eval::sgd::convert(json!({"dialogue_id": "1_0", "turns": turns}), 0).unwrap()
}

#[test]
fn on_topic_rounds_score_higher_than_unrelated_ones() {
    let model = embedder();
    let mut embed = |texts: &[String]| {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        model.embed(&texts).map_err(|e| e.to_string())
    };
    let ss = |turns: &[&str], embed: &mut dyn FnMut(&[String]) -> Result<Vec<Vec<f32>>, String>| {
        let mut pairs = CoherencePairs::default();
        pairs.add(&sgd(turns));
        semantic_similarity(pairs.pairs(), embed).unwrap()
    };
    let on_topic = ss(
        &[
            "I'd like to book a table at an Italian restaurant in Rome tonight.",
            "Sure, for how many people and at what time?",
            "A table for two at the Italian restaurant in Rome, at 8 pm please.",
            "Done: a table for two at 8 pm at Da Enzo in Rome.",
            "Does that Italian restaurant in Rome have vegetarian dishes?",
        ],
        &mut embed,
    );
    let unrelated = ss(
        &[
            "I'd like to book a table at an Italian restaurant in Rome tonight.",
            "Sure, for how many people and at what time?",
            "What is the boiling point of nitrogen in kelvin?",
            "Nitrogen boils at 77 kelvin.",
            "Can you recommend a good laptop for programming?",
        ],
        &mut embed,
    );
    let (on_topic, unrelated) = (on_topic.value.unwrap(), unrelated.value.unwrap());
    eprintln!("SS on topic {on_topic:.4}, unrelated {unrelated:.4}");
    assert!(on_topic > unrelated + 0.2, "{on_topic} vs {unrelated}");
    assert!((-1.0..=1.0).contains(&unrelated) && on_topic <= 1.0 + 1e-6);
}

#[test]
fn evaluate_file_with_measures_ss_and_reports_enr_unavailable() {
    let model = embedder();
    let mut embed = |texts: &[String]| {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        model.embed(&texts).map_err(|e| e.to_string())
    };
    let mut coherence = Coherence {
        embed_model: model.model_id().to_string(),
        embed: &mut embed,
        nli: Nli::Unavailable("no NLI model (test)".into()),
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sgd_two_dialogues.json");
    let run = evaluate_file_with(&path, Some(&mut coherence)).unwrap();
    // Only the first dialogue has two rounds: one pair.
    let ss = &run.coherence.ss;
    assert_eq!(ss.pairs, Some(1));
    let value = ss.value.unwrap();
    assert!(value > 0.3 && value < 1.0, "{value}");
    assert_eq!(run.coherence.enr.value, None);
    assert_eq!(
        run.coherence.enr.note.as_deref(),
        Some("unavailable: no NLI model (test)")
    );
}
