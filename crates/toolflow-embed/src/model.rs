//! all-MiniLM-L6-v2, pooled and normalised as sentence-transformers does it.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::bert::{Bert, BertConfig, Scratch};
use crate::error::EmbedError;
use crate::precision::Precision;
use crate::spec::MAX_TOKENS;

/// At most this many sequences go through the model at once.
const MAX_BATCH_SEQUENCES: usize = 128;
/// Batches are cut so that their longest member times their size stays within this many
/// tokens, which keeps the activations of batches of long inputs small enough for the
/// caches.
const MAX_BATCH_TOKENS: usize = 4096;

/// all-MiniLM-L6-v2 loaded and ready to embed sentences.
pub struct SentenceEmbedder {
    model: Bert,
    tokenizer: Tokenizer,
    precision: Precision,
}

impl SentenceEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `model_dir`, to
    /// run at `precision` (fails for bf16 on a CPU without it).
    pub fn load(model_dir: &Path, precision: Precision) -> Result<Self, EmbedError> {
        let precision = precision.effective()?;
        crate::resolve::check_model_dir(model_dir)?;
        let config_path = model_dir.join("config.json");
        let config_text =
            std::fs::read_to_string(&config_path).map_err(EmbedError::io(&config_path))?;
        let config: BertConfig =
            serde_json::from_str(&config_text).map_err(|err| EmbedError::InvalidModel {
                path: config_path.clone(),
                message: err.to_string(),
            })?;

        let tokenizer_path = model_dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|err| EmbedError::InvalidModel {
                path: tokenizer_path.clone(),
                message: err.to_string(),
            })?;
        // The shipped tokenizer pads and truncates to 128; sentence-transformers truncates
        // at its max_seq_length (256), and the forward pass needs no padding at all.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|err| EmbedError::Tokenizer(err.to_string()))?;
        tokenizer.with_padding(None);

        let model = Bert::load(
            config,
            &model_dir.join("model.safetensors"),
            precision == Precision::Bf16,
        )?;
        Ok(Self {
            model,
            tokenizer,
            precision,
        })
    }

    /// The model and precision of these embeddings ([`Precision::model_id`]).
    pub fn model_id(&self) -> &str {
        self.precision.model_id()
    }

    /// The precision its matrix products run at (never `Auto`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The length of its embeddings (384).
    pub fn dim(&self) -> usize {
        self.model.hidden_size()
    }

    /// Unit-length embeddings, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let tokens = self.tokenize(texts)?;
        self.embed_tokens(&tokens, &|_, _| {})
    }

    /// Token ids (with `[CLS]`/`[SEP]`, truncated at 256) of each text, as
    /// sentence-transformers makes them: surrounding whitespace stripped first.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, EmbedError> {
        let inputs: Vec<&str> = texts.iter().map(|text| text.trim()).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|err| EmbedError::Tokenizer(err.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|encoding| encoding.get_ids().to_vec())
            .collect())
    }

    /// Embeds pre-tokenized inputs (from [`Self::tokenize`]). Inputs are run in batches of
    /// similar length, each batch's tokens packed without padding, whole batches in
    /// parallel (one thread each, on rayon's pool); results come back in input order and
    /// do not depend on the number of threads. `progress(done, total)` is called after
    /// each batch.
    pub fn embed_tokens(
        &self,
        tokens: &[Vec<u32>],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&index| tokens[index].len());
        let batches: Vec<&[usize]> = length_sorted_batches(&order, tokens).collect();
        let done = AtomicUsize::new(0);
        let dim = self.dim();
        let batch_vectors: Vec<Vec<Vec<f32>>> = batches
            .par_iter()
            .map_init(
                || (Scratch::default(), Vec::new()),
                |(scratch, pooled), batch| {
                    let batch_tokens: Vec<&[u32]> =
                        batch.iter().map(|&i| tokens[i].as_slice()).collect();
                    self.model.forward_pooled(&batch_tokens, scratch, pooled)?;
                    let vectors = pooled
                        .chunks_exact(dim)
                        .map(|mean| {
                            let norm = mean.iter().map(|value| value * value).sum::<f32>().sqrt();
                            // torch.nn.functional.normalize's eps.
                            let norm = norm.max(1e-12);
                            mean.iter().map(|value| value / norm).collect()
                        })
                        .collect();
                    let finished = done.fetch_add(batch.len(), Ordering::Relaxed) + batch.len();
                    progress(finished, tokens.len());
                    Ok(vectors)
                },
            )
            .collect::<Result<_, EmbedError>>()?;
        let mut embeddings = vec![Vec::new(); tokens.len()];
        for (batch, vectors) in batches.iter().zip(batch_vectors) {
            for (&index, vector) in batch.iter().zip(vectors) {
                embeddings[index] = vector;
            }
        }
        Ok(embeddings)
    }
}

/// Splits indices (sorted by token count) into consecutive batches bounded by
/// [`MAX_BATCH_SEQUENCES`] and [`MAX_BATCH_TOKENS`].
fn length_sorted_batches<'a>(
    order: &'a [usize],
    tokens: &'a [Vec<u32>],
) -> impl Iterator<Item = &'a [usize]> + 'a {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start == order.len() {
            return None;
        }
        let mut end = start;
        while end < order.len() && end - start < MAX_BATCH_SEQUENCES {
            // Sorted ascending, so the newest member is the longest.
            let width = tokens[order[end]].len().max(1);
            if end > start && (end - start + 1) * width > MAX_BATCH_TOKENS {
                break;
            }
            end += 1;
        }
        let batch = &order[start..end];
        start = end;
        Some(batch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_both_limits_and_cover_everything() {
        let lengths = [3, 256, 10, 10, 100, 256, 256, 1];
        let tokens: Vec<Vec<u32>> = (0..300)
            .map(|i| vec![0; lengths[i % lengths.len()]])
            .collect();
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());
        let batches: Vec<&[usize]> = length_sorted_batches(&order, &tokens).collect();
        let mut seen: Vec<usize> = batches.concat();
        seen.sort();
        assert_eq!(seen, (0..tokens.len()).collect::<Vec<_>>());
        for batch in &batches {
            let width = batch.iter().map(|&i| tokens[i].len()).max().unwrap();
            assert!(batch.len() <= MAX_BATCH_SEQUENCES);
            assert!(batch.len() == 1 || batch.len() * width <= MAX_BATCH_TOKENS);
        }
    }
}
