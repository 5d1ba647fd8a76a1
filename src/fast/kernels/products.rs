//! Matrix-vector products and sums of outer products, as multiply-add chains.

use super::*;

/// `y = A x` for a column-major `m × n` matrix `A` (leading dimension `m`):
/// `y_i = Σ_k A[i,k] x_k`, one multiply-add chain per `i` in ascending `k`.
#[inline(always)]
pub(crate) fn gemv_impl(m: usize, n: usize, a: &[f64], x: &[f64], y: &mut [f64]) {
    let a = &a[..m * n];
    let x = &x[..n];
    let y = &mut y[..m];
    // 32 rows = 8 independent 4-wide chains: enough to hide the latency of
    // a multiply-add, so long columns run at the multiply-add throughput.
    let mut i = 0;
    while i + 32 <= m {
        gemv_rows::<32>(i, m, a, x, y);
        i += 32;
    }
    if i + 16 <= m {
        gemv_rows::<16>(i, m, a, x, y);
        i += 16;
    }
    if i + 8 <= m {
        gemv_rows::<8>(i, m, a, x, y);
        i += 8;
    }
    if i + 4 <= m {
        gemv_rows::<4>(i, m, a, x, y);
        i += 4;
    }
    while i < m {
        gemv_rows::<1>(i, m, a, x, y);
        i += 1;
    }
}

/// Rows `i..i + R` of [`gemv_impl`], accumulated in registers.
#[inline(always)]
fn gemv_rows<const R: usize>(i: usize, m: usize, a: &[f64], x: &[f64], y: &mut [f64]) {
    let mut acc = [0.0f64; R];
    if m > 0 {
        for (col, &xk) in a.chunks_exact(m).zip(x) {
            let col: &[f64; R] = col[i..i + R].try_into().expect("R rows");
            for r in 0..R {
                acc[r] = col[r].mul_add(xk, acc[r]);
            }
        }
    }
    y[i..i + R].copy_from_slice(&acc);
}

multiversion! {
    #[cfg(test)]
    /// `y = A x` for a column-major `m × n` matrix `A` (leading dimension `m`):
    /// `y_i = Σ_k A[i,k] x_k`, one multiply-add chain per `i` in ascending `k`.
    pub(crate) fn gemv(m: usize, n: usize, a: &[f64], x: &[f64], y: &mut [f64]) {
        gemv_impl(m, n, a, x, y)
    }
}

multiversion! {
    /// `y_t = A x_t` for `t = 0..cols`: [`gemv`] on each column of `x` (stride
    /// `ldx`) into each column of `y` (stride `ldy`), in one call.
    pub(crate) fn gemv_columns(m: usize, n: usize, a: &[f64], x: &[f64], ldx: usize, y: &mut [f64], ldy: usize, cols: usize) {
        let a = &a[..m * n];
        // The shapes of small networks' products get straight-line code.
        match m {
            1 => columns_of::<1>(n, a, x, ldx, y, ldy, cols),
            8 => columns_of::<8>(n, a, x, ldx, y, ldy, cols),
            16 => columns_of::<16>(n, a, x, ldx, y, ldy, cols),
            _ => {
                for t in 0..cols {
                    gemv_impl(m, n, a, &x[t * ldx..], &mut y[t * ldy..]);
                }
            }
        }
    }
}

/// [`gemv_columns`] for `M` rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn columns_of<const M: usize>(
    n: usize,
    a: &[f64],
    x: &[f64],
    ldx: usize,
    y: &mut [f64],
    ldy: usize,
    cols: usize,
) {
    for t in 0..cols {
        let x_t = &x[t * ldx..t * ldx + n];
        let mut acc = [0.0f64; M];
        for (col, &xk) in a.chunks_exact(M).zip(x_t) {
            for r in 0..M {
                acc[r] = col[r].mul_add(xk, acc[r]);
            }
        }
        y[t * ldy..t * ldy + M].copy_from_slice(&acc);
    }
}

/// Packs the `rows × n` matrix `at(i, k)` into panels of 8 rows, each
/// `k`-major (`out[p·8n + k·8 + r] = A[8p + r, k]`), zero-padded to
/// [`abt_rows`]`(rows)` rows: the layout of [`gemv_panels`].
pub(crate) fn pack_rows8(rows: usize, n: usize, at: impl Fn(usize, usize) -> f64, out: &mut [f64]) {
    let m = abt_rows(rows);
    let out = &mut out[..m * n];
    for p in 0..m / 8 {
        for k in 0..n {
            for r in 0..8 {
                let i = 8 * p + r;
                out[p * 8 * n + k * 8 + r] = if i < rows { at(i, k) } else { 0.0 };
            }
        }
    }
}

multiversion! {
    #[cfg(test)]
    /// [`gemv`] with `A` packed by [`pack_rows8`]: the same chains, read as
    /// sequential streams.
    pub(crate) fn gemv_panels(m: usize, n: usize, a: &[f64], x: &[f64], y: &mut [f64]) {
        gemv_panels_impl(m, n, a, x, y)
    }
}

