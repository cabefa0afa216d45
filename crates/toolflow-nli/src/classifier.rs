//! Loading and running a sequence-classification checkpoint as transformers lays it out:
//! - BERT (`BertForSequenceClassification`): `bert.*`, then the pooler (`bert.pooler.dense`,
//!   tanh over the [CLS] state) and `classifier`;
//! - RoBERTa (`RobertaForSequenceClassification`): `roberta.*` with positions counted from
//!   the padding id, then `classifier.dense`, tanh and `classifier.out_proj` over `<s>`;
//!   candle's XLM-RoBERTa is the same network;
//! - DeBERTa-v2/v3 (`DebertaV2ForSequenceClassification`): `deberta.*`, `pooler.dense` and
//!   `classifier`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use candle_transformers::models::{bert, debertav2, xlm_roberta};
use serde_json::Value;
use tokenizers::{Tokenizer, TruncationParams};

use crate::checkpoint::ENTAILMENT;
use crate::error::NliError;

/// Pairs run through the network together; padding is to the longest pair of a batch, and
/// pairs are sorted by length first so that batches pad little.
const BATCH_SIZE: usize = 16;

/// Positions beyond this are never used, whatever the config allows.
const MAX_TOKENS: usize = 512;

/// The encoder families a checkpoint may be; each has its own candle model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// BERT (`bert`).
    Bert,
    /// RoBERTa and XLM-RoBERTa (`roberta`).
    Roberta,
    /// DeBERTa-v2 and -v3 (`deberta-v2`).
    DebertaV2,
}

impl Architecture {
    /// From `model_type`, else from the first of `architectures`.
    fn from_config(config: &Value) -> Option<Self> {
        let model_type = config["model_type"].as_str().unwrap_or_default();
        let class = config["architectures"][0].as_str().unwrap_or_default();
        match (model_type, class) {
            ("bert", _) => Some(Self::Bert),
            ("roberta", _) => Some(Self::Roberta),
            ("deberta-v2", _) => Some(Self::DebertaV2),
            (_, "BertForSequenceClassification") => Some(Self::Bert),
            (_, "RobertaForSequenceClassification") => Some(Self::Roberta),
            (_, "DebertaV2ForSequenceClassification") => Some(Self::DebertaV2),
            _ => None,
        }
    }
}

enum Network {
    Bert {
        encoder: bert::BertModel,
        pooler: Linear,
        classifier: Linear,
    },
    Roberta(xlm_roberta::XLMRobertaForSequenceClassification),
    /// Boxed: it is five times the size of the others.
    DebertaV2(Box<debertav2::DebertaV2SeqClassificationModel>),
}

/// A loaded NLI cross-encoder.
pub struct NliClassifier {
    dir: PathBuf,
    architecture: Architecture,
    network: Network,
    tokenizer: Tokenizer,
    /// Label names by class index, from `id2label`.
    labels: Vec<String>,
    entailment: usize,
    pad_id: u32,
    /// Whether the network has a second segment embedding; RoBERTa and DeBERTa-v3 have
    /// none, and a tokenizer's second-segment type ids must then not reach them.
    has_segments: bool,
    device: Device,
}

