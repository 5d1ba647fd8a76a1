//! A faithful replica of the original question's RNN, in its own terms.
//!
//! The question (a numpy "vanilla 3-layer RNN" whose backward pass is wrong; ported to run as
//! `fixtures/original/original_rnn.py`) writes row vectors times matrices.
//! Its names map to the crate's column-vector notation as follows:
//!
//! | question | crate | shape |
//! | --- | --- | --- |
//! | `A` | `x_tᵀ` | `1 × n_in` |
//! | `B` | `h_tᵀ` | `1 × n_h` |
//! | `B_t` | `h_{t-1}ᵀ` (or `[0]` before the first step) | `1 × n_h` |
//! | `C` | `y_tᵀ` | `1 × n_out` |
//! | `AB` | `W_xhᵀ` | `n_in × n_h` |
//! | `B_RNN` | `W_hhᵀ` | `n_h × n_h` |
//! | `BC` | `W_hyᵀ` | `n_h × n_out` |
//! | `B1`, `B_t1` | `(W_xh x_t)ᵀ`, `(W_hh h_{t-1})ᵀ` | `1 × n_h` |
//! | `B1 + B_t1` | `a_tᵀ` | `1 × n_h` |
//! | `C1` | `z_tᵀ` | `1 × n_out` |
//!
//! # What [`Original`] reproduces (every behaviour that changes numbers)
//! * **The first-ever step.** `B_t` starts as the list `[0]`; the test
//!   `len(self.B_t) > 2` is false, so the first step has no recurrence
//!   (`B = sigmoid(B1)`), and then sets `B_t = B` and `B_t1 = B · B_RNN` from
//!   the *current* hidden state. Its backprop therefore updates `B_RNN` with
//!   `B_t = h_1` and `sigmoidPrime(h_1 · B_RNN)` (the *first-step quirk*),
//!   where the true gradient of that step with respect to `W_hh` is zero.
//!   (With `B_size ≤ 2` the test would never pass and the network would never
//!   recur; constructors refuse such sizes.)
//! * **`sigmoidPrime` in its exp form**, `exp(-X) / (1 + exp(-X))²`: see
//!   [`sigmoid_prime`] for where it overflows. Both sigmoids are evaluated
//!   exactly as written, so the replica's numbers are the original's wherever
//!   the original's are finite (to the rounding of the dot products and of
//!   `exp`, which numpy and Rust do not perform identically).
//! * **The backward pass**, `RNN_backprop`: `sigmoidPrime(B1)` for `AB` and
//!   `sigmoidPrime(B_t1)` for `B_RNN` (the derivative at the wrong
//!   pre-activation) and no propagation through time (each step's gradient
//!   stops at that step). See [`Original::gradients`].
//! * **Online updates** after every sample with `weight_multiplier` (0.01;
//!   10 in the question's first version), the hidden state carried across
//!   samples and across epochs, and the loop order *forward, backprop
//!   (update), get_cost*: `get_cost` reads `self.C` of the forward pass, so the
//!   reported `total_error` is the sum of the pre-update costs.
//! * **`skip_backprop`** and the after-training **probe**.
//!
//! # The same loss, in the crate's terms
//! Fed a sequence `x_1..x_T` from a given state with frozen weights, the
//! original computes the outputs of the crate's [`Rnn`] with **no biases,
//! sigmoid hidden and output units**, `W_xh = ABᵀ`, `W_hh = B_RNNᵀ`,
//! `W_hy = BCᵀ`, and
//! * `h_0 = 0` when it starts fresh (`B_t = [0]`): its first step
//!   `B = sigmoid(B1)` is `h_1 = σ(W_xh x_1 + W_hh · 0)`;
//! * `h_0 = B_tᵀ` when it starts from a carried state.
//!
//! [`Original::rnn`] builds that network. The loss whose gradient the
//! original's updates approximate is `L(W_xh, W_hh, W_hy) = Σ_t ½ ‖y_t −
//! target_t‖²` of that network (the sum of the `get_cost` values), with `h_0`
//! **fixed**: `h_0` is not a parameter of the original, which computes no
//! gradient for it. [`check_weights`] checks the three weight blocks only.
//! [`Original::frozen_gradient`] is the sum over the sequence of what
//! `RNN_backprop` would apply (divided by the learning rate), with the
//! weights frozen: the original's claimed gradient of `L`.

