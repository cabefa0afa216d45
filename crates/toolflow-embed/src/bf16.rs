//! Matrix products with bfloat16 inputs and `f32` sums, on CPUs with AVX512-BF16.
//!
//! `vdpbf16ps` multiplies 32 bf16 pairs and adds them into 16 `f32` sums in one
//! instruction: twice the multiply-adds of an `f32` FMA of the same width. Rounding both
//! the weights and the activations to bf16 (round to nearest even, as PyTorch's
//! `.to(torch.bfloat16)` does) and summing in `f32` keeps MiniLM's sentence vectors within
//! a cosine of 0.99995 of the `f32` ones, where the product is most of the forward pass.
//!
//! The weight (`inputs × outputs`) is packed once, at load, into strips of
//! [`STRIP`] output columns. Within a strip, each pair of input rows `2p, 2p + 1` is one
//! run of [`STRIP`] 32-bit words, word `c` holding `(w[2p][c], w[2p + 1][c])`: exactly
//! what `vdpbf16ps` pairs with a broadcast `(x[2p], x[2p + 1])` of an activation row.

/// Output columns per strip: four 16-lane vectors.
pub const STRIP: usize = 64;

/// Activation rows per tile: 6 rows × 4 vectors = 24 accumulators, which with the four
/// weight vectors and a broadcast fits the 32 vector registers.
const TILE_ROWS: usize = 6;

/// Whether this CPU runs [`product`].
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether a weight of this shape can be packed: whole strips and whole input pairs.
pub fn fits(inputs: usize, outputs: usize) -> bool {
    inputs.is_multiple_of(2) && outputs.is_multiple_of(STRIP) && inputs > 0 && outputs > 0
}

/// `x` rounded to the nearest bf16, ties to even; NaN stays NaN.
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// A weight matrix packed for [`product`].
pub struct PackedWeight {
    words: Vec<u32>,
    inputs: usize,
    outputs: usize,
}

impl PackedWeight {
    /// Packs a row-major `inputs × outputs` matrix; the shape must [`fits`].
    pub fn pack(weight: &[f32], inputs: usize, outputs: usize) -> Self {
        assert!(fits(inputs, outputs) && weight.len() == inputs * outputs);
        let pairs = inputs / 2;
        let mut words = Vec::with_capacity(pairs * outputs);
        for strip in 0..outputs / STRIP {
            for pair in 0..pairs {
                for column in strip * STRIP..(strip + 1) * STRIP {
                    let even = to_bf16(weight[2 * pair * outputs + column]) as u32;
                    let odd = to_bf16(weight[(2 * pair + 1) * outputs + column]) as u32;
                    words.push(even | (odd << 16));
                }
            }
        }
        Self {
            words,
            inputs,
            outputs,
        }
    }
}

