//! The batched product of many perturbed recurrences (lanes as columns),
//! with its register tiles, and the per-lane kernels around it.

use super::*;
use crate::activation::Activation;

/// The register tile of the batched product for an instruction set:
/// `(rows, lanes)`. Rows are the packed panel height.
pub fn tile_shape(isa: Isa) -> (usize, usize) {
    match isa {
        Isa::Avx512 => (8, 16),
        _ => (MR, NR),
    }
}

/// Rows and lanes of the portable and AVX2 tiles.
const MR: usize = 6;
const NR: usize = 8;

/// Lanes: a batch's width must be a multiple of this for every instruction set.
pub const LANE_MULTIPLE: usize = 16;

/// `rows` rounded up to a multiple of the tile's rows.
pub fn padded_rows(isa: Isa, rows: usize) -> usize {
    let mr = tile_shape(isa).0;
    rows.div_ceil(mr) * mr
}

/// Packs the `m × k` matrix `at(i, j)` into panels of the tile's rows, each
/// stored `k`-major (`panel[p · mr + r] = A[panel_row + r, p]`), zero-padded
/// to [`padded_rows`]`(isa, m)` rows.
pub fn pack_panels(
    isa: Isa,
    m: usize,
    k: usize,
    at: impl Fn(usize, usize) -> f64,
    out: &mut Vec<f64>,
) {
    let mr = tile_shape(isa).0;
    out.clear();
    out.resize(padded_rows(isa, m) * k, 0.0);
    for (pi, panel) in out.chunks_exact_mut(mr * k.max(1)).enumerate() {
        for p in 0..k {
            for r in 0..mr {
                let i = pi * mr + r;
                if i < m {
                    panel[p * mr + r] = at(i, p);
                }
            }
        }
    }
}

/// `C = A B` for a packed `A` ([`pack_panels`] with the same `isa`,
/// `m_pad × k`) and row-major `B` (`k × n`, row stride `ldb`) into row-major
/// `C` (`m_pad × n`, row stride `ldc`); `n` must be a multiple of
/// [`LANE_MULTIPLE`]. Each `C[i,j]` is one chain `fma(A[i,p], B[p,j], ·)` over
/// ascending `p` from `+0.0`, exactly as [`gemv`] computes it, whatever the
/// tile.
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed(
    isa: Isa,
    k: usize,
    a_packed: &[f64],
    b: &[f64],
    ldb: usize,
    n: usize,
    c: &mut [f64],
    ldc: usize,
) {
    let (mr, nr) = tile_shape(isa);
    assert!(
        n.is_multiple_of(LANE_MULTIPLE) && n <= ldb && n <= ldc,
        "lanes must be whole tiles"
    );
    let panels = a_packed.len() / (mr * k).max(1);
    assert!(a_packed.len() == panels * mr * k);
    assert!(k == 0 || b.len() >= (k - 1) * ldb + n, "B too short");
    assert!(
        panels == 0 || c.len() >= (panels * mr - 1) * ldc + n,
        "C too short"
    );
    for j in (0..n).step_by(nr) {
        for pi in 0..panels {
            let a = &a_packed[pi * mr * k..(pi + 1) * mr * k];
            let c_off = pi * mr * ldc + j;
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the asserts above keep every access in bounds, and
                // `Isa::Avx2Fma` is only used on CPUs that have AVX2 and FMA.
                Isa::Avx2Fma => unsafe {
                    tile_avx2(
                        k,
                        a.as_ptr(),
                        b.as_ptr().add(j),
                        ldb,
                        c.as_mut_ptr().add(c_off),
                        ldc,
                    )
                },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above, for a CPU with AVX-512F.
                Isa::Avx512 => unsafe {
                    tile_avx512(
                        k,
                        a.as_ptr(),
                        b.as_ptr().add(j),
                        ldb,
                        c.as_mut_ptr().add(c_off),
                        ldc,
                    )
                },
                _ => tile_portable(k, a, &b[j..], ldb, &mut c[c_off..], ldc),
            }
        }
    }
}

/// The `8 × 16` tile of [`gemm_packed`]: sixteen 8-wide accumulators.
///
/// # Safety
/// `a` must hold `k · 8` values, `b` rows `0..k` of stride `ldb` with 16
/// values each, `c` rows `0..8` of stride `ldc` with 16 values each; the CPU
/// must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512(k: usize, a: *const f64, b: *const f64, ldb: usize, c: *mut f64, ldc: usize) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_pd(); 2]; 8];
    let mut ap = a;
    let mut bp = b;
    for _ in 0..k {
        let b0 = _mm512_loadu_pd(bp);
        let b1 = _mm512_loadu_pd(bp.add(8));
        for (r, row) in acc.iter_mut().enumerate() {
            let ar = _mm512_set1_pd(*ap.add(r));
            row[0] = _mm512_fmadd_pd(ar, b0, row[0]);
            row[1] = _mm512_fmadd_pd(ar, b1, row[1]);
        }
        ap = ap.add(8);
        bp = bp.add(ldb);
    }
    for (r, row) in acc.iter().enumerate() {
        let cr = c.add(r * ldc);
        _mm512_storeu_pd(cr, row[0]);
        _mm512_storeu_pd(cr.add(8), row[1]);
    }
}