pub mod dataset;
mod online;

use nalgebra::{DMatrix, DVector, RowDVector};

use crate::activation::Activation;
use crate::checker::{check_central, Block, CheckError, CheckOptions, CheckReport, Parameters};
use crate::model::{Gradients, Params, Rnn};
use dataset::Dataset;

/// The question's `sigmoid(X1) = 1 / (1 + np.exp(-X1))`, as written.
///
/// Finite everywhere: below about `-709.78`, `exp(-x)` overflows to infinity
/// and the result is `1 / ∞ = 0` (numpy warns, the value is right).
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The question's `sigmoidPrime(X1) = np.exp(-X1) / ((1 + np.exp(-X1)) ** 2)`,
/// as written.
///
/// Where it breaks (the true derivative `σ(x)(1 − σ(x))` is finite everywhere):
/// * `x < −ln(f64::MAX) ≈ −709.78`: `exp(−x) = ∞`, and `∞ / ∞` is **NaN**;
/// * `−709.78 ≤ x < −ln(√f64::MAX) ≈ −354.89`: `(1 + exp(−x))²` overflows to
///   `∞`, and the result is `0` where the true value is about `e^x` (below
///   `1e-154`);
/// * `x > 745.13`: `exp(−x)` underflows to `0` and the result is `0`
///   (the true value is below the smallest subnormal anyway).
///
/// ```
/// use rnn_gradcheck::original::sigmoid_prime;
/// assert_eq!(sigmoid_prime(0.0), 0.25);
/// assert!(sigmoid_prime(-710.0).is_nan());
/// assert_eq!(sigmoid_prime(-400.0), 0.0);
/// assert!(sigmoid_prime(-300.0) > 0.0);
/// ```
pub fn sigmoid_prime(x: f64) -> f64 {
    let e = (-x).exp();
    e / ((1.0 + e) * (1.0 + e))
}

/// Which pre-activation `sigmoidPrime` is evaluated at in the hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DerivativeAt {
    /// As written: `sigmoidPrime(B1)` for `AB` and `sigmoidPrime(B_t1)` for
    /// `B_RNN`.
    #[default]
    AsWritten,
    /// The first defect fixed: `sigmoidPrime(B1 + B_t1)` for both (and
    /// `sigmoidPrime(B1)` on the first-ever step, whose forward pass used `B1`
    /// alone). The time dimension is still dropped, and the first-step quirk
    /// (`B_t = h_1`) stays.
    PreActivation,
}

/// How the first sequence step of a conversion from the crate's model starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// `B_t = [0]`: the original's state before its first-ever step (the
    /// crate's `h_0` must be zero).
    Fresh,
    /// `B_t = h_0ᵀ`: a hidden state carried from earlier samples.
    Carried,
}

/// Why a crate model cannot be represented by the original.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// The original has no biases.
    #[error("the original network has no biases; b_h and b_y must be None")]
    Biases,
    /// The original uses sigmoid units in both layers.
    #[error("the original network is sigmoid/sigmoid, not {hidden}/{output}")]
    Activations {
        /// The hidden activation given.
        hidden: Activation,
        /// The output activation given.
        output: Activation,
    },
    /// With `B_size ≤ 2` the original's `len(self.B_t) > 2` never holds.
    #[error(
        "the original needs at least 3 hidden units (its recurrence test is len(B_t) > 2), got {0}"
    )]
    HiddenTooSmall(usize),
    /// A fresh start has no initial state.
    #[error("a fresh start (B_t = [0]) is the crate's h_0 = 0, but h_0 is not zero")]
    FreshWithNonzeroH0,
    /// The weight matrices do not fit together.
    #[error("AB is {ab:?}, BC is {bc:?}, B_RNN is {b_rnn:?}: expected n_in × n_h, n_h × n_out, n_h × n_h")]
    Shapes {
        /// Shape of `AB`.
        ab: (usize, usize),
        /// Shape of `BC`.
        bc: (usize, usize),
        /// Shape of `B_RNN`.
        b_rnn: (usize, usize),
    },
}

