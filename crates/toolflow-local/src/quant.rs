//! Quantized matrix products, the way llama.cpp does them on the CPU: the weights stay in
//! their GGUF blocks (Q4_1 or Q8_0), the activations are quantized per block of 32 to 8 bits
//! (with the block sum, which Q4_1's offset and the unsigned Q8_0 product need), and each
//! block's dot product is an integer one: AVX-512 VNNI (`vpdpbusd`) or AVX2 (`vpmaddubsw`),
//! chosen at run time, with a plain scalar fallback.
//!
//! The weights are repacked at load, eight rows at a time: the blocks of the same 32 columns
//! of eight rows are interleaved so that one 32-byte load holds four weights of each row, and
//! one integer product against four activations broadcast to every lane advances all eight
//! rows. A block's integer dot product of eight rows comes out whole in one register, scaled
//! and accumulated with one multiply-add, with no horizontal sum; and that work is shared by
//! the up to [`ROWS`] activation rows (sequences decoded together, or a prompt's tokens) that
//! go through each block together.
//!
//! Each output is summed block by block in one fixed order with the same operations whatever
//! the instruction set, the number of activation rows beside it or the thread count (integer
//! sums are exact, and the float steps are the same per lane), so batching never changes a
//! sequence's numbers and the scalar fallback gives the same bits as the SIMD kernels.
//!
//! Other weight types (Q4_K, Q6_K, F16, …) are dequantized at load and requantized to Q8_0,
//! so any llama-architecture GGUF runs on the same two kernels.

use std::sync::OnceLock;

/// Values per quantization block.
pub const QK: usize = 32;

/// Activation rows one kernel call takes: enough to share the unpacking of a block across a
/// decoding batch, few enough that the accumulators stay in registers.
pub const ROWS: usize = 4;

/// Weight rows interleaved in a group (the 32-bit lanes of a 256-bit register).
const LANES: usize = 8;

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

/// A block of quantized activations (llama.cpp's Q8_1, with f32 scales): `x ≈ d * q`,
/// `s = d * Σq` so that a Q4_1 weight's offset costs one multiply per block, and `Σq` itself,
/// which corrects the product of Q8_0 weights taken as unsigned bytes.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct BlockQ8_1 {
    d: f32,
    s: f32,
    sum: i32,
    qs: [i8; QK],
}

/// Block `b` of eight Q4_1 rows: their scales, and `qs[32 s + 4 j + k]` = row `j`'s byte
/// `4 s + k` (elements `4 s + k` in the low nibble, `16 + 4 s + k` in the high one).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct GroupQ4_1 {
    d: [u16; LANES],
    m: [u16; LANES],
    qs: [u8; LANES * QK / 2],
}

/// Block `b` of eight Q8_0 rows: `qs[32 s + 4 j + k]` = row `j`'s element `4 s + k`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct GroupQ8_0 {
    d: [u16; LANES],
    qs: [i8; LANES * QK],
}

impl GroupQ4_1 {
    const EMPTY: GroupQ4_1 = GroupQ4_1 {
        d: [0; LANES],
        m: [0; LANES],
        qs: [0; LANES * QK / 2],
    };

    fn block(&self, lane: usize) -> BlockQ4_1 {
        BlockQ4_1 {
            d: self.d[lane],
            m: self.m[lane],
            qs: std::array::from_fn(|i| self.qs[32 * (i / 4) + 4 * lane + i % 4]),
        }
    }

    fn set(&mut self, lane: usize, block: &BlockQ4_1) {
        self.d[lane] = block.d;
        self.m[lane] = block.m;
        for (i, q) in block.qs.iter().enumerate() {
            self.qs[32 * (i / 4) + 4 * lane + i % 4] = *q;
        }
    }
}

impl GroupQ8_0 {
    const EMPTY: GroupQ8_0 = GroupQ8_0 {
        d: [0; LANES],
        qs: [0; LANES * QK],
    };

