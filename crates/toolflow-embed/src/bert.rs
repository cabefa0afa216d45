//! The BERT encoder written out plainly: weights in row-major `f32` buffers, matrix
//! products through `gemm`, everything else as loops.
//!
//! A batch is run as all of its sequences' tokens packed one after another, with no
//! padding: only attention mixes tokens, and it runs per sequence over that sequence's
//! own tokens, so there is nothing to mask and no compute goes to padding.
//!
//! A batch runs on the calling thread alone; callers run whole batches in parallel
//! ([`crate::model::SentenceEmbedder::embed_tokens`]). On a few cores that beats splitting each
//! product and each attention across threads, which leaves cores idle at every join and
//! the element-wise loops on one core.

use std::path::Path;

use gemm::Parallelism;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::bf16;
use crate::error::EmbedError;

/// The `config.json` fields the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

/// `output = input · weight + bias`. The bias is added by the pass that next reads the
/// output (attention's copy-out, GELU, layer norm), which saves a pass over every
/// activation.
struct Linear {
    weight: Weight,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

enum Weight {
    /// Transposed from PyTorch's `[outputs, inputs]` to `[inputs, outputs]`, so that each
    /// output row is one contiguous run of `gemm`'s destination.
    F32(Vec<f32>),
    /// Packed for [`bf16::product`]; only where [`bf16::supported`].
    Bf16(bf16::PackedWeight),
}

impl Linear {
    /// `output` (`rows × outputs`) becomes `input · weight`, or has it added when
    /// `accumulate` (the residual connections add into the hidden state in place); the
    /// bias is left to the caller. `rounded` holds bf16 activations for a bf16 weight.
    #[inline(always)]
    fn product(
        &self,
        input: &[f32],
        rounded: &mut Vec<u16>,
        output: &mut [f32],
        rows: usize,
        accumulate: bool,
    ) {
        debug_assert_eq!(input.len(), rows * self.inputs);
        debug_assert_eq!(output.len(), rows * self.outputs);
        if rows == 0 {
            return;
        }
        let weight = match &self.weight {
            Weight::F32(weight) => weight,
            Weight::Bf16(packed) => {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: bf16 weights are packed only where the CPU runs bf16 products.
                unsafe {
                    bf16::round_activations(input, rounded);
                    bf16::product(packed, rounded, output, rows, accumulate);
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("bf16 weights are packed only where bf16::supported()");
                return;
            }
        };
        // SAFETY: the three buffers hold `rows × outputs`, `rows × inputs` and
        // `inputs × outputs` elements (checked above and at load), all row-major, and
        // `output` borrows mutably so it aliases neither input.
        unsafe {
            gemm::gemm(
                rows,
                self.outputs,
                self.inputs,
                output.as_mut_ptr(),
                1,
                self.outputs as isize,
                accumulate,
                input.as_ptr(),
                1,
                self.inputs as isize,
                weight.as_ptr(),
                1,
                self.outputs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    }
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// Normalises each row of `hidden` in place.
    #[inline(always)]
    fn forward(&self, hidden: &mut [f32]) {
        self.forward_rows(hidden, None)
    }

    /// Adds `bias` to each row of `hidden`, then normalises it, in place.
    #[inline(always)]
    fn forward_with_bias(&self, hidden: &mut [f32], bias: &[f32]) {
        self.forward_rows(hidden, Some(bias))
    }

    #[inline(always)]
    fn forward_rows(&self, hidden: &mut [f32], bias: Option<&[f32]>) {
        let width = self.weight.len();
        for row in hidden.chunks_exact_mut(width) {
            if let Some(bias) = bias {
                row.iter_mut().zip(bias).for_each(|(x, b)| *x += b);
            }
            let mean = row.iter().sum::<f32>() / width as f32;
            let variance = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / width as f32;
            let scale = 1.0 / (variance + self.eps).sqrt();
            for ((x, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *x = (*x - mean) * scale * w + b;
            }
        }
    }
}

struct EncoderLayer {
    /// Query, key and value projections side by side: one product per layer.
    qkv: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

pub struct Bert {
    config: BertConfig,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    /// Row 0 of the token type embeddings: every token is of type 0.
    token_type_embedding: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
}

/// Activations of one batch, kept between batches so that a run allocates them once.
#[derive(Default)]
pub struct Scratch {
    hidden: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    intermediate: Vec<f32>,
    /// A product's input rounded to bf16, when the products run in bf16.
    rounded: Vec<u16>,
}

impl Bert {
    /// Loads the weights; with `pack_bf16`, packs every linear layer whose shape allows it
    /// for bf16 products (the caller has checked [`bf16::supported`]).
    pub fn load(
        config: BertConfig,
        weights_path: &Path,
        pack_bf16: bool,
    ) -> Result<Self, EmbedError> {
        let invalid = |message: String| EmbedError::InvalidModel {
            path: weights_path.to_path_buf(),
            message,
        };
        if config.hidden_act != "gelu" {
            return Err(invalid(format!(
                "hidden_act {:?} is not supported (only exact \"gelu\")",
                config.hidden_act
            )));
        }
        // The attention loops work on eight dimensions of a head at a time.
        let head_size = config
            .hidden_size
            .checked_div(config.num_attention_heads)
            .unwrap_or(0);
        if head_size == 0
            || head_size * config.num_attention_heads != config.hidden_size
            || head_size / 8 * 8 != head_size
        {
            return Err(invalid(format!(
                "hidden_size {} is not a multiple of 8 × num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            )));
        }
        let bytes = std::fs::read(weights_path).map_err(EmbedError::io(weights_path))?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|err| invalid(err.to_string()))?;
        // Checkpoints saved from `BertForX` models carry a `bert.` prefix.
        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>, EmbedError> {
            let view = tensors
                .tensor(name)
                .or_else(|_| tensors.tensor(&format!("bert.{name}")))
                .map_err(|_| invalid(format!("tensor {name} is missing")))?;
            if view.shape() != shape {
                return Err(invalid(format!(
                    "tensor {name} has shape {:?}, expected {shape:?}",
                    view.shape()
                )));
            }
            if view.dtype() != Dtype::F32 {
                return Err(invalid(format!(
                    "tensor {name} is {:?}, only F32 is supported",
                    view.dtype()
                )));
            }
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let hidden = config.hidden_size;
        let eps = config.layer_norm_eps as f32;
        let layer_norm = |prefix: &str| -> Result<LayerNorm, EmbedError> {
            Ok(LayerNorm {
                weight: tensor(&format!("{prefix}.weight"), &[hidden])?,
                bias: tensor(&format!("{prefix}.bias"), &[hidden])?,
                eps,
            })
        };
        // Reads several PyTorch `[outputs, inputs]` linears over the same input and
        // stores them as one transposed `[inputs, sum of outputs]` matrix.
        let linear = |prefixes: &[String], inputs: usize, outputs: usize| {
            let total = outputs * prefixes.len();
            let mut weight = vec![0f32; inputs * total];
            let mut bias = Vec::with_capacity(total);
            for (part, prefix) in prefixes.iter().enumerate() {
                let torch = tensor(&format!("{prefix}.weight"), &[outputs, inputs])?;
                for (out, torch_row) in torch.chunks_exact(inputs).enumerate() {
                    for (input, value) in torch_row.iter().enumerate() {
                        weight[input * total + part * outputs + out] = *value;
                    }
                }
                bias.extend(tensor(&format!("{prefix}.bias"), &[outputs])?);
            }
            let weight = if pack_bf16 && bf16::fits(inputs, total) {
                Weight::Bf16(bf16::PackedWeight::pack(&weight, inputs, total))
            } else {
                Weight::F32(weight)
            };
            Ok::<_, EmbedError>(Linear {
                weight,
                bias,
                inputs,
                outputs: total,
            })
        };

        let layers = (0..config.num_hidden_layers)
            .map(|index| {
                let prefix = format!("encoder.layer.{index}");
                let qkv =
                    ["query", "key", "value"].map(|name| format!("{prefix}.attention.self.{name}"));
                Ok(EncoderLayer {
                    qkv: linear(&qkv, hidden, hidden)?,
                    attention_output: linear(
                        &[format!("{prefix}.attention.output.dense")],
                        hidden,
                        hidden,
                    )?,
                    attention_norm: layer_norm(&format!("{prefix}.attention.output.LayerNorm"))?,
                    intermediate: linear(
                        &[format!("{prefix}.intermediate.dense")],
                        hidden,
                        config.intermediate_size,
                    )?,
                    output: linear(
                        &[format!("{prefix}.output.dense")],
                        config.intermediate_size,
                        hidden,
                    )?,
                    output_norm: layer_norm(&format!("{prefix}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>, EmbedError>>()?;
        let token_types = tensor(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, hidden],
        )?;
        if token_types.is_empty() {
            return Err(invalid(
                "embeddings.token_type_embeddings.weight is empty".into(),
            ));
        }
        Ok(Self {
            word_embeddings: tensor(
                "embeddings.word_embeddings.weight",
                &[config.vocab_size, hidden],
            )?,
            position_embeddings: tensor(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, hidden],
            )?,
            token_type_embedding: token_types[..hidden].to_vec(),
            embedding_norm: layer_norm("embeddings.LayerNorm")?,
            layers,
            config,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Mean-pooled (not yet normalised) last hidden states of each sequence in `batch`,
    /// `batch.len() × hidden_size`, into `pooled`.
    pub fn forward_pooled(
        &self,
        batch: &[&[u32]],
        scratch: &mut Scratch,
        pooled: &mut Vec<f32>,
    ) -> Result<(), EmbedError> {
        let hidden_size = self.config.hidden_size;
        for ids in batch {
            if ids.len() > self.config.max_position_embeddings {
                return Err(EmbedError::SequenceTooLong {
                    tokens: ids.len(),
                    max: self.config.max_position_embeddings,
                });
            }
            if let Some(id) = ids
                .iter()
                .find(|&&id| id as usize >= self.config.vocab_size)
            {
                return Err(EmbedError::TokenOutOfVocabulary {
                    id: *id,
                    vocab_size: self.config.vocab_size,
                });
            }
        }
        let rows: usize = batch.iter().map(|ids| ids.len()).sum();
        let lengths: Vec<usize> = batch.iter().map(|ids| ids.len()).collect();
        resize(&mut scratch.hidden, rows * hidden_size);
        resize(&mut scratch.qkv, rows * 3 * hidden_size);
        resize(&mut scratch.context, rows * hidden_size);
        resize(
            &mut scratch.intermediate,
            rows * self.config.intermediate_size,
        );
        let Scratch {
            hidden,
            qkv,
            context,
            intermediate,
            rounded,
        } = scratch;

        let mut token_rows = hidden.chunks_exact_mut(hidden_size);
        for ids in batch {
            for (position, &id) in ids.iter().enumerate() {
                let row = token_rows.next().expect("one row per token");
                let word = &self.word_embeddings[id as usize * hidden_size..][..hidden_size];
                let place = &self.position_embeddings[position * hidden_size..][..hidden_size];
                for (((x, w), p), t) in row
                    .iter_mut()
                    .zip(word)
                    .zip(place)
                    .zip(&self.token_type_embedding)
                {
                    *x = w + p + t;
                }
            }
        }
        self.embedding_norm.forward(hidden);

        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            unsafe { self.encoder_avx512(hidden, qkv, context, intermediate, rounded, &lengths) };
        } else if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { self.encoder_avx2(hidden, qkv, context, intermediate, rounded, &lengths) };
        } else {
            self.encoder(hidden, qkv, context, intermediate, rounded, &lengths);
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.encoder(hidden, qkv, context, intermediate, rounded, &lengths);

        pooled.clear();
        pooled.resize(batch.len() * hidden_size, 0.0);
        let mut start = 0;
        for (sum, length) in pooled.chunks_exact_mut(hidden_size).zip(&lengths) {
            for row in hidden[start * hidden_size..(start + length) * hidden_size]
                .chunks_exact(hidden_size)
            {
                sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
            }
            let count = (*length).max(1) as f32;
            sum.iter_mut().for_each(|s| *s /= count);
            start += length;
        }
        Ok(())
    }

    /// [`Self::encoder`] with its element-wise loops (bias, GELU, layer norm) compiled
    /// for 8-wide vectors; the build targets baseline x86-64.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn encoder_avx2(
        &self,
        hidden: &mut [f32],
        qkv: &mut [f32],
        context: &mut [f32],
        intermediate: &mut [f32],
        rounded: &mut Vec<u16>,
        lengths: &[usize],
    ) {
        self.encoder(hidden, qkv, context, intermediate, rounded, lengths)
    }

    /// [`Self::encoder`] with its element-wise loops compiled for 16-wide vectors.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn encoder_avx512(
        &self,
        hidden: &mut [f32],
        qkv: &mut [f32],
        context: &mut [f32],
        intermediate: &mut [f32],
        rounded: &mut Vec<u16>,
        lengths: &[usize],
    ) {
        self.encoder(hidden, qkv, context, intermediate, rounded, lengths)
    }

    /// The encoder layers over the packed token rows in `hidden`, in place.
    #[inline(always)]
    fn encoder(
        &self,
        hidden: &mut [f32],
        qkv: &mut [f32],
        context: &mut [f32],
        intermediate: &mut [f32],
        rounded: &mut Vec<u16>,
        lengths: &[usize],
    ) {
        let rows = hidden.len() / self.config.hidden_size;
        for layer in &self.layers {
            layer.qkv.product(hidden, rounded, qkv, rows, false);
            self.attention(qkv, &layer.qkv.bias, context, lengths);
            layer
                .attention_output
                .product(context, rounded, hidden, rows, true);
            layer
                .attention_norm
                .forward_with_bias(hidden, &layer.attention_output.bias);
            layer
                .intermediate
                .product(hidden, rounded, intermediate, rows, false);
            for row in intermediate.chunks_exact_mut(layer.intermediate.outputs) {
                for (x, b) in row.iter_mut().zip(&layer.intermediate.bias) {
                    *x = gelu(*x + b);
                }
            }
            layer
                .output
                .product(intermediate, rounded, hidden, rows, true);
            layer
                .output_norm
                .forward_with_bias(hidden, &layer.output.bias);
        }
    }

    /// Self-attention of each sequence over its own tokens: `context` rows get
    /// softmax(q·kᵀ/√d)·v per head, `qkv_bias` added to the projections first.
    fn attention(&self, qkv: &[f32], qkv_bias: &[f32], context: &mut [f32], lengths: &[usize]) {
        let hidden_size = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let (mut qkv_rest, mut context_rest) = (qkv, context);
        for &length in lengths {
            let (sequence_qkv, qkv_tail) = qkv_rest.split_at(length * 3 * hidden_size);
            let (sequence_context, context_tail) =
                std::mem::take(&mut context_rest).split_at_mut(length * hidden_size);
            attend(sequence_qkv, qkv_bias, sequence_context, hidden_size, heads);
            qkv_rest = qkv_tail;
            context_rest = context_tail;
        }
    }
}

/// Attention within one sequence. `qkv` rows are `[query | key | value]` without their
/// bias (`bias`, as wide as a row), each `hidden_size` wide and split into `heads`
/// contiguous heads.
fn attend(qkv: &[f32], bias: &[f32], context: &mut [f32], hidden_size: usize, heads: usize) {
    #[cfg(target_arch = "x86_64")]
    let head_size = hidden_size / heads;
    // Written without is_multiple_of, which the 1.85 MSRV lacks.
    if head_size / 16 * 16 == head_size && is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { attend_avx512(qkv, bias, context, hidden_size, heads) };
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { attend_avx2(qkv, bias, context, hidden_size, heads) };
    }
    attend_portable::<8, false>(qkv, bias, context, hidden_size, heads)
}

/// [`attend_portable`] compiled for 16-wide vectors, for heads a multiple of 16 wide.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn attend_avx512(
    qkv: &[f32],
    bias: &[f32],
    context: &mut [f32],
    hidden_size: usize,
    heads: usize,
) {
    attend_portable::<16, true>(qkv, bias, context, hidden_size, heads)
}

/// [`attend_portable`] compiled for 8-wide vectors with fused multiply-adds: the build
/// targets baseline x86-64 (4-wide SSE2), and these loops took a fifth of the time there.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_avx2(
    qkv: &[f32],
    bias: &[f32],
    context: &mut [f32],
    hidden_size: usize,
    heads: usize,
) {
    attend_portable::<8, true>(qkv, bias, context, hidden_size, heads)
}

/// Queries scored together: that many independent sums per key block keep the vector
/// units busy, where one query at a time waits on a single chain of additions.
const QUERIES: usize = 4;

/// `a · b + c`, in one fused instruction when `FUSED` (only where the CPU has FMA: without
/// it `mul_add` is a library call).
#[inline(always)]
fn multiply_add<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

/// `out = x + bias`, element by element.
#[inline(always)]
fn add_into(out: &mut [f32], x: &[f32], bias: &[f32]) {
    for ((o, x), b) in out.iter_mut().zip(x).zip(bias) {
        *o = x + b;
    }
}

/// `LANES` is the vector width the loops are written for; the head size is a multiple of
/// it. `FUSED`: multiply-adds in one instruction.
#[inline(always)]
fn attend_portable<const LANES: usize, const FUSED: bool>(
    qkv: &[f32],
    bias: &[f32],
    context: &mut [f32],
    hidden_size: usize,
    heads: usize,
) {
    let length = context.len() / hidden_size;
    let head_size = hidden_size / heads;
    let scale = 1.0 / (head_size as f32).sqrt();
    let at = |part: usize, head: usize| part * hidden_size + head * head_size;
    let row = |token: usize, part: usize, head: usize| {
        &qkv[token * 3 * hidden_size + at(part, head)..][..head_size]
    };

    // One head's queries (`padded × head_size`, whole groups of QUERIES, the rest zeros),
    // keys transposed to `head_size × key_stride` (length rounded up to whole vectors, the
    // rest zeros) and values (`length × head_size`), copied out of the wide qkv rows so
    // that the loops below read contiguous memory.
    let padded = length.div_ceil(QUERIES) * QUERIES;
    let key_stride = length.div_ceil(LANES) * LANES;
    let mut queries = vec![0f32; padded * head_size];
    let mut keys = vec![0f32; head_size * key_stride];
    let mut values = vec![0f32; length * head_size];
    let mut scores = vec![0f32; padded * key_stride];
    for head in 0..heads {
        let [query_bias, key_bias, value_bias] =
            [0, 1, 2].map(|part| &bias[at(part, head)..][..head_size]);
        for token in 0..length {
            let queries = &mut queries[token * head_size..][..head_size];
            add_into(queries, row(token, 0, head), query_bias);
            for (dim, (key, b)) in row(token, 1, head).iter().zip(key_bias).enumerate() {
                keys[dim * key_stride + token] = key + b;
            }
            let values = &mut values[token * head_size..][..head_size];
            add_into(values, row(token, 2, head), value_bias);
        }
        // Scores of QUERIES queries × LANES keys at a time, in local arrays that stay in
        // vector registers.
        for (queries, scores) in queries
            .chunks_exact(QUERIES * head_size)
            .zip(scores.chunks_exact_mut(QUERIES * key_stride))
        {
            for block in 0..key_stride / LANES {
                let mut sums = [[0f32; LANES]; QUERIES];
                for dim in 0..head_size {
                    let keys = &keys[dim * key_stride + block * LANES..][..LANES];
                    for (query, sums) in sums.iter_mut().enumerate() {
                        let q = queries[query * head_size + dim];
                        for lane in 0..LANES {
                            sums[lane] = multiply_add::<FUSED>(q, keys[lane], sums[lane]);
                        }
                    }
                }
                for (query, sums) in sums.iter().enumerate() {
                    scores[query * key_stride + block * LANES..][..LANES].copy_from_slice(sums);
                }
            }
        }
        for scores in scores.chunks_exact_mut(key_stride).take(length) {
            softmax::<LANES>(&mut scores[..length], scale);
        }
        // The weighted sums of values, QUERIES queries × LANES output dimensions at a time.
        for (group, scores) in scores.chunks_exact(QUERIES * key_stride).enumerate() {
            for block in 0..head_size / LANES {
                let mut sums = [[0f32; LANES]; QUERIES];
                for (key, value) in values.chunks_exact(head_size).enumerate() {
                    let value = &value[block * LANES..][..LANES];
                    for (query, sums) in sums.iter_mut().enumerate() {
                        let weight = scores[query * key_stride + key];
                        for lane in 0..LANES {
                            sums[lane] = multiply_add::<FUSED>(weight, value[lane], sums[lane]);
                        }
                    }
                }
                for (query, sums) in sums.iter().enumerate() {
                    let token = group * QUERIES + query;
                    if token < length {
                        context[token * hidden_size + head * head_size + block * LANES..][..LANES]
                            .copy_from_slice(sums);
                    }
                }
            }
        }
    }
}

/// `weights` become softmax(weights · scale), in place.
#[inline(always)]
fn softmax<const LANES: usize>(weights: &mut [f32], scale: f32) {
    let max = weights
        .iter()
        .fold(f32::NEG_INFINITY, |max, &w| if w > max { w } else { max });
    weights
        .iter_mut()
        .for_each(|w| *w = exp((*w - max) * scale));
    // Summed in LANES partial sums, so the loop vectorises (and stays deterministic).
    let mut partial = [0f32; LANES];
    let mut chunks = weights.chunks_exact(LANES);
    for chunk in &mut chunks {
        for lane in 0..LANES {
            partial[lane] += chunk[lane];
        }
    }
    let total = partial.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
    let normaliser = 1.0 / total;
    weights.iter_mut().for_each(|w| *w *= normaliser);
}

/// e^x for the softmax's arguments (x ≤ 0), within 2 float ulps: x = n·ln 2 + r with
/// |r| ≤ ln 2 / 2, e^r by its Taylor polynomial of degree 7, 2^n from the exponent bits.
/// Branch-free, so loops over it vectorise; libm's `expf` is a call per element. Below
/// -87, e^x is under f32's normal range and comes out as about 1e-38.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer in any lane.
    const ROUND: f32 = 12_582_912.0;
    // ln 2 in two parts (Cephes'), the first with few enough bits that n · LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 0.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = r * (1.0 / 5040.0) + 1.0 / 720.0;
    p = r * p + 1.0 / 120.0;
    p = r * p + 1.0 / 24.0;
    p = r * p + 1.0 / 6.0;
    p = r * p + 0.5;
    p = r * p + 1.0;
    p = r * p + 1.0;
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// BERT's exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf as a rational function, x·P(x²)/Q(x²), exact to a few float ulps (Eigen's and
/// XLA's `erf` for f32). Branch-free, so loops over it vectorise; libm's `erff` made up
/// 15% of the candle forward pass. Beyond ±4, erf is ±1 in f32.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    x * p / q
}

/// Sets a scratch buffer's length; its capacity only ever grows, so later batches
/// reuse the memory.
fn resize(buffer: &mut Vec<f32>, len: usize) {
    buffer.resize(len, 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Maclaurin series in f64; terms stay below 1e7 for |x| ≤ 4, so about
    /// nine digits survive the cancellation, far more than f32 holds.
    fn erf_series(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_accurate_to_float_precision() {
        let mut worst: f64 = 0.0;
        for step in 0..=87_000 {
            let x = -(step as f32) / 1000.0;
            let reference = f64::from(x).exp();
            let relative = (f64::from(exp(x)) - reference).abs() / reference;
            worst = worst.max(relative);
        }
        // Two ulps of f32 are 2.4e-7 relative.
        assert!(worst < 2.4e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut weights: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).sin() * 9.0).collect();
        let original = weights.clone();
        softmax::<8>(&mut weights, 0.5);
        assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let max = original.iter().cloned().fold(f32::MIN, f32::max);
        let denominator: f64 = original
            .iter()
            .map(|w| (f64::from(w - max) * 0.5).exp())
            .sum();
        for (w, o) in weights.iter().zip(&original) {
            let expected = (f64::from(o - max) * 0.5).exp() / denominator;
            assert!((f64::from(*w) - expected).abs() < 1e-6, "{w} vs {expected}");
        }
    }

    #[test]
    fn erf_is_accurate_to_float_precision() {
        let mut worst: f64 = 0.0;
        for step in -5000..=5000 {
            let x = step as f64 / 1000.0;
            let reference = if x.abs() > 4.0 {
                x.signum()
            } else {
                erf_series(x)
            };
            worst = worst.max((f64::from(erf(x as f32)) - reference).abs());
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
    }
}