/// What the last `RNN_forward` stored on `self` (the question's attributes).
#[derive(Clone, Debug, PartialEq)]
pub struct Forward {
    /// `self.A`, the input row.
    pub a: RowDVector<f64>,
    /// `self.B1 = A · AB`.
    pub b1: RowDVector<f64>,
    /// `self.B_t1 = B_t · B_RNN` (with `B_t = B` on the first-ever step).
    pub b_t1: RowDVector<f64>,
    /// `self.B`, the hidden state.
    pub b: RowDVector<f64>,
    /// `self.C1 = B · BC`.
    pub c1: RowDVector<f64>,
    /// `self.C = sigmoid(C1)`, the output.
    pub c: RowDVector<f64>,
    /// False on the first-ever step (the `else` branch: no recurrence).
    pub recurrent: bool,
}

/// The three matrices `RNN_backprop` computes before it updates: the
/// original's claimed gradient, in its own (transposed) layout.
#[derive(Clone, Debug, PartialEq)]
pub struct OriginalGradient {
    /// `ABp = Aᵀ · delta2`, `n_in × n_h` (claims `∂L/∂AB`).
    pub ab_p: DMatrix<f64>,
    /// `BCp = Bᵀ · delta3`, `n_h × n_out` (claims `∂L/∂BC`).
    pub bc_p: DMatrix<f64>,
    /// `B_RNNp = B_tᵀ · delta2t`, `n_h × n_h` (claims `∂L/∂B_RNN`).
    pub b_rnn_p: DMatrix<f64>,
}

impl OriginalGradient {
    fn zeros(n_in: usize, n_h: usize, n_out: usize) -> Self {
        OriginalGradient {
            ab_p: DMatrix::zeros(n_in, n_h),
            bc_p: DMatrix::zeros(n_h, n_out),
            b_rnn_p: DMatrix::zeros(n_h, n_h),
        }
    }

    fn add(&mut self, other: &OriginalGradient) {
        self.ab_p += &other.ab_p;
        self.bc_p += &other.bc_p;
        self.b_rnn_p += &other.b_rnn_p;
    }

    /// In the crate's column layout: `dW_xh = ABpᵀ`, `dW_hh = B_RNNpᵀ`,
    /// `dW_hy = BCpᵀ`, no biases, and `h_0` all zero (the original computes
    /// no gradient for the initial state; check with [`check_weights`]).
    pub fn to_gradients(&self) -> Gradients {
        Gradients {
            w_xh: self.ab_p.transpose(),
            w_hh: self.b_rnn_p.transpose(),
            w_hy: self.bc_p.transpose(),
            b_h: None,
            b_y: None,
            h_0: DVector::zeros(self.b_rnn_p.nrows()),
        }
    }
}

/// The question's `NN` object after `init_weights`: weights, state, and what
/// the last forward pass stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Original {
    /// `AB = W_xhᵀ`, `n_in × n_h`.
    pub ab: DMatrix<f64>,
    /// `BC = W_hyᵀ`, `n_h × n_out`.
    pub bc: DMatrix<f64>,
    /// `B_RNN = W_hhᵀ`, `n_h × n_h`.
    pub b_rnn: DMatrix<f64>,
    /// `B_t`: the one-entry `[0]` until the first forward pass, then the
    /// hidden state the next step reads.
    pub b_t: RowDVector<f64>,
    /// The learning rate, `weight_multiplier` (0.01 in the question).
    pub weight_multiplier: f64,
    /// What the last forward pass stored, `None` before the first.
    pub last: Option<Forward>,
    /// How many times the first-step branch ran (each time the question
    /// prints `this should only print once`).
    pub first_steps: usize,
}

