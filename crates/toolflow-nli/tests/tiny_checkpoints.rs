//! The NLI code path on checkpoints the test writes itself: a 2-layer BERT (and a 2-layer
//! RoBERTa) with pseudo-random weights in transformers' tensor layout, a WordPiece
//! `tokenizer.json` and a `config.json` whose `id2label` names the classes.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::{Value, json};
use toolflow_nli::{Architecture, NliClassifier, NliError};

const VOCAB: [&str; 20] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "i", "want", "a", "flight", "to", "paris", "book", "hotel",
    "the", "weather", "is", "nice", "cheap", "##s", "on", "monday",
];
const HIDDEN: usize = 8;
const INTERMEDIATE: usize = 16;
const LAYERS: usize = 2;
const MAX_POSITIONS: usize = 32;
/// RoBERTa numbers positions from the padding id + 1 (here 0 + 1): one more row.
const ROBERTA_POSITIONS: usize = MAX_POSITIONS + 1;

fn config(id2label: Value) -> Value {
    json!({
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "vocab_size": VOCAB.len(),
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 2,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": MAX_POSITIONS,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "id2label": id2label,
    })
}

fn tokenizer() -> Value {
    let special = |id: usize| {
        json!({"id": id, "content": VOCAB[id], "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    let vocab: serde_json::Map<String, Value> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    let token = |id: &str, type_id: u32| json!({"SpecialToken": {"id": id, "type_id": type_id}});
    let sequence = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0), special(1), special(2), special(3)],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [token("[CLS]", 0), sequence("A", 0), token("[SEP]", 0)],
            "pair": [token("[CLS]", 0), sequence("A", 0), token("[SEP]", 0), sequence("B", 1), token("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    })
}

/// Every tensor of `BertForSequenceClassification` (or, with `roberta`, of
/// `RobertaForSequenceClassification`), filled from a fixed linear congruential sequence so
/// that the checkpoint is the same on every run.
fn weights(labels: usize, roberta: bool) -> HashMap<String, Tensor> {
    let (model, positions, types) = if roberta {
        ("roberta", ROBERTA_POSITIONS, 1)
    } else {
        ("bert", MAX_POSITIONS, 2)
    };
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut tensor = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.8
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    };
    let mut w = HashMap::new();
    let mut linear = |w: &mut HashMap<String, Tensor>, name: &str, out: usize, inp: usize| {
        w.insert(format!("{name}.weight"), tensor(&[out, inp]));
        w.insert(format!("{name}.bias"), tensor(&[out]));
    };
    let norm = |w: &mut HashMap<String, Tensor>, name: &str| {
        w.insert(
            format!("{name}.weight"),
            Tensor::ones(HIDDEN, candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
        w.insert(
            format!("{name}.bias"),
            Tensor::zeros(HIDDEN, candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    };
    for (name, rows) in [
        ("word", VOCAB.len()),
        ("position", positions),
        ("token_type", types),
    ] {
        linear(
            &mut w,
            &format!("{model}.embeddings.{name}_embeddings"),
            rows,
            HIDDEN,
        );
        w.remove(&format!("{model}.embeddings.{name}_embeddings.bias"));
    }
    norm(&mut w, &format!("{model}.embeddings.LayerNorm"));
    for layer in 0..LAYERS {
        let prefix = format!("{model}.encoder.layer.{layer}");
        for part in ["query", "key", "value"] {
            linear(
                &mut w,
                &format!("{prefix}.attention.self.{part}"),
                HIDDEN,
                HIDDEN,
            );
        }
        linear(
            &mut w,
            &format!("{prefix}.attention.output.dense"),
            HIDDEN,
            HIDDEN,
        );
        norm(&mut w, &format!("{prefix}.attention.output.LayerNorm"));
        linear(
            &mut w,
            &format!("{prefix}.intermediate.dense"),
            INTERMEDIATE,
            HIDDEN,
        );
        linear(
            &mut w,
            &format!("{prefix}.output.dense"),
            HIDDEN,
            INTERMEDIATE,
        );
        norm(&mut w, &format!("{prefix}.output.LayerNorm"));
    }
    if roberta {
        linear(&mut w, "classifier.dense", HIDDEN, HIDDEN);
        linear(&mut w, "classifier.out_proj", labels, HIDDEN);
    } else {
        linear(&mut w, "bert.pooler.dense", HIDDEN, HIDDEN);
        linear(&mut w, "classifier", labels, HIDDEN);
    }
    w
}

fn write_checkpoint(dir: &Path, id2label: Value) {
    let labels = id2label.as_object().map_or(3, |m| m.len());
    std::fs::write(dir.join("config.json"), config(id2label).to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer().to_string()).unwrap();
    candle_core::safetensors::save(&weights(labels, false), dir.join("model.safetensors")).unwrap();
}

fn standard_labels() -> Value {
    json!({"0": "contradiction", "1": "entailment", "2": "neutral"})
}

const PAIRS: [(&str, &str); 4] = [
    ("I want a flight to Paris", "book the flight on Monday"),
    ("the weather is nice", "I want a cheap hotel"),
    ("book a hotel", "hotels"),
    ("Paris", "Paris"),
];

#[test]
fn loads_reads_the_labels_and_classifies_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), standard_labels());
    let model = NliClassifier::load(dir.path()).unwrap();
    assert_eq!(model.architecture(), Architecture::Bert);
    assert_eq!(model.labels(), ["contradiction", "entailment", "neutral"]);
    assert_eq!(model.entailment_label(), 1);

    let first = model.probabilities(&PAIRS).unwrap();
    for row in &first {
        assert_eq!(row.len(), 3);
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{row:?}");
    }
    // The network reads its input: different pairs, different outputs.
    assert_ne!(first[0], first[1]);
    // The same checkpoint gives the same numbers, call after call and load after load.
    assert_eq!(model.probabilities(&PAIRS).unwrap(), first);
    let reloaded = NliClassifier::load(dir.path()).unwrap();
    assert_eq!(reloaded.probabilities(&PAIRS).unwrap(), first);

    // The predicted class is the most probable one, and `entails` is class 1.
    let predicted = model.predict(&PAIRS).unwrap();
    for (row, &class) in first.iter().zip(&predicted) {
        assert!(row.iter().all(|&p| p <= row[class]));
    }
    let entails = model.entails(&PAIRS).unwrap();
    assert_eq!(
        entails,
        predicted.iter().map(|&c| c == 1).collect::<Vec<_>>()
    );
}

#[test]
fn padding_and_batching_do_not_change_a_pair() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), standard_labels());
    let model = NliClassifier::load(dir.path()).unwrap();
    let alone: Vec<Vec<f32>> = PAIRS
        .iter()
        .map(|&pair| model.probabilities(&[pair]).unwrap().remove(0))
        .collect();
    // 40 pairs: several batches, each padded to its longest pair.
    let many: Vec<(&str, &str)> = PAIRS.iter().copied().cycle().take(40).collect();
    let together = model.probabilities(&many).unwrap();
    for (i, row) in together.iter().enumerate() {
        for (a, b) in row.iter().zip(&alone[i % PAIRS.len()]) {
            assert!(
                (a - b).abs() < 1e-5,
                "pair {i}: {row:?} vs {:?}",
                alone[i % PAIRS.len()]
            );
        }
    }
}

