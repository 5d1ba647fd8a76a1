//! The vanilla RNN and its forward pass, in the column-vector notation of the
//! literature.
//!
//! ```text
//! a_t = W_xh x_t + W_hh h_{t-1} + b_h      pre-activation      (n_h)
//! h_t = f(a_t)                             hidden state        (n_h)
//! z_t = W_hy h_t + b_y                     output pre-activ.   (n_out)
//! y_t = g(z_t)                             output              (n_out)
//! L   = Σ_t ½ ‖y_t − target_t‖²            loss, summed over t = 1..=T
//! ```
//!
//! # Time-index convention
//! Time runs `t = 1..=T` as in the literature. A sequence is a matrix whose
//! columns are time steps: `x_t`, `a_t`, `z_t`, `y_t` and `target_t` are
//! **column `t - 1`** of their matrices, while the states `h_t` are **column
//! `t`** of [`Trace::h`], whose column 0 is the initial state `h_0`. So
//! `h_{t-1}` (what step `t` reads) and `a_t` share the column index `t - 1`.

use nalgebra::{DMatrix, DMatrixView, DVector};

use crate::activation::Activation;

/// The trainable quantities of the RNN, and equally the shape of its gradient.
///
/// Biases are optional: `None` means "zero and not trained", which is how the
/// original question's bias-free network is represented exactly. The initial
/// state `h_0` is part of the set because BPTT yields its gradient too.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Input-to-hidden weights, `n_h × n_in`.
    pub w_xh: DMatrix<f64>,
    /// Hidden-to-hidden (recurrent) weights, `n_h × n_h`.
    pub w_hh: DMatrix<f64>,
    /// Hidden-to-output weights, `n_out × n_h`.
    pub w_hy: DMatrix<f64>,
    /// Hidden bias, `n_h`, or `None` for none.
    pub b_h: Option<DVector<f64>>,
    /// Output bias, `n_out`, or `None` for none.
    pub b_y: Option<DVector<f64>>,
    /// Initial hidden state `h_0`, `n_h` (zeros by default); for a minibatch
    /// whose sequences start from their own states, the `N` states stacked
    /// (`n_h·N`, the column-major `n_h × N`; see [`crate::batch`]).
    pub h_0: DVector<f64>,
}

/// The gradient of the loss with respect to every field of [`Params`].
pub type Gradients = Params;

impl Params {
    /// All-zero parameters of the given sizes, with or without biases.
    pub fn zeros(n_in: usize, n_h: usize, n_out: usize, biases: bool) -> Self {
        Params {
            w_xh: DMatrix::zeros(n_h, n_in),
            w_hh: DMatrix::zeros(n_h, n_h),
            w_hy: DMatrix::zeros(n_out, n_h),
            b_h: biases.then(|| DVector::zeros(n_h)),
            b_y: biases.then(|| DVector::zeros(n_out)),
            h_0: DVector::zeros(n_h),
        }
    }

    /// Zeros shaped like `self` (same sizes, same biases present, as many
    /// initial states).
    pub fn zeros_like(&self) -> Self {
        let mut zeros = Self::zeros(self.n_in(), self.n_h(), self.n_out(), false);
        zeros.b_h = self.b_h.as_ref().map(|b| DVector::zeros(b.len()));
        zeros.b_y = self.b_y.as_ref().map(|b| DVector::zeros(b.len()));
        zeros.h_0 = DVector::zeros(self.h_0.len());
        zeros
    }

    /// Input size `n_in`.
    pub fn n_in(&self) -> usize {
        self.w_xh.ncols()
    }
    /// Hidden size `n_h`.
    pub fn n_h(&self) -> usize {
        self.w_hh.nrows()
    }
    /// Output size `n_out`.
    pub fn n_out(&self) -> usize {
        self.w_hy.nrows()
    }