impl Original {
    /// `init_weights` with given weights: `B_t = [0]`.
    ///
    /// # Errors
    /// [`ReplicaError::Shapes`] if the matrices do not fit together,
    /// [`ReplicaError::HiddenTooSmall`] for fewer than 3 hidden units.
    pub fn new(
        ab: DMatrix<f64>,
        bc: DMatrix<f64>,
        b_rnn: DMatrix<f64>,
        weight_multiplier: f64,
    ) -> Result<Self, ReplicaError> {
        let n_h = ab.ncols();
        if bc.nrows() != n_h || b_rnn.shape() != (n_h, n_h) {
            return Err(ReplicaError::Shapes {
                ab: ab.shape(),
                bc: bc.shape(),
                b_rnn: b_rnn.shape(),
            });
        }
        if n_h <= 2 {
            return Err(ReplicaError::HiddenTooSmall(n_h));
        }
        Ok(Original {
            ab,
            bc,
            b_rnn,
            b_t: RowDVector::zeros(1),
            weight_multiplier,
            last: None,
            first_steps: 0,
        })
    }

    /// The original holding the crate model's weights (`AB = W_xhᵀ`,
    /// `B_RNN = W_hhᵀ`, `BC = W_hyᵀ`), starting fresh (`B_t = [0]`, requires
    /// `h_0 = 0`) or from the carried state `B_t = h_0ᵀ`.
    ///
    /// # Errors
    /// [`ReplicaError`] if the model has biases, is not sigmoid/sigmoid, has
    /// fewer than 3 hidden units, or starts fresh with a non-zero `h_0`.
    pub fn from_rnn(rnn: &Rnn, start: Start, weight_multiplier: f64) -> Result<Self, ReplicaError> {
        let p = &rnn.params;
        if p.b_h.is_some() || p.b_y.is_some() {
            return Err(ReplicaError::Biases);
        }
        if rnn.hidden != Activation::Sigmoid || rnn.output != Activation::Sigmoid {
            return Err(ReplicaError::Activations {
                hidden: rnn.hidden,
                output: rnn.output,
            });
        }
        let mut original = Original::new(
            p.w_xh.transpose(),
            p.w_hy.transpose(),
            p.w_hh.transpose(),
            weight_multiplier,
        )?;
        match start {
            Start::Fresh if p.h_0.iter().any(|&h| h != 0.0) => {
                return Err(ReplicaError::FreshWithNonzeroH0)
            }
            Start::Fresh => {}
            Start::Carried => original.b_t = p.h_0.transpose(),
        }
        Ok(original)
    }

    /// True while `B_t` is still `[0]`: the next forward pass takes the
    /// first-step branch.
    pub fn is_fresh(&self) -> bool {
        self.b_t.len() <= 2
    }

    /// The crate's parameters of the same network (see the [module docs](self)):
    /// `h_0 = 0` when fresh, else `B_tᵀ`; no biases.
    pub fn params(&self) -> Params {
        let n_h = self.b_rnn.nrows();
        Params {
            w_xh: self.ab.transpose(),
            w_hh: self.b_rnn.transpose(),
            w_hy: self.bc.transpose(),
            b_h: None,
            b_y: None,
            h_0: if self.is_fresh() {
                DVector::zeros(n_h)
            } else {
                self.b_t.transpose()
            },
        }
    }

    /// The crate's sigmoid/sigmoid [`Rnn`] with [`Original::params`]: its
    /// forward pass over a sequence gives the outputs this replica would give
    /// from its current state.
    pub fn rnn(&self) -> Rnn {
        Rnn::new(self.params(), Activation::Sigmoid, Activation::Sigmoid)
    }

    /// `RNN_forward(A)`: returns `C`.
    ///
    /// ```text
    /// B1 = A · AB
    /// if len(B_t) > 2:  B_t1 = B_t · B_RNN;  B = sigmoid(B1 + B_t1)
    /// else:             B = sigmoid(B1);  B_t = B;  B_t1 = B_t · B_RNN     (first-ever step)
    /// C1 = B · BC,  C = sigmoid(C1)
    /// ```
    ///
    /// # Panics
    /// If `a` does not have `n_in` entries.
    pub fn rnn_forward(&mut self, a: &RowDVector<f64>) -> RowDVector<f64> {
        let b1 = a * &self.ab;
        let recurrent = self.b_t.len() > 2;
        let (b, b_t1) = if recurrent {
            let b_t1 = &self.b_t * &self.b_rnn;
            ((&b1 + &b_t1).map(sigmoid), b_t1)
        } else {
            let b = b1.map(sigmoid);
            self.b_t = b.clone();
            self.first_steps += 1; // print('this should only print once')
            (b, &self.b_t * &self.b_rnn)
        };
        let c1 = &b * &self.bc;
        let c = c1.map(sigmoid);
        self.last = Some(Forward {
            a: a.clone(),
            b1,
            b_t1,
            b,
            c1,
            c: c.clone(),
            recurrent,
        });
        c
    }

