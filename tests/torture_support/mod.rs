//! The torture set: networks across hostile regimes, with gradients whose
//! truth is known independently of the crate (a BPTT written here, in two
//! derivative routes, in `f64` and `f32`), mutated block by block, and the
//! property that `diagnose` never certifies a block wrong by 1% of its norm
//! and never blames a correct one.
//!
//! Shared by `tests/cli/torture.rs` (a seeded sample, in `cargo test`) and
//! `examples/torture.rs` (the full count quoted in the README).

#![allow(dead_code)]
// Index loops read like the equations they implement.
#![allow(clippy::needless_range_loop)]

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rnn_gradcheck::case::{self, Param};
use rnn_gradcheck::diagnosis::{diagnose, DiagnoseOptions, Overall, ParamVerdict};

/// The regimes of issue 11.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// Unit-scale weights, short sequences.
    Normal,
    /// T from 150 to 300.
    Long,
    /// tanh, weights ±2.5–3, n_h 10–16, T 40–60.
    Chaotic,
    /// sigmoid hidden units, weights ±15–30.
    Saturated,
    /// weights ±0.05, T 100.
    Vanishing,
    /// targets equal to the network's own outputs plus 1e-6.
    NearStationary,
    /// inputs ×1e3.
    LargeInputs,
    /// every value a float32, gradients computed in float32.
    Float32,
    /// float32 on issue 11's chaotic shape: 3-10-1, tanh, sigmoid output,
    /// weights ±2.5, T = 50.
    Float32Chaotic,
}

impl Regime {
    /// Every regime.
    pub const ALL: [Regime; 9] = [
        Regime::Normal,
        Regime::Long,
        Regime::Chaotic,
        Regime::Saturated,
        Regime::Vanishing,
        Regime::NearStationary,
        Regime::LargeInputs,
        Regime::Float32,
        Regime::Float32Chaotic,
    ];
}

/// Hidden or output nonlinearity, as the case file names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// σ.
    Sigmoid,
    /// tanh.
    Tanh,
    /// identity.
    Identity,
}

impl Act {
    fn name(self) -> &'static str {
        match self {
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
            Act::Identity => "identity",
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
}

fn apply<R: Real>(act: Act, a: R) -> R {
    let one = R::of(1.0);
    match act {
        Act::Sigmoid => {
            if a >= R::of(0.0) {
                one / (one + (-a).exp())
            } else {
                let e = a.exp();
                e / (one + e)
            }
        }
        Act::Tanh => a.tanh(),
        Act::Identity => a,
    }
}

/// How `f'` is computed: from the pre-activation in a form that never
/// loses relative precision (`e^{−|a|} / (1 + e^{−|a|})²`,
/// `4 e^{−2|a|} / (1 + e^{−2|a|})²`), or the textbook way from the output
/// (`s (1 − s)`, `1 − h²`), which rounds to 0 on saturated units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// From the pre-activation, stably.
    Stable,
    /// From the output.
    Textbook,
}

fn derivative<R: Real>(act: Act, a: R, y: R, route: Route) -> R {
    let one = R::of(1.0);
    match (act, route) {
        (Act::Identity, _) => one,
        (Act::Sigmoid, Route::Textbook) => y * (one - y),
        (Act::Tanh, Route::Textbook) => one - y * y,
        (Act::Sigmoid, Route::Stable) => {
            let e = (-a.abs()).exp();
            e / ((one + e) * (one + e))
        }
        (Act::Tanh, Route::Stable) => {
            let e = (R::of(-2.0) * a.abs()).exp();
            R::of(4.0) * e / ((one + e) * (one + e))
        }
    }
}

/// A network and one sequence, column layout, row-major `Vec`s.
#[derive(Clone, Debug)]
pub struct Net {
    pub n_in: usize,
    pub n_h: usize,
    pub n_out: usize,
    pub t_len: usize,
    pub hidden: Act,
    pub output: Act,
    /// `n_h × n_in`, row-major.
    pub w_xh: Vec<f64>,
    /// `n_h × n_h`, row-major.
    pub w_hh: Vec<f64>,
    /// `n_out × n_h`, row-major.
    pub w_hy: Vec<f64>,
    pub b_h: Option<Vec<f64>>,
    pub b_y: Option<Vec<f64>>,
    pub h0: Vec<f64>,
    /// `T × n_in`.
    pub x: Vec<f64>,
    /// `T × n_out`.
    pub target: Vec<f64>,
}