    /// The parameters as borrowed [`Weights`] for [`forward_generic`].
    pub fn weights(&self) -> Weights<'_, f64> {
        Weights {
            w_xh: &self.w_xh,
            w_hh: &self.w_hh,
            w_hy: &self.w_hy,
            b_h: self.b_h.as_ref(),
            b_y: self.b_y.as_ref(),
            h_0: &self.h_0,
        }
    }
}

/// A vanilla RNN: its parameters and its two nonlinearities.
#[derive(Clone, Debug, PartialEq)]
pub struct Rnn {
    /// The trainable parameters.
    pub params: Params,
    /// The hidden nonlinearity `f`.
    pub hidden: Activation,
    /// The output nonlinearity `g`.
    pub output: Activation,
    /// `w_t`, the weight of step `t`'s loss term, `L = Σ_t w_t ℓ_t`: which
    /// steps carry loss (a 0/1 mask, or only the last) times the
    /// reduction's factor (`1/T'` for a mean over the `T'` counted steps).
    /// `None`: every step, weight 1 (the default). Its length is `T`.
    pub step_weights: Option<DVector<f64>>,
}

/// Everything a forward pass computes that the backward pass needs.
///
/// Columns are time steps; see the [module docs](self) for the convention.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// Hidden pre-activations `a_t`, `n_h × T` (column `t - 1`).
    pub a: DMatrix<f64>,
    /// Hidden states, `n_h × (T + 1)`: column 0 is `h_0`, column `t` is `h_t`.
    pub h: DMatrix<f64>,
    /// Output pre-activations `z_t`, `n_out × T` (column `t - 1`).
    pub z: DMatrix<f64>,
    /// Outputs `y_t`, `n_out × T` (column `t - 1`): probabilities `p_t` for
    /// a softmax output.
    pub y: DMatrix<f64>,
    /// The loss `L` ([`Rnn::loss_kind`]).
    pub loss: f64,
}

impl Trace {
    /// Sequence length `T`.
    pub fn len(&self) -> usize {
        self.a.ncols()
    }
    /// True for an empty sequence.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Rnn {
    /// An RNN with the given parameters and nonlinearities.
    pub fn new(params: Params, hidden: Activation, output: Activation) -> Self {
        Rnn {
            params,
            hidden,
            output,
            step_weights: None,
        }
    }

    /// Forward pass over a sequence.
    ///
    /// `x` is `n_in × T` and `targets` is `n_out × T` (columns are time steps).
    ///
    /// # Math
    /// ```text
    /// A = W_xh X (+ b_h 1ᵀ)                      all input terms, one product (n_h × T)
    /// a_t = A[:, t-1] + W_hh h_{t-1},  h_t = f(a_t)      t = 1..=T, sequential
    /// Z = W_hy H[:, 1..] (+ b_y 1ᵀ),  Y = g(Z)           one product (n_out × T)
    /// L = Σ_t ½ ‖y_t − target_t‖²                         (squared error)
    /// L = −Σ_t Σ_o target_{o,t} log softmax(z_t)_o        (g = softmax: cross-entropy)
    /// ```
    /// With [`Rnn::step_weights`] `w`, each step's term is multiplied by `w_t`.
    /// The loss follows from the output activation ([`Rnn::loss_kind`]).
    /// The computation is [`forward_generic`], shared with the exact
    /// derivative oracle ([`crate::exact`]), which runs it on dual numbers.
    ///
    /// # Panics
    /// If the shapes of `x` or `targets` do not match the network (a programming
    /// error; user files are validated before they reach this function).
    pub fn forward(&self, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> Trace {
        let f = forward_generic(
            &self.params.weights(),
            self.hidden,
            self.output,
            self.step_weights.as_ref(),
            x,
            targets,
        );
        Trace {
            a: f.a,
            h: f.h,
            z: f.z,
            y: f.y,
            loss: f.loss,
        }
    }

    /// `L` (a forward pass that keeps only the loss).
    pub fn loss(&self, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
        self.forward(x, targets).loss
    }

    /// The loss this network's output layer implies: cross-entropy for a
    /// softmax output, squared error for every other.
    pub fn loss_kind(&self) -> Loss {
        match self.output {
            Activation::Softmax => Loss::CrossEntropy,
            _ => Loss::SquaredError,
        }
    }
}

/// The loss, summed over time steps; implied by the output activation
/// ([`Rnn::loss_kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loss {
    /// `L = Σ_t ½ ‖y_t − target_t‖²`, for sigmoid, tanh and identity outputs.
    SquaredError,
    /// `L = −Σ_t Σ_o target_{o,t} log p_{o,t}`, `p_t = softmax(z_t)`, for a
    /// softmax output; targets one-hot (class indices in case files).
    CrossEntropy,
}

