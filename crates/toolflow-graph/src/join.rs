//! The exact similarity join: every pair of rows of two matrices of unit vectors whose dot
//! product (their cosine) is strictly above τ.
//!
//! The product is computed a block at a time with `gemm` and thresholded inside the block, so
//! memory stays at one `BLOCK × BLOCK` tile per thread whatever the number of vectors. `gemm`
//! reorders its sums, so a cosine within `ROUND_OFF_MARGIN` of τ could land on either side
//! depending on where the pair falls in a tile; every candidate above `τ - margin` is therefore
//! decided by one fixed-order dot product in `f64`. The decision and the score are thus the
//! same on every machine, whatever the blocking or thread count.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows (and columns) of one tile of the similarity matrix: 1024² floats = 4 MiB.
const BLOCK: usize = 1024;

/// Bound on the error of an `f32` dot product of two unit vectors of up to a few thousand
/// dimensions (`k · ε · Σ|aᵢbᵢ| ≤ 384 · 6e-8 ≈ 2.3e-5` for MiniLM), with room to spare.
const ROUND_OFF_MARGIN: f32 = 1e-4;

/// A pair of row indices `(left, right)` and their cosine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The row of the left matrix.
    pub left: u32,
    /// The row of the right matrix.
    pub right: u32,
    /// Their cosine, from [`exact_cosine`].
    pub score: f32,
}

/// Row-major `rows × dim` matrix of `f32`, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// The rows one after another; its length is a multiple of `dim`.
    pub data: &'a [f32],
    /// The length of a row.
    pub dim: usize,
}

impl Rows<'_> {
    /// The number of rows; 0 when `dim` is 0.
    pub fn len(&self) -> usize {
        if self.dim == 0 {
            0
        } else {
            self.data.len() / self.dim
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn row(&self, index: usize) -> &[f32] {
        &self.data[index * self.dim..(index + 1) * self.dim]
    }
}

/// The exact score of a pair: the dot product summed in `f64` in index order, rounded once to
/// `f32`. The join's decisions and reported scores all come from here.
pub fn exact_cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum::<f64>() as f32
}

/// Every pair `(i, j)` with `exact_cosine(left[i], right[j]) > tau`, sorted by `(i, j)`.
///
/// With `upper_triangle`, `left` and `right` must be the same matrix and only pairs with
/// `i <= j` are reported (the diagonal included, so that a string shared by two tools joins
/// them); tiles wholly below the diagonal are never computed.
pub fn join(
    left: Rows<'_>,
    right: Rows<'_>,
    tau: f32,
    upper_triangle: bool,
    threads: usize,
) -> Vec<Hit> {
    assert_eq!(
        left.dim, right.dim,
        "both sides of a join have the same dimension"
    );
    let mut tiles = Vec::new();
    for row_start in (0..left.len()).step_by(BLOCK) {
        let first_column = if upper_triangle { row_start } else { 0 };
        for column_start in (first_column..right.len()).step_by(BLOCK) {
            tiles.push((row_start, column_start));
        }
    }
    let next_tile = AtomicUsize::new(0);
    let worker = || {
        let mut tile = vec![0f32; BLOCK * BLOCK];
        let mut hits = Vec::new();
        loop {
            let Some(&(row_start, column_start)) =
                tiles.get(next_tile.fetch_add(1, Ordering::Relaxed))
            else {
                break;
            };
            join_tile(
                left,
                right,
                row_start,
                column_start,
                tau,
                upper_triangle,
                &mut tile,
                &mut hits,
            );
        }
        hits
    };
    let threads = threads.clamp(1, tiles.len().max(1));
    let mut hits: Vec<Hit> = if threads == 1 {
        worker()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            handles
                .into_iter()
                .flat_map(|handle| handle.join().expect("a join worker panicked"))
                .collect()
        })
    };
    hits.sort_unstable_by_key(|hit| (hit.left, hit.right));
    hits
}

