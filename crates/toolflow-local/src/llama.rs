//! A llama-architecture transformer on the CPU with the quantized kernels of [`crate::quant`]:
//! one forward pass takes any number of sequences, each with its own KV cache and any number
//! of new tokens, so a long prompt and a batch of single decoding steps share the same code
//! (and each weight is read once per pass, whatever the number of sequences).

use candle_core::quantized::{GgmlDType, gguf_file};
use candle_core::{Device, Tensor};

use crate::error::LocalError;
use crate::quant::{Isa, QMatrix, QuantizedRows};

/// The shape of the network, from the GGUF metadata.
#[derive(Debug, Clone)]
pub struct Config {
    pub layers: usize,
    pub dim: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn_dim: usize,
    pub vocab: usize,
    pub context: usize,
    rms_eps: f32,
}

struct Layer {
    attn_norm: Vec<f32>,
    /// Q, K and V stacked: one product for the three.
    qkv: QMatrix,
    attn_out: QMatrix,
    ffn_norm: Vec<f32>,
    /// Gate and up stacked.
    gate_up: QMatrix,
    down: QMatrix,
}

/// The weights and a thread pool; the per-sequence state lives in [`KvCache`].
pub struct Llama {
    pub config: Config,
    embeddings: QMatrix,
    /// `None`: the output projection is the embedding matrix (tied weights).
    output: Option<QMatrix>,
    output_norm: Vec<f32>,
    layers: Vec<Layer>,
    /// cos and sin of every position's rotation angles, `context * head_dim / 2` each.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
    pool: Option<rayon::ThreadPool>,
    /// Kept between passes: allocating them afresh cost a decoding step its page faults.
    scratch: std::sync::Mutex<Scratch>,
}

/// One sequence's keys and values, per layer: `len` positions of `kv_heads * head_dim`.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// Keeps the first `len` positions (a prefix shared with the next prompt).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let width = self.keys.first().map_or(0, |k| k.len() / self.len.max(1));
        for layer in self.keys.iter_mut().chain(self.values.iter_mut()) {
            layer.truncate(len * width);
        }
        self.len = len;
    }
}

/// The working buffers of one forward pass.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    normed: Vec<f32>,
    quantized: QuantizedRows,
    qkv: Vec<f32>,
    attention: Vec<f32>,
    projected: Vec<f32>,
    gate_up: Vec<f32>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
}