impl Loss {
    /// `squared_error` or `cross_entropy`, as case files name it.
    pub fn name(self) -> &'static str {
        match self {
            Loss::SquaredError => "squared_error",
            Loss::CrossEntropy => "cross_entropy",
        }
    }
}

/// A real scalar the forward pass can run on: `f64` for the model itself,
/// a dual number for the exact derivative oracle ([`crate::exact`]).
///
/// The two operations whose rounding an implementation must control are
/// methods, so a dual implementation can keep its value part bit-identical
/// to the `f64` forward pass (on a chaotic trajectory, a one-ulp difference
/// in `h_t` grows until the derivative is taken at another point).
pub trait ModelScalar: nalgebra::RealField + Copy {
    /// `act(a)`, the elementwise nonlinearity.
    fn activate(act: Activation, a: Self) -> Self;
    /// The matrix product `a b`.
    fn matmul(a: &DMatrix<Self>, b: &DMatrixView<'_, Self>) -> DMatrix<Self>;
}

impl ModelScalar for f64 {
    /// Exactly [`Activation::apply`].
    #[inline]
    fn activate(act: Activation, a: Self) -> Self {
        act.apply(a)
    }
    /// nalgebra's product (which calls the `matrixmultiply` kernel for `f64`).
    #[inline]
    fn matmul(a: &DMatrix<Self>, b: &DMatrixView<'_, Self>) -> DMatrix<Self> {
        a * b
    }
}

/// The parameters of [`Params`] as borrowed matrices of any [`ModelScalar`].
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a, S: ModelScalar> {
    /// `W_xh`, `n_h × n_in`.
    pub w_xh: &'a DMatrix<S>,
    /// `W_hh`, `n_h × n_h`.
    pub w_hh: &'a DMatrix<S>,
    /// `W_hy`, `n_out × n_h`.
    pub w_hy: &'a DMatrix<S>,
    /// `b_h`, `n_h`, if present.
    pub b_h: Option<&'a DVector<S>>,
    /// `b_y`, `n_out`, if present.
    pub b_y: Option<&'a DVector<S>>,
    /// `h_0`, `n_h`.
    pub h_0: &'a DVector<S>,
}

/// What [`forward_generic`] computes: the fields of [`Trace`] in any scalar.
#[derive(Clone, Debug, PartialEq)]
pub struct Forward<S: ModelScalar> {
    /// Hidden pre-activations `a_t`, `n_h × T`.
    pub a: DMatrix<S>,
    /// Hidden states `n_h × (T + 1)`, column 0 is `h_0`.
    pub h: DMatrix<S>,
    /// Output pre-activations `z_t`, `n_out × T`.
    pub z: DMatrix<S>,
    /// Outputs `y_t`, `n_out × T`.
    pub y: DMatrix<S>,
    /// `L = Σ_t ½ ‖y_t − target_t‖²`.
    pub loss: S,
}

/// The forward pass of [`Rnn::forward`], written once for every scalar type:
/// on `f64` it is the model, on dual numbers it carries exact derivatives.
///
/// `x` is `n_in × T`, `targets` is `n_out × T`; see [`Rnn::forward`] for the
/// math and the panics.
pub fn forward_generic<S: ModelScalar>(
    p: &Weights<'_, S>,
    hidden: Activation,
    output: Activation,
    step_weights: Option<&DVector<f64>>,
    x: &DMatrix<S>,
    targets: &DMatrix<S>,
) -> Forward<S> {
    let (n_h, t_len) = (p.w_hh.nrows(), x.ncols());
    assert_eq!(x.nrows(), p.w_xh.ncols(), "x must be n_in × T");
    assert_eq!(
        targets.shape(),
        (p.w_hy.nrows(), t_len),
        "targets must be n_out × T"
    );

    let mut a = S::matmul(p.w_xh, &x.columns(0, t_len));
    if let Some(b_h) = p.b_h {
        a.column_iter_mut().for_each(|mut col| col += b_h);
    }
    let mut h = DMatrix::zeros(n_h, t_len + 1);
    h.set_column(0, p.h_0);
    for t in 1..=t_len {
        // a_t = (W_xh x_t + b_h) + W_hh h_{t-1}
        let (h_prev, mut h_rest) = h.columns_range_pair_mut(t - 1, t);
        let mut a_t = a.column_mut(t - 1);
        a_t.gemv(S::one(), p.w_hh, &h_prev, S::one());
        h_rest.zip_apply(&a_t, |h_t, a_t| *h_t = S::activate(hidden, a_t));
    }

    let mut z = S::matmul(p.w_hy, &h.columns(1, t_len));
    if let Some(b_y) = p.b_y {
        z.column_iter_mut().for_each(|mut col| col += b_y);
    }
    let (y, loss) = match (output, step_weights) {
        (Activation::Softmax, None) => softmax_cross_entropy(&z, targets),
        (Activation::Softmax, Some(w)) => {
            // Σ_t w_t ℓ_t: the weights scale the target columns exactly.
            let mut weighted = targets.clone();
            for (mut col, &w_t) in weighted.column_iter_mut().zip(w.iter()) {
                col *= nalgebra::convert::<f64, S>(w_t);
            }
            softmax_cross_entropy(&z, &weighted)
        }
        (_, None) => {
            let y = z.map(|z| S::activate(output, z));
            let loss = nalgebra::convert::<f64, S>(0.5) * (&y - targets).norm_squared();
            (y, loss)
        }
        (_, Some(w)) => {
            let y = z.map(|z| S::activate(output, z));
            let mut loss = S::zero();
            for (t, &w_t) in w.iter().enumerate() {
                if w_t != 0.0 {
                    let r = (y.column(t) - targets.column(t)).norm_squared();
                    loss += nalgebra::convert::<f64, S>(0.5 * w_t) * r;
                }
            }
            (y, loss)
        }
    };
    Forward { a, h, z, y, loss }
}

/// The softmax head: `p_t = softmax(z_t)` and the cross-entropy
/// `L = −Σ_t Σ_o target_{o,t} log p_{o,t}`, both per column and stably:
/// with `m_t = max_o z_{o,t}` and `lse_t = log Σ_o e^{z_{o,t} − m_t}`,
/// ```text
/// log p_{o,t} = z_{o,t} − m_t − lse_t        (finite even where p underflows to 0)
/// p_{o,t}     = e^{z_{o,t} − m_t} / Σ_j e^{z_{j,t} − m_t}
/// ```
/// Targets are one-hot columns (a class index per step), or any weights:
/// a zero column contributes nothing (a step without loss).
pub fn softmax_cross_entropy<S: ModelScalar>(
    z: &DMatrix<S>,
    targets: &DMatrix<S>,
) -> (DMatrix<S>, S) {
    let mut p = z.clone();
    let mut loss = S::zero();
    for (mut p_t, (z_t, target_t)) in p
        .column_iter_mut()
        .zip(z.column_iter().zip(targets.column_iter()))
    {
        let m = z_t
            .iter()
            .copied()
            .fold(z_t[0], |m, v| if v > m { v } else { m });
        let e = z_t.map(|v| (v - m).exp());
        let sum = e.sum();
        let lse = sum.ln();
        for o in 0..z_t.len() {
            p_t[o] = e[o] / sum;
            if target_t[o] != S::zero() {
                loss -= target_t[o] * (z_t[o] - m - lse);
            }
        }
    }
    (p, loss)
}

/// The six trainable quantities of the RNN: one name for each everywhere
/// (the [`Params`] fields, the checker's blocks, the case files' keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    /// `W_xh`, input → hidden (`n_h × n_in`).
    WXh,
    /// `W_hh`, hidden → hidden (`n_h × n_h`).
    WHh,
    /// `W_hy`, hidden → output (`n_out × n_h`).
    WHy,
    /// `b_h`, the hidden bias (`n_h`).
    BH,
    /// `b_y`, the output bias (`n_out`).
    BY,
    /// `h_0`, the initial state (`n_h`).
    H0,
}