impl NliClassifier {
    /// Loads the checkpoint in `dir` (`config.json`, `tokenizer.json`, `model.safetensors`).
    pub fn load(dir: &Path) -> Result<Self, NliError> {
        let started = Instant::now();
        crate::resolve::check_model_dir(dir)?;
        let config_path = dir.join("config.json");
        let invalid = |message: String| NliError::InvalidConfig {
            path: config_path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&config_path).map_err(|source| NliError::Io {
            path: config_path.clone(),
            source,
        })?;
        let mut config: Value =
            serde_json::from_str(&text).map_err(|err| invalid(format!("not JSON: {err}")))?;
        let architecture = Architecture::from_config(&config).ok_or_else(|| {
            invalid(format!(
                "model_type {} / architectures {}: not a BERT, RoBERTa or DeBERTa-v2 sequence classifier",
                config["model_type"], config["architectures"]
            ))
        })?;
        let labels = labels(&config).map_err(invalid)?;
        let entailment = labels
            .iter()
            .position(|label| label.eq_ignore_ascii_case(ENTAILMENT))
            .ok_or_else(|| NliError::NoEntailmentLabel {
                path: config_path.clone(),
                labels: labels.clone(),
            })?;
        let pad_id = config["pad_token_id"].as_u64().unwrap_or(0) as u32;
        let has_segments = config["type_vocab_size"].as_u64().unwrap_or(2) > 1;
        let max_positions = config["max_position_embeddings"]
            .as_u64()
            .unwrap_or(MAX_TOKENS as u64) as usize;
        // RoBERTa counts positions from the padding id + 1, which costs that many positions.
        let max_tokens = match architecture {
            Architecture::Roberta => max_positions.saturating_sub(pad_id as usize + 1),
            _ => max_positions,
        }
        .min(MAX_TOKENS);

        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        let bytes = std::fs::read(&weights_path).map_err(|source| NliError::Io {
            path: weights_path.clone(),
            source,
        })?;
        let weights = |source| NliError::Weights {
            path: weights_path.clone(),
            source,
        };
        let vb =
            VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device).map_err(weights)?;
        let network = match architecture {
            Architecture::Bert => {
                let cfg: bert::Config = serde_json::from_value(config.clone())
                    .map_err(|err| invalid(err.to_string()))?;
                let hidden = cfg.hidden_size;
                Network::Bert {
                    encoder: bert::BertModel::load(vb.pp("bert"), &cfg).map_err(weights)?,
                    pooler: candle_nn::linear(hidden, hidden, vb.pp("bert.pooler.dense"))
                        .map_err(weights)?,
                    classifier: candle_nn::linear(hidden, labels.len(), vb.pp("classifier"))
                        .map_err(weights)?,
                }
            }
            Architecture::Roberta => {
                if config.get("position_embedding_type").is_none() {
                    config["position_embedding_type"] = "absolute".into();
                }
                let cfg: xlm_roberta::Config =
                    serde_json::from_value(config).map_err(|err| invalid(err.to_string()))?;
                Network::Roberta(
                    xlm_roberta::XLMRobertaForSequenceClassification::new(labels.len(), &cfg, vb)
                        .map_err(weights)?,
                )
            }
            Architecture::DebertaV2 => {
                let cfg: debertav2::Config =
                    serde_json::from_value(config).map_err(|err| invalid(err.to_string()))?;
                Network::DebertaV2(Box::new(
                    debertav2::DebertaV2SeqClassificationModel::load(vb.pp("deberta"), &cfg, None)
                        .map_err(weights)?,
                ))
            }
        };

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer_error = |message: String| NliError::Tokenizer {
            path: tokenizer_path.clone(),
            message,
        };
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|err| tokenizer_error(err.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|err| tokenizer_error(err.to_string()))?;

