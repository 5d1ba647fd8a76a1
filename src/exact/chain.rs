//! The one product of the blocked oracle ([`super::blocked`]): many tangent
//! columns multiplied by `W_hh` at once, each output number by the same
//! IEEE-754 operations as the dual-number forward pass computes it.
//!
//! # The operation sequence
//! The dual pass computes `a_t = (W_xh x_t + b_h) + W_hh h_{t-1}` with
//! nalgebra's `gemv`: column by column, `y ← (1·w_{:,j})·h_j + 1·y` for
//! `j = 0, 1, …`. On a dual number `h_j + dh_j ε` (and `W_hh` without a
//! tangent) the `ε` part of one update is
//! ```text
//! dA[i] ← fl( fl(dh_j · w_ij) + dA[i] )       no fused multiply-add, j ascending
//! ```
//! [`chain_update`] computes exactly this for a matrix of tangent columns:
//! `C[i, k] ← fl(C[i, k] + fl(W[i, j] · B[j, k]))` over a range of `j` in
//! ascending order. A chain can be cut anywhere and resumed (the running
//! value is stored exactly), so the caller splits it where a tangent of
//! `W_hh` adds its own term ([`super::blocked`]). The vector paths only run
//! independent chains side by side, so every [`Simd`] level gives the same
//! bits.

use std::ops::Range;
use std::sync::OnceLock;

/// Rows of a packed panel of `W_hh` (and of a register tile).
pub(crate) const MR: usize = 8;

/// Tangent columns of a register tile; a block's width is a multiple of it.
pub(crate) const NR: usize = 16;

/// Which vector instructions [`chain_update`] uses (detected once). Results
/// are bit-identical for all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Simd {
    /// Plain Rust (the compiler's baseline vectors).
    Portable,
    /// x86-64 AVX2: 4-wide vectors.
    Avx2,
    /// x86-64 AVX-512F: 8-wide vectors, 32 registers.
    Avx512,
}

