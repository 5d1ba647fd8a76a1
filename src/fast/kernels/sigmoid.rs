//! Our `exp` and sigmoid, and activations applied to vectors.

use super::*;
use crate::activation::Activation;

pub(super) const LOG2E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` split in two (fdlibm's constants): `LN2_HI` has 32 trailing zero
/// bits, so `n · LN2_HI` is exact for the `|n| ≤ 1076` used here.
pub(super) const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
pub(super) const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// Below this, `e^x` rounds to zero (the smallest subnormal is `e^-744.4`).
const EXP_MIN: f64 = -746.0;
/// `2^52`: adding it to a small non-negative integer-valued `f64` leaves that
/// integer in the low mantissa bits.
const SHIFT: f64 = 4_503_599_627_370_496.0;

/// `1 / k!` for `k = 0..=13`.
pub(super) const INV_FACT: [f64; 14] = {
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
pub(super) fn pow2(n: f64) -> f64 {
    f64::from_bits(((n + 1023.0) + SHIFT).to_bits() << 52)
}

/// `e^x` for `x ≤ 0` (or NaN), within one ulp of the standard library's
/// (asserted by the kernels' unit tests).
///
/// `x = n ln 2 + r` with `n = round(x / ln 2)`, `|r| ≤ ln 2 / 2`; `e^r` by its
/// Taylor polynomial of degree 13 (remainder `< 5e-18`, evaluated by
/// Estrin's scheme), and `2^n` applied in
/// two halves so that results in the subnormal range are rounded once.
#[inline(always)]
pub(super) fn exp_nonpositive(x: f64) -> f64 {
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
/// It is within 2 ulps of [`crate::activation::sigmoid`] outside the
/// subnormal tail (asserted by the kernels' unit tests).
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
        Activation::Identity | Activation::Softmax => a,
        Activation::Relu => crate::activation::relu(a),
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