    fn block(&self, lane: usize) -> BlockQ8_0 {
        BlockQ8_0 {
            d: self.d[lane],
            qs: std::array::from_fn(|i| self.qs[32 * (i / 4) + 4 * lane + i % 4]),
        }
    }

    fn set(&mut self, lane: usize, block: &BlockQ8_0) {
        self.d[lane] = block.d;
        for (i, q) in block.qs.iter().enumerate() {
            self.qs[32 * (i / 4) + 4 * lane + i % 4] = *q;
        }
    }
}

/// Interleaves row-major blocks (`rows` rows of `per_row`) into groups of eight rows; the
/// rows that complete the last group are zeros, and their outputs are never written.
fn pack<B, G: Copy>(
    blocks: &[B],
    rows: usize,
    per_row: usize,
    empty: G,
    set: impl Fn(&mut G, usize, &B),
) -> Vec<G> {
    let mut groups = vec![empty; rows.div_ceil(LANES) * per_row];
    for (row, blocks) in blocks.chunks_exact(per_row).enumerate() {
        for (b, block) in blocks.iter().enumerate() {
            set(&mut groups[(row / LANES) * per_row + b], row % LANES, block);
        }
    }
    groups
}

/// GGUF's type id for Q4_1, one of the two block types kept as they are.
pub const GGML_TYPE_Q4_1: u32 = 3;
/// GGUF's type id for Q8_0, the other block type kept as it is.
pub const GGML_TYPE_Q8_0: u32 = 8;

/// A weight matrix of `rows` outputs by `cols` inputs, in groups of eight rows.
#[derive(Debug, Clone)]
pub struct QMatrix {
    /// Outputs.
    pub rows: usize,
    /// Inputs, a multiple of [`QK`].
    pub cols: usize,
    blocks: Blocks,
}

/// Group `g * cols / 32 + b` holds block `b` of rows `8 g .. 8 g + 8`.
#[derive(Debug, Clone)]
enum Blocks {
    Q4_1(Vec<GroupQ4_1>),
    Q8_0(Vec<GroupQ8_0>),
}