/// One gradient, blocks in [`Param::ALL`] order (absent biases are `None`).
pub type Grad = Vec<Option<Vec<f64>>>;

/// The forward pass: `(a, h, y)`, each `T` rows (h has `T + 1`, `h[0] = h0`).
#[allow(clippy::type_complexity)]
fn forward<R: Real>(net: &Net) -> (Vec<Vec<R>>, Vec<Vec<R>>, Vec<Vec<R>>) {
    let c = |v: f64| R::of(v);
    let (n_in, n_h, n_out) = (net.n_in, net.n_h, net.n_out);
    let mut h = vec![net.h0.iter().map(|&v| c(v)).collect::<Vec<R>>()];
    let (mut a_all, mut y_all) = (Vec::new(), Vec::new());
    for t in 0..net.t_len {
        let mut a = vec![R::of(0.0); n_h];
        for i in 0..n_h {
            let mut s = net.b_h.as_ref().map_or(R::of(0.0), |b| c(b[i]));
            for j in 0..n_in {
                s += c(net.w_xh[i * n_in + j]) * c(net.x[t * n_in + j]);
            }
            for j in 0..n_h {
                s += c(net.w_hh[i * n_h + j]) * h[t][j];
            }
            a[i] = s;
        }
        let ht: Vec<R> = a.iter().map(|&v| apply(net.hidden, v)).collect();
        let mut y = vec![R::of(0.0); n_out];
        for k in 0..n_out {
            let mut s = net.b_y.as_ref().map_or(R::of(0.0), |b| c(b[k]));
            for j in 0..n_h {
                s += c(net.w_hy[k * n_h + j]) * ht[j];
            }
            y[k] = apply(net.output, s);
        }
        a_all.push(a);
        h.push(ht);
        y_all.push(y);
    }
    (a_all, h, y_all)
}

/// Outputs `y_t` in `f64` (for near-stationary targets).
pub fn outputs(net: &Net) -> Vec<f64> {
    forward::<f64>(net).2.into_iter().flatten().collect()
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
}

/// `∂L/∂θ` for `L = Σ_t ½‖y_t − target_t‖²`, by BPTT written for this test
/// (no code of the crate), in precision `R`, with the given route and
/// defect; blocks in [`Param::ALL`] order, each row-major like [`Net`].
pub fn bptt<R: Real>(net: &Net, route: Route, defect: Defect) -> Grad {
    let c = |v: f64| R::of(v);
    let (n_in, n_h, n_out) = (net.n_in, net.n_h, net.n_out);
    let (a, h, y) = forward::<R>(net);
    let z0 = R::of(0.0);
    let (mut gxh, mut ghh, mut ghy) = (
        vec![z0; n_h * n_in],
        vec![z0; n_h * n_h],
        vec![z0; n_out * n_h],
    );
    let (mut gbh, mut gby) = (vec![z0; n_h], vec![z0; n_out]);
    let mut dh_next = vec![z0; n_h];
    for t in (0..net.t_len).rev() {
        let mut dh = dh_next.clone();
        for k in 0..n_out {
            let yk = y[t][k];
            // z_k recomputed only for the stable route's f'(z).
            let mut zk = net.b_y.as_ref().map_or(z0, |b| c(b[k]));
            for j in 0..n_h {
                zk += c(net.w_hy[k * n_h + j]) * h[t + 1][j];
            }
            let dz = (yk - c(net.target[t * n_out + k])) * derivative(net.output, zk, yk, route);
            gby[k] += dz;
            for j in 0..n_h {
                ghy[k * n_h + j] += dz * h[t + 1][j];
                dh[j] += c(net.w_hy[k * n_h + j]) * dz;
            }
        }
        let mut da = vec![z0; n_h];
        for i in 0..n_h {
            let at = match defect {
                Defect::WrongPreactivation => {
                    let mut s = net.b_h.as_ref().map_or(z0, |b| c(b[i]));
                    for j in 0..n_in {
                        s += c(net.w_xh[i * n_in + j]) * c(net.x[t * n_in + j]);
                    }
                    s
                }
                _ => a[t][i],
            };
            let yt = if defect == Defect::WrongPreactivation {
                apply(net.hidden, at)
            } else {
                h[t + 1][i]
            };
            da[i] = dh[i] * derivative(net.hidden, at, yt, route);
            gbh[i] += da[i];
            for j in 0..n_in {
                gxh[i * n_in + j] += da[i] * c(net.x[t * n_in + j]);
            }
            for j in 0..n_h {
                ghh[i * n_h + j] += da[i] * h[t][j];
            }
        }
        for j in 0..n_h {
            let mut s = z0;
            for i in 0..n_h {
                s += c(net.w_hh[i * n_h + j]) * da[i];
            }
            dh_next[j] = if defect == Defect::NoRecurrence && t > 0 {
                z0
            } else {
                s
            };
        }
    }
    let v = |g: Vec<R>| Some(g.into_iter().map(Real::f64).collect::<Vec<f64>>());
    vec![
        v(gxh),
        v(ghh),
        v(ghy),
        net.b_h.as_ref().and(v(gbh)),
        net.b_y.as_ref().and(v(gby)),
        v(dh_next),
    ]
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-scale..=scale)).collect()
}