/// [`gemv_impl`] with `A` packed by [`pack_rows8`] (`m` a multiple of 8): the
/// same chains, with the matrix read as sequential streams (twice as fast
/// as the column-major form when the matrix lives in L2).
#[inline(always)]
pub(crate) fn gemv_panels_impl(m: usize, n: usize, a: &[f64], x: &[f64], y: &mut [f64]) {
    let x = &x[..n];
    let mut p = 0;
    while p + 4 <= m / 8 {
        let mut acc = [[0.0f64; 8]; 4];
        let panels: [&[f64]; 4] = std::array::from_fn(|q| &a[(p + q) * 8 * n..(p + q + 1) * 8 * n]);
        for (k, &xk) in x.iter().enumerate() {
            for q in 0..4 {
                let col: &[f64; 8] = panels[q][k * 8..k * 8 + 8].try_into().expect("8 rows");
                for r in 0..8 {
                    acc[q][r] = col[r].mul_add(xk, acc[q][r]);
                }
            }
        }
        for q in 0..4 {
            y[(p + q) * 8..(p + q) * 8 + 8].copy_from_slice(&acc[q]);
        }
        p += 4;
    }
    while p < m / 8 {
        let mut acc = [0.0f64; 8];
        let panel = &a[p * 8 * n..(p + 1) * 8 * n];
        for (k, &xk) in x.iter().enumerate() {
            let col: &[f64; 8] = panel[k * 8..k * 8 + 8].try_into().expect("8 rows");
            for r in 0..8 {
                acc[r] = col[r].mul_add(xk, acc[r]);
            }
        }
        y[p * 8..p * 8 + 8].copy_from_slice(&acc);
        p += 1;
    }
}

/// Rows of a register tile of [`gemm_abt`]: its `m` must be a multiple.
pub const ABT_ROWS: usize = 8;

/// `rows` rounded up to a multiple of [`ABT_ROWS`].
pub fn abt_rows(rows: usize) -> usize {
    rows.div_ceil(ABT_ROWS) * ABT_ROWS
}

multiversion! {
    /// `C = A Bᵀ` for column-major `A` (`m × kk`, leading dimension `lda`),
    /// `B` (`n × kk`, leading dimension `ldb`) and `C` (`m × n`, leading
    /// dimension `m`): `C[i,j] = Σ_t A[i,t] B[j,t]`, the sum of outer products
    /// of columns, as in `dW_hh = Σ_t da_t h_{t-1}ᵀ`. `m` must be a multiple
    /// of [`ABT_ROWS`] (pad `A` with zero rows).
    pub(crate) fn gemm_abt(m: usize, n: usize, kk: usize, a: &[f64], lda: usize, b: &[f64], ldb: usize, c: &mut [f64]) {
        assert!(m.is_multiple_of(ABT_ROWS), "rows must be padded");
        let c = &mut c[..m * n];
        if kk == 0 {
            c.fill(0.0);
            return;
        }
        let a = &a[..lda * (kk - 1) + m];
        let b = &b[..ldb * (kk - 1) + n];
        // Blocks of ABT_STEPS steps: a block of A's rows and of B's columns
        // stays in L2 and L1 while every tile uses it (long sequences).
        for t0 in (0..kk).step_by(ABT_STEPS) {
            let steps = t0..kk.min(t0 + ABT_STEPS);
            let mut j = 0;
            while j < n {
                // Six columns: 12 four-wide or 6 eight-wide accumulators, enough
                // to cover the multiply-add latency, few enough for 16 registers.
                let nb = (n - j).min(6);
                for i in (0..m).step_by(ABT_ROWS) {
                    let tile = (i, j, steps.clone(), t0 > 0);
                    match nb {
                        6 => abt_tile::<6>(tile, a, lda, b, ldb, c, m),
                        5 => abt_tile::<5>(tile, a, lda, b, ldb, c, m),
                        4 => abt_tile::<4>(tile, a, lda, b, ldb, c, m),
                        3 => abt_tile::<3>(tile, a, lda, b, ldb, c, m),
                        2 => abt_tile::<2>(tile, a, lda, b, ldb, c, m),
                        _ => abt_tile::<1>(tile, a, lda, b, ldb, c, m),
                    }
                }
                j += nb;
            }
        }
    }
}

/// Steps per block of [`gemm_abt`].
const ABT_STEPS: usize = 128;

/// One `ABT_ROWS × NB` tile of [`gemm_abt`] over the steps `tile.2`,
/// accumulated in registers, added to `C` when `tile.3` (a later block).
#[inline(always)]
fn abt_tile<const NB: usize>(
    (i, j, steps, accumulate): (usize, usize, std::ops::Range<usize>, bool),
    a: &[f64],
    lda: usize,
    b: &[f64],
    ldb: usize,
    c: &mut [f64],
    m: usize,
) {
    let mut acc = [[0.0f64; ABT_ROWS]; NB];
    if accumulate {
        for q in 0..NB {
            acc[q].copy_from_slice(&c[(j + q) * m + i..(j + q) * m + i + ABT_ROWS]);
        }
    }
    for t in steps {
        let av = &a[t * lda + i..t * lda + i + ABT_ROWS];
        let bv = &b[t * ldb + j..t * ldb + j + NB];
        for q in 0..NB {
            for r in 0..ABT_ROWS {
                acc[q][r] = av[r].mul_add(bv[q], acc[q][r]);
            }
        }
    }
    for q in 0..NB {
        c[(j + q) * m + i..(j + q) * m + i + ABT_ROWS].copy_from_slice(&acc[q]);
    }
}