impl Llama {
    /// Loads a llama-architecture GGUF. Q4_1 and Q8_0 matrices stay as they are; every other
    /// type is requantized to Q8_0.
    pub fn load(
        content: &gguf_file::Content,
        file: &mut std::fs::File,
        threads: usize,
    ) -> Result<Self, LocalError> {
        let architecture = metadata_str(content, "general.architecture")?;
        if architecture != "llama" {
            return Err(LocalError::Gguf(format!(
                "general.architecture is {architecture:?}; the embedded backend runs llama models only"
            )));
        }
        let number = |key: &str| -> Result<usize, LocalError> {
            content
                .metadata
                .get(key)
                .and_then(|v| v.to_u32().ok())
                .map(|v| v as usize)
                .ok_or_else(|| {
                    LocalError::Gguf(format!("metadata {key} is missing or not a number"))
                })
        };
        let dim = number("llama.embedding_length")?;
        let heads = number("llama.attention.head_count")?;
        let kv_heads = number("llama.attention.head_count_kv").unwrap_or(heads);
        if heads == 0 || dim % heads != 0 || kv_heads == 0 || heads % kv_heads != 0 {
            return Err(LocalError::Gguf(format!(
                "{heads} attention heads ({kv_heads} for keys and values) do not divide width {dim}"
            )));
        }
        let head_dim = dim / heads;
        if let Ok(rope_dim) = number("llama.rope.dimension_count") {
            if rope_dim != head_dim {
                return Err(LocalError::Gguf(format!(
                    "llama.rope.dimension_count {rope_dim} differs from the head width {head_dim}: partial rotary embeddings are not supported"
                )));
            }
        }
        let rms_eps = content
            .metadata
            .get("llama.attention.layer_norm_rms_epsilon")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(1e-5);
        let rope_base = content
            .metadata
            .get("llama.rope.freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0);
        let context = number("llama.context_length").unwrap_or(4096).min(32_768);

        let embeddings = matrix(
            read_tensor(content, file, "token_embd.weight")?,
            "token_embd.weight",
        )?;
        let output = match content.tensor_infos.contains_key("output.weight") {
            true => Some(matrix(
                read_tensor(content, file, "output.weight")?,
                "output.weight",
            )?),
            false => None,
        };
        let output_norm = vector(
            read_tensor(content, file, "output_norm.weight")?,
            "output_norm.weight",
        )?;
        let layer_count = number("llama.block_count")?;
        let mut layers = Vec::with_capacity(layer_count);
        for i in 0..layer_count {
            let mut load = |part: &str| {
                let name = format!("blk.{i}.{part}.weight");
                read_tensor(content, file, &name).and_then(|t| matrix(t, &name))
            };
            let (q, k, v) = (load("attn_q")?, load("attn_k")?, load("attn_v")?);
            let attn_out = load("attn_output")?;
            let (gate, up, down) = (load("ffn_gate")?, load("ffn_up")?, load("ffn_down")?);
            let mut norm = |part: &str| {
                let name = format!("blk.{i}.{part}.weight");
                read_tensor(content, file, &name).and_then(|t| vector(t, &name))
            };
            let (attn_norm, ffn_norm) = (norm("attn_norm")?, norm("ffn_norm")?);
            layers.push(Layer {
                attn_norm,
                qkv: stack(&[&q, &k, &v]),
                attn_out,
                ffn_norm,
                gate_up: stack(&[&gate, &up]),
                down,
            });
        }
        let config = Config {
            layers: layer_count,
            dim,
            heads,
            kv_heads,
            head_dim,
            ffn_dim: layers.first().map_or(0, |l| l.down.cols),
            vocab: embeddings.rows,
            context,
            rms_eps,
        };
        check_shapes(&config, &layers, &embeddings, output.as_ref())?;

        // GGUF llama weights are permuted for GGML's "normal" rope: pairs (2i, 2i+1).
        let half = head_dim / 2;
        let mut rope_cos = Vec::with_capacity(context * half);
        let mut rope_sin = Vec::with_capacity(context * half);
        for position in 0..context {
            for i in 0..half {
                let theta = 1.0 / rope_base.powf((2 * i) as f32 / head_dim as f32);
                let angle = position as f32 * theta;
                rope_cos.push(angle.cos());
                rope_sin.push(angle.sin());
            }
        }
        let pool = match threads {
            0 | 1 => None,
            n => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("toolflow-local-{i}"))
                    .build()
                    .map_err(|e| LocalError::Model(candle_core::Error::Msg(e.to_string())))?,
            ),
        };
        Ok(Llama {
            config,
            embeddings,
            output,
            output_norm,
            layers,
            rope_cos,
            rope_sin,
            pool,
            scratch: Default::default(),
        })
    }

    /// An empty cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            keys: vec![Vec::new(); self.config.layers],
            values: vec![Vec::new(); self.config.layers],
            len: 0,
        }
    }

    /// Threads the products run on.
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.current_num_threads())
    }

    /// Feeds each sequence its new tokens after what its cache holds, appends their keys and
    /// values to it, and returns the logits after each sequence's last token.
    pub fn forward(
        &self,
        batch: &mut [(&mut KvCache, &[u32])],
    ) -> Result<Vec<Vec<f32>>, LocalError> {
        // The whole pass runs on a thread of the pool, so each product's fork and join stays
        // among the pool's threads instead of waking the caller and parking it again (measured
        // as a quarter of the time of a two-thread decoding step in futex and yield calls).
        match &self.pool {
            Some(pool) => pool.install(|| self.forward_on_pool(batch)),
            None => self.forward_on_pool(batch),
        }
    }

    /// Runs `work` on each item, on the pool's threads when there is a pool; the results in
    /// the items' order.
    pub fn for_each<T: Send, R: Send>(
        &self,
        items: &mut [T],
        work: impl Fn(&mut T) -> R + Sync,
    ) -> Vec<R> {
        match &self.pool {
            Some(pool) if items.len() > 1 => {
                use rayon::prelude::*;
                pool.install(|| items.par_iter_mut().with_max_len(1).map(&work).collect())
            }
            _ => items.iter_mut().map(work).collect(),
        }
    }

    fn forward_on_pool(
        &self,
        batch: &mut [(&mut KvCache, &[u32])],
    ) -> Result<Vec<Vec<f32>>, LocalError> {
        let c = &self.config;
        for (cache, tokens) in batch.iter() {
            if tokens.is_empty() {
                return Err(LocalError::Request(
                    "a sequence with no new token".to_string(),
                ));
            }
            if cache.len + tokens.len() > c.context {
                return Err(LocalError::Request(format!(
                    "{} tokens are more than the {} this model holds",
                    cache.len + tokens.len(),
                    c.context
                )));
            }
            if let Some(bad) = tokens.iter().find(|t| **t as usize >= c.vocab) {
                return Err(LocalError::Request(format!(
                    "token {bad} is outside the vocabulary"
                )));
            }
        }
        let rows: usize = batch.iter().map(|(_, t)| t.len()).sum();
        let kv_dim = c.kv_heads * c.head_dim;
        let pool = self.pool.as_ref();
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *scratch;
        s.x.clear();
        s.x.resize(rows * c.dim, 0.0);
        for (row, token) in batch.iter().flat_map(|(_, t)| t.iter()).enumerate() {
            self.embeddings
                .dequantize_row(*token as usize, &mut s.x[row * c.dim..(row + 1) * c.dim]);
        }
        for (index, layer) in self.layers.iter().enumerate() {
            rms_norm(&s.x, &layer.attn_norm, c.rms_eps, &mut s.normed);
            s.quantized.quantize(&s.normed, c.dim);
            s.qkv.resize(rows * layer.qkv.rows, 0.0);
            layer.qkv.matmul(&s.quantized, &mut s.qkv, pool);

            let qkv_width = layer.qkv.rows;
            let mut row = 0;
            for (cache, tokens) in batch.iter_mut() {
                for i in 0..tokens.len() {
                    let position = cache.len + i;
                    let at = (row + i) * qkv_width;
                    let (q, kv) = s.qkv[at..at + qkv_width].split_at_mut(c.dim);
                    self.rope(q, position);
                    self.rope(&mut kv[..kv_dim], position);
                    cache.keys[index].extend_from_slice(&kv[..kv_dim]);
                    cache.values[index].extend_from_slice(&kv[kv_dim..2 * kv_dim]);
                }
                row += tokens.len();
            }

            s.attention.resize(rows * c.dim, 0.0);
            self.attend(batch, index, &s.qkv, qkv_width, &mut s.attention);
            s.quantized.quantize(&s.attention, c.dim);
            s.projected.resize(rows * c.dim, 0.0);
            layer.attn_out.matmul(&s.quantized, &mut s.projected, pool);
            s.x.iter_mut().zip(&s.projected).for_each(|(x, p)| *x += p);

            rms_norm(&s.x, &layer.ffn_norm, c.rms_eps, &mut s.normed);
            s.quantized.quantize(&s.normed, c.dim);
            s.gate_up.resize(rows * layer.gate_up.rows, 0.0);
            layer.gate_up.matmul(&s.quantized, &mut s.gate_up, pool);
            s.hidden.clear();
            for gate_up in s.gate_up.chunks_exact(2 * c.ffn_dim) {
                let (gate, up) = gate_up.split_at(c.ffn_dim);
                s.hidden
                    .extend(gate.iter().zip(up).map(|(g, u)| g / (1.0 + (-g).exp()) * u));
            }
            s.quantized.quantize(&s.hidden, c.ffn_dim);
            layer.down.matmul(&s.quantized, &mut s.projected, pool);
            s.x.iter_mut().zip(&s.projected).for_each(|(x, p)| *x += p);
        }
        for (cache, tokens) in batch.iter_mut() {
            cache.len += tokens.len();
        }

        // Only each sequence's last position needs logits.
        let mut last = Vec::with_capacity(batch.len() * c.dim);
        let mut row = 0;
        for (_, tokens) in batch.iter() {
            row += tokens.len();
            last.extend_from_slice(&s.x[(row - 1) * c.dim..row * c.dim]);
        }
        rms_norm(&last, &self.output_norm, c.rms_eps, &mut s.normed);
        s.quantized.quantize(&s.normed, c.dim);
        let output = self.output.as_ref().unwrap_or(&self.embeddings);
        s.logits.resize(batch.len() * output.rows, 0.0);
        output.matmul(&s.quantized, &mut s.logits, pool);
        Ok(s.logits
            .chunks_exact(output.rows)
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// Rotates each head of `x` (one position) by its angles.
    fn rope(&self, x: &mut [f32], position: usize) {
        let half = self.config.head_dim / 2;
        let cos = &self.rope_cos[position * half..(position + 1) * half];
        let sin = &self.rope_sin[position * half..(position + 1) * half];
        for head in x.chunks_exact_mut(self.config.head_dim) {
            for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * cos[i] - b * sin[i];
                pair[1] = a * sin[i] + b * cos[i];
            }
        }
    }

    /// Causal attention of every new position over its sequence's cache (which already holds
    /// the new keys and values), into `out` (`rows * dim`).
    fn attend(
        &self,
        batch: &[(&mut KvCache, &[u32])],
        layer: usize,
        qkv: &[f32],
        qkv_width: usize,
        out: &mut [f32],
    ) {
        let c = &self.config;
        // (sequence, position) of every row.
        let mut rows = Vec::with_capacity(out.len() / c.dim);
        for (cache, tokens) in batch {
            let start = cache.len;
            rows.extend((0..tokens.len()).map(|i| (&**cache, start + i)));
        }
        // One head of one row is a unit of work, handed to any thread: a single sequence's
        // step splits too, and each head is computed whole by one thread in a fixed order.
        let avx = Isa::detect() != Isa::Scalar;
        let work = |scores: &mut Vec<f32>, (unit, out): (usize, &mut [f32])| {
            let (row, head) = (unit / c.heads, unit % c.heads);
            let (cache, position) = rows[row];
            let at = row * qkv_width + head * c.head_dim;
            attend_head(
                c,
                &cache.keys[layer],
                &cache.values[layer],
                position,
                head,
                &qkv[at..at + c.head_dim],
                scores,
                out,
                avx,
            );
        };
        match &self.pool {
            Some(pool) => {
                use rayon::prelude::*;
                // A few contiguous runs of units per thread: one head each only adds steals,
                // one run each loses to a prompt's later rows attending further back.
                let per_thread = (out.len() / c.head_dim).div_ceil(4 * pool.current_num_threads());
                pool.install(|| {
                    out.par_chunks_mut(c.head_dim)
                        .enumerate()
                        .with_min_len(per_thread)
                        .for_each_init(Vec::new, work)
                });
            }
            None => {
                let mut scores = Vec::new();
                out.chunks_mut(c.head_dim)
                    .enumerate()
                    .for_each(|unit| work(&mut scores, unit));
            }
        }
    }
}