/// A random network of `regime` from `seed`.
pub fn network(regime: Regime, seed: u64) -> Net {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (regime as u64).wrapping_mul(0x9E37_79B9));
    let pick = |rng: &mut ChaCha8Rng, lo: usize, hi: usize| rng.random_range(lo..=hi);
    let outputs_acts = [Act::Sigmoid, Act::Tanh, Act::Identity];
    let (n_in, n_h, n_out, t_len, scale, hidden) = match regime {
        Regime::Normal | Regime::NearStationary | Regime::LargeInputs | Regime::Float32 => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 2, 8),
            pick(&mut rng, 1, 3),
            pick(&mut rng, 3, 20),
            rng.random_range(0.3..=1.5),
            if rng.random_bool(0.5) {
                Act::Sigmoid
            } else {
                Act::Tanh
            },
        ),
        Regime::Long => (
            pick(&mut rng, 1, 3),
            pick(&mut rng, 2, 6),
            pick(&mut rng, 1, 2),
            pick(&mut rng, 150, 300),
            rng.random_range(0.3..=0.8),
            if rng.random_bool(0.5) {
                Act::Sigmoid
            } else {
                Act::Tanh
            },
        ),
        Regime::Chaotic => (
            pick(&mut rng, 1, 3),
            pick(&mut rng, 10, 16),
            pick(&mut rng, 1, 2),
            pick(&mut rng, 40, 60),
            rng.random_range(2.5..=3.0),
            Act::Tanh,
        ),
        Regime::Saturated => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 3, 8),
            pick(&mut rng, 1, 2),
            pick(&mut rng, 5, 20),
            rng.random_range(15.0..=30.0),
            Act::Sigmoid,
        ),
        Regime::Float32Chaotic => (3, 10, 1, 50, 2.5, Act::Tanh),
        Regime::Vanishing => (
            pick(&mut rng, 1, 3),
            pick(&mut rng, 2, 8),
            pick(&mut rng, 1, 2),
            100,
            0.05,
            if rng.random_bool(0.5) {
                Act::Sigmoid
            } else {
                Act::Tanh
            },
        ),
    };
    let output = if regime == Regime::Float32Chaotic {
        Act::Sigmoid
    } else {
        outputs_acts[pick(&mut rng, 0, 2)]
    };
    let biases = rng.random_bool(0.5);
    let mut net = Net {
        n_in,
        n_h,
        n_out,
        t_len,
        hidden,
        output,
        w_xh: uniform(&mut rng, n_h * n_in, scale),
        w_hh: uniform(&mut rng, n_h * n_h, scale),
        w_hy: uniform(&mut rng, n_out * n_h, scale),
        b_h: biases.then(|| uniform(&mut rng, n_h, scale)),
        b_y: biases.then(|| uniform(&mut rng, n_out, scale)),
        h0: uniform(&mut rng, n_h, 1.0),
        x: uniform(&mut rng, t_len * n_in, 1.0),
        target: uniform(&mut rng, t_len * n_out, 1.0),
    };
    if output == Act::Sigmoid {
        net.target.iter_mut().for_each(|v| *v = 0.5 + 0.5 * *v);
    }
    match regime {
        Regime::LargeInputs => net.x.iter_mut().for_each(|v| *v *= 1e3),
        Regime::NearStationary => {
            net.target = outputs(&net).into_iter().map(|y| y + 1e-6).collect();
        }
        Regime::Float32 | Regime::Float32Chaotic => {
            let round = |v: &mut Vec<f64>| v.iter_mut().for_each(|x| *x = f64::from(*x as f32));
            for v in [
                &mut net.w_xh,
                &mut net.w_hh,
                &mut net.w_hy,
                &mut net.h0,
                &mut net.x,
                &mut net.target,
            ] {
                round(v);
            }
            for v in [net.b_h.as_mut(), net.b_y.as_mut()].into_iter().flatten() {
                round(v);
            }
        }
        _ => {}
    }
    net
}