impl Param {
    /// Every parameter, in the order [`Params`] presents its blocks to the
    /// checker and reports list them.
    pub const ALL: [Param; 6] = [
        Param::WXh,
        Param::WHh,
        Param::WHy,
        Param::BH,
        Param::BY,
        Param::H0,
    ];

    /// The block name: `W_xh`, `W_hh`, `W_hy`, `b_h`, `b_y`, `h_0`.
    pub fn name(self) -> &'static str {
        match self {
            Param::WXh => "W_xh",
            Param::WHh => "W_hh",
            Param::WHy => "W_hy",
            Param::BH => "b_h",
            Param::BY => "b_y",
            Param::H0 => "h_0",
        }
    }

    /// The key in case files: the name, except `h0` for `h_0` (the file
    /// format's spelling; `h_0` is accepted too, see [`Param::from_key`]).
    pub fn key(self) -> &'static str {
        match self {
            Param::H0 => "h0",
            p => p.name(),
        }
    }

    /// The parameter a case-file key or a block name means: the
    /// [`key`](Param::key) or the [`name`](Param::name).
    pub fn from_key(key: &str) -> Option<Param> {
        Param::ALL
            .into_iter()
            .find(|p| p.key() == key || p.name() == key)
    }

    /// The five weights every time step uses (every parameter but `h_0`):
    /// the blocks of [`StepWeights`].
    pub const WEIGHTS: [Param; 5] = [Param::WXh, Param::WHh, Param::WHy, Param::BH, Param::BY];

    /// True for the weight matrices, which layout `"row"` stores transposed.
    pub fn is_matrix(self) -> bool {
        matches!(self, Param::WXh | Param::WHh | Param::WHy)
    }
}