/// One head of one position's attention over positions `0..=position` of the cache.
#[allow(clippy::too_many_arguments)]
fn attend_head(
    c: &Config,
    keys: &[f32],
    values: &[f32],
    position: usize,
    head: usize,
    q: &[f32],
    scores: &mut Vec<f32>,
    out: &mut [f32],
    avx: bool,
) {
    let kv_dim = c.kv_heads * c.head_dim;
    let kv_offset = (head / (c.heads / c.kv_heads)) * c.head_dim;
    let scale = 1.0 / (c.head_dim as f32).sqrt();
    #[cfg(target_arch = "x86_64")]
    if avx {
        let (keys, values) = (&keys[kv_offset..], &values[kv_offset..]);
        // SAFETY: `avx` is set only when the CPU has AVX2 (`Isa::detect`).
        match c.head_dim {
            64 => {
                return unsafe {
                    x86::attend_head::<8>(keys, values, kv_dim, position + 1, q, scale, scores, out)
                };
            }
            128 => {
                return unsafe {
                    x86::attend_head::<16>(
                        keys,
                        values,
                        kv_dim,
                        position + 1,
                        q,
                        scale,
                        scores,
                        out,
                    )
                };
            }
            _ => {}
        }
    }
    scores.clear();
    scores.resize(position + 1, 0.0);
    let mut max = f32::NEG_INFINITY;
    for (t, score) in scores.iter_mut().enumerate() {
        let k = &keys[t * kv_dim + kv_offset..t * kv_dim + kv_offset + c.head_dim];
        *score = dot(q, k, avx) * scale;
        max = max.max(*score);
    }
    let mut total = 0.0;
    for score in scores.iter_mut() {
        *score = (*score - max).exp();
        total += *score;
    }
    out.fill(0.0);
    for (t, score) in scores.iter().enumerate() {
        let v = &values[t * kv_dim + kv_offset..t * kv_dim + kv_offset + c.head_dim];
        add_scaled(out, v, score / total, avx);
    }
}

