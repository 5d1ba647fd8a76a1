//! The truth of the torture set: a forward pass, its loss and BPTT, written
//! for the test from the equations (no code of the crate), in any [`Real`]
//! (`f64` and `f32`), along two derivative routes ([`Route`]), with planted
//! defects ([`Defect`]).
//!
//! Sequence `n` of a batch of `N`, steps `t = 0..T` (0-based here), from
//! `h_0⁽ⁿ⁾` (its own, or one shared by every sequence):
//! ```text
//! a_t = W_xh x_t + W_hh h_{t-1} + b_h,   h_t = f(a_t)        f: sigmoid, tanh, identity, relu
//! z_t = W_hy h_t + b_y,                  y_t = g(z_t)        g: sigmoid, tanh, identity, softmax
//! ℓ_t = ½ ‖y_t − target_t‖²                                  (squared error)
//! ℓ_t = −Σ_o target_{o,t} log p_{o,t},   p_t = softmax(z_t)  (cross-entropy, softmax output)
//! L   = Σ_n Σ_t w_{n,t} ℓ_{n,t},         w_{n,t} = mask_{n,t} · factor   (factor 1, 1/N or 1/Σ mask)
//! ```
//! and backwards, `dh_next = 0` after the last step:
//! ```text
//! dz_t    = w_t (y_t − target_t) ⊙ g'(z_t)                   squared error
//! dz_t    = w_t (p_t Σ_o target_{o,t} − target_t)           softmax + cross-entropy
//! dh      = W_hyᵀ dz_t + dh_next,   da_t = dh ⊙ f'(a_t),   dh_next = W_hhᵀ da_t
//! dW_xh = Σ da_t x_tᵀ,  dW_hh = Σ da_t h_{t-1}ᵀ,  dW_hy = Σ dz_t h_tᵀ,  db_h = Σ da_t,  db_y = Σ dz_t
//! dh_0⁽ⁿ⁾ = W_hhᵀ da_0 of sequence n (shared h_0: the sum over n)
//! ```
//! ReLU's derivative is the left one at the kink: `f'(0) = 0`. The weights'
//! gradients are summed over the sequences.
//!
//! Truncated BPTT as RNNNumpy's `bptt_truncate = K`: the loss at step `t`
//! reaches `a_t, a_{t−1}, …, a_{t−K}` only, and `h_0` only when that window
//! reaches step 0:
//! ```text
//! dh^{(t)} = W_hyᵀ dz_t;  for s = t, t−1, …, max(0, t−K):  da_s += dh^{(t)} ⊙ f'(a_s),  dh^{(t)} = W_hhᵀ (dh^{(t)} ⊙ f'(a_s))
//! dh_0 += dh^{(t)}  when t − K ≤ 0
//! ```

// Index loops read like the equations they implement.
#![allow(clippy::needless_range_loop)]

use super::{Net, Reduction};

/// Hidden or output nonlinearity, as the case file names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// σ.
    Sigmoid,
    /// tanh.
    Tanh,
    /// identity.
    Identity,
    /// `max(0, a)` (hidden units only).
    Relu,
    /// `softmax(z)` (output only; the loss is cross-entropy).
    Softmax,
}

impl Act {
    /// The case file's name.
    pub fn name(self) -> &'static str {
        match self {
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
            Act::Identity => "identity",
            Act::Relu => "relu",
            Act::Softmax => "softmax",
        }
    }
}

