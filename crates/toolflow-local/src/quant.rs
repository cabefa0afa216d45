//! Quantized matrix products, the way llama.cpp does them on the CPU: the weights stay in
//! their GGUF blocks (Q4_1 or Q8_0), the activations are quantized per block of 32 to 8 bits
//! (with the block sum, which Q4_1's offset needs), and each block's dot product is an
//! integer one: AVX-512 VNNI (`vpdpbusd`) or AVX2 (`vpmaddubsw`), chosen at run time, with a
//! plain scalar fallback that the tests check the SIMD code against.
//!
//! Several activation rows (the sequences decoded together, or a prompt's tokens) go through
//! each weight block together: the block is loaded, unpacked and its scales converted once,
//! then dotted with up to [`ROWS`] activation rows. Every output is still summed block by
//! block in the same order with the same operations, so it does not depend on how many rows
//! share a pass (nor on the thread count): batching never changes a sequence's numbers.
//!
//! Other weight types (Q4_K, Q6_K, F16, …) are dequantized at load and requantized to Q8_0,
//! so any llama-architecture GGUF runs on the same two kernels.

use std::sync::OnceLock;

/// Values per quantization block.
pub const QK: usize = 32;

/// Activation rows one kernel call dots with each weight row: enough to share the unpacking
/// of a block across a decoding batch, few enough that the accumulators stay in registers.
pub const ROWS: usize = 4;

/// A Q4_1 block as GGUF stores it: `x = d * q + m` with 4-bit `q`; byte `j` holds element `j`
/// in its low nibble and element `j + 16` in its high one.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4_1 {
    d: u16,
    m: u16,
    qs: [u8; QK / 2],
}

/// A Q8_0 block as GGUF stores it: `x = d * q` with 8-bit `q`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ8_0 {
    d: u16,
    qs: [i8; QK],
}

/// A block of quantized activations (llama.cpp's Q8_1, with f32 scales): `x ≈ d * q`, and
/// `s = d * Σq` so that a Q4_1 weight's offset costs one multiply per block.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct BlockQ8_1 {
    d: f32,
    s: f32,
    qs: [i8; QK],
}

/// GGUF's type ids for the two block types kept as they are.
pub const GGML_TYPE_Q4_1: u32 = 3;
pub const GGML_TYPE_Q8_0: u32 = 8;

/// A weight matrix of `rows` outputs by `cols` inputs, row-major in blocks.
#[derive(Debug, Clone)]
pub struct QMatrix {
    pub rows: usize,
    pub cols: usize,
    blocks: Blocks,
}

#[derive(Debug, Clone)]
enum Blocks {
    Q4_1(Vec<BlockQ4_1>),
    Q8_0(Vec<BlockQ8_0>),
}

/// The instruction set the dot products use on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512Vnni,
    Avx2,
    Scalar,
}

impl Isa {
    /// The best this CPU runs, detected once.
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let avx2 = std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && std::is_x86_feature_detected!("f16c");
                if avx2
                    && std::is_x86_feature_detected!("avx512vnni")
                    && std::is_x86_feature_detected!("avx512vl")
                {
                    return Isa::Avx512Vnni;
                }
                if avx2 {
                    return Isa::Avx2;
                }
            }
            Isa::Scalar
        })
    }

    /// The instruction sets this CPU can run, best first (for tests and benches).
    pub fn available() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Avx512Vnni, Isa::Avx2, Isa::Scalar]
            .into_iter()
            .skip_while(|isa| *isa != best)
            .collect()
    }
}

/// IEEE half to single precision (GGUF block scales are halves).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    if exponent == 0 {
        // Zero or subnormal: mantissa * 2^-24.
        let value = mantissa as f32 * (1.0 / 16_777_216.0);
        return if sign != 0 { -value } else { value };
    }
    let bits = if exponent == 31 {
        sign | 0x7f80_0000 | (mantissa << 13)
    } else {
        sign | ((exponent + 112) << 23) | (mantissa << 13)
    };
    f32::from_bits(bits)
}