/// A dot product in eight independent lanes, summed in lane order at the end: the AVX path
/// does the same operations in one register, so both give the same bits.
fn dot(a: &[f32], b: &[f32], avx: bool) -> f32 {
    let chunks = a.len() / 8 * 8;
    let lanes = match avx {
        // SAFETY: `avx` is set only when the CPU has AVX2 (`Isa::detect`).
        #[cfg(target_arch = "x86_64")]
        true => unsafe { x86::dot_lanes(&a[..chunks], &b[..chunks]) },
        _ => {
            let mut lanes = [0f32; 8];
            for (a, b) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
                for i in 0..8 {
                    lanes[i] += a[i] * b[i];
                }
            }
            lanes
        }
    };
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(a, b)| a * b)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// `out += weight * v`, element by element (a multiply then an add, as the scalar code).
fn add_scaled(out: &mut [f32], v: &[f32], weight: f32, avx: bool) {
    match avx {
        // SAFETY: `avx` is set only when the CPU has AVX2 (`Isa::detect`).
        #[cfg(target_arch = "x86_64")]
        true => unsafe { x86::add_scaled(out, v, weight) },
        _ => out.iter_mut().zip(v).for_each(|(o, v)| *o += weight * v),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// One head's attention for heads of `8 N` values (64 or 128), with the operations of
    /// the portable code in the same order (so the same bits), but eight keys scored at a
    /// time (eight independent chains), their lanes summed in lane order after an 8 × 8
    /// transpose rather than one key at a time, and the output kept in registers rather than
    /// loaded and stored for every position. `keys` and `values` start at this head's
    /// columns; position `t` is at `t * stride`.
    ///
    /// # Safety
    /// The CPU must have AVX.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx")]
    pub unsafe fn attend_head<const N: usize>(
        keys: &[f32],
        values: &[f32],
        stride: usize,
        len: usize,
        q: &[f32],
        scale: f32,
        scores: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        let width = 8 * N;
        assert!(len > 0 && q.len() == width && out.len() == width);
        assert!(keys.len() >= (len - 1) * stride + width);
        assert!(values.len() >= (len - 1) * stride + width);
        scores.clear();
        scores.resize(len, 0.0);
        let scale = _mm256_set1_ps(scale);
        let mut max = f32::NEG_INFINITY;
        for t in (0..len).step_by(8) {
            // Past the last position, the last key again (its scores are dropped).
            // SAFETY (every load below): positions below `len` are in bounds by the asserts.
            let k: [*const f32; 8] = std::array::from_fn(|j| unsafe {
                keys.as_ptr().add((t + j).min(len - 1) * stride)
            });
            let mut acc = [_mm256_setzero_ps(); 8];
            for i in 0..N {
                let query = unsafe { _mm256_loadu_ps(q.as_ptr().add(8 * i)) };
                for j in 0..8 {
                    let key = unsafe { _mm256_loadu_ps(k[j].add(8 * i)) };
                    acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(query, key));
                }
            }
            // Lane `l` of every key side by side, then `0 + l0 + l1 + … + l7` per key: the
            // portable code's `sum()` of its lanes.
            let lanes = transpose(acc);
            let mut sum = _mm256_setzero_ps();
            for lane in lanes {
                sum = _mm256_add_ps(sum, lane);
            }
            let mut group = [0f32; 8];
            // SAFETY: 8 writable floats.
            unsafe { _mm256_storeu_ps(group.as_mut_ptr(), _mm256_mul_ps(sum, scale)) };
            for (j, score) in group.iter().take(len - t).enumerate() {
                scores[t + j] = *score;
                max = max.max(*score);
            }
        }
        let mut total = 0.0;
        for score in scores.iter_mut() {
            *score = (*score - max).exp();
            total += *score;
        }
        let mut acc = [_mm256_setzero_ps(); N];
        for (t, score) in scores.iter().enumerate() {
            let weight = _mm256_set1_ps(score / total);
            let v = unsafe { values.as_ptr().add(t * stride) };
            for (i, acc) in acc.iter_mut().enumerate() {
                let v = unsafe { _mm256_loadu_ps(v.add(8 * i)) };
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(weight, v));
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            // SAFETY: 8 writable floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * i), *acc) };
        }
    }

    /// The 8 × 8 transpose: lane `j` of result `l` is lane `l` of `rows[j]`.
    #[inline]
    #[target_feature(enable = "avx")]
    fn transpose(rows: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(rows[0], rows[1]);
        let t1 = _mm256_unpackhi_ps(rows[0], rows[1]);
        let t2 = _mm256_unpacklo_ps(rows[2], rows[3]);
        let t3 = _mm256_unpackhi_ps(rows[2], rows[3]);
        let t4 = _mm256_unpacklo_ps(rows[4], rows[5]);
        let t5 = _mm256_unpackhi_ps(rows[4], rows[5]);
        let t6 = _mm256_unpacklo_ps(rows[6], rows[7]);
        let t7 = _mm256_unpackhi_ps(rows[6], rows[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xee>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xee>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xee>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xee>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    /// Lane `i` of the result is `Σ_j a[8j + i] * b[8j + i]`, each product rounded before its
    /// add (no fused multiply-add, so the lanes match the portable code).
    ///
    /// # Safety
    /// The CPU must have AVX; `a` and `b` have the same length, a multiple of 8.
    #[target_feature(enable = "avx")]
    pub unsafe fn dot_lanes(a: &[f32], b: &[f32]) -> [f32; 8] {
        let mut acc = _mm256_setzero_ps();
        for (a, b) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
            // SAFETY: 8 readable floats each.
            let (a, b) = unsafe { (_mm256_loadu_ps(a.as_ptr()), _mm256_loadu_ps(b.as_ptr())) };
            acc = _mm256_add_ps(acc, _mm256_mul_ps(a, b));
        }
        let mut lanes = [0f32; 8];
        // SAFETY: 8 writable floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        lanes
    }

    /// `out[i] += weight * v[i]`, a multiply then an add.
    ///
    /// # Safety
    /// The CPU must have AVX; `v` is at least as long as `out`.
    #[target_feature(enable = "avx")]
    pub unsafe fn add_scaled(out: &mut [f32], v: &[f32], weight: f32) {
        let w = _mm256_set1_ps(weight);
        let chunks = out.len() / 8 * 8;
        for (o, v) in out[..chunks].chunks_exact_mut(8).zip(v.chunks_exact(8)) {
            // SAFETY: 8 readable and writable floats each.
            unsafe {
                let sum = _mm256_add_ps(
                    _mm256_loadu_ps(o.as_ptr()),
                    _mm256_mul_ps(w, _mm256_loadu_ps(v.as_ptr())),
                );
                _mm256_storeu_ps(o.as_mut_ptr(), sum);
            }
        }
        for (o, v) in out[chunks..].iter_mut().zip(&v[chunks..]) {
            *o += weight * v;
        }
    }
}

/// RMS normalisation of each row of `x` (rows of `weight.len()`), into `out`.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut Vec<f32>) {
    out.clear();
    for row in x.chunks_exact(weight.len()) {
        let mean_square = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        let scale = 1.0 / (mean_square + eps).sqrt();
        out.extend(row.iter().zip(weight).map(|(v, w)| v * scale * w));
    }
}

/// A 2-D weight tensor as a [`QMatrix`]: as stored when Q4_1 or Q8_0, requantized otherwise.
fn matrix(tensor: candle_core::quantized::QTensor, name: &str) -> Result<QMatrix, LocalError> {
    let bad = |why: String| LocalError::Gguf(format!("tensor {name}: {why}"));
    let (rows, cols) = tensor.shape().dims2().map_err(|e| bad(e.to_string()))?;
    let ggml_type = match tensor.dtype() {
        GgmlDType::Q4_1 => Some(crate::quant::GGML_TYPE_Q4_1),
        GgmlDType::Q8_0 => Some(crate::quant::GGML_TYPE_Q8_0),
        _ => None,
    };
    if let Some(ggml_type) = ggml_type {
        let bytes = tensor.data().map_err(|e| bad(e.to_string()))?;
        if let Some(matrix) = QMatrix::from_gguf_bytes(ggml_type, rows, cols, &bytes) {
            return Ok(matrix);
        }
    }
    let values = tensor
        .dequantize(&Device::Cpu)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| bad(e.to_string()))?;
    QMatrix::quantize_q8_0(rows, cols, &values)
        .ok_or_else(|| bad(format!("width {cols} is not a multiple of 32")))
}

