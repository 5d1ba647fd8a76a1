//! The forward and backward recurrences of one sequence (the output layer's
//! loss and deltas are in `heads`).

use super::*;
use crate::activation::Activation;

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