/// A mutation of one block (or, for the last two, of the backward pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    Negated,
    Doubled,
    Halved,
    Zeroed,
    LargestTimes1_1,
    LargestSignFlipped,
    TwoSwapped,
    WhhTransposed,
    OneStepTruncation,
    WrongPreactivation,
}

impl Mutation {
    /// Every mutation.
    pub const ALL: [Mutation; 10] = [
        Mutation::Negated,
        Mutation::Doubled,
        Mutation::Halved,
        Mutation::Zeroed,
        Mutation::LargestTimes1_1,
        Mutation::LargestSignFlipped,
        Mutation::TwoSwapped,
        Mutation::WhhTransposed,
        Mutation::OneStepTruncation,
        Mutation::WrongPreactivation,
    ];
}

/// What a variant of the gradient is.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A correct gradient, by this route.
    Correct(Route),
    /// A mutation.
    Mutated(Mutation),
}

/// One gradient to judge.
#[derive(Clone, Debug)]
pub struct Variant {
    pub kind: Kind,
    pub grad: Grad,
}

fn bptt_in(net: &Net, f32: bool, route: Route, defect: Defect) -> Grad {
    if f32 {
        bptt::<f32>(net, route, defect)
    } else {
        bptt::<f64>(net, route, defect)
    }
}

/// The correct gradients and the mutations of the (stable-route) correct
/// gradient; `f32` computes them all in single precision. The block a
/// mutation hits is drawn from `seed`.
pub fn variants(net: &Net, f32: bool, seed: u64) -> Vec<Variant> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB10C);
    let base = bptt_in(net, f32, Route::Stable, Defect::None);
    let mut out = vec![
        Variant {
            kind: Kind::Correct(Route::Stable),
            grad: base.clone(),
        },
        Variant {
            kind: Kind::Correct(Route::Textbook),
            grad: bptt_in(net, f32, Route::Textbook, Defect::None),
        },
    ];
    let present: Vec<usize> = (0..6).filter(|&k| base[k].is_some()).collect();
    for m in Mutation::ALL {
        let mut g = base.clone();
        let k = present[rng.random_range(0..present.len())];
        match m {
            Mutation::OneStepTruncation => {
                g = bptt_in(net, f32, Route::Stable, Defect::NoRecurrence);
            }
            Mutation::WrongPreactivation => {
                g = bptt_in(net, f32, Route::Stable, Defect::WrongPreactivation);
            }
            Mutation::WhhTransposed => {
                let n = net.n_h;
                let w = g[1].as_mut().expect("W_hh");
                let orig = w.clone();
                for i in 0..n {
                    for j in 0..n {
                        w[i * n + j] = orig[j * n + i];
                    }
                }
            }
            _ => {
                let b = g[k].as_mut().expect("present");
                let largest = (0..b.len())
                    .max_by(|&i, &j| b[i].abs().total_cmp(&b[j].abs()))
                    .expect("non-empty");
                match m {
                    Mutation::Negated => b.iter_mut().for_each(|v| *v = -*v),
                    Mutation::Doubled => b.iter_mut().for_each(|v| *v *= 2.0),
                    Mutation::Halved => b.iter_mut().for_each(|v| *v *= 0.5),
                    Mutation::Zeroed => b.iter_mut().for_each(|v| *v = 0.0),
                    Mutation::LargestTimes1_1 => b[largest] *= 1.1,
                    Mutation::LargestSignFlipped => b[largest] = -b[largest],
                    Mutation::TwoSwapped if b.len() >= 2 => {
                        let other = (largest + 1 + rng.random_range(0..b.len() - 1)) % b.len();
                        b.swap(largest, other);
                    }
                    _ => {}
                }
            }
        }
        if f32 {
            for v in g.iter_mut().flatten() {
                v.iter_mut().for_each(|x| *x = f64::from(*x as f32));
            }
        }
        out.push(Variant {
            kind: Kind::Mutated(m),
            grad: g,
        });
    }
    out
}