impl Simd {
    /// The widest level this CPU runs.
    pub(crate) fn detect() -> Simd {
        static DETECTED: OnceLock<Simd> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    return Simd::Avx512;
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    return Simd::Avx2;
                }
            }
            Simd::Portable
        })
    }

    /// True when this CPU runs `self`.
    pub(crate) fn supported(self) -> bool {
        match self {
            Simd::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Packs the `rows × depth` matrix `at(i, j)` into panels of [`MR`] rows,
/// each `j`-major (`panel[j · MR + r] = A[p · MR + r, j]`), the rows past
/// `rows` zero.
pub(crate) fn pack_panels(rows: usize, depth: usize, at: impl Fn(usize, usize) -> f64) -> Vec<f64> {
    let panels = rows.div_ceil(MR);
    let mut out = vec![0.0; panels * MR * depth];
    for i in 0..rows {
        let (p, r) = (i / MR, i % MR);
        for j in 0..depth {
            out[p * MR * depth + j * MR + r] = at(i, j);
        }
    }
    out
}

/// `C[i, k] ← fl(C[i, k] + fl(A[i, j] · B[j, k]))` for `j` in `js`
/// ascending, for every row of the packed `A` ([`pack_panels`], `depth`
/// deep) and the first `lanes` columns.
///
/// `B` is row-major with row stride `ldb` (`B[j, k] = b[j · ldb + k]`), `C`
/// row-major with row stride `ldc` and one row per packed row. `lanes` must
/// be a multiple of [`NR`].
///
/// # Panics
/// If a slice is too short for the shapes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn chain_update(
    simd: Simd,
    panels: &[f64],
    depth: usize,
    js: Range<usize>,
    b: &[f64],
    ldb: usize,
    lanes: usize,
    c: &mut [f64],
    ldc: usize,
) {
    if js.is_empty() || lanes == 0 {
        return;
    }
    let n_panels = panels.len() / (MR * depth);
    assert_eq!(panels.len(), n_panels * MR * depth, "packed A");
    assert!(lanes.is_multiple_of(NR) && lanes <= ldb && lanes <= ldc);
    assert!(
        js.end <= depth && b.len() >= (js.end - 1) * ldb + lanes,
        "B"
    );
    assert!(c.len() >= (n_panels * MR - 1) * ldc + lanes, "C");
    let simd = if simd.supported() {
        simd
    } else {
        Simd::Portable
    };
    for p in 0..n_panels {
        let a = &panels[p * MR * depth + js.start * MR..p * MR * depth + js.end * MR];
        let b = &b[js.start * ldb..];
        let c = &mut c[p * MR * ldc..];
        match simd {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the asserts above keep every access in bounds, and
            // `supported` has checked the CPU's features.
            Simd::Avx512 => unsafe { panel_avx512(js.len(), a, b, ldb, lanes, c, ldc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Simd::Avx2 => unsafe { panel_avx2(js.len(), a, b, ldb, lanes, c, ldc) },
            _ => panel_portable(js.len(), a, b, ldb, lanes, c, ldc),
        }
    }
}

/// One panel of [`chain_update`]: `MR` rows, all lanes, `len` steps of `j`.
#[inline(always)]
fn panel_portable(
    len: usize,
    a: &[f64],
    b: &[f64],
    ldb: usize,
    lanes: usize,
    c: &mut [f64],
    ldc: usize,
) {
    for k0 in (0..lanes).step_by(NR) {
        let mut acc = [[0.0f64; NR]; MR];
        for (r, row) in acc.iter_mut().enumerate() {
            row.copy_from_slice(&c[r * ldc + k0..r * ldc + k0 + NR]);
        }
        for j in 0..len {
            let bj: &[f64; NR] = b[j * ldb + k0..j * ldb + k0 + NR]
                .try_into()
                .expect("NR lanes");
            for (r, row) in acc.iter_mut().enumerate() {
                let w = a[j * MR + r];
                for q in 0..NR {
                    row[q] += w * bj[q];
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            c[r * ldc + k0..r * ldc + k0 + NR].copy_from_slice(row);
        }
    }
}

/// [`panel_portable`] with sixteen 8-wide accumulators (an `8 × 16` tile).
///
/// # Safety
/// The CPU must support AVX-512F; the slices must hold the tile (as
/// [`chain_update`] asserts).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn panel_avx512(
    len: usize,
    a: &[f64],
    b: &[f64],
    ldb: usize,
    lanes: usize,
    c: &mut [f64],
    ldc: usize,
) {
    use std::arch::x86_64::*;
    const _: () = assert!(MR == 8 && NR == 16);
    for k0 in (0..lanes).step_by(NR) {
        // SAFETY (whole block): rows 0..8 of `c` from lane k0 hold 16
        // values, rows 0..len of `b` too, and `a` holds len · 8 values.
        unsafe {
            let cp = c.as_mut_ptr().add(k0);
            let mut acc = [[_mm512_setzero_pd(); 2]; MR];
            for (r, row) in acc.iter_mut().enumerate() {
                row[0] = _mm512_loadu_pd(cp.add(r * ldc));
                row[1] = _mm512_loadu_pd(cp.add(r * ldc + 8));
            }
            let mut ap = a.as_ptr();
            let mut bp = b.as_ptr().add(k0);
            for _ in 0..len {
                let b0 = _mm512_loadu_pd(bp);
                let b1 = _mm512_loadu_pd(bp.add(8));
                for (r, row) in acc.iter_mut().enumerate() {
                    let w = _mm512_set1_pd(*ap.add(r));
                    row[0] = _mm512_add_pd(row[0], _mm512_mul_pd(w, b0));
                    row[1] = _mm512_add_pd(row[1], _mm512_mul_pd(w, b1));
                }
                ap = ap.add(MR);
                bp = bp.add(ldb);
            }
            for (r, row) in acc.iter().enumerate() {
                _mm512_storeu_pd(cp.add(r * ldc), row[0]);
                _mm512_storeu_pd(cp.add(r * ldc + 8), row[1]);
            }
        }
    }
}

/// [`panel_portable`] with eight 4-wide accumulators per half panel
/// (`4 × 8` tiles).
///
/// # Safety
/// The CPU must support AVX2; the slices must hold the tile (as
/// [`chain_update`] asserts).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn panel_avx2(
    len: usize,
    a: &[f64],
    b: &[f64],
    ldb: usize,
    lanes: usize,
    c: &mut [f64],
    ldc: usize,
) {
    use std::arch::x86_64::*;
    const HALF: usize = MR / 2;
    for half in 0..2 {
        for k0 in (0..lanes).step_by(8) {
            // SAFETY (whole block): as in `panel_avx512`, for rows
            // half·4..half·4+4 and 8 lanes.
            unsafe {
                let cp = c.as_mut_ptr().add(half * HALF * ldc + k0);
                let mut acc = [[_mm256_setzero_pd(); 2]; HALF];
                for (r, row) in acc.iter_mut().enumerate() {
                    row[0] = _mm256_loadu_pd(cp.add(r * ldc));
                    row[1] = _mm256_loadu_pd(cp.add(r * ldc + 4));
                }
                let mut ap = a.as_ptr().add(half * HALF);
                let mut bp = b.as_ptr().add(k0);
                for _ in 0..len {
                    let b0 = _mm256_loadu_pd(bp);
                    let b1 = _mm256_loadu_pd(bp.add(4));
                    for (r, row) in acc.iter_mut().enumerate() {
                        let w = _mm256_broadcast_sd(&*ap.add(r));
                        row[0] = _mm256_add_pd(row[0], _mm256_mul_pd(w, b0));
                        row[1] = _mm256_add_pd(row[1], _mm256_mul_pd(w, b1));
                    }
                    ap = ap.add(MR);
                    bp = bp.add(ldb);
                }
                for (r, row) in acc.iter().enumerate() {
                    _mm256_storeu_pd(cp.add(r * ldc), row[0]);
                    _mm256_storeu_pd(cp.add(r * ldc + 4), row[1]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain of the module docs, one number at a time.
    fn reference(a: &[Vec<f64>], js: Range<usize>, b: &[Vec<f64>], c: &mut [Vec<f64>]) {
        for (i, row) in c.iter_mut().enumerate() {
            for (k, v) in row.iter_mut().enumerate() {
                for j in js.clone() {
                    *v += a[i][j] * b[j][k];
                }
            }
        }
    }

    #[test]
    fn every_simd_level_computes_the_chain_bit_for_bit() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(5);
        let (rows, depth, lanes, ld) = (13, 11, 32, 35);
        let mut draw = || {
            let e: i32 = rng.random_range(-30..30);
            rng.random_range(-1.0..1.0) * 2f64.powi(e)
        };
        let a: Vec<Vec<f64>> = (0..rows)
            .map(|_| (0..depth).map(|_| draw()).collect())
            .collect();
        let b: Vec<Vec<f64>> = (0..depth)
            .map(|_| (0..lanes).map(|_| draw()).collect())
            .collect();
        let c0: Vec<Vec<f64>> = (0..rows)
            .map(|_| (0..lanes).map(|_| draw()).collect())
            .collect();
        let packed = pack_panels(rows, depth, |i, j| a[i][j]);
        let b_flat: Vec<f64> = b
            .iter()
            .flat_map(|r| {
                r.iter()
                    .copied()
                    .chain(std::iter::repeat_n(0.0, ld - lanes))
            })
            .collect();
        for js in [0..depth, 3..7, 5..6, 0..0] {
            let mut want = c0.clone();
            reference(&a, js.clone(), &b, &mut want);
            for simd in [Simd::Portable, Simd::Avx2, Simd::Avx512] {
                if !simd.supported() {
                    continue;
                }
                let mut c = vec![0.0; rows.div_ceil(MR) * MR * ld];
                for i in 0..rows {
                    c[i * ld..i * ld + lanes].copy_from_slice(&c0[i]);
                }
                chain_update(
                    simd,
                    &packed,
                    depth,
                    js.clone(),
                    &b_flat,
                    ld,
                    lanes,
                    &mut c,
                    ld,
                );
                for i in 0..rows {
                    for k in 0..lanes {
                        assert_eq!(
                            c[i * ld + k].to_bits(),
                            want[i][k].to_bits(),
                            "{simd:?} js {js:?} ({i}, {k})"
                        );
                    }
                }
            }
        }
    }
}
