//! all-MiniLM-L6-v2 in candle, pooled and normalised as sentence-transformers does it.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{EmbedError, MAX_TOKENS, MODEL_ID};

/// At most this many sequences go through the model at once.
const MAX_BATCH_SEQUENCES: usize = 128;
/// At most this many (padded) tokens go through the model at once, so that batches of
/// long inputs stay small enough for the caches.
const MAX_BATCH_TOKENS: usize = 4096;

pub struct SentenceEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    device: Device,
}

impl SentenceEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `model_dir`.
    pub fn load(model_dir: &Path) -> Result<Self, EmbedError> {
        crate::resolve::check_model_dir(model_dir)?;
        let config_path = model_dir.join("config.json");
        let config_text =
            std::fs::read_to_string(&config_path).map_err(EmbedError::io(&config_path))?;
        let config: Config =
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
        // at its max_seq_length (256) and pads each batch to its longest member, which
        // `embed_tokens` does itself.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|err| EmbedError::Tokenizer(err.to_string()))?;
        tokenizer.with_padding(None);

        let weights_path = model_dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(EmbedError::io(&weights_path))?;
        let device = Device::Cpu;
        let weights =
            VarBuilder::from_buffered_safetensors(weights, DType::F32, &device).map_err(|err| {
                EmbedError::InvalidModel {
                    path: weights_path.clone(),
                    message: err.to_string(),
                }
            })?;
        let model = BertModel::load(weights, &config).map_err(|err| EmbedError::InvalidModel {
            path: weights_path.clone(),
            message: err.to_string(),
        })?;
        Ok(Self {
            model,
            tokenizer,
            dim: config.hidden_size,
            device,
        })
    }

    pub fn model_id(&self) -> &str {
        MODEL_ID
    }

    pub fn dim(&self) -> usize {
        self.dim
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
    /// similar length, so that little compute goes to padding; results come back in
    /// input order. `progress(done, total)` is called after each batch.
    pub fn embed_tokens(
        &self,
        tokens: &[Vec<u32>],
        progress: &dyn Fn(usize, usize),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&index| tokens[index].len());
        let mut embeddings = vec![Vec::new(); tokens.len()];
        let mut done = 0;
        for batch in length_sorted_batches(&order, tokens) {
            let batch_tokens: Vec<&[u32]> = batch.iter().map(|&i| tokens[i].as_slice()).collect();
            for (index, embedding) in batch.iter().zip(self.embed_batch(&batch_tokens)?) {
                embeddings[*index] = embedding;
            }
            done += batch.len();
            progress(done, tokens.len());
        }
        Ok(embeddings)
    }

    /// One forward pass over sequences padded to the longest, then masked mean pooling
    /// and L2 normalisation.
    fn embed_batch(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let rows = batch.len();
        let width = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let mut input_ids = vec![0u32; rows * width];
        let mut mask = vec![0u32; rows * width];
        for (row, ids) in batch.iter().enumerate() {
            input_ids[row * width..row * width + ids.len()].copy_from_slice(ids);
            mask[row * width..row * width + ids.len()].fill(1);
        }
        let input_ids = Tensor::from_vec(input_ids, (rows, width), &self.device)?;
        let token_type_ids = input_ids.zeros_like()?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let hidden = self
            .model
            .forward(&input_ids, &token_type_ids, Some(&mask))?;
        let hidden = hidden.flatten_all()?.to_vec1::<f32>()?;

        let dim = self.dim;
        Ok(batch
            .iter()
            .enumerate()
            .map(|(row, ids)| {
                // Padding sits after the real tokens, so the masked mean is the mean of the
                // first `ids.len()` positions.
                let mut pooled = vec![0f32; dim];
                for position in 0..ids.len() {
                    let start = (row * width + position) * dim;
                    for (sum, value) in pooled.iter_mut().zip(&hidden[start..start + dim]) {
                        *sum += value;
                    }
                }
                let count = ids.len().max(1) as f32;
                pooled.iter_mut().for_each(|value| *value /= count);
                let norm = pooled.iter().map(|value| value * value).sum::<f32>().sqrt();
                // torch.nn.functional.normalize's eps.
                let norm = norm.max(1e-12);
                pooled.iter_mut().for_each(|value| *value /= norm);
                pooled
            })
            .collect())
    }
}

/// Splits indices (sorted by token count) into consecutive batches bounded by
/// [`MAX_BATCH_SEQUENCES`] and [`MAX_BATCH_TOKENS`] padded tokens.
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