/// Rounds `input` to bf16 (to nearest even) into `rounded`, resized to match: the form
/// [`product`] reads.
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16 ([`supported`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn round_activations(input: &[f32], rounded: &mut Vec<u16>) {
    use std::arch::x86_64::*;
    rounded.resize(input.len(), 0);
    let mut chunks = input.chunks_exact(16);
    let mut out = rounded.chunks_exact_mut(16);
    for (chunk, out) in (&mut chunks).zip(&mut out) {
        // SAFETY: both chunks are 16 elements long; the CPU has the features.
        unsafe {
            let halves = _mm512_cvtneps_pbh(_mm512_loadu_ps(chunk.as_ptr()));
            _mm256_storeu_si256(
                out.as_mut_ptr().cast(),
                std::mem::transmute::<__m256bh, __m256i>(halves),
            );
        }
    }
    for (x, out) in chunks.remainder().iter().zip(out.into_remainder()) {
        *out = to_bf16(*x);
    }
}

/// `output` (`rows × outputs`, row-major) becomes `input · weight`, or has it added when
/// `accumulate`; `input` is `rows × inputs` bf16 from [`round_activations`].
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16 ([`supported`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn product(
    weight: &PackedWeight,
    input: &[u16],
    output: &mut [f32],
    rows: usize,
    accumulate: bool,
) {
    assert_eq!(input.len(), rows * weight.inputs);
    assert_eq!(output.len(), rows * weight.outputs);
    let pairs = weight.inputs / 2;
    for strip in 0..weight.outputs / STRIP {
        let strip_words = &weight.words[strip * pairs * STRIP..][..pairs * STRIP];
        let mut row = 0;
        while row + TILE_ROWS <= rows {
            // SAFETY: the caller's CPU has the features; `tile` reads rows `row..row + 6`
            // of `input` and `output`, in bounds as `row + 6 ≤ rows`.
            unsafe {
                tile::<TILE_ROWS>(weight, strip, strip_words, input, output, row, accumulate)
            };
            row += TILE_ROWS;
        }
        // SAFETY: as above, for the last `rows - row < 6` rows.
        unsafe {
            match rows - row {
                0 => {}
                1 => tile::<1>(weight, strip, strip_words, input, output, row, accumulate),
                2 => tile::<2>(weight, strip, strip_words, input, output, row, accumulate),
                3 => tile::<3>(weight, strip, strip_words, input, output, row, accumulate),
                4 => tile::<4>(weight, strip, strip_words, input, output, row, accumulate),
                _ => tile::<5>(weight, strip, strip_words, input, output, row, accumulate),
            }
        }
    }
}

/// Rows `first..first + ROWS` of one strip of the product, summed in registers over all
/// input pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
unsafe fn tile<const ROWS: usize>(
    weight: &PackedWeight,
    strip: usize,
    strip_words: &[u32],
    input: &[u16],
    output: &mut [f32],
    first: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let (inputs, outputs) = (weight.inputs, weight.outputs);
    let column = strip * STRIP;
    debug_assert!((first + ROWS) * inputs <= input.len());
    let mut sums = [[_mm512_setzero_ps(); 4]; ROWS];
    // SAFETY (all pointer arithmetic below): rows `first..first + ROWS` exist in `input`
    // (`inputs` wide) and `output` (`outputs` wide, columns `column..column + 64` within
    // it); `strip_words` holds `inputs / 2` runs of 64 words.
    unsafe {
        let out = output.as_mut_ptr().add(first * outputs + column);
        if accumulate {
            for (row, sums) in sums.iter_mut().enumerate() {
                for (part, sum) in sums.iter_mut().enumerate() {
                    *sum = _mm512_loadu_ps(out.add(row * outputs + part * 16));
                }
            }
        }
        let activations = input.as_ptr().add(first * inputs);
        let mut words = strip_words.as_ptr();
        for pair in 0..inputs / 2 {
            let w: [__m512bh; 4] = std::array::from_fn(|part| {
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                    words.add(part * 16).cast(),
                ))
            });
            for (row, sums) in sums.iter_mut().enumerate() {
                let x = activations
                    .add(row * inputs + 2 * pair)
                    .cast::<i32>()
                    .read_unaligned();
                let x = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(x));
                for (sum, w) in sums.iter_mut().zip(&w) {
                    *sum = _mm512_dpbf16_ps(*sum, x, *w);
                }
            }
            words = words.add(STRIP);
        }
        for (row, sums) in sums.iter().enumerate() {
            for (part, sum) in sums.iter().enumerate() {
                _mm512_storeu_ps(out.add(row * outputs + part * 16), *sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bf16_value(bits: u16) -> f32 {
        f32::from_bits((bits as u32) << 16)
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(bf16_value(to_bf16(1.0)), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa, 1.
        assert_eq!(bf16_value(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // Just above halfway rounds up.
        assert_eq!(
            bf16_value(to_bf16(1.0 + 1.0 / 256.0 + 1.0 / 65536.0)),
            1.0 + 1.0 / 128.0
        );
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: goes up to even.
        assert_eq!(bf16_value(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 1.0 / 64.0);
        assert_eq!(bf16_value(to_bf16(-2.5)), -2.5);
        assert!(bf16_value(to_bf16(f32::NAN)).is_nan());
        assert_eq!(bf16_value(to_bf16(f32::INFINITY)), f32::INFINITY);
    }

    #[test]
    fn the_vector_rounding_agrees_with_the_scalar_one() {
        if !supported() {
            eprintln!("skipped: this CPU lacks AVX512-BF16");
            return;
        }
        // Normal floats of every exponent and many mantissas, odd length for the tail.
        let input: Vec<f32> = (0..4099u32)
            .map(|i| f32::from_bits(0x0080_0000u32.wrapping_add(i.wrapping_mul(0x0009_e377))))
            .filter(|x| x.is_normal())
            .collect();
        let mut rounded = Vec::new();
        // SAFETY: supported() was checked above.
        unsafe { round_activations(&input, &mut rounded) };
        assert_eq!(rounded.len(), input.len());
        for (x, bits) in input.iter().zip(&rounded) {
            assert_eq!(*bits, to_bf16(*x), "{x:e}");
        }
    }

    /// The product against a plain triple loop over the same bf16-rounded values, for
    /// row counts that exercise every tile height.
    #[test]
    fn product_matches_a_plain_loop_over_rounded_values() {
        if !supported() {
            eprintln!("skipped: this CPU lacks AVX512-BF16");
            return;
        }
        let (inputs, outputs) = (40, 128);
        let value = |i: usize| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 1.37;
        let weight: Vec<f32> = (0..inputs * outputs).map(value).collect();
        let packed = PackedWeight::pack(&weight, inputs, outputs);
        for rows in [1, 5, 6, 7, 13] {
            let input: Vec<f32> = (0..rows * inputs).map(|i| value(i + 3)).collect();
            let mut rounded = Vec::new();
            // SAFETY: supported() was checked above.
            unsafe { round_activations(&input, &mut rounded) };
            for accumulate in [false, true] {
                let start: Vec<f32> = (0..rows * outputs).map(|i| value(i + 11)).collect();
                let mut output = start.clone();
                // SAFETY: supported() was checked above.
                unsafe { product(&packed, &rounded, &mut output, rows, accumulate) };
                for row in 0..rows {
                    for column in 0..outputs {
                        let mut expected = if accumulate {
                            start[row * outputs + column]
                        } else {
                            0.0
                        };
                        for k in 0..inputs {
                            expected += bf16_value(rounded[row * inputs + k])
                                * bf16_value(to_bf16(weight[k * outputs + column]));
                        }
                        let got = output[row * outputs + column];
                        assert!(
                            (got - expected).abs() <= 1e-4 * (1.0 + expected.abs()),
                            "rows {rows}, accumulate {accumulate}, [{row}][{column}]: {got} vs {expected}"
                        );
                    }
                }
            }
        }
    }
}