    /// `skip_backprop`: `B_t = B`.
    ///
    /// # Panics
    /// Before the first forward pass (the question's `self.B` does not exist yet).
    pub fn skip_backprop(&mut self) {
        self.b_t = self.last().b.clone();
    }

    /// `get_cost(C_real) = 0.5 (C_real − C)²` of the last forward pass (summed
    /// over the outputs; the question has one).
    ///
    /// # Panics
    /// Before the first forward pass.
    pub fn get_cost(&self, c_real: &RowDVector<f64>) -> f64 {
        (c_real - &self.last().c).map(|d| 0.5 * (d * d)).sum()
    }

    fn last(&self) -> &Forward {
        self.last
            .as_ref()
            .expect("the original reads attributes set by RNN_forward")
    }

    /// What `RNN_backprop(C_real)` computes before it updates, from the last
    /// forward pass and the current `B_t`.
    ///
    /// ```text
    /// delta3  = −(C_real − C) ⊙ sigmoidPrime(C1)            1 × n_out   (dz_tᵀ)
    /// BCp     = Bᵀ · delta3                                  n_h × n_out (h_t dz_tᵀ: right)
    /// delta2  = (delta3 · BCᵀ) ⊙ sigmoidPrime(B1)            1 × n_h     (σ' at W_xh x_t alone)
    /// ABp     = Aᵀ · delta2                                  n_in × n_h
    /// delta2t = (delta3 · BCᵀ) ⊙ sigmoidPrime(B_t1)          1 × n_h     (σ' at W_hh h_{t-1} alone)
    /// B_RNNp  = B_tᵀ · delta2t                               n_h × n_h
    /// ```
    /// Nothing reaches earlier steps (no `dh_next`). With
    /// [`DerivativeAt::PreActivation`], both `sigmoidPrime` are taken at the
    /// forward pass's pre-activation instead.
    ///
    /// # Panics
    /// Before the first forward pass.
    pub fn gradients(&self, c_real: &RowDVector<f64>, at: DerivativeAt) -> OriginalGradient {
        let f = self.last();
        let delta3 = (c_real - &f.c)
            .map(|d| -d)
            .component_mul(&f.c1.map(sigmoid_prime));
        let bc_p = f.b.transpose() * &delta3;
        let back = &delta3 * self.bc.transpose(); // np.dot(delta3, self.BC.T)
        let (prime_ab, prime_b_rnn) = match at {
            DerivativeAt::AsWritten => (f.b1.map(sigmoid_prime), f.b_t1.map(sigmoid_prime)),
            DerivativeAt::PreActivation => {
                let pre = if f.recurrent {
                    &f.b1 + &f.b_t1
                } else {
                    f.b1.clone()
                };
                let prime = pre.map(sigmoid_prime);
                (prime.clone(), prime)
            }
        };
        let delta2 = back.component_mul(&prime_ab);
        let delta2t = back.component_mul(&prime_b_rnn);
        OriginalGradient {
            ab_p: f.a.transpose() * delta2,
            bc_p,
            b_rnn_p: self.b_t.transpose() * delta2t,
        }
    }

    /// `RNN_backprop(C_real)`: computes [`Original::gradients`] (as written),
    /// updates `BC`, `AB`, `B_RNN` by `− weight_multiplier ×` their gradients,
    /// and stores `B_t = B`.
    ///
    /// # Panics
    /// Before the first forward pass.
    pub fn rnn_backprop(&mut self, c_real: &RowDVector<f64>) {
        let g = self.gradients(c_real, DerivativeAt::AsWritten);
        let lr = self.weight_multiplier;
        self.bc = &self.bc - g.bc_p * lr;
        self.ab = &self.ab - g.ab_p * lr;
        self.b_rnn = &self.b_rnn - g.b_rnn_p * lr;
        self.b_t = self.last().b.clone();
    }

