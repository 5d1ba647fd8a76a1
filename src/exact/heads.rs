//! The tangent rules of the blocked oracle ([`super::blocked`]) at the
//! nonlinearities and the loss: for a tangent `b` of a pre-activation, the
//! tangent of the unit's output and of `L`, each by the IEEE-754 operations
//! the dual-number pass performs on `b` (`num-dual`'s product, quotient and
//! chain rules inside [`super::Dual64`]'s `activate` and
//! [`crate::model::forward_generic`]), so the two agree bit for bit.
//!
//! The constants of each rule (`e^{-a}`, `cosh² a`, `p_t`, …) are the dual
//! pass's value parts, computed here once per unit and step from the `f64`
//! forward pass (bit-identical to them) instead of once per tangent.

use nalgebra::DMatrix;

use crate::activation::Activation;
use crate::model::{Rnn, Trace};

/// `act'` at every pre-activation of a matrix, as the tangent rule of
/// `Dual64::activate` (see its docs): for a tangent `b` at `a`,
/// ```text
/// sigmoid, a ≥ 0:  F = e^{−a}, D = 1 + F, q = 1/D:   fl(fl(fl(b·F)·q)·q)
/// sigmoid, a < 0:  F = e^{a},  D = 1 + F, q = 1/D, u = fl(b·F):
///                                                     fl(fl(fl(fl(u·D) − fl(u·F))·q)·q)
/// tanh:            fl(b / fl(cosh a · cosh a))
/// identity:        b              (also softmax's elementwise part)
/// ReLU:            b if a > 0, else 0 (the left derivative at the kink)
/// ```
/// (the quotient rule `(u'·D − D'·u)·q·q` and `exp`'s rule `b·e^{a}` as
/// `num-dual` evaluates them inside the stable sigmoid).
#[derive(Clone, Debug)]
pub(crate) struct ActTangent {
    act: Activation,
    /// `a ≥ 0` (sigmoid) or `a > 0` (ReLU), per element.
    upper: Vec<bool>,
    /// `F` (sigmoid) or `cosh² a` (tanh), per element.
    f: Vec<f64>,
    /// `D = 1 + F` (sigmoid), per element.
    d: Vec<f64>,
    /// `q = 1/D` (sigmoid), per element.
    q: Vec<f64>,
}

impl ActTangent {
    /// The rule at every entry of `pre` (column-major, the index of
    /// [`ActTangent::row`] is the entry's).
    pub(crate) fn new(act: Activation, pre: &DMatrix<f64>) -> Self {
        let n = pre.len();
        let mut rule = ActTangent {
            act,
            upper: Vec::with_capacity(n),
            f: Vec::new(),
            d: Vec::new(),
            q: Vec::new(),
        };
        for &a in pre.iter() {
            match act {
                Activation::Sigmoid => {
                    let upper = a >= 0.0;
                    let f = if upper { (-a).exp() } else { a.exp() };
                    let d = 1.0 + f;
                    rule.upper.push(upper);
                    rule.f.push(f);
                    rule.d.push(d);
                    rule.q.push(d.recip());
                }
                Activation::Tanh => {
                    let cosh = a.cosh();
                    rule.upper.push(true);
                    rule.f.push(cosh * cosh);
                }
                Activation::Relu => rule.upper.push(a > 0.0),
                Activation::Identity | Activation::Softmax => rule.upper.push(true),
            }
        }
        rule
    }

    /// `dst[k] = rule_e(src[k])` for every `k`, all at entry `e`.
    #[inline]
    pub(crate) fn row(&self, e: usize, src: &[f64], dst: &mut [f64]) {
        let (dst, src) = (&mut dst[..src.len()], src);
        match self.act {
            Activation::Sigmoid => {
                let (f, d, q) = (self.f[e], self.d[e], self.q[e]);
                if self.upper[e] {
                    for (o, &b) in dst.iter_mut().zip(src) {
                        *o = b * f * q * q;
                    }
                } else {
                    for (o, &b) in dst.iter_mut().zip(src) {
                        let u = b * f;
                        *o = (u * d - u * f) * q * q;
                    }
                }
            }
            Activation::Tanh => {
                let c2 = self.f[e];
                for (o, &b) in dst.iter_mut().zip(src) {
                    *o = b / c2;
                }
            }
            Activation::Relu if !self.upper[e] => dst.fill(0.0),
            Activation::Relu | Activation::Identity | Activation::Softmax => {
                dst.copy_from_slice(src);
            }
        }
    }