/// Prints the case-file key (`h0` for the initial state).
impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

impl Params {
    /// The blocks present, as `(name, rows, cols, values)` with values
    /// column-major, in [`Param::ALL`] order.
    fn slices(&self) -> Vec<(&'static str, usize, usize, &[f64])> {
        Param::ALL
            .into_iter()
            .filter_map(|p| {
                let (rows, cols) = self.shape(p)?;
                Some((p.name(), rows, cols, self.get(p)?))
            })
            .collect()
    }

    /// `(rows, cols)` of `param` (vectors are `n × 1`; `None` for an absent
    /// bias).
    pub fn shape(&self, param: Param) -> Option<(usize, usize)> {
        let m = |m: &DMatrix<f64>| (m.nrows(), m.ncols());
        let v = |v: &DVector<f64>| (v.len(), 1);
        match param {
            Param::WXh => Some(m(&self.w_xh)),
            Param::WHh => Some(m(&self.w_hh)),
            Param::WHy => Some(m(&self.w_hy)),
            Param::BH => self.b_h.as_ref().map(v),
            Param::BY => self.b_y.as_ref().map(v),
            // One state per column: `n_h × N` for N stacked states.
            Param::H0 => Some((self.n_h(), self.h_0.len() / self.n_h().max(1))),
        }
    }

