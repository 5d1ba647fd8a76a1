//! The arithmetic kernels of the fast paths, and the one rule they all keep.
//!
//! # The rule: one operation sequence per output element
//! Every kernel computes each output element by a fixed sequence of IEEE-754
//! operations, independent of blocking, vector width and thread count:
//!
//! * a product-sum `Σ_k a_k b_k` is a chain of fused multiply-adds in
//!   ascending `k`, starting from `+0.0`: `s ← fma(a_k, b_k, s)`;
//! * the sigmoid is [`sigmoid`] below (our own `exp`, built from `+ − × ÷`,
//!   `fma`, `floor`, round-half-even and exponent-bit arithmetic: operations
//!   IEEE-754 rounds exactly, so scalar and vector code agree bit for bit);
//! * `tanh` is the standard library's, called per element.
//!
//! Every [`Isa`] therefore produces bit-identical results; the vector paths
//! only run the independent chains side by side.

use std::sync::OnceLock;

use crate::activation::Activation;

/// Which instruction set the fast kernels use. Results are bit-identical
/// across instruction sets (see [`crate::fast`]); only speed differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust with `f64::mul_add`: any CPU. Fast where the CPU has a
    /// fused multiply-add instruction the compiler may use, slow (a library
    /// call per multiply-add) where it has not.
    Portable,
    /// x86-64 AVX2 and FMA (Intel since 2013, AMD since 2015), chosen at run
    /// time when the CPU has them.
    Avx2Fma,
    /// x86-64 AVX-512 (F, VL, DQ) with AVX2 and FMA: 8-wide vectors and 32
    /// registers (Intel server CPUs since 2017, AMD Zen 4 and later).
    Avx512,
}

impl Isa {
    /// The fastest instruction set this CPU supports (detected once).
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            [Isa::Avx512, Isa::Avx2Fma]
                .into_iter()
                .find(|isa| isa.supported())
                .unwrap_or(Isa::Portable)
        })
    }

    /// True when this CPU can run these kernels.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Isa::Portable => true,
                Isa::Avx2Fma => has!("avx2") && has!("fma"),
                Isa::Avx512 => {
                    has!("avx2")
                        && has!("fma")
                        && has!("avx512f")
                        && has!("avx512vl")
                        && has!("avx512dq")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Portable
        }
    }

    /// The given instruction set if this CPU supports it, else `Portable`.
    pub fn or_portable(self) -> Isa {
        if self.supported() {
            self
        } else {
            Isa::Portable
        }
    }

    /// Every instruction set this CPU supports, `Portable` first.
    pub fn all_supported() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2Fma, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.supported())
            .collect()
    }
}