    /// The rule at entry `e` for one tangent (the operations of
    /// [`ActTangent::row`]).
    #[inline]
    pub(crate) fn one(&self, e: usize, b: f64) -> f64 {
        match self.act {
            Activation::Sigmoid => {
                let (f, d, q) = (self.f[e], self.d[e], self.q[e]);
                if self.upper[e] {
                    b * f * q * q
                } else {
                    let u = b * f;
                    (u * d - u * f) * q * q
                }
            }
            Activation::Tanh => b / self.f[e],
            Activation::Relu if !self.upper[e] => 0.0,
            Activation::Relu | Activation::Identity | Activation::Softmax => b,
        }
    }
}

/// The tangent of `L` for a tangent `dZ` of the output pre-activations
/// (`n_out × T`, column-major), by the operations of
/// [`crate::model::forward_generic`]'s loss on dual numbers.
#[derive(Clone, Debug)]
pub(crate) enum LossTangent {
    /// `L = ½ Σ_t w_t ‖y_t − target_t‖²`: with `dY = g'(Z) ⊙ dZ`
    /// ([`ActTangent`]), `r = y − target` and
    /// `n_t = Σ_o 2 fl(dy_ot · r_ot)` summed as nalgebra's `dotc` sums a
    /// column (eight running sums, then `(s0+s4) + (s1+s5) + (s2+s6) +
    /// (s3+s7)`, then the rest),
    /// ```text
    /// no step weights:  dL = fl(½ · Σ_t n_t)                      (½ ‖Y − T‖²)
    /// step weights:     dL = Σ_{t: w_t ≠ 0} fl(n_t · fl(½ w_t))
    /// ```
    Squared {
        /// `g'` at every `z`.
        out: ActTangent,
        /// `y − target`, column-major `n_out × T`.
        r: Vec<f64>,
        /// `w_t` per step, or `None` without step weights.
        w: Option<Vec<f64>>,
        /// `n_out`.
        n_out: usize,
    },
    /// `L = −Σ_t Σ_o τ_ot log softmax(z_t)_o`, `τ_ot = fl(target_ot · w_t)`
    /// (`target_ot` without step weights): with `m_t` the first index of
    /// `max_o z_ot`, `e_ot = exp(z_ot − z_mt)`, `S_t = Σ_o e_ot` (from 0,
    /// ascending) and `ρ_t = 1/S_t`,
    /// ```text
    /// u_ot   = fl(dz_ot − dz_mt)
    /// dS_t   = Σ_o fl(u_ot · e_ot)          (from 0, ascending)
    /// dlse_t = fl(dS_t · ρ_t)
    /// dL     = −Σ_t Σ_{o: τ_ot ≠ 0} fl(fl(u_ot − dlse_t) · τ_ot)   (t outer, o inner)
    /// ```
    /// (the dual forms of `z − m − log Σ e^{z − m}`, `exp`, `ln`).
    CrossEntropy {
        /// `m_t` per step.
        argmax: Vec<usize>,
        /// `e_ot`, column-major `n_out × T`.
        e: Vec<f64>,
        /// `ρ_t` per step.
        rho: Vec<f64>,
        /// `τ_ot`, column-major `n_out × T`.
        tau: Vec<f64>,
        /// `n_out`.
        n_out: usize,
    },
}