fn rows(v: &[f64], n_rows: usize, n_cols: usize) -> serde_json::Value {
    serde_json::Value::Array(
        (0..n_rows)
            .map(|i| serde_json::json!(v[i * n_cols..(i + 1) * n_cols]))
            .collect(),
    )
}

/// The case file (JSON, column layout) of `net` with gradient `grad`.
pub fn case_json(net: &Net, grad: &Grad) -> String {
    let (n_in, n_h, n_out, t) = (net.n_in, net.n_h, net.n_out, net.t_len);
    let mut params = serde_json::json!({
        "W_xh": rows(&net.w_xh, n_h, n_in),
        "W_hh": rows(&net.w_hh, n_h, n_h),
        "W_hy": rows(&net.w_hy, n_out, n_h),
    });
    if let Some(b) = &net.b_h {
        params["b_h"] = serde_json::json!(b);
    }
    if let Some(b) = &net.b_y {
        params["b_y"] = serde_json::json!(b);
    }
    let shapes = [
        (n_h, n_in),
        (n_h, n_h),
        (n_out, n_h),
        (n_h, 1),
        (n_out, 1),
        (n_h, 1),
    ];
    let mut grads = serde_json::Map::new();
    for (k, p) in Param::ALL.into_iter().enumerate() {
        if let Some(g) = &grad[k] {
            let v = if p.is_matrix() {
                rows(g, shapes[k].0, shapes[k].1)
            } else {
                serde_json::json!(g)
            };
            grads.insert(p.key().to_string(), v);
        }
    }
    serde_json::json!({
        "layout": "column",
        "activation": {"hidden": net.hidden.name(), "output": net.output.name()},
        "params": params,
        "h0": net.h0,
        "inputs": rows(&net.x, t, n_in),
        "targets": rows(&net.target, t, n_out),
        "grads": grads,
    })
    .to_string()
}

/// `‖a − b‖_F / ‖b‖_F` (infinite when only `b` is zero).
pub fn rel_error(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let n: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if n > 0.0 {
        d / n
    } else if d == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// True when a block's true relative error is 1% or more (or NaN: an
/// error that cannot be measured is never taken for a small one).
pub fn off_by_1_percent(e: f64) -> bool {
    e.is_nan() || e >= 0.01
}

/// One judged variant.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub regime: Regime,
    pub seed: u64,
    pub kind: Kind,
    pub overall: Overall,
    /// Per given parameter: verdict, the block's true relative error, and
    /// whether it differs at all from the correct gradient of its route.
    pub params: Vec<(Param, ParamVerdict, f64, bool)>,
    /// Reasons of inconclusive parameters.
    pub reasons: Vec<String>,
    pub exit_code: u8,
    /// `Err` when `diagnose` refused the case.
    pub error: Option<String>,
}