/// Single to half precision, rounding to nearest even (for requantized Q8_0 scales).
fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x7f_ffff;
    if exponent == 0xff {
        return sign | 0x7c00 | if mantissa != 0 { 0x200 } else { 0 };
    }
    let half_exponent = exponent - 127 + 15;
    if half_exponent >= 31 {
        return sign | 0x7c00;
    }
    if half_exponent <= 0 {
        if half_exponent < -10 {
            return sign;
        }
        let mantissa = mantissa | 0x80_0000;
        let shift = (14 - half_exponent) as u32;
        let rounded = (mantissa + (1 << (shift - 1)) - 1 + ((mantissa >> shift) & 1)) >> shift;
        return sign | rounded as u16;
    }
    let rounded = mantissa + 0xfff + ((mantissa >> 13) & 1);
    let (half_exponent, rounded) = if rounded & 0x80_0000 != 0 {
        (half_exponent + 1, 0)
    } else {
        (half_exponent, rounded)
    };
    if half_exponent >= 31 {
        return sign | 0x7c00;
    }
    sign | ((half_exponent as u16) << 10) | (rounded >> 13) as u16
}

impl QMatrix {
    /// A matrix from GGUF tensor bytes of `ggml_type` (Q4_1 or Q8_0); `None` for other types.
    pub fn from_gguf_bytes(ggml_type: u32, rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        if cols % QK != 0 {
            return None;
        }
        let count = rows * cols / QK;
        let blocks = match ggml_type {
            GGML_TYPE_Q4_1 if bytes.len() == count * 20 => Blocks::Q4_1(
                bytes
                    .chunks_exact(20)
                    .map(|b| BlockQ4_1 {
                        d: u16::from_le_bytes([b[0], b[1]]),
                        m: u16::from_le_bytes([b[2], b[3]]),
                        qs: b[4..20].try_into().expect("16 bytes"),
                    })
                    .collect(),
            ),
            GGML_TYPE_Q8_0 if bytes.len() == count * 34 => Blocks::Q8_0(
                bytes
                    .chunks_exact(34)
                    .map(|b| BlockQ8_0 {
                        d: u16::from_le_bytes([b[0], b[1]]),
                        qs: std::array::from_fn(|i| b[2 + i] as i8),
                    })
                    .collect(),
            ),
            _ => return None,
        };
        Some(QMatrix { rows, cols, blocks })
    }

    /// Quantizes f32 weights (`rows * cols`, row-major) to Q8_0, as llama.cpp does.
    pub fn quantize_q8_0(rows: usize, cols: usize, values: &[f32]) -> Option<Self> {
        if cols % QK != 0 || values.len() != rows * cols {
            return None;
        }
        let blocks = values
            .chunks_exact(QK)
            .map(|x| {
                let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
                BlockQ8_0 {
                    d: f32_to_f16(d),
                    qs: std::array::from_fn(|i| (x[i] * inverse).round() as i8),
                }
            })
            .collect();
        Some(QMatrix {
            rows,
            cols,
            blocks: Blocks::Q8_0(blocks),
        })
    }