        tracing::info!(
            dir = %dir.display(),
            ?architecture,
            labels = ?labels,
            seconds = started.elapsed().as_secs_f64(),
            "NLI model loaded"
        );
        Ok(Self {
            dir: dir.to_path_buf(),
            architecture,
            network,
            tokenizer,
            labels,
            entailment,
            pad_id,
            has_segments,
            device,
        })
    }

    /// The checkpoint directory it was loaded from (part of the eval stage's key).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The family its config names.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// Label names by class index, as `id2label` gives them.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The class index of the `entailment` label.
    pub fn entailment_label(&self) -> usize {
        self.entailment
    }

    /// Class probabilities (softmax over the logits) of each (premise, hypothesis) pair.
    pub fn probabilities(&self, pairs: &[(&str, &str)]) -> Result<Vec<Vec<f32>>, NliError> {
        let mut encodings = Vec::with_capacity(pairs.len());
        for &(premise, hypothesis) in pairs {
            let encoding = self
                .tokenizer
                .encode((premise, hypothesis), true)
                .map_err(|err| NliError::Tokenizer {
                    path: self.dir.join("tokenizer.json"),
                    message: err.to_string(),
                })?;
            encodings.push(encoding);
        }
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut probabilities = vec![Vec::new(); pairs.len()];
        for batch in order.chunks(BATCH_SIZE) {
            let width = batch
                .iter()
                .map(|&i| encodings[i].get_ids().len())
                .max()
                .unwrap_or(0);
            let (mut ids, mut type_ids, mut mask) = (Vec::new(), Vec::new(), Vec::new());
            for &i in batch {
                let encoding = &encodings[i];
                let padding = width - encoding.get_ids().len();
                ids.extend(encoding.get_ids());
                ids.extend(std::iter::repeat_n(self.pad_id, padding));
                if self.has_segments {
                    type_ids.extend(encoding.get_type_ids());
                } else {
                    type_ids.extend(std::iter::repeat_n(0, encoding.get_ids().len()));
                }
                type_ids.extend(std::iter::repeat_n(0, padding));
                mask.extend(encoding.get_attention_mask());
                mask.extend(std::iter::repeat_n(0, padding));
            }
            let shape = (batch.len(), width);
            let ids = Tensor::from_vec(ids, shape, &self.device)?;
            let type_ids = Tensor::from_vec(type_ids, shape, &self.device)?;
            let mask = Tensor::from_vec(mask, shape, &self.device)?;
            let logits = self.logits(&ids, &type_ids, &mask)?;
            let rows = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
            for (&i, row) in batch.iter().zip(rows) {
                probabilities[i] = row;
            }
        }
        Ok(probabilities)
    }

    /// The most probable class index of each pair.
    pub fn predict(&self, pairs: &[(&str, &str)]) -> Result<Vec<usize>, NliError> {
        Ok(self
            .probabilities(pairs)?
            .iter()
            .map(|row| {
                // The first of equal maxima, as argmax conventionally breaks ties.
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (i, &p)| {
                        if p > best.1 { (i, p) } else { best }
                    })
                    .0
            })
            .collect())
    }

    /// Whether each pair's most probable label is `entailment`.
    pub fn entails(&self, pairs: &[(&str, &str)]) -> Result<Vec<bool>, NliError> {
        Ok(self
            .predict(pairs)?
            .into_iter()
            .map(|class| class == self.entailment)
            .collect())
    }

    fn logits(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> Result<Tensor, NliError> {
        let logits = match &self.network {
            Network::Bert {
                encoder,
                pooler,
                classifier,
            } => {
                let states = encoder.forward(ids, type_ids, Some(mask))?;
                let cls = states.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
                classifier.forward(&pooler.forward(&cls)?.tanh()?)?
            }
            Network::Roberta(model) => model.forward(ids, mask, type_ids)?,
            Network::DebertaV2(model) => model.forward(
                ids,
                Some(type_ids.clone()),
                Some(mask.to_dtype(DType::I64)?),
            )?,
        };
        Ok(logits)
    }
}

/// `id2label` as a list indexed by class: keys must be 0..n.
fn labels(config: &Value) -> Result<Vec<String>, String> {
    let map = config["id2label"]
        .as_object()
        .ok_or("no id2label object: the label names cannot be known")?;
    let mut labels = vec![None; map.len()];
    for (key, name) in map {
        let index: usize = key
            .parse()
            .map_err(|_| format!("id2label key {key:?} is not a class index"))?;
        let name = name
            .as_str()
            .ok_or_else(|| format!("id2label[{key}] is not a string"))?;
        let slot = labels
            .get_mut(index)
            .ok_or_else(|| format!("id2label key {index} is not in 0..{}", map.len()))?;
        *slot = Some(name.to_string());
    }
    labels
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| "id2label keys repeat a class index".to_string())
}