#[test]
fn inputs_longer_than_the_positions_are_truncated() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), standard_labels());
    let model = NliClassifier::load(dir.path()).unwrap();
    let long = "i want a flight to paris ".repeat(20);
    let rows = model.probabilities(&[(&long, &long)]).unwrap();
    assert_eq!(rows[0].len(), 3);
}

#[test]
fn the_entailment_class_comes_from_id2label() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(
        dir.path(),
        json!({"0": "ENTAILMENT", "1": "NEUTRAL", "2": "CONTRADICTION"}),
    );
    let model = NliClassifier::load(dir.path()).unwrap();
    assert_eq!(model.entailment_label(), 0);
    let predicted = model.predict(&PAIRS).unwrap();
    let entails = model.entails(&PAIRS).unwrap();
    assert_eq!(
        entails,
        predicted.iter().map(|&c| c == 0).collect::<Vec<_>>()
    );
}

#[test]
fn a_config_without_an_entailment_label_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), json!({"0": "negative", "1": "positive"}));
    let err = NliClassifier::load(dir.path())
        .err()
        .expect("no entailment label");
    assert!(matches!(err, NliError::NoEntailmentLabel { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().join("config.json").display().to_string()),
        "{message}"
    );
    assert!(message.contains("negative, positive"), "{message}");
}