/// One `MR × NR` tile: `C[r, q] = Σ_p A[p·MR + r] B[p·ldb + q]`.
fn tile_portable(k: usize, a: &[f64], b: &[f64], ldb: usize, c: &mut [f64], ldc: usize) {
    let mut acc = [[0.0f64; NR]; MR];
    for p in 0..k {
        let bp = &b[p * ldb..p * ldb + NR];
        for r in 0..MR {
            let ar = a[p * MR + r];
            for q in 0..NR {
                acc[r][q] = ar.mul_add(bp[q], acc[r][q]);
            }
        }
    }
    for r in 0..MR {
        c[r * ldc..r * ldc + NR].copy_from_slice(&acc[r]);
    }
}

/// [`tile_portable`] with twelve 4-wide accumulators held in registers.
///
/// # Safety
/// `a` must hold `k · MR` values, `b` rows `0..k` of stride `ldb` with `NR`
/// values each, `c` rows `0..MR` of stride `ldc` with `NR` values each; the
/// CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(k: usize, a: *const f64, b: *const f64, ldb: usize, c: *mut f64, ldc: usize) {
    use std::arch::x86_64::*;
    let z = _mm256_setzero_pd();
    let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) = (z, z, z, z, z, z);
    let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (z, z, z, z, z, z);
    let mut ap = a;
    let mut bp = b;
    for _ in 0..k {
        let b0 = _mm256_loadu_pd(bp);
        let b1 = _mm256_loadu_pd(bp.add(4));
        let a0 = _mm256_broadcast_sd(&*ap);
        c00 = _mm256_fmadd_pd(a0, b0, c00);
        c01 = _mm256_fmadd_pd(a0, b1, c01);
        let a1 = _mm256_broadcast_sd(&*ap.add(1));
        c10 = _mm256_fmadd_pd(a1, b0, c10);
        c11 = _mm256_fmadd_pd(a1, b1, c11);
        let a2 = _mm256_broadcast_sd(&*ap.add(2));
        c20 = _mm256_fmadd_pd(a2, b0, c20);
        c21 = _mm256_fmadd_pd(a2, b1, c21);
        let a3 = _mm256_broadcast_sd(&*ap.add(3));
        c30 = _mm256_fmadd_pd(a3, b0, c30);
        c31 = _mm256_fmadd_pd(a3, b1, c31);
        let a4 = _mm256_broadcast_sd(&*ap.add(4));
        c40 = _mm256_fmadd_pd(a4, b0, c40);
        c41 = _mm256_fmadd_pd(a4, b1, c41);
        let a5 = _mm256_broadcast_sd(&*ap.add(5));
        c50 = _mm256_fmadd_pd(a5, b0, c50);
        c51 = _mm256_fmadd_pd(a5, b1, c51);
        ap = ap.add(MR);
        bp = bp.add(ldb);
    }
    let rows = [
        (c00, c01),
        (c10, c11),
        (c20, c21),
        (c30, c31),
        (c40, c41),
        (c50, c51),
    ];
    for (r, (lo, hi)) in rows.into_iter().enumerate() {
        let cr = c.add(r * ldc);
        _mm256_storeu_pd(cr, lo);
        _mm256_storeu_pd(cr.add(4), hi);
    }
}

multiversion! {
    /// `s_q = Σ_p w[p·ld + q] h[p·ld + q]` for lanes `q < n`: each lane's own
    /// row of weights against its own state, the same chain as [`gemm_packed`].
    pub(crate) fn lane_dots(k: usize, w: &[f64], h: &[f64], ld: usize, n: usize, s: &mut [f64]) {
        let s = &mut s[..n];
        s.fill(0.0);
        for p in 0..k {
            let wp = &w[p * ld..p * ld + n];
            let hp = &h[p * ld..p * ld + n];
            for q in 0..n {
                s[q] = wp[q].mul_add(hp[q], s[q]);
            }
        }
    }
}

multiversion! {
    /// One output row of a batch: `z_q = c_q (+ b)`, `y_q = act(z_q)`,
    /// `d_q = y_q − target`, `s_q ← fma(d_q, d_q, s_q)`.
    pub(crate) fn accumulate_loss_row(act: Activation, c: &[f64], bias: Option<f64>, target: f64, s: &mut [f64]) {
        let n = s.len();
        let c = &c[..n];
        match (act, bias) {
            (Activation::Sigmoid, None) => {
                for q in 0..n {
                    let d = sigmoid(c[q]) - target;
                    s[q] = d.mul_add(d, s[q]);
                }
            }
            (Activation::Sigmoid, Some(b)) => {
                for q in 0..n {
                    let d = sigmoid(c[q] + b) - target;
                    s[q] = d.mul_add(d, s[q]);
                }
            }
            _ => {
                for q in 0..n {
                    let z = match bias {
                        Some(b) => c[q] + b,
                        None => c[q],
                    };
                    let d = activate(act, z) - target;
                    s[q] = d.mul_add(d, s[q]);
                }
            }
        }
    }
}
