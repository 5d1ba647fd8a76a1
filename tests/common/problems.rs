//! Random problems for the property tests: a network, inputs and targets.
//!
//! Shapes, scale, activations and biases are drawn by proptest (so a failure
//! shrinks to a small network); the values come from a seeded generator, so
//! a case is reproducible from its seed.

use std::ops::RangeInclusive;

use nalgebra::DMatrix;
use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use rnn_gradcheck::random::{random_params, uniform_matrix};
use rnn_gradcheck::{Activation, Rnn};

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

/// A problem from `shapes` with the hidden and output activations drawn from
/// the given strategies, with or without biases.
pub fn problem(
    shapes: Shapes,
    hidden: impl Strategy<Value = Activation>,
    output: impl Strategy<Value = Activation>,
) -> impl Strategy<Value = Problem> {
    (
        shapes.n_in,
        shapes.n_h,
        shapes.n_out,
        shapes.t_len,
        shapes.scale,
        hidden,
        output,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(n_in, n_h, n_out, t_len, scale, hidden, output, biases, seed)| {
                build_problem(
                    (n_in, n_h, n_out),
                    t_len,
                    scale,
                    (hidden, output),
                    biases,
                    seed,
                )
            },
        )
}

/// The problem [`problem`] draws for these values: weights uniform in
/// `[-scale, scale]`, inputs uniform in `[-1, 1]` and targets in `[0, 1]`,
/// all from `seed`.
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