#[test]
fn bad_configs_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), standard_labels());
    let config_path = dir.path().join("config.json");
    let mut config = config(standard_labels());
    config["model_type"] = "gpt2".into();
    config["architectures"] = json!(["GPT2LMHeadModel"]);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let message = NliClassifier::load(dir.path()).err().unwrap().to_string();
    assert!(
        message.starts_with(&config_path.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("not a BERT, RoBERTa or DeBERTa-v2"),
        "{message}"
    );

    let mut config = self::config(standard_labels());
    config.as_object_mut().unwrap().remove("id2label");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let message = NliClassifier::load(dir.path()).err().unwrap().to_string();
    assert!(message.contains("no id2label"), "{message}");
}

#[test]
fn a_roberta_checkpoint_loads_and_ignores_padding() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(standard_labels());
    config["architectures"] = json!(["RobertaForSequenceClassification"]);
    config["model_type"] = "roberta".into();
    config["max_position_embeddings"] = ROBERTA_POSITIONS.into();
    config["type_vocab_size"] = 1.into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer().to_string()).unwrap();
    candle_core::safetensors::save(&weights(3, true), dir.path().join("model.safetensors"))
        .unwrap();
    let model = NliClassifier::load(dir.path()).unwrap();
    assert_eq!(model.architecture(), Architecture::Roberta);
    // One segment only: the tokenizer's second-segment type ids must not reach the network,
    // and positions count from the padding id, so padding must not move them.
    let alone: Vec<Vec<f32>> = PAIRS
        .iter()
        .map(|&pair| model.probabilities(&[pair]).unwrap().remove(0))
        .collect();
    let together = model.probabilities(&PAIRS).unwrap();
    assert_ne!(together[0], together[1]);
    for (row, single) in together.iter().zip(&alone) {
        for (a, b) in row.iter().zip(single) {
            assert!((a - b).abs() < 1e-5, "{row:?} vs {single:?}");
        }
    }
    let long = "i want a flight to paris ".repeat(20);
    assert_eq!(model.probabilities(&[(&long, &long)]).unwrap()[0].len(), 3);
}

#[test]
fn a_deberta_v3_checkpoint_loads_and_ignores_padding() {
    use candle_transformers::models::debertav2;
    let dir = tempfile::tempdir().unwrap();
    // DeBERTa-v3's shape (relative attention over position buckets, no absolute positions,
    // no segments), shrunk.
    let mut config = config(json!({"0": "entailment", "1": "neutral", "2": "contradiction"}));
    let fields = json!({
        "architectures": ["DebertaV2ForSequenceClassification"],
        "model_type": "deberta-v2",
        "type_vocab_size": 0,
        "relative_attention": true,
        "max_relative_positions": -1,
        "position_buckets": 4,
        "norm_rel_ebd": "layer_norm",
        "share_att_key": true,
        "pos_att_type": ["p2c", "c2p"],
        "position_biased_input": false,
        "layer_norm_eps": 1e-7,
        "pooler_hidden_size": HIDDEN,
        "pooler_dropout": 0,
        "pooler_hidden_act": "gelu",
    });
    for (key, value) in fields.as_object().unwrap() {
        config[key] = value.clone();
    }
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer().to_string()).unwrap();
    // The tensor names are whatever candle's DeBERTa-v2 asks for: let it create them.
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &Device::Cpu);
    let cfg: debertav2::Config = serde_json::from_value(config).unwrap();
    debertav2::DebertaV2SeqClassificationModel::load(vb.pp("deberta"), &cfg, None).unwrap();
    varmap.save(dir.path().join("model.safetensors")).unwrap();

    let model = NliClassifier::load(dir.path()).unwrap();
    assert_eq!(model.architecture(), Architecture::DebertaV2);
    assert_eq!(model.entailment_label(), 0);
    let alone: Vec<Vec<f32>> = PAIRS
        .iter()
        .map(|&pair| model.probabilities(&[pair]).unwrap().remove(0))
        .collect();
    let together = model.probabilities(&PAIRS).unwrap();
    assert_ne!(together[0], together[1]);
    for (row, single) in together.iter().zip(&alone) {
        for (a, b) in row.iter().zip(single) {
            assert!((a - b).abs() < 1e-5, "{row:?} vs {single:?}");
        }
    }
}