#[allow(clippy::too_many_arguments)]
fn join_tile(
    left: Rows<'_>,
    right: Rows<'_>,
    row_start: usize,
    column_start: usize,
    tau: f32,
    upper_triangle: bool,
    tile: &mut [f32],
    hits: &mut Vec<Hit>,
) {
    let rows = BLOCK.min(left.len() - row_start);
    let columns = BLOCK.min(right.len() - column_start);
    let dim = left.dim;
    // tile[r * columns + c] = Σₖ left[row_start + r][k] · right[column_start + c][k]
    // SAFETY: every pointer and stride below stays inside its slice: `tile` holds at least
    // rows × columns floats, the left block rows × dim, the right block columns × dim.
    unsafe {
        gemm::gemm(
            rows,
            columns,
            dim,
            tile.as_mut_ptr(),
            1,
            columns as isize,
            false,
            left.data[row_start * dim..].as_ptr(),
            1,
            dim as isize,
            right.data[column_start * dim..].as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    let floor = tau - ROUND_OFF_MARGIN;
    for r in 0..rows {
        let i = row_start + r;
        let first = if upper_triangle {
            i.saturating_sub(column_start).min(columns)
        } else {
            0
        };
        let scores = &tile[r * columns..(r + 1) * columns];
        for (c, &approximate) in scores.iter().enumerate().skip(first) {
            if approximate > floor {
                let j = column_start + c;
                let score = exact_cosine(left.row(i), right.row(j));
                if score > tau {
                    hits.push(Hit {
                        left: i as u32,
                        right: j as u32,
                        score,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator, so the test needs no RNG crate of its own.
    struct SplitMix(u64);
    impl SplitMix {
        fn next(&mut self) -> f32 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
    }

    fn normalise(v: &mut [f32]) {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
    }

    /// Random unit vectors clustered around a few centres, so that many pairs land near τ,
    /// plus exact duplicates and pairs whose cosine is exactly τ.
    fn vectors(count: usize, dim: usize, seed: u64, tau: f32) -> Vec<f32> {
        let mut rng = SplitMix(seed);
        let centres: Vec<Vec<f32>> = (0..5)
            .map(|_| (0..dim).map(|_| rng.next()).collect())
            .collect();
        let mut data = Vec::with_capacity(count * dim);
        for n in 0..count {
            let mut v: Vec<f32> = match n % 7 {
                // Exactly cos = τ against the unit vector e₀ (row 6 of every 7): τ·e₀ + s·e₁.
                5 => {
                    let mut v = vec![0.0; dim];
                    v[0] = tau;
                    v[1] = (1.0 - tau * tau).sqrt();
                    v
                }
                6 => {
                    let mut v = vec![0.0; dim];
                    v[0] = 1.0;
                    v
                }
                _ => centres[n % 5]
                    .iter()
                    .map(|c| c + 0.35 * rng.next())
                    .collect(),
            };
            if n % 7 != 5 && n % 7 != 6 {
                normalise(&mut v);
            }
            data.extend_from_slice(&v);
        }
        // Duplicate a few rows exactly.
        for n in (0..count).step_by(11).skip(1) {
            let source: Vec<f32> = data[(n - 1) * dim..n * dim].to_vec();
            data[n * dim..(n + 1) * dim].copy_from_slice(&source);
        }
        data
    }

    fn brute_force(left: Rows<'_>, right: Rows<'_>, tau: f32, upper: bool) -> Vec<Hit> {
        let mut hits = Vec::new();
        for i in 0..left.len() {
            for j in if upper { i } else { 0 }..right.len() {
                let score = exact_cosine(left.row(i), right.row(j));
                if score > tau {
                    hits.push(Hit {
                        left: i as u32,
                        right: j as u32,
                        score,
                    });
                }
            }
        }
        hits
    }

    #[test]
    fn blocked_join_equals_brute_force() {
        let (dim, tau) = (24, 0.82);
        // More rows than one tile on each side, to cross tile edges and the diagonal.
        let a = vectors(BLOCK + 300, dim, 1, tau);
        let b = vectors(700, dim, 2, tau);
        let (a, b) = (Rows { data: &a, dim }, Rows { data: &b, dim });
        let expected = brute_force(a, a, tau, true);
        assert!(
            expected.len() > 10_000,
            "the fixture exercises many hits: {}",
            expected.len()
        );
        for threads in [1, 3] {
            assert_eq!(join(a, a, tau, true, threads), expected);
            assert_eq!(
                join(a, b, tau, false, threads),
                brute_force(a, b, tau, false)
            );
        }
    }

    #[test]
    fn cosine_equal_to_tau_is_not_an_edge() {
        let tau = 0.82f32;
        let dim = 3;
        let data = [1.0, 0.0, 0.0, tau, (1.0 - tau * tau).sqrt(), 0.0];
        let rows = Rows { data: &data, dim };
        assert_eq!(exact_cosine(&data[..3], &data[3..]), tau);
        let hits = join(rows, rows, tau, true, 1);
        // Only each vector with itself.
        assert_eq!(
            hits.iter().map(|h| (h.left, h.right)).collect::<Vec<_>>(),
            [(0, 0), (1, 1)]
        );
        // Just below τ the pair joins.
        let hits = join(rows, rows, tau - 1e-6, true, 1);
        assert_eq!(hits.len(), 3);
    }

    #[test]
    fn empty_sides_give_no_hits() {
        let data = [1.0f32, 0.0];
        let rows = Rows {
            data: &data,
            dim: 2,
        };
        let empty = Rows { data: &[], dim: 2 };
        assert!(join(empty, rows, 0.5, false, 2).is_empty());
        assert!(join(rows, empty, 0.5, false, 2).is_empty());
    }
}