    /// The values of `param`, column-major (`None` for an absent bias).
    pub fn get(&self, param: Param) -> Option<&[f64]> {
        match param {
            Param::WXh => Some(self.w_xh.as_slice()),
            Param::WHh => Some(self.w_hh.as_slice()),
            Param::WHy => Some(self.w_hy.as_slice()),
            Param::BH => self.b_h.as_ref().map(|b| b.as_slice()),
            Param::BY => self.b_y.as_ref().map(|b| b.as_slice()),
            Param::H0 => Some(self.h_0.as_slice()),
        }
    }

    /// Mutable access to the values of `param` (`None` for an absent bias).
    pub fn get_mut(&mut self, param: Param) -> Option<&mut [f64]> {
        match param {
            Param::WXh => Some(self.w_xh.as_mut_slice()),
            Param::WHh => Some(self.w_hh.as_mut_slice()),
            Param::WHy => Some(self.w_hy.as_mut_slice()),
            Param::BH => self.b_h.as_mut().map(|b| b.as_mut_slice()),
            Param::BY => self.b_y.as_mut().map(|b| b.as_mut_slice()),
            Param::H0 => Some(self.h_0.as_mut_slice()),
        }
    }

    /// Read access to a block by its [`Param::name`] (or case-file key).
    pub fn block(&self, name: &str) -> Option<&[f64]> {
        Param::from_key(name).and_then(|p| self.get(p))
    }

    /// Mutable access to a block by its [`Param::name`] (or case-file key).
    pub fn block_mut(&mut self, name: &str) -> Option<&mut [f64]> {
        Param::from_key(name).and_then(|p| self.get_mut(p))
    }

    /// Calls `f(name, values)` on every block present, in [`Param::ALL`] order.
    pub fn iter_blocks_mut(&mut self, mut f: impl FnMut(&str, &mut [f64])) {
        for p in Param::ALL {
            if let Some(values) = self.get_mut(p) {
                f(p.name(), values);
            }
        }
    }

    /// `self += alpha · other`, block by block, over the blocks both have.
    pub fn axpy(&mut self, alpha: f64, other: &Params) {
        for p in Param::ALL {
            if let (Some(dst), Some(src)) = (self.get_mut(p), other.get(p)) {
                dst.iter_mut().zip(src).for_each(|(d, s)| *d += alpha * s);
            }
        }
    }
}

/// The weights without `h_0`: one time step's copy of them in an untied
/// model, or the gradient with respect to that copy (`W_xh^(t)`, `W_hh^(t)`,
/// `W_hy^(t)`, `b_h^(t)`, `b_y^(t)`). Biases are present exactly when the
/// model has them.
#[derive(Clone, Debug, PartialEq)]
pub struct StepWeights {
    /// `n_h × n_in`.
    pub w_xh: DMatrix<f64>,
    /// `n_h × n_h`.
    pub w_hh: DMatrix<f64>,
    /// `n_out × n_h`.
    pub w_hy: DMatrix<f64>,
    /// `n_h`, or `None`.
    pub b_h: Option<DVector<f64>>,
    /// `n_out`, or `None`.
    pub b_y: Option<DVector<f64>>,
}

impl StepWeights {
    /// The weights of `params` (one step's copy of them).
    pub fn of(params: &Params) -> Self {
        StepWeights {
            w_xh: params.w_xh.clone(),
            w_hh: params.w_hh.clone(),
            w_hy: params.w_hy.clone(),
            b_h: params.b_h.clone(),
            b_y: params.b_y.clone(),
        }
    }

    /// Zeros shaped like the weights of `params`.
    pub fn zeros_like(params: &Params) -> Self {
        let mut z = Self::of(params);
        z.scale(0.0);
        z
    }

