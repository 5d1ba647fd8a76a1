//! Random RNN problems as proptest strategies (feature `proptest`, on by
//! default): a network, inputs and targets, for property tests of your own
//! gradient code. The crate's own property tests use exactly these.
//!
//! ```
//! use proptest::prelude::*;
//! use rnn_gradcheck::strategies::{problem, sigmoid_or_tanh, Shapes};
//! use rnn_gradcheck::GradientReport;
//! use rnn_gradcheck::{bptt, check_central, Activation, CheckOptions, Rnn, Verdict};
//!
//! let shapes = Shapes { n_in: 1..=3, n_h: 1..=4, n_out: 1..=2, t_len: 1..=5, scale: 0.1..=1.0 };
//! proptest!(ProptestConfig::with_cases(16), |(p in problem(shapes.clone(), sigmoid_or_tanh(), Just(Activation::Identity)))| {
//!     let grad = bptt(&p.rnn, &p.x, &p.y, &p.rnn.forward(&p.x, &p.y)); // your backward pass here
//!     let mut rnn = p.rnn.clone();
//!     let report = check_central(&mut rnn, &grad, |r: &Rnn| r.loss(&p.x, &p.y), &CheckOptions::default()).unwrap();
//!     prop_assert!(!report.verdict().is_wrong(), "{report}");
//! });
//! ```
//!
//! Everything is drawn by proptest strategies, so a failure shrinks to a
//! small network with simple values: first the dimensions (`n_h`, `T`,
//! `n_in`, `n_out`, each towards the low end of its range), then the
//! biases (towards none), the activations and the weight scale, and last
//! the values (each towards 0). `tests/core/shrinking.rs` checks this.
//!
//! The values are drawn for the largest shapes of the ranges and each
//! matrix is the top-left corner of its largest version (`x` and `y` the
//! first `T` steps). A dimension therefore shrinks without redrawing the
//! values (a `prop_flat_map` from the dimensions to value vectors of exactly
//! the right sizes would shrink every value before any dimension and redraw
//! all of them whenever a dimension shrinks). Every entry is still uniform
//! on its range, as with [`build_problem`].

use std::ops::RangeInclusive;

use crate::random::{random_params, uniform_matrix};
use crate::{Activation, Params, Rnn};
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;

/// One random problem: a network, inputs `x` (`n_in × T`) and targets `y`
/// (`n_out × T`).
#[derive(Clone, Debug)]
pub struct Problem {
    /// The network.
    pub rnn: Rnn,
    /// Inputs, one column per time step, uniform in `[-1, 1]`.
    pub x: DMatrix<f64>,
    /// Targets, one column per time step, uniform in `[0, 1]`.
    pub y: DMatrix<f64>,
}

impl Problem {
    /// The sequence length `T`.
    pub fn t_len(&self) -> usize {
        self.x.ncols()
    }

    /// `(n_in, n_h, n_out, T)`.
    pub fn dims(&self) -> (usize, usize, usize, usize) {
        let p = &self.rnn.params;
        (p.w_xh.ncols(), p.w_hh.nrows(), p.w_hy.nrows(), self.t_len())
    }
}

/// The ranges a [`problem`] is drawn from. Weights are uniform in
/// `[-scale, scale]`; biases (when drawn) and `h_0` in `[-0.5, 0.5]`.
#[derive(Clone, Debug)]
pub struct Shapes {
    /// Inputs per step.
    pub n_in: RangeInclusive<usize>,
    /// Hidden units.
    pub n_h: RangeInclusive<usize>,
    /// Outputs per step.
    pub n_out: RangeInclusive<usize>,
    /// Sequence length `T`.
    pub t_len: RangeInclusive<usize>,
    /// Weight scale.
    pub scale: RangeInclusive<f64>,
}

/// `len` values uniform in `[-1, 1]`, each shrinking towards 0.
fn unit_values(len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-1.0..=1.0f64, len)
}

/// The `rows × cols` top-left corner of the column-major `max_rows × _`
/// matrix `values`, times `scale`.
fn corner(values: &[f64], max_rows: usize, rows: usize, cols: usize, scale: f64) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |i, j| scale * values[i + j * max_rows])
}

/// A problem from `shapes` with the hidden and output activations drawn from
/// the given strategies, with or without biases (the same distribution as
/// [`build_problem`] with a random seed).
pub fn problem(
    shapes: Shapes,
    hidden: impl Strategy<Value = Activation>,
    output: impl Strategy<Value = Activation>,
) -> impl Strategy<Value = Problem> {
    let Shapes {
        n_in,
        n_h,
        n_out,
        t_len,
        scale,
    } = shapes;
    let (max_in, max_h, max_out, max_t) = (*n_in.end(), *n_h.end(), *n_out.end(), *t_len.end());
    // A tuple shrinks its members in order: dimensions first.
    let dims = (n_h, t_len, n_in, n_out);
    let kind = (any::<bool>(), hidden, output, scale);
    let weights = (
        unit_values(max_h * max_in),
        unit_values(max_h * max_h),
        unit_values(max_out * max_h),
    );
    let vectors = (unit_values(max_h), unit_values(max_out), unit_values(max_h));
    let sequences = (unit_values(max_in * max_t), unit_values(max_out * max_t));
    (dims, kind, weights, vectors, sequences).prop_map(
        move |(
            (n_h, t_len, n_in, n_out),
            (biases, hidden, output, scale),
            (w_xh, w_hh, w_hy),
            (b_h, b_y, h_0),
            (x, y),
        )| {
            let vector = |v: &[f64], len: usize| DVector::from_fn(len, |i, _| 0.5 * v[i]);
            let params = Params {
                w_xh: corner(&w_xh, max_h, n_h, n_in, scale),
                w_hh: corner(&w_hh, max_h, n_h, n_h, scale),
                w_hy: corner(&w_hy, max_out, n_out, n_h, scale),
                b_h: biases.then(|| vector(&b_h, n_h)),
                b_y: biases.then(|| vector(&b_y, n_out)),
                h_0: vector(&h_0, n_h),
            };
            Problem {
                rnn: Rnn::new(params, hidden, output),
                x: corner(&x, max_in, n_in, t_len, 1.0),
                y: corner(&y, max_out, n_out, t_len, 0.5).add_scalar(0.5),
            }
        },
    )
}

/// A problem drawn from `seed` (for samples outside proptest): weights
/// uniform in `[-scale, scale]`, biases (if wanted) and `h_0` in
/// `[-0.5, 0.5]`, inputs uniform in `[-1, 1]` and targets in `[0, 1]`.
pub fn build_problem(
    (n_in, n_h, n_out): (usize, usize, usize),
    t_len: usize,
    scale: f64,
    (hidden, output): (Activation, Activation),
    biases: bool,
    seed: u64,
) -> Problem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let params = random_params(&mut rng, (n_in, n_h, n_out), scale, biases);
    let x = uniform_matrix(&mut rng, n_in, t_len, 1.0);
    let y = uniform_matrix(&mut rng, n_out, t_len, 0.5).add_scalar(0.5);
    Problem {
        rnn: Rnn::new(params, hidden, output),
        x,
        y,
    }
}

/// Sigmoid or tanh: the hidden activations that make the network nonlinear.
pub fn sigmoid_or_tanh() -> impl Strategy<Value = Activation> {
    prop_oneof![Just(Activation::Sigmoid), Just(Activation::Tanh)]
}

/// Any activation: sigmoid, tanh or the identity.
pub fn any_activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
        Just(Activation::Identity)
    ]
}