impl LossTangent {
    /// The loss's tangent rule at the forward pass `trace` of `rnn`.
    pub(crate) fn new(rnn: &Rnn, trace: &Trace, targets: &DMatrix<f64>) -> Self {
        let n_out = trace.z.nrows();
        let weights = rnn.step_weights.as_ref();
        if rnn.output != Activation::Softmax {
            return LossTangent::Squared {
                out: ActTangent::new(rnn.output, &trace.z),
                r: (&trace.y - targets).as_slice().to_vec(),
                w: weights.map(|w| w.iter().copied().collect()),
                n_out,
            };
        }
        let mut tau = targets.clone();
        if let Some(w) = weights {
            for (mut col, &w_t) in tau.column_iter_mut().zip(w.iter()) {
                col.iter_mut().for_each(|v| *v *= w_t);
            }
        }
        let (mut argmax, mut e, mut rho) = (Vec::new(), Vec::new(), Vec::new());
        for z_t in trace.z.column_iter() {
            let m = (1..n_out).fold(0, |m, o| if z_t[o] > z_t[m] { o } else { m });
            let mut sum = 0.0;
            for o in 0..n_out {
                let e_o = (z_t[o] - z_t[m]).exp();
                sum += e_o;
                e.push(e_o);
            }
            argmax.push(m);
            rho.push(sum.recip());
        }
        LossTangent::CrossEntropy {
            argmax,
            e,
            rho,
            tau: tau.as_slice().to_vec(),
            n_out,
        }
    }

    /// `dL` for the output tangent `dz` (column-major `n_out × T`);
    /// `scratch` is reused between calls.
    pub(crate) fn eval(&self, dz: &[f64], scratch: &mut Vec<f64>) -> f64 {
        match self {
            LossTangent::Squared { out, r, w, n_out } => {
                scratch.clear();
                scratch.extend(dz.iter().enumerate().map(|(e, &b)| out.one(e, b)));
                let columns = scratch.chunks_exact(*n_out).zip(r.chunks_exact(*n_out));
                match w {
                    None => {
                        let mut total = 0.0;
                        for (dy, r) in columns {
                            total += column_dot(dy, r);
                        }
                        total * 0.5
                    }
                    Some(w) => {
                        let mut loss = 0.0;
                        for ((dy, r), &w_t) in columns.zip(w) {
                            if w_t != 0.0 {
                                loss += column_dot(dy, r) * (0.5 * w_t);
                            }
                        }
                        loss
                    }
                }
            }
            LossTangent::CrossEntropy {
                argmax,
                e,
                rho,
                tau,
                n_out,
            } => {
                let n = *n_out;
                let mut loss = 0.0;
                for (t, dz_t) in dz.chunks_exact(n).enumerate() {
                    let dm = dz_t[argmax[t]];
                    let (e_t, tau_t) = (&e[t * n..(t + 1) * n], &tau[t * n..(t + 1) * n]);
                    let mut ds = 0.0;
                    for o in 0..n {
                        ds += (dz_t[o] - dm) * e_t[o];
                    }
                    let dlse = ds * rho[t];
                    for o in 0..n {
                        if tau_t[o] != 0.0 {
                            loss -= ((dz_t[o] - dm) - dlse) * tau_t[o];
                        }
                    }
                }
                loss
            }
        }
    }
}

/// `Σ_o 2 fl(dy_o · r_o)` in the order of nalgebra's `dotc` of a dual
/// column `v = r + dy ε` with itself (its `ε` part: `v·v` has `ε` part
/// `fl(dy·r) + fl(dy·r)`).
fn column_dot(dy: &[f64], r: &[f64]) -> f64 {
    let n = dy.len();
    let term = |i: usize| {
        let p = dy[i] * r[i];
        p + p
    };
    let mut acc = [0.0f64; 8];
    let mut i = 0;
    while n - i >= 8 {
        for (m, a) in acc.iter_mut().enumerate() {
            *a += term(i + m);
        }
        i += 8;
    }
    let mut res = 0.0;
    res += acc[0] + acc[4];
    res += acc[1] + acc[5];
    res += acc[2] + acc[6];
    res += acc[3] + acc[7];
    for k in i..n {
        res += term(k);
    }
    res
}
