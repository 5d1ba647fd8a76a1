//! The output heads' loss terms and deltas: squared error with step weights,
//! and softmax + cross-entropy, for one sequence (scalar, step by step) and
//! for a batch of lanes (vectorised across lanes). Both forms run the same
//! operations on each number, so a lane's loss is bit-identical to the
//! scalar one.
//!
//! # Math (one step `t`, `z_t` the output pre-activation)
//! ```text
//! squared error:    r_t  = Σ_o (y_t[o] − target_t[o])²                  fma chain over o from +0
//! softmax:          m_t  = max_o z_t[o]                                  fold from z_t[0]: v > m ? v : m
//!                   u_o  = z_t[o] − m_t,   s_t = Σ_o e^{u_o}             add chain over o from +0
//!                   lse_t = ln s_t                                       the standard library's ln
//!                   c_t  = Σ_{o: target≠0} target_t[o] · (u_o − lse_t)   fma chain over o from +0
//!                   (c_t = log p_t[class], the negative of step t's cross-entropy)
//! ```
//! `e^u` is our own [`exp_nonpositive`] (`u ≤ 0` here), as in the sigmoid; the
//! logarithm is the standard library's, called per lane (like `tanh`), so
//! every [`Isa`] runs the same call on the same argument.

use super::*;
use crate::activation::Activation;

/// The larger of `m` and `v` as the fast paths and [`crate::model`] take it:
/// `v` only when `v > m` (a NaN `v` is passed over; a NaN `m` stays).
#[inline(always)]
fn larger(m: f64, v: f64) -> f64 {
    if v > m {
        v
    } else {
        m
    }
}

/// `(m_t, lse_t)` of one column `z` (length `n_out ≥ 1`).
#[inline(always)]
pub(crate) fn max_and_log_sum_exp(z: &[f64]) -> (f64, f64) {
    let m = z.iter().fold(z[0], |m, &v| larger(m, v));
    let mut s = 0.0f64;
    for &v in z {
        s += exp_nonpositive(v - m);
    }
    (m, s.ln())
}

/// `c_t = Σ_{o: target≠0} target[o] (z[o] − m − lse)`: the log-likelihood of
/// one step (the negative of its cross-entropy), `0` for an empty column.
#[inline(always)]
pub(crate) fn log_likelihood(z: &[f64], targets: &[f64]) -> f64 {
    if z.is_empty() {
        return 0.0;
    }
    let (m, lse) = max_and_log_sum_exp(z);
    let mut c = 0.0f64;
    for (&v, &target) in z.iter().zip(targets) {
        if target != 0.0 {
            c = target.mul_add((v - m) - lse, c);
        }
    }
    c
}

/// `r_t = Σ_o (y[o] − target[o])²`, one fma chain from `+0`.
#[inline(always)]
pub(crate) fn squared_error_step(y: &[f64], targets: &[f64]) -> f64 {
    let mut r = 0.0f64;
    for (y, target) in y.iter().zip(targets) {
        let d = y - target;
        r = d.mul_add(d, r);
    }
    r
}

multiversion! {
    /// The loss of one sequence from its outputs (`n_out × T`, column-major):
    /// ```text
    /// squared error, no weights:  L = ½ Σ_t Σ_o d²       one fma chain, t outer, o inner
    /// squared error, weights w:   L = ½ S,  S ← fma(w_t, r_t, S)          t ascending, w_t ≠ 0
    /// cross-entropy (y = z):      L = 0 − S, S ← fma(w_t, c_t, S)          t ascending, w_t ≠ 0 (w_t = 1 without weights)
    /// ```
    /// Steps of weight 0 are left out, as [`crate::model`] does (so a step
    /// without loss cannot make `L` NaN).
    pub(crate) fn sequence_loss(ce: bool, n_out: usize, y: &[f64], targets: &[f64], weights: Option<&[f64]>) -> f64 {
        if n_out == 0 {
            return 0.0;
        }
        let columns = y.chunks_exact(n_out).zip(targets.chunks_exact(n_out));
        match (ce, weights) {
            (false, None) => {
                let mut s = 0.0f64;
                for (y, target) in y.iter().zip(targets) {
                    let d = y - target;
                    s = d.mul_add(d, s);
                }
                0.5 * s
            }
            (false, Some(w)) => {
                let mut s = 0.0f64;
                for ((y, target), &w_t) in columns.zip(w) {
                    if w_t != 0.0 {
                        s = w_t.mul_add(squared_error_step(y, target), s);
                    }
                }
                0.5 * s
            }
            (true, _) => {
                let mut s = 0.0f64;
                for (t, (z, target)) in columns.enumerate() {
                    let w_t = weights.map_or(1.0, |w| w[t]);
                    if w_t != 0.0 {
                        s = w_t.mul_add(log_likelihood(z, target), s);
                    }
                }
                0.0 - s
            }
        }
    }
}