    /// The matrix as f32, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows * self.cols];
        for row in 0..self.rows {
            self.dequantize_row(row, &mut out[row * self.cols..(row + 1) * self.cols]);
        }
        out
    }

    /// Row `row` as f32 (an embedding lookup).
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let per_row = self.cols / QK;
        let range = row * per_row..(row + 1) * per_row;
        match &self.blocks {
            Blocks::Q4_1(blocks) => {
                for (block, out) in blocks[range].iter().zip(out.chunks_exact_mut(QK)) {
                    let (d, m) = (f16_to_f32(block.d), f16_to_f32(block.m));
                    for j in 0..QK / 2 {
                        out[j] = d * f32::from(block.qs[j] & 0x0f) + m;
                        out[j + QK / 2] = d * f32::from(block.qs[j] >> 4) + m;
                    }
                }
            }
            Blocks::Q8_0(blocks) => {
                for (block, out) in blocks[range].iter().zip(out.chunks_exact_mut(QK)) {
                    let d = f16_to_f32(block.d);
                    for (o, q) in out.iter_mut().zip(block.qs) {
                        *o = d * f32::from(q);
                    }
                }
            }
        }
    }

    /// Stacks matrices of the same width and block type into one (so one product, and one
    /// thread fork, computes all of them); `None` when their types or widths differ.
    pub fn concat(parts: &[&QMatrix]) -> Option<QMatrix> {
        let cols = parts.first()?.cols;
        if parts.iter().any(|p| p.cols != cols) {
            return None;
        }
        let rows = parts.iter().map(|p| p.rows).sum();
        let blocks = match &parts[0].blocks {
            Blocks::Q4_1(_) => Blocks::Q4_1(
                parts
                    .iter()
                    .map(|p| match &p.blocks {
                        Blocks::Q4_1(b) => Some(b.as_slice()),
                        Blocks::Q8_0(_) => None,
                    })
                    .collect::<Option<Vec<_>>>()?
                    .concat(),
            ),
            Blocks::Q8_0(_) => Blocks::Q8_0(
                parts
                    .iter()
                    .map(|p| match &p.blocks {
                        Blocks::Q8_0(b) => Some(b.as_slice()),
                        Blocks::Q4_1(_) => None,
                    })
                    .collect::<Option<Vec<_>>>()?
                    .concat(),
            ),
        };
        Some(QMatrix { rows, cols, blocks })
    }

    /// `out[r * rows + o] = Σ_k W[o][k] · x[r][k]` over rows `outputs` of `W`, for every
    /// activation row `r` of `x`.
    ///
    /// # Safety
    /// `out` must point to `x.rows * self.rows` floats, and no other thread may write the
    /// columns `outputs` of it meanwhile.
    unsafe fn matmul_range(
        &self,
        x: &QuantizedRows,
        out: *mut f32,
        outputs: std::ops::Range<usize>,
        isa: Isa,
    ) {
        let per_row = self.cols / QK;
        // Eight weight rows (under 8 KB of Q4_1 at width 1536) stay in L1 while every group
        // of activation rows passes over them, so each weight byte is read from memory once
        // and each activation block from L2 once per eight outputs.
        const TILE: usize = 8;
        let mut start = outputs.start;
        while start < outputs.end {
            let end = (start + TILE).min(outputs.end);
            let mut first = 0;
            while first < x.rows {
                let count = (x.rows - first).min(ROWS);
                let a = &x.blocks[first * per_row..(first + count) * per_row];
                for o in start..end {
                    let w = o * per_row..(o + 1) * per_row;
                    let mut sums = [0f32; ROWS];
                    let sums = &mut sums[..count];
                    match &self.blocks {
                        Blocks::Q4_1(blocks) => dot_q4_1(&blocks[w], a, sums, isa),
                        Blocks::Q8_0(blocks) => dot_q8_0(&blocks[w], a, sums, isa),
                    }
                    for (r, sum) in sums.iter().enumerate() {
                        // SAFETY: in bounds by the caller's contract, and this column is ours.
                        unsafe { *out.add((first + r) * self.rows + o) = *sum };
                    }
                }
                first += count;
            }
            start = end;
        }
    }

    /// `x · Wᵀ` for every row of `x`: `out` is `x.rows` rows of `self.rows` floats. The
    /// output rows are split into one contiguous range per thread of `pool`.
    pub fn matmul(&self, x: &QuantizedRows, out: &mut [f32], pool: Option<&rayon::ThreadPool>) {
        self.matmul_with(x, out, pool, Isa::detect());
    }

    /// [`QMatrix::matmul`] on a given instruction set (which the CPU must have).
    pub fn matmul_with(
        &self,
        x: &QuantizedRows,
        out: &mut [f32],
        pool: Option<&rayon::ThreadPool>,
        isa: Isa,
    ) {
        assert_eq!(x.cols, self.cols, "activation width");
        assert_eq!(out.len(), x.rows * self.rows, "output size");
        let out_ptr = SharedOut(out.as_mut_ptr());
        let threads = pool.map_or(1, |p| p.current_num_threads());
        // Below a few hundred output rows per thread the fork costs more than it saves.
        let work = self.rows * x.rows;
        if threads <= 1 || work < 512 {
            // SAFETY: `out` holds `x.rows * self.rows` floats and this is the only writer.
            unsafe { self.matmul_range(x, out_ptr.0, 0..self.rows, isa) };
            return;
        }
        let pool = pool.expect("threads > 1 means a pool");
        let chunk = self.rows.div_ceil(threads).next_multiple_of(8);
        pool.scope(|scope| {
            for start in (0..self.rows).step_by(chunk) {
                let out_ptr = &out_ptr;
                let end = (start + chunk).min(self.rows);
                scope.spawn(move |_| {
                    // SAFETY: `out` holds `x.rows * self.rows` floats, and the ranges given
                    // to the threads are disjoint.
                    unsafe { self.matmul_range(x, out_ptr.0, start..end, isa) }
                });
            }
        });
    }
}