/// Defines `fn $name(isa, args…)` that runs one `#[inline(always)]`
/// body compiled twice: for the baseline target and with AVX2 + FMA enabled.
/// The same source, so the same IEEE operation sequence (see the rule above).
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512dq")]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: an `Isa` other than `Portable` is only used when the
                // CPU has its features (`Isa::detect`, `Isa::or_portable`).
                Isa::Avx2Fma => unsafe { avx2($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Isa::Avx512 => unsafe { avx512($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}

pub(crate) use multiversion;

// ---------------------------------------------------------------- sigmoid

const LOG2E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` split in two (fdlibm's constants): `LN2_HI` has 32 trailing zero
/// bits, so `n · LN2_HI` is exact for the `|n| ≤ 1076` used here.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// Below this, `e^x` rounds to zero (the smallest subnormal is `e^-744.4`).
const EXP_MIN: f64 = -746.0;
/// `2^52`: adding it to a small non-negative integer-valued `f64` leaves that
/// integer in the low mantissa bits.
const SHIFT: f64 = 4_503_599_627_370_496.0;

/// `1 / k!` for `k = 0..=13`.
const INV_FACT: [f64; 14] = {
    let mut c = [1.0; 14];
    let mut k = 1;
    let mut fact = 1.0;
    while k < 14 {
        fact *= k as f64; // exact: 13! < 2^53
        c[k] = 1.0 / fact;
        k += 1;
    }
    c
};

/// `2^n` for an integer-valued `n` in `[-1022, 1023]`, by writing the exponent bits.
#[inline(always)]
fn pow2(n: f64) -> f64 {
    f64::from_bits(((n + 1023.0) + SHIFT).to_bits() << 52)
}

/// `e^x` for `x ≤ 0` (or NaN), correct to about one ulp.
///
/// `x = n ln 2 + r` with `n = round(x / ln 2)`, `|r| ≤ ln 2 / 2`; `e^r` by its
/// Taylor polynomial of degree 13 (remainder `< 5e-18`, evaluated by
/// Estrin's scheme), and `2^n` applied in
/// two halves so that results in the subnormal range are rounded once.
#[inline(always)]
fn exp_nonpositive(x: f64) -> f64 {
    let x = if x < EXP_MIN { EXP_MIN } else { x }; // NaN passes through
    let n = (x * LOG2E).round_ties_even();
    let r = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r);
    // e^r = 1 + r P(r), P(r) = Σ_{k=0}^{12} r^k / (k+1)!, with P by Estrin's
    // scheme: 5 dependent multiply-adds instead of Horner's 13 (the sigmoid
    // sits on the recurrence's critical path). The final `1 + r P` keeps the
    // accuracy of Horner's last step: P's rounding errors are scaled by |r| ≤ 0.35.
    let c = &INV_FACT;
    let r2 = r * r;
    let q0 = c[2].mul_add(r, c[1]);
    let q1 = c[4].mul_add(r, c[3]);
    let q2 = c[6].mul_add(r, c[5]);
    let q3 = c[8].mul_add(r, c[7]);
    let q4 = c[10].mul_add(r, c[9]);
    let q5 = c[12].mul_add(r, c[11]);
    let r4 = r2 * r2;
    let s0 = q1.mul_add(r2, q0);
    let s1 = q3.mul_add(r2, q2);
    let s2 = q5.mul_add(r2, q4);
    let u0 = s1.mul_add(r4, s0);
    let u1 = c[13].mul_add(r4, s2);
    let poly = u1.mul_add(r4 * r4, u0);
    let p = r.mul_add(poly, 1.0);
    let n1 = (0.5 * n).floor();
    p * pow2(n1) * pow2(n - n1)
}

/// The logistic sigmoid `1 / (1 + e^{-a})` of the fast paths, in the stable
/// form of [`crate::activation::sigmoid`] (`e^a / (1 + e^a)` for `a < 0`),
/// with our own `exp` so that vector and scalar code agree bit for bit.
/// It differs from the standard library's by about one ulp.
#[inline(always)]
pub fn sigmoid(a: f64) -> f64 {
    let e = exp_nonpositive(-a.abs());
    let num = if a >= 0.0 { 1.0 } else { e };
    num / (1.0 + e)
}

/// `act(a)` as the fast paths evaluate it.
#[inline(always)]
pub fn activate(act: Activation, a: f64) -> f64 {
    match act {
        Activation::Sigmoid => sigmoid(a),
        Activation::Tanh => a.tanh(),
        Activation::Identity => a,
    }
}

/// `out_i = act(c_i + add_i)`, or `act(c_i)` when `add` is `None`.
#[inline(always)]
pub(crate) fn act_add_impl(act: Activation, c: &[f64], add: Option<&[f64]>, out: &mut [f64]) {
    let n = out.len();
    let c = &c[..n];
    match (act, add) {
        (Activation::Sigmoid, Some(add)) => {
            let add = &add[..n];
            for i in 0..n {
                out[i] = sigmoid(c[i] + add[i]);
            }
        }
        (Activation::Sigmoid, None) => {
            for i in 0..n {
                out[i] = sigmoid(c[i]);
            }
        }
        (_, Some(add)) => {
            let add = &add[..n];
            for i in 0..n {
                out[i] = activate(act, c[i] + add[i]);
            }
        }
        (_, None) => {
            for i in 0..n {
                out[i] = activate(act, c[i]);
            }
        }
    }
}

multiversion! {
    /// `out_i = act(c_i + add_i)`, or `act(c_i)` when `add` is `None`.
    pub(crate) fn act_add(act: Activation, c: &[f64], add: Option<&[f64]>, out: &mut [f64]) {
        act_add_impl(act, c, add, out)
    }
}

multiversion! {
    /// `out_i = act(c_i + add)` (one row of a batch plus its input term).
    pub(crate) fn act_add_scalar(act: Activation, c: &[f64], add: f64, out: &mut [f64]) {
        let n = out.len();
        let c = &c[..n];
        match act {
            Activation::Sigmoid => {
                for i in 0..n {
                    out[i] = sigmoid(c[i] + add);
                }
            }
            _ => {
                for i in 0..n {
                    out[i] = activate(act, c[i] + add);
                }
            }
        }
    }
}

// ---------------------------------------------------------- product sums

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

multiversion! {
    /// `dz_t = (y_t − target_t) ⊙ g'(z_t)` from the outputs `y` (`n_out × T`)
    /// into `dz` (leading dimension `ld`).
    pub(crate) fn output_delta(act: Activation, n_out: usize, y: &[f64], targets: &[f64], dz: &mut [f64], ld: usize) {
        if n_out == 0 {
            return;
        }
        for ((dz, y), targets) in dz.chunks_exact_mut(ld).zip(y.chunks_exact(n_out)).zip(targets.chunks_exact(n_out)) {
            for o in 0..n_out {
                dz[o] = (y[o] - targets[o]) * act.derivative_from_output(y[o]);
            }
        }
    }
}

multiversion! {
    /// The forward recurrence `h_t = f(W_hh h_{t-1} + xterm_t)`, `t = 1..=T`,
    /// in one loop (the latency of each step is the critical path for small
    /// networks). `w_hh` is `ld × n_h` column-major: `W_hh` with zero rows
    /// appended, so all `ld` rows are computed as whole vectors. Columns of
    /// `h` and `xterm` have stride `ld`; rows past `n_h` of `h` are scratch.
    pub(crate) fn forward_recurrence(
        act: Activation,
        n_h: usize,
        t_len: usize,
        w_hh: &[f64],
        xterm: &[f64],
        h: &mut [f64],
        ld: usize,
        c: &mut [f64],
    ) {
        if ld == 8 {
            return forward_in_registers::<8>(act, n_h, t_len, w_hh, xterm, h);
        }
        for t in 1..=t_len {
            let (prev, next) = h.split_at_mut(t * ld);
            gemv_panels_impl(ld, n_h, w_hh, &prev[(t - 1) * ld..], c);
            act_add_impl(act, c, Some(&xterm[(t - 1) * ld..]), &mut next[..ld]);
        }
    }
}

multiversion! {
    /// The backward recurrence of BPTT, `t = T..1` with `dh_next = 0` at `t = T`:
    /// `da_t = (dh_out_t + dh_next) ⊙ f'(a_t)`, `dh_next = W_hhᵀ da_t`, with
    /// `f'(a_t)` from `h_t` (column `t - 1` of `h`). `w_hh_t` is `W_hhᵀ`
    /// packed by [`pack_rows8`] (`ld` rows). Columns have stride `ld`; all
    /// `ld` rows are computed (the extra rows of `da` come out zero when those
    /// of `dh_out` are zero and those of `h` finite).
    pub(crate) fn backward_recurrence(
        hidden: Activation,
        n_h: usize,
        t_len: usize,
        w_hh_t: &[f64],
        dh_out: &[f64],
        h: &[f64],
        da: &mut [f64],
        ld: usize,
        dh_next: &mut [f64],
    ) {
        if ld == 8 {
            return backward_in_registers::<8>(hidden, n_h, t_len, w_hh_t, dh_out, h, da, dh_next);
        }
        let dh_next = &mut dh_next[..ld];
        dh_next.fill(0.0);
        for t in (0..t_len).rev() {
            let da_t = &mut da[t * ld..(t + 1) * ld];
            let (dh_out, h_t) = (&dh_out[t * ld..(t + 1) * ld], &h[t * ld..(t + 1) * ld]);
            match hidden {
                Activation::Sigmoid => {
                    for i in 0..ld {
                        da_t[i] = (dh_out[i] + dh_next[i]) * (h_t[i] * (1.0 - h_t[i]));
                    }
                }
                _ => {
                    for i in 0..ld {
                        da_t[i] = (dh_out[i] + dh_next[i]) * hidden.derivative_from_output(h_t[i]);
                    }
                }
            }
            gemv_panels_impl(ld, n_h, w_hh_t, &da_t[..n_h], dh_next);
        }
    }
}

/// [`forward_recurrence`] for one panel (`n_h ≤ L`), with the state held in
/// registers from step to step instead of a store and reload: the same
/// operations on every element.
#[inline(always)]
fn forward_in_registers<const L: usize>(
    act: Activation,
    n_h: usize,
    t_len: usize,
    w_hh: &[f64],
    xterm: &[f64],
    h: &mut [f64],
) {
    match act {
        Activation::Sigmoid => forward_with::<L>(sigmoid, n_h, t_len, w_hh, xterm, h),
        _ => forward_with::<L>(|a| activate(act, a), n_h, t_len, w_hh, xterm, h),
    }
}

#[inline(always)]
fn forward_with<const L: usize>(
    f: impl Fn(f64) -> f64,
    n_h: usize,
    t_len: usize,
    w_hh: &[f64],
    xterm: &[f64],
    h: &mut [f64],
) {
    let w_hh = &w_hh[..L * n_h];
    let mut state = [0.0f64; L];
    state.copy_from_slice(&h[..L]);
    for t in 1..=t_len {
        let mut c = [0.0f64; L];
        for (col, &hk) in w_hh.chunks_exact(L).zip(state.iter()) {
            for r in 0..L {
                c[r] = col[r].mul_add(hk, c[r]);
            }
        }
        let xt = &xterm[(t - 1) * L..t * L];
        for r in 0..L {
            state[r] = f(c[r] + xt[r]);
        }
        h[t * L..(t + 1) * L].copy_from_slice(&state);
    }
}

/// [`backward_recurrence`] for one panel, with `dh_next` in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_in_registers<const L: usize>(
    hidden: Activation,
    n_h: usize,
    t_len: usize,
    w_hh_t: &[f64],
    dh_out: &[f64],
    h: &[f64],
    da: &mut [f64],
    dh_next: &mut [f64],
) {
    let w_hh_t = &w_hh_t[..L * n_h];
    let mut next = [0.0f64; L];
    for t in (0..t_len).rev() {
        let (dh_out, h_t) = (&dh_out[t * L..(t + 1) * L], &h[t * L..(t + 1) * L]);
        let mut da_t = [0.0f64; L];
        for i in 0..L {
            let f_prime = match hidden {
                Activation::Sigmoid => h_t[i] * (1.0 - h_t[i]),
                _ => hidden.derivative_from_output(h_t[i]),
            };
            da_t[i] = (dh_out[i] + next[i]) * f_prime;
        }
        da[t * L..(t + 1) * L].copy_from_slice(&da_t);
        let mut d = [0.0f64; L];
        for (col, &dk) in w_hh_t.chunks_exact(L).zip(da_t.iter()) {
            for r in 0..L {
                d[r] = col[r].mul_add(dk, d[r]);
            }
        }
        next = d;
    }
    dh_next[..L].copy_from_slice(&next);
}

multiversion! {
    /// `Σ_i (y_i − target_i)²` as one chain `s ← fma(d_i, d_i, s)` from `+0.0`
    /// in index order (for column-major `n_out × T` data: `t` outer, `o` inner).
    pub(crate) fn squared_error_chain(y: &[f64], targets: &[f64]) -> f64 {
        let mut s = 0.0f64;
        for (y, target) in y.iter().zip(targets) {
            let d = y - target;
            s = d.mul_add(d, s);
        }
        s
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

// ------------------------------------------- batched (lanes as columns)

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

#[cfg(test)]
mod tests {
    use super::*;

    fn specials() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            1e-300,
            -1e-300,
            1e-17,
            0.5,
            -0.5,
            1.0,
            -1.0,
            36.0,
            -36.0,
            708.0,
            -708.0,
            709.9,
            -709.9,
            744.0,
            -744.0,
            745.2,
            -745.2,
            800.0,
            -800.0,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
        ];
        // A dense sweep and a pseudo-random one (fixed LCG).
        v.extend((-4000..=4000).map(|i| f64::from(i) / 100.0));
        let mut s = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            v.push((u - 0.5) * 1500.0);
        }
        v
    }

    #[test]
    fn our_sigmoid_is_within_two_ulps_of_the_reference_and_exact_at_the_edges() {
        for a in specials() {
            let ours = sigmoid(a);
            let reference = crate::activation::sigmoid(a);
            if reference == 0.0 || ours == 0.0 {
                // Deep in the subnormal tail both are 0 or within a few subnormal steps.
                assert!(ours.abs() < 1e-320 && reference.abs() < 1e-320, "{a}");
                continue;
            }
            let ulps = (ours.to_bits() as i64 - reference.to_bits() as i64).abs();
            let tail = reference < f64::MIN_POSITIVE;
            assert!(
                ulps <= 2 || tail,
                "sigmoid({a}): {ours} vs {reference} ({ulps} ulps)"
            );
        }
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(f64::INFINITY), 1.0);
        assert_eq!(sigmoid(f64::NEG_INFINITY), 0.0);
        assert!(sigmoid(f64::NAN).is_nan());
    }

    #[test]
    fn exp_matches_the_standard_library_to_an_ulp() {
        let mut worst = 0;
        for i in 0..=74_500 {
            let x = -f64::from(i) / 100.0;
            let (ours, std) = (exp_nonpositive(x), x.exp());
            if std < f64::MIN_POSITIVE {
                assert!((ours - std).abs() <= 2.0 * 4.9e-324, "{x}");
                continue;
            }
            worst = worst.max((ours.to_bits() as i64 - std.to_bits() as i64).abs());
        }
        assert!(worst <= 1, "worst {worst} ulps");
    }

    #[test]
    fn a_deliberately_wrong_exp_polynomial_would_be_caught() {
        // Negative control for the test above: dropping the last Taylor term
        // (degree 12 instead of 13) is off by more than an ulp somewhere.
        let truncated = |x: f64| {
            let n = (x * LOG2E).round_ties_even();
            let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
            let mut p = INV_FACT[11];
            for k in (0..11).rev() {
                p = p.mul_add(r, INV_FACT[k]);
            }
            p * pow2(n)
        };
        let worst = (0..=70_000)
            .map(|i| -f64::from(i) / 100.0)
            .map(|x| (truncated(x).to_bits() as i64 - x.exp().to_bits() as i64).abs())
            .max()
            .unwrap();
        assert!(worst > 1, "worst {worst}");
    }

    /// Every multiversioned kernel gives the same bits on both instruction sets.
    #[test]
    fn kernels_are_bit_identical_across_instruction_sets() {
        let v = specials();
        let (m, n) = (23, 19);
        let a: Vec<f64> = (0..m * n).map(|i| v[(i * 37) % v.len()] / 300.0).collect();
        let x: Vec<f64> = (0..n).map(|i| v[(i * 101 + 5) % v.len()] / 50.0).collect();
        let mut y1 = vec![0.0; m];
        gemv(Isa::Portable, m, n, &a, &x, &mut y1);
        for isa in Isa::all_supported() {
            for act in Activation::ALL {
                let mut o1 = vec![0.0; v.len()];
                let mut o2 = vec![0.0; v.len()];
                act_add(Isa::Portable, act, &v, Some(&v), &mut o1);
                act_add(isa, act, &v, Some(&v), &mut o2);
                assert!(o1.iter().zip(&o2).all(|(p, q)| p.to_bits() == q.to_bits()));
                act_add_scalar(Isa::Portable, act, &v, 0.25, &mut o1);
                act_add_scalar(isa, act, &v, 0.25, &mut o2);
                assert!(o1.iter().zip(&o2).all(|(p, q)| p.to_bits() == q.to_bits()));
                let mut s1 = vec![0.5; v.len()];
                let mut s2 = vec![0.5; v.len()];
                accumulate_loss_row(Isa::Portable, act, &v, Some(0.1), 0.3, &mut s1);
                accumulate_loss_row(isa, act, &v, Some(0.1), 0.3, &mut s2);
                assert!(s1.iter().zip(&s2).all(|(p, q)| p.to_bits() == q.to_bits()));
            }
            let mut y2 = vec![0.0; m];
            gemv(isa, m, n, &a, &x, &mut y2);
            assert_eq!(y1, y2);
        }
        // gemv is the plain chain.
        for (i, yi) in y1.iter().enumerate() {
            let s = (0..n).fold(0.0f64, |s, k| a[k * m + i].mul_add(x[k], s));
            assert_eq!(s.to_bits(), yi.to_bits());
        }
    }

    #[test]
    fn the_panel_gemv_is_gemv_bit_for_bit() {
        for (rows, n) in [(6, 6), (8, 3), (37, 29), (128, 128)] {
            let m = abt_rows(rows);
            let a: Vec<f64> = (0..rows * n)
                .map(|i| ((i * 7919) % 97) as f64 / 31.0 - 1.5)
                .collect();
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.77).sin()).collect();
            let mut packed = vec![f64::NAN; m * n];
            pack_rows8(rows, n, |i, k| a[k * rows + i], &mut packed);
            let mut y = vec![0.0; rows];
            gemv(Isa::Portable, rows, n, &a, &x, &mut y);
            for isa in Isa::all_supported() {
                let mut yp = vec![f64::NAN; m];
                gemv_panels(isa, m, n, &packed, &x, &mut yp);
                assert!(y.iter().zip(&yp).all(|(p, q)| p.to_bits() == q.to_bits()));
                assert!(yp[rows..].iter().all(|&v| v == 0.0));
            }
        }
    }

    #[test]
    fn the_packed_product_equals_gemv_column_by_column() {
        let (m, k, n) = (13, 11, 2 * LANE_MULTIPLE);
        let a: Vec<f64> = (0..m * k)
            .map(|i| ((i * 7919) % 97) as f64 / 31.0 - 1.5)
            .collect();
        let bm: Vec<f64> = (0..k * n)
            .map(|i| ((i * 104_729) % 89) as f64 / 17.0 - 2.5)
            .collect();
        let mut packed = Vec::new();
        for isa in Isa::all_supported() {
            pack_panels(isa, m, k, |i, p| a[p * m + i], &mut packed);
            let mut c = vec![f64::NAN; padded_rows(isa, m) * n];
            gemm_packed(isa, k, &packed, &bm, n, n, &mut c, n);
            for q in 0..n {
                let col: Vec<f64> = (0..k).map(|p| bm[p * n + q]).collect();
                let mut y = vec![0.0; m];
                gemv(Isa::Portable, m, k, &a, &col, &mut y);
                for i in 0..m {
                    assert_eq!(c[i * n + q].to_bits(), y[i].to_bits(), "{isa:?} ({i}, {q})");
                }
            }
        }
    }

    #[test]
    fn gemm_abt_is_the_sum_of_outer_products() {
        for (n, kk) in (1..=9).map(|n| (n, 5)).chain([(5, 300)]) {
            let m = 16;
            let a: Vec<f64> = (0..m * kk).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n * kk).map(|i| (i as f64 * 0.91).cos()).collect();
            for isa in Isa::all_supported() {
                let mut c = vec![f64::NAN; m * n];
                gemm_abt(isa, m, n, kk, &a, m, &b, n, &mut c);
                for i in 0..m {
                    for j in 0..n {
                        // Sums in another order: equal to 1e-14 of Σ |terms|.
                        let s: f64 = (0..kk).map(|t| a[t * m + i] * b[t * n + j]).sum();
                        let size: f64 = (0..kk).map(|t| (a[t * m + i] * b[t * n + j]).abs()).sum();
                        assert!(
                            (c[j * m + i] - s).abs() <= 1e-14 * size,
                            "{} vs {s}",
                            c[j * m + i]
                        );
                    }
                }
            }
        }
    }
}