    /// One epoch of the question's training loop; returns its `total_error`:
    ///
    /// ```text
    /// for i in range(50):
    ///     NN.RNN_forward(As[i]); NN.RNN_backprop(C_reals[i]); total_error += NN.get_cost(C_reals[i])
    /// ```
    /// Each cost is of the forward pass *before* that sample's update.
    ///
    /// Computed in place (`src/original/online.rs`): the same
    /// operations in the same order as those three calls, bit for bit,
    /// without their temporaries.
    pub fn train_epoch(&mut self, data: &Dataset) -> f64 {
        let mut scratch = online::Scratch::new(self.ab.ncols(), self.bc.ncols());
        let mut total_error = 0.0;
        for i in 0..data.len() {
            total_error += self.online_step(data.x.column(i), data.targets.column(i), &mut scratch);
        }
        total_error
    }

    /// `epochs` epochs of [`Original::train_epoch`]; the `total_error` of each.
    pub fn train(&mut self, data: &Dataset, epochs: usize) -> Vec<f64> {
        (0..epochs).map(|_| self.train_epoch(data)).collect()
    }

    /// The question's probe after training; returns the two printed outputs
    /// (`"0.4: "` and `"0.2: "`). Note that the second block starts from the
    /// state after the `0.2` step: the forward pass on `0.3` is not followed
    /// by `skip_backprop`.
    ///
    /// ```text
    /// NN.RNN_forward([1, 1, 1, 0.2]); NN.skip_backprop(); print("0.4: ", NN.RNN_forward([1, 1, 1, 0.3]))
    /// NN.RNN_forward([1, 1, 1, 0.4]); NN.skip_backprop(); print("0.2: ", NN.RNN_forward([1, 1, 1, 0.3]))
    /// ```
    ///
    /// # Panics
    /// If the network does not have 4 inputs and 1 output, the question's sizes.
    pub fn probe(&mut self) -> (f64, f64) {
        assert!(
            self.ab.nrows() == 4 && self.bc.ncols() == 1,
            "the probe needs the question's 4 inputs and 1 output"
        );
        let input = |x: f64| RowDVector::from_row_slice(&[1.0, 1.0, 1.0, x]);
        self.rnn_forward(&input(0.2));
        self.skip_backprop();
        let y_04 = self.rnn_forward(&input(0.3))[0];
        self.rnn_forward(&input(0.4));
        self.skip_backprop();
        let y_02 = self.rnn_forward(&input(0.3))[0];
        (y_04, y_02)
    }

    /// The original's claimed gradient of the loss of a whole sequence with
    /// frozen weights: the sum over the samples of what `RNN_backprop` would
    /// apply (divided by the learning rate), fed from the current state, with
    /// `B_t = B` after each sample exactly as `RNN_backprop` does. `self` is
    /// not changed.
    ///
    /// ```text
    /// ABp_sum    = Σ_t A_tᵀ · delta2_t        dW_xh claimed = ABp_sumᵀ
    /// B_RNNp_sum = Σ_t B_{t-1}ᵀ · delta2t_t   dW_hh claimed = B_RNNp_sumᵀ   (B_0 = B_1 when fresh)
    /// BCp_sum    = Σ_t B_tᵀ · delta3_t        dW_hy claimed = BCp_sumᵀ (correct)
    /// ```
    pub fn frozen_gradient(&self, data: &Dataset, at: DerivativeAt) -> OriginalGradient {
        let mut nn = self.clone();
        let mut sum = OriginalGradient::zeros(self.ab.nrows(), self.ab.ncols(), self.bc.ncols());
        for i in 0..data.len() {
            nn.rnn_forward(&data.x.column(i).transpose());
            sum.add(&nn.gradients(&data.targets.column(i).transpose(), at));
            nn.skip_backprop(); // what RNN_backprop does after its update
        }
        sum
    }
}

/// The weight blocks `W_xh`, `W_hh`, `W_hy` of any [`Parameters`], hiding the
/// others (biases, `h_0`): what the original trains.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightBlocks<P>(pub P);