/// The output buffer shared by the threads of one product, each writing its own columns.
struct SharedOut(*mut f32);
// SAFETY: the threads write disjoint elements (see `matmul_range`'s contract).
unsafe impl Sync for SharedOut {}

/// Rows of activations quantized to [`BlockQ8_1`], the right-hand side of every product.
#[derive(Debug, Clone, Default)]
pub struct QuantizedRows {
    pub rows: usize,
    pub cols: usize,
    blocks: Vec<BlockQ8_1>,
}

impl QuantizedRows {
    /// Quantizes `values` (`rows` rows of `cols`, a multiple of 32) in place of what it held.
    pub fn quantize(&mut self, values: &[f32], cols: usize) {
        assert_eq!(cols % QK, 0, "activation width must be a multiple of {QK}");
        self.rows = values.len() / cols;
        self.cols = cols;
        self.blocks.clear();
        self.blocks.extend(values.chunks_exact(QK).map(|x| {
            let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
            let qs: [i8; QK] = std::array::from_fn(|i| (x[i] * inverse).round() as i8);
            let sum: i32 = qs.iter().map(|q| i32::from(*q)).sum();
            BlockQ8_1 {
                d,
                s: d * sum as f32,
                qs,
            }
        }));
    }
}

/// `out[r] = w · a[r]` for the `out.len()` (at most [`ROWS`]) activation rows laid end to
/// end in `a`, each as long as `w`.
fn dot_q4_1(w: &[BlockQ4_1], a: &[BlockQ8_1], out: &mut [f32], isa: Isa) {
    debug_assert_eq!(a.len(), w.len() * out.len());
    match (isa, out.len()) {
        // SAFETY: `Isa::detect` found these features on this CPU; `a` holds the rows.
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512Vnni, 1) => unsafe { x86::dot_q4_1_vnni::<1>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512Vnni, 2) => unsafe { x86::dot_q4_1_vnni::<2>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512Vnni, 3) => unsafe { x86::dot_q4_1_vnni::<3>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512Vnni, 4) => unsafe { x86::dot_q4_1_vnni::<4>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 1) => unsafe { x86::dot_q4_1_avx2::<1>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 2) => unsafe { x86::dot_q4_1_avx2::<2>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 3) => unsafe { x86::dot_q4_1_avx2::<3>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 4) => unsafe { x86::dot_q4_1_avx2::<4>(w, a, out) },
        _ => dot_q4_1_scalar(w, a, out),
    }
}

/// [`dot_q4_1`] for Q8_0 weights.
fn dot_q8_0(w: &[BlockQ8_0], a: &[BlockQ8_1], out: &mut [f32], isa: Isa) {
    debug_assert_eq!(a.len(), w.len() * out.len());
    match (isa, out.len()) {
        // SAFETY: `Isa::detect` found these features on this CPU; `a` holds the rows.
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512Vnni, 1) => unsafe { x86::dot_q8_0_vnni::<1>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512Vnni, 2) => unsafe { x86::dot_q8_0_vnni::<2>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512Vnni, 3) => unsafe { x86::dot_q8_0_vnni::<3>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512Vnni, 4) => unsafe { x86::dot_q8_0_vnni::<4>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 1) => unsafe { x86::dot_q8_0_avx2::<1>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 2) => unsafe { x86::dot_q8_0_avx2::<2>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 3) => unsafe { x86::dot_q8_0_avx2::<3>(w, a, out) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 4) => unsafe { x86::dot_q8_0_avx2::<4>(w, a, out) },
        _ => dot_q8_0_scalar(w, a, out),
    }
}