/// A 1-D tensor (a norm's weights) as f32.
fn vector(tensor: candle_core::quantized::QTensor, name: &str) -> Result<Vec<f32>, LocalError> {
    tensor
        .dequantize(&Device::Cpu)
        .and_then(|t: Tensor| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| LocalError::Gguf(format!("tensor {name}: {e}")))
}

/// The matrices stacked into one; when their block types differ, all as Q8_0.
fn stack(parts: &[&QMatrix]) -> QMatrix {
    QMatrix::concat(parts).unwrap_or_else(|| {
        let rows = parts.iter().map(|p| p.rows).sum();
        let values: Vec<f32> = parts.iter().flat_map(|p| p.dequantize()).collect();
        QMatrix::quantize_q8_0(rows, parts[0].cols, &values)
            .expect("the parts' widths were checked when each was loaded")
    })
}

fn check_shapes(
    c: &Config,
    layers: &[Layer],
    embeddings: &QMatrix,
    output: Option<&QMatrix>,
) -> Result<(), LocalError> {
    let kv_dim = c.kv_heads * c.head_dim;
    let wrong = |what: &str| {
        Err(LocalError::Gguf(format!(
            "{what} does not match the model's metadata"
        )))
    };
    if embeddings.cols != c.dim || output.is_some_and(|o| o.cols != c.dim) {
        return wrong("the embedding or output matrix width");
    }
    for (i, layer) in layers.iter().enumerate() {
        let ok = layer.qkv.cols == c.dim
            && layer.qkv.rows == c.dim + 2 * kv_dim
            && layer.attn_out.rows == c.dim
            && layer.attn_out.cols == c.dim
            && layer.gate_up.cols == c.dim
            && layer.gate_up.rows == 2 * c.ffn_dim
            && layer.down.rows == c.dim
            && layer.attn_norm.len() == c.dim
            && layer.ffn_norm.len() == c.dim;
        if !ok {
            return wrong(&format!("block {i}'s tensor shapes"));
        }
    }
    Ok(())
}