/// The blocks [`WeightBlocks`] keeps.
pub const WEIGHT_BLOCKS: [&str; 3] = ["W_xh", "W_hh", "W_hy"];

impl<P: Parameters> Parameters for WeightBlocks<P> {
    fn blocks(&self) -> Vec<Block<'_>> {
        self.0
            .blocks()
            .into_iter()
            .filter(|b| WEIGHT_BLOCKS.contains(&b.name))
            .collect()
    }

    fn entry_mut(&mut self, block: usize, index: usize) -> &mut f64 {
        let inner = self
            .0
            .blocks()
            .iter()
            .enumerate()
            .filter(|(_, b)| WEIGHT_BLOCKS.contains(&b.name))
            .nth(block)
            .map(|(i, _)| i)
            .expect("block index from blocks()");
        self.0.entry_mut(inner, index)
    }
}

/// Checks a claimed gradient's `W_xh`, `W_hh`, `W_hy` against central
/// differences of `rnn.loss(x, targets)`, with `h_0` and any biases held
/// fixed (the original trains neither).
///
/// # Errors
/// [`CheckError`] if `grad`'s weight blocks do not have the model's shapes.
pub fn check_weights(
    rnn: &Rnn,
    grad: &Gradients,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    options: &CheckOptions,
) -> Result<CheckReport, CheckError> {
    check_central(
        &mut WeightBlocks(rnn.clone()),
        &WeightBlocks(grad.clone()),
        |w: &WeightBlocks<Rnn>| w.0.loss(x, targets),
        options,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::random_params;
    use rand::SeedableRng;

    fn random_original(seed: u64) -> Original {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let mut p = random_params(&mut rng, (4, 6, 1), 1.0, false);
        p.h_0.fill(0.0);
        let rnn = Rnn::new(p, Activation::Sigmoid, Activation::Sigmoid);
        Original::from_rnn(&rnn, Start::Fresh, 0.01).unwrap()
    }

    #[test]
    fn sigmoid_prime_matches_the_stable_derivative_where_finite() {
        for i in -3000..=3000 {
            let x = f64::from(i) / 10.0;
            approx::assert_relative_eq!(
                sigmoid_prime(x),
                Activation::Sigmoid.derivative(x),
                max_relative = 1e-12
            );
            approx::assert_relative_eq!(
                sigmoid(x),
                crate::activation::sigmoid(x),
                max_relative = 1e-15
            );
        }
        assert_eq!(sigmoid(-1000.0), 0.0);
    }

    #[test]
    fn the_first_step_has_no_recurrence_and_sets_b_t_to_the_current_state() {
        let mut nn = random_original(1);
        assert!(nn.is_fresh());
        let a = RowDVector::from_row_slice(&[1.0, 1.0, 1.0, 0.1]);
        nn.rnn_forward(&a);
        let f = nn.last.clone().unwrap();
        assert!(!f.recurrent);
        assert_eq!(f.b, f.b1.map(sigmoid)); // B = sigmoid(B1)
        assert_eq!(nn.b_t, f.b); // B_t = B
        assert_eq!(f.b_t1, &f.b * &nn.b_rnn); // B_t1 from the current state
        nn.skip_backprop();
        nn.rnn_forward(&a);
        assert!(nn.last.as_ref().unwrap().recurrent);
        assert_eq!(nn.first_steps, 1);
    }

    #[test]
    fn conversions_round_trip() {
        let nn = random_original(2);
        let back = Original::from_rnn(&nn.rnn(), Start::Fresh, 0.01).unwrap();
        assert_eq!(back, nn);
        let mut rnn = nn.rnn();
        rnn.params.h_0[0] = 0.5;
        assert_eq!(
            Original::from_rnn(&rnn, Start::Fresh, 0.01),
            Err(ReplicaError::FreshWithNonzeroH0)
        );
        let carried = Original::from_rnn(&rnn, Start::Carried, 0.01).unwrap();
        assert_eq!(carried.params(), rnn.params);
        rnn.params.b_h = Some(DVector::zeros(6));
        assert_eq!(
            Original::from_rnn(&rnn, Start::Carried, 0.01),
            Err(ReplicaError::Biases)
        );
    }
}