fn dot_q4_1_scalar(w: &[BlockQ4_1], a: &[BlockQ8_1], out: &mut [f32]) {
    for (a, out) in a.chunks_exact(w.len()).zip(out) {
        let mut sum = 0.0;
        for (w, a) in w.iter().zip(a) {
            let mut isum = 0i32;
            for j in 0..QK / 2 {
                isum += i32::from(w.qs[j] & 0x0f) * i32::from(a.qs[j]);
                isum += i32::from(w.qs[j] >> 4) * i32::from(a.qs[j + QK / 2]);
            }
            sum += f16_to_f32(w.d) * a.d * isum as f32 + f16_to_f32(w.m) * a.s;
        }
        *out = sum;
    }
}

fn dot_q8_0_scalar(w: &[BlockQ8_0], a: &[BlockQ8_1], out: &mut [f32]) {
    for (a, out) in a.chunks_exact(w.len()).zip(out) {
        let mut sum = 0.0;
        for (w, a) in w.iter().zip(a) {
            let isum: i32 =
                w.qs.iter()
                    .zip(a.qs)
                    .map(|(w, a)| i32::from(*w) * i32::from(a))
                    .sum();
            sum += f16_to_f32(w.d) * a.d * isum as f32;
        }
        *out = sum;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BlockQ4_1, BlockQ8_0, BlockQ8_1};

    /// A Q4_1 block's 32 nibbles as bytes, in element order.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn unpack_nibbles(qs: &[u8; 16]) -> __m256i {
        // SAFETY: 16 readable bytes; the caller has AVX2.
        unsafe {
            let packed = _mm_loadu_si128(qs.as_ptr().cast());
            let low_mask = _mm_set1_epi8(0x0f);
            let low = _mm_and_si128(packed, low_mask);
            let high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_mask);
            _mm256_set_m128i(high, low)
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum(v: __m256) -> f32 {
        let sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
        let sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
        _mm_cvtss_f32(sum)
    }

    /// A block's two half-precision scales (`d`, then `m` for Q4_1) as floats, by F16C.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    fn scales(d: u16, m: u16) -> (f32, f32) {
        let both = _mm_cvtph_ps(_mm_cvtsi32_si128(
            (u32::from(d) | u32::from(m) << 16) as i32,
        ));
        (_mm_cvtss_f32(both), _mm_cvtss_f32(_mm_movehdup_ps(both)))
    }

    // The four kernels below share one shape: per weight block, load and unpack it and
    // convert its scales once, then for each of the `R` activation rows take the integer dot
    // product, scale it into that row's float accumulator and add the row's offset term.
    // Each row's operations are those of a one-row product, in the same order, so `R` never
    // changes a result.

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_q4_1_avx2<const R: usize>(w: &[BlockQ4_1], a: &[BlockQ8_1], out: &mut [f32]) {
        let n = w.len();
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        let mut offsets = [0f32; R];
        for (b, w) in w.iter().enumerate() {
            // SAFETY: 16 readable bytes; AVX2 is enabled.
            let weights = unsafe { unpack_nibbles(&w.qs) };
            let (d, m) = scales(w.d, w.m);
            for r in 0..R {
                let a = &a[r * n + b];
                // SAFETY: 32 readable bytes of activations; AVX2 is enabled.
                let acts = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                let products = _mm256_madd_epi16(_mm256_maddubs_epi16(weights, acts), ones);
                let scale = _mm256_set1_ps(d * a.d);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), scale, acc[r]);
                offsets[r] += m * a.s;
            }
        }
        for r in 0..R {
            out[r] = hsum(acc[r]) + offsets[r];
        }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub unsafe fn dot_q4_1_vnni<const R: usize>(w: &[BlockQ4_1], a: &[BlockQ8_1], out: &mut [f32]) {
        let n = w.len();
        let mut acc = [_mm256_setzero_ps(); R];
        let mut offsets = [0f32; R];
        for (b, w) in w.iter().enumerate() {
            // SAFETY: 16 readable bytes; AVX2 is enabled.
            let weights = unsafe { unpack_nibbles(&w.qs) };
            let (d, m) = scales(w.d, w.m);
            for r in 0..R {
                let a = &a[r * n + b];
                // SAFETY: 32 readable bytes of activations; AVX2 is enabled.
                let acts = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                let products = _mm256_dpbusd_epi32(_mm256_setzero_si256(), weights, acts);
                let scale = _mm256_set1_ps(d * a.d);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), scale, acc[r]);
                offsets[r] += m * a.s;
            }
        }
        for r in 0..R {
            out[r] = hsum(acc[r]) + offsets[r];
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_q8_0_avx2<const R: usize>(w: &[BlockQ8_0], a: &[BlockQ8_1], out: &mut [f32]) {
        let n = w.len();
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        for (b, w) in w.iter().enumerate() {
            // SAFETY: 32 readable bytes; AVX2 is enabled.
            let weights = unsafe { _mm256_loadu_si256(w.qs.as_ptr().cast()) };
            // maddubs takes unsigned × signed: |w| × (a with w's sign).
            let magnitudes = _mm256_sign_epi8(weights, weights);
            let (d, _) = scales(w.d, 0);
            for r in 0..R {
                let a = &a[r * n + b];
                // SAFETY: 32 readable bytes of activations; AVX2 is enabled.
                let acts = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                let signed = _mm256_sign_epi8(acts, weights);
                let products = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitudes, signed), ones);
                let scale = _mm256_set1_ps(d * a.d);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), scale, acc[r]);
            }
        }
        for r in 0..R {
            out[r] = hsum(acc[r]);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub unsafe fn dot_q8_0_vnni<const R: usize>(w: &[BlockQ8_0], a: &[BlockQ8_1], out: &mut [f32]) {
        let n = w.len();
        let mut acc = [_mm256_setzero_ps(); R];
        for (b, w) in w.iter().enumerate() {
            // SAFETY: 32 readable bytes; AVX2 is enabled.
            let weights = unsafe { _mm256_loadu_si256(w.qs.as_ptr().cast()) };
            let magnitudes = _mm256_sign_epi8(weights, weights);
            let (d, _) = scales(w.d, 0);
            for r in 0..R {
                let a = &a[r * n + b];
                // SAFETY: 32 readable bytes of activations; AVX2 and VNNI are enabled.
                let acts = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                let signed = _mm256_sign_epi8(acts, weights);
                let products = _mm256_dpbusd_epi32(_mm256_setzero_si256(), magnitudes, signed);
                let scale = _mm256_set1_ps(d * a.d);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), scale, acc[r]);
            }
        }
        for r in 0..R {
            out[r] = hsum(acc[r]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Q4_1 bytes quantizing `values` as llama.cpp's reference quantizer does.
    fn q4_1_bytes(values: &[f32]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for x in values.chunks_exact(QK) {
            let min = x.iter().cloned().fold(f32::INFINITY, f32::min);
            let max = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let d = (max - min) / 15.0;
            let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
            bytes.extend(f32_to_f16(d).to_le_bytes());
            bytes.extend(f32_to_f16(min).to_le_bytes());
            for j in 0..QK / 2 {
                let q = |v: f32| (((v - min) * inverse + 0.5) as u8).min(15);
                bytes.push(q(x[j]) | (q(x[j + QK / 2]) << 4));
            }
        }
        bytes
    }

    fn reference(w: &[f32], x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let n = x.len() / cols;
        let mut out = vec![0.0; n * rows];
        for r in 0..n {
            for o in 0..rows {
                out[r * rows + o] = (0..cols).map(|k| w[o * cols + k] * x[r * cols + k]).sum();
            }
        }
        out
    }

    /// Every instruction set against a plain f32 product of the dequantized weights and the
    /// unquantized activations: the only error left is the activations' 8-bit rounding.
    fn check(matrix: &QMatrix, x: &[f32]) {
        let (rows, cols) = (matrix.rows, matrix.cols);
        let expected = reference(&matrix.dequantize(), x, rows, cols);
        let mut quantized = QuantizedRows::default();
        quantized.quantize(x, cols);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut scalar = vec![0.0; expected.len()];
        matrix.matmul_with(&quantized, &mut scalar, None, Isa::Scalar);
        for isa in Isa::available() {
            for pool in [None, Some(&pool)] {
                let mut out = vec![0.0; expected.len()];
                matrix.matmul_with(&quantized, &mut out, pool, isa);
                for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
                    let tolerance = 0.02 * (cols as f32).sqrt();
                    assert!(
                        (got - want).abs() < tolerance,
                        "{isa:?} output {i}: {got} against {want}"
                    );
                    // Integer sums in a different order: equal up to float rounding.
                    assert!(
                        (got - scalar[i]).abs() < 1e-3,
                        "{isa:?} against scalar at {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn q4_1_products_match_the_f32_reference_on_every_instruction_set() {
        let (rows, cols) = (40, 96);
        let w = values(rows * cols, 1);
        let matrix = QMatrix::from_gguf_bytes(GGML_TYPE_Q4_1, rows, cols, &q4_1_bytes(&w))
            .expect("Q4_1 bytes");
        // The dequantized weights are close to the originals: the block layout is right.
        for (got, want) in matrix.dequantize().iter().zip(&w) {
            assert!((got - want).abs() < 0.07, "{got} against {want}");
        }
        check(&matrix, &values(3 * cols, 2));
        check(&matrix, &values(cols, 3));
    }

    #[test]
    fn q8_0_products_match_the_f32_reference_on_every_instruction_set() {
        let (rows, cols) = (600, 64);
        let w = values(rows * cols, 4);
        let matrix = QMatrix::quantize_q8_0(rows, cols, &w).unwrap();
        for (got, want) in matrix.dequantize().iter().zip(&w) {
            assert!((got - want).abs() < 0.005, "{got} against {want}");
        }
        check(&matrix, &values(5 * cols, 5));
        // Extreme weights (-128 is never produced by the quantizer, ±127 is) and activations.
        let mut extreme = w.clone();
        extreme.iter_mut().step_by(3).for_each(|v| *v = -1.0);
        check(
            &QMatrix::quantize_q8_0(rows, cols, &extreme).unwrap(),
            &values(cols, 6),
        );
    }

    /// Seven rows go through the kernels as a group of four and one of three; each row's
    /// outputs must be bit for bit those of the row alone, on one thread or two, so that a
    /// sequence's answer does not depend on the batch it was decoded in.
    #[test]
    fn a_row_does_not_depend_on_the_rows_beside_it_nor_on_the_threads() {
        let (rows, cols) = (40, 96);
        let q4_1 = QMatrix::from_gguf_bytes(
            GGML_TYPE_Q4_1,
            rows,
            cols,
            &q4_1_bytes(&values(rows * cols, 10)),
        )
        .unwrap();
        let q8_0 = QMatrix::quantize_q8_0(rows, cols, &values(rows * cols, 11)).unwrap();
        let x = values(7 * cols, 12);
        let mut together = QuantizedRows::default();
        together.quantize(&x, cols);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for matrix in [&q4_1, &q8_0] {
            for isa in Isa::available() {
                for pool in [None, Some(&pool)] {
                    let mut out = vec![0.0; 7 * rows];
                    matrix.matmul_with(&together, &mut out, pool, isa);
                    for (r, row) in x.chunks_exact(cols).enumerate() {
                        let mut alone = QuantizedRows::default();
                        alone.quantize(row, cols);
                        let mut expected = vec![0.0; rows];
                        matrix.matmul_with(&alone, &mut expected, None, isa);
                        assert_eq!(
                            &out[r * rows..(r + 1) * rows],
                            &expected[..],
                            "{isa:?} row {r}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn stacked_matrices_compute_their_parts() {
        let a = QMatrix::quantize_q8_0(8, 32, &values(256, 7)).unwrap();
        let b = QMatrix::quantize_q8_0(16, 32, &values(512, 8)).unwrap();
        let both = QMatrix::concat(&[&a, &b]).unwrap();
        assert_eq!(both.rows, 24);
        assert_eq!(&both.dequantize()[..256], &a.dequantize()[..]);
        let q4 =
            QMatrix::from_gguf_bytes(GGML_TYPE_Q4_1, 1, 32, &q4_1_bytes(&values(32, 9))).unwrap();
        assert!(QMatrix::concat(&[&a, &q4]).is_none());
    }

    #[test]
    fn halves_round_trip() {
        for x in [0.0f32, 1.0, -2.5, 0.000_061_035_156, 65504.0, 1e-7, 0.333] {
            let back = f16_to_f32(f32_to_f16(x));
            assert!((back - x).abs() <= x.abs() * 1e-3 + 6e-8, "{x} -> {back}");
        }
    }
}
