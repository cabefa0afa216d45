//! The embedder the pipeline uses: cache first, model only for what is missing.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use crate::cache::EmbeddingCache;
use crate::error::EmbedError;
use crate::model::SentenceEmbedder;
use crate::precision::Precision;
use crate::resolve::{ModelOptions, resolve_model};

/// What an embedder has done so far, summed over calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedStats {
    /// Distinct texts answered from the cache.
    pub cache_hits: usize,
    /// Distinct texts run through the model.
    pub computed: usize,
    /// Tokens (after truncation, without padding) of the computed texts.
    pub tokens: usize,
    /// Resolving (possibly downloading) and loading the model.
    pub load_seconds: f64,
    /// Tokenizing and running the model.
    pub embed_seconds: f64,
    /// Whether the model had to be loaded (some text was not cached).
    pub model_loaded: bool,
}

/// Embeddings from the on-disk cache at `<cache_dir>/embeddings.sqlite`, computing and
/// storing those it lacks. The model is resolved and loaded on the first miss only, so a
/// fully cached run never touches it.
pub struct CachedEmbedder {
    options: ModelOptions,
    /// Decided at open, before any model loads: it is part of every cache key.
    precision: Precision,
    cache: EmbeddingCache,
    model: Option<SentenceEmbedder>,
    stats: EmbedStats,
}

impl CachedEmbedder {
    /// Opens the cache; the model is not loaded until a text is missing from it.
    pub fn open(options: ModelOptions) -> Result<Self, EmbedError> {
        let precision = options.precision.effective()?;
        let cache = EmbeddingCache::open(&options.cache_dir.join("embeddings.sqlite"))?;
        Ok(Self {
            options,
            precision,
            cache,
            model: None,
            stats: EmbedStats::default(),
        })
    }

    /// The model and precision of these embeddings ([`Precision::model_id`]).
    pub fn model_id(&self) -> &str {
        self.precision.model_id()
    }

    /// The cache's SQLite file.
    pub fn cache_path(&self) -> &Path {
        self.cache.path()
    }

    /// What the cache and the model did so far.
    pub fn stats(&self) -> EmbedStats {
        self.stats.clone()
    }

    /// Unit-length embeddings of `texts`, in order.
    pub fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with_progress(texts, &|_, _| {})
    }

    /// As [`Self::embed`], calling `progress(done, total)` over the distinct texts: once
    /// after the cache lookup, then after each model batch.
    pub fn embed_with_progress(
        &mut self,
        texts: &[String],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut distinct: Vec<&str> = Vec::new();
        let mut slot_of: HashMap<&str, usize> = HashMap::new();
        let slots: Vec<usize> = texts
            .iter()
            .map(|text| {
                *slot_of.entry(text.as_str()).or_insert_with(|| {
                    distinct.push(text.as_str());
                    distinct.len() - 1
                })
            })
            .collect();

        let mut vectors = self.cache.get_many(self.precision.model_id(), &distinct)?;
        let missing: Vec<usize> = (0..distinct.len())
            .filter(|&i| vectors[i].is_none())
            .collect();
        let hits = distinct.len() - missing.len();
        self.stats.cache_hits += hits;
        progress(hits, distinct.len());

        if !missing.is_empty() {
            let missing_texts: Vec<&str> = missing.iter().map(|&i| distinct[i]).collect();
            let model = self.model()?;
            let started = Instant::now();
            let tokens = model.tokenize(&missing_texts)?;
            let token_count: usize = tokens.iter().map(Vec::len).sum();
            let computed =
                model.embed_tokens(&tokens, &|done, _| progress(hits + done, distinct.len()))?;
            self.stats.embed_seconds += started.elapsed().as_secs_f64();
            self.stats.computed += missing.len();
            self.stats.tokens += token_count;

            let entries: Vec<(&str, &[f32])> = missing_texts
                .iter()
                .zip(&computed)
                .map(|(text, vector)| (*text, vector.as_slice()))
                .collect();
            self.cache.put_many(self.precision.model_id(), &entries)?;
            for (index, vector) in missing.into_iter().zip(computed) {
                vectors[index] = Some(vector);
            }
        }
        Ok(slots
            .into_iter()
            .map(|slot| {
                vectors[slot]
                    .clone()
                    .expect("every distinct text has a vector")
            })
            .collect())
    }

    fn model(&mut self) -> Result<&SentenceEmbedder, EmbedError> {
        if self.model.is_none() {
            let started = Instant::now();
            let dir = resolve_model(&self.options)?;
            let model = SentenceEmbedder::load(&dir, self.precision)?;
            self.stats.load_seconds += started.elapsed().as_secs_f64();
            self.stats.model_loaded = true;
            tracing::info!(dir = %dir.display(), "loaded {}", self.precision.model_id());
            self.model = Some(model);
        }
        Ok(self.model.as_ref().expect("just loaded"))
    }
}