impl Outcome {
    /// Parameters certified although their block errs by at least 1%.
    pub fn false_passes(&self) -> Vec<Param> {
        self.params
            .iter()
            .filter(|(_, v, e, _)| *v == ParamVerdict::Correct && off_by_1_percent(*e))
            .map(|(p, ..)| *p)
            .collect()
    }
    /// Parameters called wrong although they are a correct gradient.
    pub fn false_alarms(&self) -> Vec<Param> {
        self.params
            .iter()
            .filter(|(_, v, _, changed)| v.is_wrong() && !changed)
            .map(|(p, ..)| *p)
            .collect()
    }
    /// True when the overall verdict is inconclusive (or refused).
    pub fn abstained(&self) -> bool {
        self.error.is_some() || self.overall == Overall::Inconclusive
    }
    /// True when the overall verdict contradicts the truth: correct with a
    /// block off by 1% or more, or wrong with every block correct.
    pub fn overall_lie(&self) -> bool {
        let any_bad = self.params.iter().any(|(_, _, e, _)| off_by_1_percent(*e));
        let all_unchanged = self.params.iter().all(|(.., changed)| !changed);
        (self.overall == Overall::Correct && any_bad)
            || (self.overall == Overall::Wrong && all_unchanged)
    }
}

/// Judges every variant of the network of `regime` and `seed` with
/// `diagnose`'s defaults (`--method all`: the exact referee).
pub fn run(regime: Regime, seed: u64) -> Vec<Outcome> {
    run_with(regime, seed, &DiagnoseOptions::default())
}

/// Judges every variant of the network of `regime` and `seed`.
pub fn run_with(regime: Regime, seed: u64, options: &DiagnoseOptions) -> Vec<Outcome> {
    let net = network(regime, seed);
    let f32 = matches!(regime, Regime::Float32 | Regime::Float32Chaotic);
    let truth = bptt::<f64>(&net, Route::Stable, Defect::None);
    let mut out = Vec::new();
    for v in variants(&net, f32, seed) {
        // "Changed" is against the correct gradient of the same precision
        // (and, for the correct variants, of their own route).
        let correct_same = match &v.kind {
            Kind::Correct(_) => v.grad.clone(),
            Kind::Mutated(_) => bptt_in(&net, f32, Route::Stable, Defect::None)
                .into_iter()
                .map(|b| {
                    b.map(|b| {
                        if f32 {
                            b.iter().map(|x| f64::from(*x as f32)).collect()
                        } else {
                            b
                        }
                    })
                })
                .collect(),
        };
        let json = case_json(&net, &v.grad);
        let case = case::parse(json.as_bytes(), &format!("torture-{regime:?}-{seed}.json"))
            .expect("the torture case parses");
        let result = diagnose(case, options);
        let mut o = Outcome {
            regime,
            seed,
            kind: v.kind.clone(),
            overall: Overall::Inconclusive,
            params: Vec::new(),
            reasons: Vec::new(),
            exit_code: 2,
            error: None,
        };
        match result {
            Err(e) => o.error = Some(e.to_string()),
            Ok(d) => {
                o.overall = d.verdict;
                o.exit_code = d.exit_code();
                for (k, p) in Param::ALL.into_iter().enumerate() {
                    let (Some(g), Some(t), Some(c)) = (&v.grad[k], &truth[k], &correct_same[k])
                    else {
                        continue;
                    };
                    let r = d.param(p).expect("given parameter reported");
                    o.params.push((p, r.verdict, rel_error(g, t), g != c));
                    if let Some(reason) = &r.reason {
                        o.reasons.push(format!("{p}: {reason}"));
                    }
                }
            }
        }
        out.push(o);
    }
    out
}

/// Counts over a set of outcomes.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub cases: usize,
    pub blocks: usize,
    pub false_passes: usize,
    pub false_alarms: usize,
    pub overall_lies: usize,
    pub abstentions: usize,
    pub wrong_caught: usize,
    pub wrong_blocks: usize,
}

impl Tally {
    /// Adds one outcome.
    pub fn add(&mut self, o: &Outcome) {
        self.cases += 1;
        self.blocks += o.params.len();
        self.false_passes += o.false_passes().len();
        self.false_alarms += o.false_alarms().len();
        self.overall_lies += usize::from(o.overall_lie());
        self.abstentions += usize::from(o.abstained());
        for (_, v, e, _) in &o.params {
            if off_by_1_percent(*e) {
                self.wrong_blocks += 1;
                self.wrong_caught += usize::from(v.is_wrong());
            }
        }
    }
}