multiversion! {
    /// `dz_t = ∂L/∂z_t` into `dz` (leading dimension `ld`) from the outputs
    /// `y` (`n_out × T`; the pre-activations `z` for a softmax head):
    /// ```text
    /// squared error:  dz_t = ((y_t − target_t) ⊙ g'(z_t)) · w_t
    /// cross-entropy:  dz_t = (p_t · Σ_o target_t[o] − target_t) · w_t,   p_t[o] = e^{u_o} / s_t
    /// ```
    /// (`· w_t` only with step weights), the order of [`crate::bptt::output_delta`].
    pub(crate) fn output_delta(act: Activation, n_out: usize, y: &[f64], targets: &[f64], weights: Option<&[f64]>, dz: &mut [f64], ld: usize) {
        if n_out == 0 {
            return;
        }
        let columns = dz.chunks_exact_mut(ld).zip(y.chunks_exact(n_out)).zip(targets.chunks_exact(n_out));
        for (t, ((dz, y), targets)) in columns.enumerate() {
            if act == Activation::Softmax {
                let m = y.iter().fold(y[0], |m, &v| larger(m, v));
                let mut s = 0.0f64;
                let mut mass = 0.0f64;
                for o in 0..n_out {
                    let e = exp_nonpositive(y[o] - m);
                    dz[o] = e;
                    s += e;
                    mass += targets[o];
                }
                for o in 0..n_out {
                    dz[o] = (dz[o] / s) * mass - targets[o];
                }
            } else {
                for o in 0..n_out {
                    dz[o] = (y[o] - targets[o]) * act.derivative_from_output(y[o]);
                }
            }
            if let Some(w) = weights {
                for d in &mut dz[..n_out] {
                    *d *= w[t];
                }
            }
        }
    }
}

multiversion! {
    /// One step of a batch of lanes with a softmax head: `c_q` of
    /// [`log_likelihood`] for each lane `q < c.len()`, from `Z_t` (`n_out`
    /// rows of `ld` lanes, before the bias `b_y`), by the same operations per
    /// lane. `m` and `lse` are scratch of `c.len()`.
    pub(crate) fn log_likelihood_lanes(
        n_out: usize,
        z: &[f64],
        ld: usize,
        b_y: Option<&[f64]>,
        targets: &[f64],
        m: &mut [f64],
        lse: &mut [f64],
        c: &mut [f64],
    ) {
        let n = c.len();
        c.fill(0.0);
        if n_out == 0 {
            return;
        }
        let (m, lse) = (&mut m[..n], &mut lse[..n]);
        let row = |o: usize| &z[o * ld..o * ld + n];
        let bias = |o: usize| b_y.map(|b| b[o]);
        // z_t[o] for lane q: the product's row plus the bias, as `act_add` adds it.
        #[inline(always)]
        fn biased(v: f64, b: Option<f64>) -> f64 {
            match b {
                Some(b) => v + b,
                None => v,
            }
        }
        let (r0, b0) = (row(0), bias(0));
        for q in 0..n {
            m[q] = biased(r0[q], b0);
        }
        for o in 0..n_out {
            let (r, b) = (row(o), bias(o));
            for q in 0..n {
                m[q] = larger(m[q], biased(r[q], b));
            }
        }
        lse.fill(0.0);
        for o in 0..n_out {
            let (r, b) = (row(o), bias(o));
            for q in 0..n {
                lse[q] += exp_nonpositive(biased(r[q], b) - m[q]);
            }
        }
        for l in lse.iter_mut() {
            *l = l.ln();
        }
        for (o, &target) in targets.iter().enumerate().take(n_out) {
            if target == 0.0 {
                continue;
            }
            let (r, b) = (row(o), bias(o));
            for q in 0..n {
                c[q] = target.mul_add((biased(r[q], b) - m[q]) - lse[q], c[q]);
            }
        }
    }
}