/// A minimal real type, so the BPTT below runs in `f32` and `f64`.
pub trait Real:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
{
    /// From `f64` (rounded).
    fn of(v: f64) -> Self;
    /// To `f64` (exact).
    fn f64(self) -> f64;
    /// `eˣ`.
    fn exp(self) -> Self;
    /// `tanh x`.
    fn tanh(self) -> Self;
    /// `|x|`.
    fn abs(self) -> Self;
    /// `ln x`.
    fn ln(self) -> Self;
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
    fn f64(self) -> f64 {
        self
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn abs(self) -> Self {
        f64::abs(self)
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
    fn f64(self) -> f64 {
        f64::from(self)
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    fn abs(self) -> Self {
        f32::abs(self)
    }
    fn ln(self) -> Self {
        f32::ln(self)
    }
}

/// `f(a)` for an elementwise nonlinearity.
fn apply<R: Real>(act: Act, a: R) -> R {
    let (zero, one) = (R::of(0.0), R::of(1.0));
    match act {
        Act::Sigmoid => {
            if a >= zero {
                one / (one + (-a).exp())
            } else {
                let e = a.exp();
                e / (one + e)
            }
        }
        Act::Tanh => a.tanh(),
        Act::Identity => a,
        Act::Relu => {
            if a > zero {
                a
            } else {
                zero
            }
        }
        Act::Softmax => unreachable!("softmax acts on a whole z_t"),
    }
}

/// How `f'` and `p` are computed. `Stable`: `f'` from the pre-activation in
/// a form that never loses relative precision (`e^{−|a|} / (1 + e^{−|a|})²`,
/// `4 e^{−2|a|} / (1 + e^{−2|a|})²`, ReLU `a > 0`), `p_o = e^{z_o − m} /
/// Σ_j e^{z_j − m}` with `m = max z`, and the step weights applied to each
/// step's `dz_t`. `Textbook`: `f'` from the output (`s (1 − s)`, `1 − h²`,
/// ReLU `h > 0`), which rounds to 0 on saturated units, `p_o = 1 / Σ_j
/// e^{z_j − z_o}` (an overflow gives `p_o = 0`), and the mask applied per
/// step but the reduction's factor once, to the summed gradient.
///
/// `RightAtKinks` is `Stable` with ReLU's *right* derivative at an exact
/// kink (`a ≥ 0`, code that writes `a >= 0`): the other one-sided
/// derivative, as correct as the left one where `a = 0` exactly, and
/// identical to it everywhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// From the pre-activation, stably.
    Stable,
    /// From the output.
    Textbook,
    /// Stable, with ReLU's right derivative at `a = 0`.
    RightAtKinks,
}

/// `f'(a)` given `a` and `y = f(a)`, along `route`. ReLU: the left
/// derivative, `0` at `a = 0`.
fn derivative<R: Real>(act: Act, a: R, y: R, route: Route) -> R {
    let (zero, one) = (R::of(0.0), R::of(1.0));
    let step = |v: R| if v > zero { one } else { zero };
    match (act, route) {
        (Act::Identity, _) => one,
        (Act::Sigmoid, Route::Textbook) => y * (one - y),
        (Act::Tanh, Route::Textbook) => one - y * y,
        (Act::Relu, Route::Textbook) => step(y),
        (Act::Sigmoid, Route::Stable) => {
            let e = (-a.abs()).exp();
            e / ((one + e) * (one + e))
        }
        (Act::Tanh, Route::Stable) => {
            let e = (R::of(-2.0) * a.abs()).exp();
            R::of(4.0) * e / ((one + e) * (one + e))
        }
        (Act::Relu, Route::Stable) => step(a),
        (Act::Relu, Route::RightAtKinks) => {
            if a >= zero {
                one
            } else {
                zero
            }
        }
        (_, Route::RightAtKinks) => derivative(act, a, y, Route::Stable),
        (Act::Softmax, _) => unreachable!("softmax has no elementwise derivative"),
    }
}

/// `p = softmax(z)` along `route` (see [`Route`]).
fn softmax<R: Real>(z: &[R], route: Route) -> Vec<R> {
    let one = R::of(1.0);
    match route {
        Route::Stable | Route::RightAtKinks => {
            let m = z
                .iter()
                .copied()
                .fold(z[0], |m, v| if v > m { v } else { m });
            let e: Vec<R> = z.iter().map(|&v| (v - m).exp()).collect();
            let mut s = R::of(0.0);
            for &v in &e {
                s += v;
            }
            e.into_iter().map(|v| v / s).collect()
        }
        Route::Textbook => z
            .iter()
            .map(|&zo| {
                let mut s = R::of(0.0);
                for &zj in z {
                    s += (zj - zo).exp();
                }
                one / s
            })
            .collect(),
    }
}

/// One sequence's forward pass: `a`, `z`, `y` have `T` rows, `h` has
/// `T + 1` (`h[0] = h_0`); `y` is `p` for a softmax output.
pub struct Fwd<R> {
    pub a: Vec<Vec<R>>,
    pub h: Vec<Vec<R>>,
    pub z: Vec<Vec<R>>,
    pub y: Vec<Vec<R>>,
}

/// The forward pass of sequence `n` of `net`.
pub fn forward<R: Real>(net: &Net, n: usize) -> Fwd<R> {
    let c = |v: f64| R::of(v);
    let (n_in, n_h, n_out) = (net.n_in, net.n_h, net.n_out);
    let mut h = vec![net.h0_of(n).iter().map(|&v| c(v)).collect::<Vec<R>>()];
    let (mut a_all, mut z_all, mut y_all) = (Vec::new(), Vec::new(), Vec::new());
    for t in 0..net.t_len {
        let x = net.x_of(n, t);
        let mut a = vec![R::of(0.0); n_h];
        for i in 0..n_h {
            let mut s = net.b_h.as_ref().map_or(R::of(0.0), |b| c(b[i]));
            for j in 0..n_in {
                s += c(net.w_xh[i * n_in + j]) * c(x[j]);
            }
            for j in 0..n_h {
                s += c(net.w_hh[i * n_h + j]) * h[t][j];
            }
            a[i] = s;
        }
        let ht: Vec<R> = a.iter().map(|&v| apply(net.hidden, v)).collect();
        let mut z = vec![R::of(0.0); n_out];
        for k in 0..n_out {
            let mut s = net.b_y.as_ref().map_or(R::of(0.0), |b| c(b[k]));
            for j in 0..n_h {
                s += c(net.w_hy[k * n_h + j]) * ht[j];
            }
            z[k] = s;
        }
        let y = match net.output {
            Act::Softmax => softmax(&z, Route::Stable),
            g => z.iter().map(|&v| apply(g, v)).collect(),
        };
        a_all.push(a);
        h.push(ht);
        z_all.push(z);
        y_all.push(y);
    }
    Fwd {
        a: a_all,
        h,
        z: z_all,
        y: y_all,
    }
}

/// Outputs `y_t` of sequence 0 in `f64` (for near-stationary targets).
pub fn outputs(net: &Net) -> Vec<f64> {
    forward::<f64>(net, 0).y.into_iter().flatten().collect()
}

/// `L = Σ_n Σ_t w_{n,t} ℓ_{n,t}` in precision `R`; cross-entropy by the
/// stable log-softmax `log p_o = z_o − m − log Σ_j e^{z_j − m}` (finite
/// where `p_o` underflows).
pub fn loss<R: Real>(net: &Net) -> f64 {
    let w = net.step_weights();
    let mut total = R::of(0.0);
    for n in 0..net.n_seq() {
        let f = forward::<R>(net, n);
        for t in 0..net.t_len {
            let target = net.target_of(n, t);
            let mut l = R::of(0.0);
            if net.output == Act::Softmax {
                let z = &f.z[t];
                let m = z
                    .iter()
                    .copied()
                    .fold(z[0], |m, v| if v > m { v } else { m });
                let mut s = R::of(0.0);
                for &v in z {
                    s += (v - m).exp();
                }
                let lse = s.ln();
                for (o, &tg) in target.iter().enumerate() {
                    if tg != 0.0 {
                        l += -(R::of(tg) * (z[o] - m - lse));
                    }
                }
            } else {
                for (o, &tg) in target.iter().enumerate() {
                    let d = f.y[t][o] - R::of(tg);
                    l += R::of(0.5) * d * d;
                }
            }
            total += match &w {
                Some(w) => R::of(w[n * net.t_len + t]) * l,
                None => l,
            };
        }
    }
    total.f64()
}

/// A defect planted in the BPTT below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    /// None: the correct gradient.
    None,
    /// `dh_next` never carried: one-step truncation.
    NoRecurrence,
    /// `f'` at `W_xh x_t (+ b_h)` instead of `a_t`.
    WrongPreactivation,
    /// `f'` from the previous state: `f'(h_{t−1})`-style (ReLU: `h_prev > 0`).
    DerivativeAtHPrev,
    /// The loss mask left out of the gradient (every step weighted).
    MaskIgnored,
    /// The reduction's factor (`1/N`, `1/Σ mask`) left out of the gradient.
    FactorIgnored,
    /// The target left out of the output error (`dz = p`, `dz = y ⊙ g'`).
    TargetLeftOut,
    /// The target class off by one (`c + 1 mod n_out`).
    TargetOffByOne,
    /// Full BPTT where the reference is truncated.
    FullBptt,
    /// The truncation window one step too long (`K + 1`).
    WindowPlusOne,
}

/// One gradient, blocks in `Param::ALL` order (absent biases, and a `W_hy`
/// the case does not give, are `None`).
pub type Grad = Vec<Option<Vec<f64>>>;

/// `∂L/∂θ` of `net`'s loss (or its truncated reference) by BPTT written for
/// this test (no code of the crate), in precision `R`, with the given route
/// and defect; blocks in `Param::ALL` order, each row-major like [`Net`]
/// (`h_0`: `n_h`, or `N × n_h` for one state per sequence).
pub fn bptt<R: Real>(net: &Net, route: Route, defect: Defect) -> Grad {
    let c = |v: f64| R::of(v);
    let (n_in, n_h, n_out, t_len) = (net.n_in, net.n_h, net.n_out, net.t_len);
    let truncate = net.heads.truncate;
    let window = match defect {
        Defect::FullBptt => None,
        Defect::WindowPlusOne => truncate.map(|k| k + 1),
        Defect::NoRecurrence if truncate.is_some() => Some(0),
        _ => truncate,
    };
    // Per-step weights along the route; the factor applied at the end, if any.
    let mask = if defect == Defect::MaskIgnored {
        vec![1.0; net.n_seq() * t_len]
    } else {
        net.mask()
    };
    let factor = if defect == Defect::FactorIgnored {
        1.0
    } else {
        net.factor()
    };
    let (per_step, at_end): (Vec<f64>, f64) = match route {
        Route::Stable | Route::RightAtKinks => (mask.iter().map(|m| m * factor).collect(), 1.0),
        Route::Textbook => (mask, factor),
    };
    let weights = (!per_step.iter().all(|&v| v == 1.0)).then_some(per_step);

    let z0 = R::of(0.0);
    let (mut gxh, mut ghh, mut ghy) = (
        vec![z0; n_h * n_in],
        vec![z0; n_h * n_h],
        vec![z0; n_out * n_h],
    );
    let (mut gbh, mut gby) = (vec![z0; n_h], vec![z0; n_out]);
    let mut gh0 = vec![z0; net.h0.len()];
    for n in 0..net.n_seq() {
        let f = forward::<R>(net, n);
        let w_of = |t: usize| weights.as_ref().map(|w| c(w[n * t_len + t]));
        // dz_t, and its terms in dW_hy, db_y; returns W_hyᵀ dz_t.
        let mut output_step = |t: usize, dh: &mut Vec<R>| {
            let dz = output_delta(net, &f, n, t, route, defect, w_of(t));
            for k in 0..n_out {
                gby[k] += dz[k];
                for j in 0..n_h {
                    ghy[k * n_h + j] += dz[k] * f.h[t + 1][j];
                    dh[j] += c(net.w_hy[k * n_h + j]) * dz[k];
                }
            }
        };
        // da_s = dh ⊙ f'(a_s), its terms in dW_xh, dW_hh, db_h; returns W_hhᵀ da_s.
        let mut hidden_step = |s: usize, dh: &[R]| -> Vec<R> {
            let x = net.x_of(n, s);
            let mut da = vec![z0; n_h];
            for i in 0..n_h {
                da[i] = dh[i] * hidden_derivative(net, &f, n, s, i, route, defect);
                gbh[i] += da[i];
                for j in 0..n_in {
                    gxh[i * n_in + j] += da[i] * c(x[j]);
                }
                for j in 0..n_h {
                    ghh[i * n_h + j] += da[i] * f.h[s][j];
                }
            }
            let mut back = vec![z0; n_h];
            for j in 0..n_h {
                let mut s = z0;
                for i in 0..n_h {
                    s += c(net.w_hh[i * n_h + j]) * da[i];
                }
                back[j] = s;
            }
            back
        };
        let mut dh0 = vec![z0; n_h];
        match window {
            None => {
                let mut dh_next = vec![z0; n_h];
                for t in (0..t_len).rev() {
                    let mut dh = dh_next.clone();
                    output_step(t, &mut dh);
                    let back = hidden_step(t, &dh);
                    dh_next = if defect == Defect::NoRecurrence && t > 0 {
                        vec![z0; n_h]
                    } else {
                        back
                    };
                }
                dh0 = dh_next;
            }
            Some(k) => {
                for t in 0..t_len {
                    let mut dh = vec![z0; n_h];
                    output_step(t, &mut dh);
                    let oldest = t.saturating_sub(k);
                    for s in (oldest..=t).rev() {
                        dh = hidden_step(s, &dh);
                    }
                    if oldest == 0 {
                        for j in 0..n_h {
                            dh0[j] += dh[j];
                        }
                    }
                }
            }
        }
        if net.heads.h0_per_sequence {
            gh0[n * n_h..(n + 1) * n_h].copy_from_slice(&dh0);
        } else if n == 0 {
            gh0 = dh0;
        } else {
            for j in 0..n_h {
                gh0[j] += dh0[j];
            }
        }
    }
    let scale = |g: Vec<R>| -> Vec<R> {
        if at_end == 1.0 {
            g
        } else {
            g.into_iter().map(|v| v * c(at_end)).collect()
        }
    };
    let v = |g: Vec<R>| Some(scale(g).into_iter().map(Real::f64).collect::<Vec<f64>>());
    vec![
        v(gxh),
        v(ghh),
        (!net.heads.omit_w_hy).then(|| v(ghy)).flatten(),
        net.b_h.as_ref().and(v(gbh)),
        net.b_y.as_ref().and(v(gby)),
        v(gh0),
    ]
}

/// `dz_t` of sequence `n` (see the module docs), times the step weight `w`
/// if any.
fn output_delta<R: Real>(
    net: &Net,
    f: &Fwd<R>,
    n: usize,
    t: usize,
    route: Route,
    defect: Defect,
    w: Option<R>,
) -> Vec<R> {
    let c = |v: f64| R::of(v);
    let n_out = net.n_out;
    let given = net.target_of(n, t);
    let target: Vec<R> = (0..n_out)
        .map(|k| {
            if defect == Defect::TargetOffByOne {
                c(given[(k + n_out - 1) % n_out])
            } else {
                c(given[k])
            }
        })
        .collect();
    let mut dz: Vec<R> = match net.output {
        Act::Softmax => {
            let p = softmax(&f.z[t], route);
            let mut mass = R::of(0.0);
            for &v in &target {
                mass += v;
            }
            (0..n_out)
                .map(|k| {
                    if defect == Defect::TargetLeftOut {
                        p[k] * mass
                    } else {
                        p[k] * mass - target[k]
                    }
                })
                .collect()
        }
        g => (0..n_out)
            .map(|k| {
                let yk = f.y[t][k];
                let dy = if defect == Defect::TargetLeftOut {
                    yk
                } else {
                    yk - target[k]
                };
                dy * derivative(g, f.z[t][k], yk, route)
            })
            .collect(),
    };
    if let Some(w) = w {
        dz.iter_mut().for_each(|v| *v = *v * w);
    }
    dz
}

/// `f'` for unit `i` at step `s` of sequence `n`, as `defect` takes it.
fn hidden_derivative<R: Real>(
    net: &Net,
    f: &Fwd<R>,
    n: usize,
    s: usize,
    i: usize,
    route: Route,
    defect: Defect,
) -> R {
    let c = |v: f64| R::of(v);
    match defect {
        Defect::WrongPreactivation => {
            let x = net.x_of(n, s);
            let mut at = net.b_h.as_ref().map_or(R::of(0.0), |b| c(b[i]));
            for j in 0..net.n_in {
                at += c(net.w_xh[i * net.n_in + j]) * c(x[j]);
            }
            derivative(net.hidden, at, apply(net.hidden, at), route)
        }
        Defect::DerivativeAtHPrev => {
            // The state before step s stands in for a_s: h_{s−1} (a_{s−1}'s
            // output), and h_0 itself at the first step.
            let at = if s > 0 { f.a[s - 1][i] } else { f.h[0][i] };
            derivative(net.hidden, at, f.h[s][i], route)
        }
        _ => derivative(net.hidden, f.a[s][i], f.h[s + 1][i], route),
    }
}

impl Reduction {
    /// The case file's name.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::MeanBatch => "mean_batch",
            Reduction::MeanSteps => "mean_steps",
        }
    }
}