fn read_tensor(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
    name: &str,
) -> Result<candle_core::quantized::QTensor, LocalError> {
    content
        .tensor(file, name, &Device::Cpu)
        .map_err(|e| LocalError::Gguf(format!("tensor {name}: {e}")))
}

fn metadata_str(content: &gguf_file::Content, key: &str) -> Result<String, LocalError> {
    content
        .metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
        .ok_or_else(|| LocalError::Gguf(format!("metadata {key} is missing")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-range, range): quant's test values, scaled.
    fn values(n: usize, seed: u64, range: f32) -> Vec<f32> {
        let unit = crate::quant::tests::values(n, seed);
        unit.into_iter().map(|v| v * range).collect()
    }

    /// The SIMD attention (eight keys at a time, summed after a transpose)
    /// gives the portable code's bits, over lengths that end inside and at the edge of a
    /// group of keys.
    #[test]
    fn attention_kernels_match_the_portable_code() {
        if Isa::detect() == Isa::Scalar {
            return;
        }
        let c = Config {
            layers: 1,
            dim: 192,
            heads: 3,
            kv_heads: 1,
            head_dim: 64,
            ffn_dim: 0,
            vocab: 0,
            context: 64,
            rms_eps: 1e-5,
        };
        for len in [1, 3, 4, 8, 9, 16, 33] {
            let keys = values(len * 64, 1, 1.0);
            let vals = values(len * 64, 2, 1.0);
            let q = values(64, 3, 3.0);
            for head in 0..3 {
                let (mut simd, mut portable) = (vec![0.0; 64], vec![0.0; 64]);
                let mut scores = Vec::new();
                attend_head(
                    &c,
                    &keys,
                    &vals,
                    len - 1,
                    head,
                    &q,
                    &mut scores,
                    &mut simd,
                    true,
                );
                attend_head(
                    &c,
                    &keys,
                    &vals,
                    len - 1,
                    head,
                    &q,
                    &mut scores,
                    &mut portable,
                    false,
                );
                assert_eq!(simd, portable, "length {len}, head {head}");
            }
        }
    }
}