    /// These weights' values as the weight blocks of a [`Gradients`], with
    /// `h_0` for its initial-state block.
    pub fn with_h_0(self, h_0: DVector<f64>) -> Gradients {
        Gradients {
            w_xh: self.w_xh,
            w_hh: self.w_hh,
            w_hy: self.w_hy,
            b_h: self.b_h,
            b_y: self.b_y,
            h_0,
        }
    }

    /// `self += other`.
    pub fn add(&mut self, other: &StepWeights) {
        self.w_xh += &other.w_xh;
        self.w_hh += &other.w_hh;
        self.w_hy += &other.w_hy;
        if let (Some(a), Some(b)) = (&mut self.b_h, &other.b_h) {
            *a += b;
        }
        if let (Some(a), Some(b)) = (&mut self.b_y, &other.b_y) {
            *a += b;
        }
    }

    /// `self *= alpha`.
    pub fn scale(&mut self, alpha: f64) {
        self.w_xh *= alpha;
        self.w_hh *= alpha;
        self.w_hy *= alpha;
        self.b_h.iter_mut().for_each(|b| *b *= alpha);
        self.b_y.iter_mut().for_each(|b| *b *= alpha);
    }

    /// The values of `param`, column-major (`None` for `h_0`, which is not
    /// a per-step weight, and for an absent bias).
    pub fn get(&self, param: Param) -> Option<&[f64]> {
        match param {
            Param::WXh => Some(self.w_xh.as_slice()),
            Param::WHh => Some(self.w_hh.as_slice()),
            Param::WHy => Some(self.w_hy.as_slice()),
            Param::BH => self.b_h.as_ref().map(|b| b.as_slice()),
            Param::BY => self.b_y.as_ref().map(|b| b.as_slice()),
            Param::H0 => None,
        }
    }

    /// Mutable access to the values of `param`.
    pub fn get_mut(&mut self, param: Param) -> Option<&mut [f64]> {
        match param {
            Param::WXh => Some(self.w_xh.as_mut_slice()),
            Param::WHh => Some(self.w_hh.as_mut_slice()),
            Param::WHy => Some(self.w_hy.as_mut_slice()),
            Param::BH => self.b_h.as_mut().map(|b| b.as_mut_slice()),
            Param::BY => self.b_y.as_mut().map(|b| b.as_mut_slice()),
            Param::H0 => None,
        }
    }

    /// The block named `name` ([`Param::name`] of a weight), column-major.
    pub fn block(&self, name: &str) -> Option<&[f64]> {
        Param::from_key(name).and_then(|p| self.get(p))
    }

    /// Mutable access to the block named `name`.
    pub fn block_mut(&mut self, name: &str) -> Option<&mut [f64]> {
        Param::from_key(name).and_then(|p| self.get_mut(p))
    }
}

impl crate::checker::Parameters for Params {
    fn blocks(&self) -> Vec<crate::checker::Block<'_>> {
        self.slices()
            .into_iter()
            .map(|(name, rows, cols, values)| crate::checker::Block {
                name,
                rows,
                cols,
                values,
            })
            .collect()
    }

    fn entry_mut(&mut self, block: usize, index: usize) -> &mut f64 {
        // The `block`-th name present, without building the block list:
        // checkers call this twice per perturbed entry.
        let param = Param::ALL
            .into_iter()
            .filter(|&p| self.get(p).is_some())
            .nth(block)
            .expect("block index from blocks()");
        &mut self.get_mut(param).expect("block present")[index]
    }
}

impl crate::checker::Parameters for Rnn {
    fn blocks(&self) -> Vec<crate::checker::Block<'_>> {
        self.params.blocks()
    }
    fn entry_mut(&mut self, block: usize, index: usize) -> &mut f64 {
        self.params.entry_mut(block, index)
    }
}