/// The instruction set the dot products use on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 VNNI (with AVX-512VL), on top of AVX2, FMA and F16C.
    Avx512Vnni,
    /// AVX2 with FMA and F16C.
    Avx2,
    /// Plain Rust, for any CPU.
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
        if !cols.is_multiple_of(QK) {
            return None;
        }
        let count = rows * cols / QK;
        match ggml_type {
            GGML_TYPE_Q4_1 if bytes.len() == count * 20 => {
                let blocks: Vec<BlockQ4_1> = bytes
                    .chunks_exact(20)
                    .map(|b| BlockQ4_1 {
                        d: u16::from_le_bytes([b[0], b[1]]),
                        m: u16::from_le_bytes([b[2], b[3]]),
                        qs: b[4..20].try_into().expect("16 bytes"),
                    })
                    .collect();
                Some(Self::from_q4_1(rows, cols, &blocks))
            }
            GGML_TYPE_Q8_0 if bytes.len() == count * 34 => {
                let blocks: Vec<BlockQ8_0> = bytes
                    .chunks_exact(34)
                    .map(|b| BlockQ8_0 {
                        d: u16::from_le_bytes([b[0], b[1]]),
                        qs: std::array::from_fn(|i| b[2 + i] as i8),
                    })
                    .collect();
                Some(Self::from_q8_0(rows, cols, &blocks))
            }
            _ => None,
        }
    }

    fn from_q4_1(rows: usize, cols: usize, blocks: &[BlockQ4_1]) -> Self {
        let groups = pack(blocks, rows, cols / QK, GroupQ4_1::EMPTY, GroupQ4_1::set);
        QMatrix {
            rows,
            cols,
            blocks: Blocks::Q4_1(groups),
        }
    }

    fn from_q8_0(rows: usize, cols: usize, blocks: &[BlockQ8_0]) -> Self {
        let groups = pack(blocks, rows, cols / QK, GroupQ8_0::EMPTY, GroupQ8_0::set);
        QMatrix {
            rows,
            cols,
            blocks: Blocks::Q8_0(groups),
        }
    }

    /// Quantizes f32 weights (`rows * cols`, row-major) to Q8_0, as llama.cpp does.
    pub fn quantize_q8_0(rows: usize, cols: usize, values: &[f32]) -> Option<Self> {
        if !cols.is_multiple_of(QK) || values.len() != rows * cols {
            return None;
        }
        let blocks: Vec<BlockQ8_0> = values
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
        Some(Self::from_q8_0(rows, cols, &blocks))
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
        let range = (row / LANES) * per_row..(row / LANES + 1) * per_row;
        let lane = row % LANES;
        match &self.blocks {
            Blocks::Q4_1(groups) => {
                for (group, out) in groups[range].iter().zip(out.chunks_exact_mut(QK)) {
                    let block = group.block(lane);
                    let (d, m) = (f16_to_f32(block.d), f16_to_f32(block.m));
                    for j in 0..QK / 2 {
                        out[j] = d * f32::from(block.qs[j] & 0x0f) + m;
                        out[j + QK / 2] = d * f32::from(block.qs[j] >> 4) + m;
                    }
                }
            }
            Blocks::Q8_0(groups) => {
                for (group, out) in groups[range].iter().zip(out.chunks_exact_mut(QK)) {
                    let block = group.block(lane);
                    let d = f16_to_f32(block.d);
                    for (o, q) in out.iter_mut().zip(block.qs) {
                        *o = d * f32::from(q);
                    }
                }
            }
        }
    }

    /// The blocks of every row, row-major, when the matrix is Q4_1.
    fn q4_1_rows(&self) -> Option<Vec<BlockQ4_1>> {
        let Blocks::Q4_1(groups) = &self.blocks else {
            return None;
        };
        let per_row = self.cols / QK;
        Some(
            (0..self.rows * per_row)
                .map(|i| {
                    let (row, b) = (i / per_row, i % per_row);
                    groups[(row / LANES) * per_row + b].block(row % LANES)
                })
                .collect(),
        )
    }

    /// The blocks of every row, row-major, when the matrix is Q8_0.
    fn q8_0_rows(&self) -> Option<Vec<BlockQ8_0>> {
        let Blocks::Q8_0(groups) = &self.blocks else {
            return None;
        };
        let per_row = self.cols / QK;
        Some(
            (0..self.rows * per_row)
                .map(|i| {
                    let (row, b) = (i / per_row, i % per_row);
                    groups[(row / LANES) * per_row + b].block(row % LANES)
                })
                .collect(),
        )
    }

    /// Stacks matrices of the same width and block type into one (so one product, and one
    /// thread fork, computes all of them); `None` when their types or widths differ.
    pub fn concat(parts: &[&QMatrix]) -> Option<QMatrix> {
        let cols = parts.first()?.cols;
        if parts.iter().any(|p| p.cols != cols) {
            return None;
        }
        let rows = parts.iter().map(|p| p.rows).sum();
        match &parts[0].blocks {
            Blocks::Q4_1(_) => {
                let blocks = parts
                    .iter()
                    .map(|p| p.q4_1_rows())
                    .collect::<Option<Vec<_>>>()?
                    .concat();
                Some(Self::from_q4_1(rows, cols, &blocks))
            }
            Blocks::Q8_0(_) => {
                let blocks = parts
                    .iter()
                    .map(|p| p.q8_0_rows())
                    .collect::<Option<Vec<_>>>()?
                    .concat();
                Some(Self::from_q8_0(rows, cols, &blocks))
            }
        }
    }

    /// `out[r * rows + o] = Σ_k W[o][k] · x[r][k]` over the rows of `W` in `groups` (of
    /// eight), for every activation row `r` of `x`.
    ///
    /// # Safety
    /// `out` must point to `x.rows * self.rows` floats, and no other thread may write the
    /// columns of these groups meanwhile.
    unsafe fn matmul_range(
        &self,
        x: &QuantizedRows,
        out: *mut f32,
        groups: std::ops::Range<usize>,
        isa: Isa,
    ) {
        let per_row = self.cols / QK;
        // One group of weights (under 8 KB of Q4_1 at width 1536) stays in L1 while every
        // activation row passes over it: each weight byte is read from memory once.
        for g in groups {
            let lanes = (self.rows - g * LANES).min(LANES);
            let mut first = 0;
            while first < x.rows {
                let count = (x.rows - first).min(ROWS);
                let a = &x.blocks[first * per_row..(first + count) * per_row];
                let mut sums = [0f32; ROWS * LANES];
                let sums = &mut sums[..count * LANES];
                let w = g * per_row..(g + 1) * per_row;
                match &self.blocks {
                    Blocks::Q4_1(groups) => dot_q4_1(&groups[w], a, sums, isa),
                    Blocks::Q8_0(groups) => dot_q8_0(&groups[w], a, sums, isa),
                }
                for (r, sums) in sums.chunks_exact(LANES).enumerate() {
                    // SAFETY: in bounds by the caller's contract, and these columns are ours.
                    unsafe {
                        let at = out.add((first + r) * self.rows + g * LANES);
                        std::ptr::copy_nonoverlapping(sums.as_ptr(), at, lanes);
                    }
                }
                first += count;
            }
        }
    }

    /// `x · Wᵀ` for every row of `x`: `out` is `x.rows` rows of `self.rows` floats. The
    /// groups of eight output rows are split into one contiguous range per thread of `pool`.
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
        let groups = self.rows.div_ceil(LANES);
        // Below a few hundred output rows per thread the fork costs more than it saves.
        let work = self.rows * x.rows;
        if threads <= 1 || work < 512 {
            // SAFETY: `out` holds `x.rows * self.rows` floats and this is the only writer.
            unsafe { self.matmul_range(x, out_ptr.0, 0..groups, isa) };
            return;
        }
        let pool = pool.expect("threads > 1 means a pool");
        let chunk = groups.div_ceil(threads);
        pool.scope(|scope| {
            for start in (0..groups).step_by(chunk) {
                let out_ptr = &out_ptr;
                let end = (start + chunk).min(groups);
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
    /// Rows held.
    pub rows: usize,
    /// Values per row, a multiple of [`QK`].
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
        self.blocks.reserve(values.len() / QK);
        match Isa::detect() {
            // SAFETY: `Isa::detect` found AVX2 on this CPU.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni | Isa::Avx2 => unsafe { x86::quantize(values, &mut self.blocks) },
            _ => quantize_blocks(values, &mut self.blocks),
        }
    }
}

/// Activations to [`BlockQ8_1`]s, rounding half away from zero as llama.cpp does (the
/// portable twin of the AVX2 `x86::quantize`).
fn quantize_blocks(values: &[f32], out: &mut Vec<BlockQ8_1>) {
    for x in values.chunks_exact(QK) {
        let mut amax = 0f32;
        for v in x {
            amax = amax.max(v.abs());
        }
        let d = amax / 127.0;
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; QK];
        let mut sum = 0i32;
        for (q, v) in qs.iter_mut().zip(x) {
            *q = (v * inverse).round() as i8;
            sum += i32::from(*q);
        }
        out.push(BlockQ8_1 {
            d,
            s: d * sum as f32,
            sum,
            qs,
        });
    }
}

/// `out[8 r + j] = w_j · a_r` for the eight rows `j` of the groups `w` (one per block) and
/// the `out.len() / 8` (at most [`ROWS`]) activation rows laid end to end in `a`.
fn dot_q4_1(w: &[GroupQ4_1], a: &[BlockQ8_1], out: &mut [f32], isa: Isa) {
    assert_eq!(a.len() * LANES, w.len() * out.len(), "activation rows");
    match (isa, out.len() / LANES) {
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
fn dot_q8_0(w: &[GroupQ8_0], a: &[BlockQ8_1], out: &mut [f32], isa: Isa) {
    assert_eq!(a.len() * LANES, w.len() * out.len(), "activation rows");
    match (isa, out.len() / LANES) {
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

// The scalar products do per output what each SIMD lane does: the block's exact integer dot
// product, times `d_w * d_a` added with one rounding (`mul_add`, the lane's fused
// multiply-add), the offsets summed apart, the two added at the end.

fn dot_q4_1_scalar(w: &[GroupQ4_1], a: &[BlockQ8_1], out: &mut [f32]) {
    for (a, out) in a.chunks_exact(w.len()).zip(out.chunks_exact_mut(LANES)) {
        for (lane, out) in out.iter_mut().enumerate() {
            let (mut acc, mut offsets) = (0f32, 0f32);
            for (group, a) in w.iter().zip(a) {
                let block = group.block(lane);
                let mut isum = 0i32;
                for j in 0..QK / 2 {
                    isum += i32::from(block.qs[j] & 0x0f) * i32::from(a.qs[j]);
                    isum += i32::from(block.qs[j] >> 4) * i32::from(a.qs[j + QK / 2]);
                }
                acc = (isum as f32).mul_add(f16_to_f32(block.d) * a.d, acc);
                offsets += f16_to_f32(block.m) * a.s;
            }
            *out = acc + offsets;
        }
    }
}

fn dot_q8_0_scalar(w: &[GroupQ8_0], a: &[BlockQ8_1], out: &mut [f32]) {
    for (a, out) in a.chunks_exact(w.len()).zip(out.chunks_exact_mut(LANES)) {
        for (lane, out) in out.iter_mut().enumerate() {
            let mut acc = 0f32;
            for (group, a) in w.iter().zip(a) {
                let block = group.block(lane);
                let isum: i32 = block
                    .qs
                    .iter()
                    .zip(a.qs)
                    .map(|(w, a)| i32::from(*w) * i32::from(a))
                    .sum();
                acc = (isum as f32).mul_add(f16_to_f32(block.d) * a.d, acc);
            }
            *out = acc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BlockQ8_1, GroupQ4_1, GroupQ8_0, LANES};

    /// [`super::quantize_blocks`] in AVX2 registers, with the same operations per value: the
    /// block's largest magnitude (a maximum, exact in any order), `v * (1 / d)` rounded half
    /// away from zero (the fraction `x - trunc(x)` is exact, so comparing it with 0.5 is
    /// `round`), and the exact integer sum; so the same bits as the portable code.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn quantize(values: &[f32], out: &mut Vec<BlockQ8_1>) {
        let sign = _mm256_set1_ps(-0.0);
        let half = _mm256_set1_ps(0.5);
        let one = _mm256_set1_ps(1.0);
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for x in values.chunks_exact(super::QK) {
            // SAFETY: 32 readable floats.
            let v: [__m256; 4] =
                std::array::from_fn(|i| unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * i)) });
            let abs = v.map(|v| _mm256_andnot_ps(sign, v));
            let m = _mm256_max_ps(_mm256_max_ps(abs[0], abs[1]), _mm256_max_ps(abs[2], abs[3]));
            let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            let m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
            let amax = _mm_cvtss_f32(m);
            let d = amax / 127.0;
            let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
            let scale = _mm256_set1_ps(inverse);
            let q = v.map(|v| {
                let x = _mm256_mul_ps(v, scale);
                let t = _mm256_round_ps(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                let fraction = _mm256_andnot_ps(sign, _mm256_sub_ps(x, t));
                let away = _mm256_and_ps(_mm256_cmp_ps(fraction, half, _CMP_GE_OQ), one);
                let rounded = _mm256_add_ps(t, _mm256_or_ps(away, _mm256_and_ps(x, sign)));
                _mm256_cvttps_epi32(rounded)
            });
            let total =
                _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
            let total = _mm_add_epi32(
                _mm256_castsi256_si128(total),
                _mm256_extracti128_si256(total, 1),
            );
            let total = _mm_add_epi32(total, _mm_unpackhi_epi64(total, total));
            let sum = _mm_cvtsi128_si32(total) + _mm_extract_epi32(total, 1);
            let bytes = _mm256_packs_epi16(
                _mm256_packs_epi32(q[0], q[1]),
                _mm256_packs_epi32(q[2], q[3]),
            );
            let bytes = _mm256_permutevar8x32_epi32(bytes, order);
            let mut qs = [0i8; super::QK];
            // SAFETY: 32 writable bytes.
            unsafe { _mm256_storeu_si256(qs.as_mut_ptr().cast(), bytes) };
            out.push(BlockQ8_1 {
                d,
                s: d * sum as f32,
                sum,
                qs,
            });
        }
    }

    /// Eight half-precision scales as floats.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    fn halves(h: &[u16; LANES]) -> __m256 {
        // SAFETY: 16 readable bytes.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(h.as_ptr().cast()) })
    }

    /// Four activations (bytes `4 i ..= 4 i + 3` of the block) in every 32-bit lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn broadcast(a: &BlockQ8_1, i: usize) -> __m256i {
        let bytes = [
            a.qs[4 * i],
            a.qs[4 * i + 1],
            a.qs[4 * i + 2],
            a.qs[4 * i + 3],
        ];
        _mm256_set1_epi32(i32::from_le_bytes(bytes.map(|b| b as u8)))
    }

    /// 32 bytes of a group: four of each of its rows.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load(bytes: &[u8]) -> __m256i {
        assert!(bytes.len() >= 32);
        // SAFETY: 32 readable bytes.
        unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
    }

    // The four kernels share one shape. Per block of eight rows: load and unpack the weights
    // and convert the scales once; then for each of the `R` activation rows, the integer dot
    // products of the eight rows (one 32-bit lane each, in two halves so the chains are
    // short), converted, scaled by `d_w * d_a` and added with one multiply-add, and for Q4_1
    // the offsets `m * s` summed apart. Each lane's operations are those of the scalar code.

    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; `a` holds `R` rows of `w.len()` blocks and `out`
    /// `8 R` floats.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_q4_1_avx2<const R: usize>(w: &[GroupQ4_1], a: &[BlockQ8_1], out: &mut [f32]) {
        let n = w.len();
        let low = _mm256_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        let mut offsets = [_mm256_setzero_ps(); R];
        for (b, g) in w.iter().enumerate() {
            let d = halves(&g.d);
            let m = halves(&g.m);
            let packed: [__m256i; 4] = std::array::from_fn(|s| load(&g.qs[32 * s..]));
            let lo = packed.map(|v| _mm256_and_si256(v, low));
            let hi = packed.map(|v| _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
            for r in 0..R {
                let a = &a[r * n + b];
                let mut even = _mm256_setzero_si256();
                let mut odd = _mm256_setzero_si256();
                for s in 0..4 {
                    let x = _mm256_maddubs_epi16(lo[s], broadcast(a, s));
                    even = _mm256_add_epi32(even, _mm256_madd_epi16(x, ones));
                    let x = _mm256_maddubs_epi16(hi[s], broadcast(a, 4 + s));
                    odd = _mm256_add_epi32(odd, _mm256_madd_epi16(x, ones));
                }
                let isum = _mm256_cvtepi32_ps(_mm256_add_epi32(even, odd));
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
                acc[r] = _mm256_fmadd_ps(isum, scale, acc[r]);
                offsets[r] = _mm256_add_ps(offsets[r], _mm256_mul_ps(m, _mm256_set1_ps(a.s)));
            }
        }
        for (r, out) in out.chunks_exact_mut(LANES).enumerate() {
            // SAFETY: 8 writable floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(acc[r], offsets[r])) };
        }
    }

    /// # Safety
    /// As [`dot_q4_1_avx2`], and the CPU must have AVX-512 VNNI and VL.
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub unsafe fn dot_q4_1_vnni<const R: usize>(w: &[GroupQ4_1], a: &[BlockQ8_1], out: &mut [f32]) {
        let n = w.len();
        let low = _mm256_set1_epi8(0x0f);
        let mut acc = [_mm256_setzero_ps(); R];
        let mut offsets = [_mm256_setzero_ps(); R];
        for (b, g) in w.iter().enumerate() {
            let d = halves(&g.d);
            let m = halves(&g.m);
            let packed: [__m256i; 4] = std::array::from_fn(|s| load(&g.qs[32 * s..]));
            let lo = packed.map(|v| _mm256_and_si256(v, low));
            let hi = packed.map(|v| _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
            for r in 0..R {
                let a = &a[r * n + b];
                let mut even = _mm256_setzero_si256();
                let mut odd = _mm256_setzero_si256();
                for s in 0..4 {
                    even = _mm256_dpbusd_epi32(even, lo[s], broadcast(a, s));
                    odd = _mm256_dpbusd_epi32(odd, hi[s], broadcast(a, 4 + s));
                }
                let isum = _mm256_cvtepi32_ps(_mm256_add_epi32(even, odd));
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
                acc[r] = _mm256_fmadd_ps(isum, scale, acc[r]);
                offsets[r] = _mm256_add_ps(offsets[r], _mm256_mul_ps(m, _mm256_set1_ps(a.s)));
            }
        }
        for (r, out) in out.chunks_exact_mut(LANES).enumerate() {
            // SAFETY: 8 writable floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(acc[r], offsets[r])) };
        }
    }

    /// # Safety
    /// As [`dot_q4_1_avx2`].
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_q8_0_avx2<const R: usize>(w: &[GroupQ8_0], a: &[BlockQ8_1], out: &mut [f32]) {
        let n = w.len();
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        for (b, g) in w.iter().enumerate() {
            let d = halves(&g.d);
            let bytes: &[u8; LANES * 32] = bytemuck_bytes(&g.qs);
            let weights: [__m256i; 8] = std::array::from_fn(|s| load(&bytes[32 * s..]));
            // maddubs takes unsigned × signed: |w| × (a with w's sign).
            let magnitudes = weights.map(|w| _mm256_sign_epi8(w, w));
            for r in 0..R {
                let a = &a[r * n + b];
                let mut even = _mm256_setzero_si256();
                let mut odd = _mm256_setzero_si256();
                for s in (0..8).step_by(2) {
                    let x = _mm256_sign_epi8(broadcast(a, s), weights[s]);
                    let x = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitudes[s], x), ones);
                    even = _mm256_add_epi32(even, x);
                    let x = _mm256_sign_epi8(broadcast(a, s + 1), weights[s + 1]);
                    let x = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitudes[s + 1], x), ones);
                    odd = _mm256_add_epi32(odd, x);
                }
                let isum = _mm256_cvtepi32_ps(_mm256_add_epi32(even, odd));
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
                acc[r] = _mm256_fmadd_ps(isum, scale, acc[r]);
            }
        }
        for (r, out) in out.chunks_exact_mut(LANES).enumerate() {
            // SAFETY: 8 writable floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc[r]) };
        }
    }

    /// # Safety
    /// As [`dot_q4_1_vnni`].
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub unsafe fn dot_q8_0_vnni<const R: usize>(w: &[GroupQ8_0], a: &[BlockQ8_1], out: &mut [f32]) {
        let n = w.len();
        // vpdpbusd multiplies unsigned by signed bytes: the weights go in as w + 128 (their
        // sign bit flipped), and 128 Σa comes off the exact integer sum.
        let flip = _mm256_set1_epi8(-128);
        let mut acc = [_mm256_setzero_ps(); R];
        for (b, g) in w.iter().enumerate() {
            let d = halves(&g.d);
            let bytes: &[u8; LANES * 32] = bytemuck_bytes(&g.qs);
            let weights: [__m256i; 8] =
                std::array::from_fn(|s| _mm256_xor_si256(load(&bytes[32 * s..]), flip));
            for r in 0..R {
                let a = &a[r * n + b];
                let mut even = _mm256_set1_epi32(-128 * a.sum);
                let mut odd = _mm256_setzero_si256();
                for s in (0..8).step_by(2) {
                    even = _mm256_dpbusd_epi32(even, weights[s], broadcast(a, s));
                    odd = _mm256_dpbusd_epi32(odd, weights[s + 1], broadcast(a, s + 1));
                }
                let isum = _mm256_cvtepi32_ps(_mm256_add_epi32(even, odd));
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
                acc[r] = _mm256_fmadd_ps(isum, scale, acc[r]);
            }
        }
        for (r, out) in out.chunks_exact_mut(LANES).enumerate() {
            // SAFETY: 8 writable floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc[r]) };
        }
    }

    /// Signed bytes seen as unsigned ones (the same bits).
    fn bytemuck_bytes(qs: &[i8; LANES * 32]) -> &[u8; LANES * 32] {
        // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid.
        unsafe { &*(qs as *const [i8; LANES * 32]).cast::<[u8; LANES * 32]>() }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
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
                    // The same operations per output on every instruction set: the same bits.
                    assert_eq!(
                        got.to_bits(),
                        scalar[i].to_bits(),
                        "{isa:?} against scalar at {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn q4_1_products_match_the_f32_reference_on_every_instruction_set() {
        // 43 rows: the last group of eight is padded.
        let (rows, cols) = (43, 96);
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
        let (rows, cols) = (605, 64);
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
        let (rows, cols) = (44, 96);
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

    /// The AVX2 quantizer gives the portable one's blocks, bit for bit, ties included.
    #[test]
    fn activation_quantization_matches_the_portable_code() {
        if Isa::detect() == Isa::Scalar {
            return;
        }
        let mut x = values(64 * QK, 13);
        // Values that land on .5 after scaling (ties round away from zero), zeros, a zero block.
        x[..QK]
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = (i as f32 - 16.0) * 0.5);
        x[QK..2 * QK].iter_mut().for_each(|v| *v = 0.0);
        x[2 * QK + 3] = -1e-30;
        x.iter_mut()
            .skip(3 * QK)
            .step_by(7)
            .for_each(|v| *v *= 100.0);
        let mut portable = Vec::new();
        quantize_blocks(&x, &mut portable);
        let mut simd = QuantizedRows::default();
        simd.quantize(&x, QK * 4);
        assert_eq!(simd.blocks.len(), portable.len());
        for (i, (a, b)) in simd.blocks.iter().zip(&portable).enumerate() {
            assert_eq!(
                (a.d.to_bits(), a.s.to_bits(), a.sum, a.qs),
                (b.d.to_bits(), b.s.to_bits(), b.sum, b.qs),
                "block {i}"
            );
        }
    }

    #[test]
    fn stacked_matrices_compute_their_parts() {
        // Five rows: the parts' padding must not end up inside the stack.
        let a = QMatrix::quantize_q8_0(5, 64, &values(320, 7)).unwrap();
        let b = QMatrix::quantize_q8_0(16, 64, &values(1024, 8)).unwrap();
        let both = QMatrix::concat(&[&a, &b]).unwrap();
        assert_eq!(both.rows, 21);
        assert_eq!(both.dequantize(), [a.dequantize(), b.dequantize()].concat());
        let q4 = |rows: usize, seed| {
            let bytes = q4_1_bytes(&values(rows * 64, seed));
            QMatrix::from_gguf_bytes(GGML_TYPE_Q4_1, rows, 64, &bytes).unwrap()
        };
        let (c, d) = (q4(3, 9), q4(9, 10));
        let both = QMatrix::concat(&[&c, &d]).unwrap();
        assert_eq!(both.dequantize(), [c.dequantize(), d.dequantize()].concat());
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
