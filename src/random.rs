//! Seeded random networks and sequences, for tests, examples and experiments.
//! Every function takes its generator or seed: the same seed gives the same numbers.

use nalgebra::{DMatrix, DVector};
use rand::rngs::ChaCha8Rng;
use rand::{Rng, RngExt, SeedableRng};

use crate::activation::Activation;
use crate::model::{Params, Rnn};

/// A `rows × cols` matrix with entries uniform in `[-scale, scale]`.
pub fn uniform_matrix<R: Rng + ?Sized>(
    rng: &mut R,
    rows: usize,
    cols: usize,
    scale: f64,
) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |_, _| scale * rng.random_range(-1.0..=1.0))
}

/// A vector with entries uniform in `[-scale, scale]`.
pub fn uniform_vector<R: Rng + ?Sized>(rng: &mut R, len: usize, scale: f64) -> DVector<f64> {
    DVector::from_fn(len, |_, _| scale * rng.random_range(-1.0..=1.0))
}

/// Parameters with weights uniform in `[-scale, scale]`, biases (if wanted) and
/// `h_0` uniform in `[-0.5, 0.5]`.
pub fn random_params<R: Rng + ?Sized>(
    rng: &mut R,
    (n_in, n_h, n_out): (usize, usize, usize),
    scale: f64,
    biases: bool,
) -> Params {
    Params {
        w_xh: uniform_matrix(rng, n_h, n_in, scale),
        w_hh: uniform_matrix(rng, n_h, n_h, scale),
        w_hy: uniform_matrix(rng, n_out, n_h, scale),
        b_h: biases.then(|| uniform_vector(rng, n_h, 0.5)),
        b_y: biases.then(|| uniform_vector(rng, n_out, 0.5)),
        h_0: uniform_vector(rng, n_h, 0.5),
    }
}

/// A sigmoid/sigmoid RNN with biases, inputs uniform in `[-1, 1]` (`n_in × T`)
/// and targets uniform in `[0, 1]` (`n_out × T`), all from `seed`.
pub fn random_problem(
    seed: u64,
    n_in: usize,
    n_h: usize,
    n_out: usize,
    t_len: usize,
    scale: f64,
) -> (Rnn, DMatrix<f64>, DMatrix<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let params = random_params(&mut rng, (n_in, n_h, n_out), scale, true);
    let x = uniform_matrix(&mut rng, n_in, t_len, 1.0);
    let targets = uniform_matrix(&mut rng, n_out, t_len, 0.5).add_scalar(0.5);
    (
        Rnn::new(params, Activation::Sigmoid, Activation::Sigmoid),
        x,
        targets,
    )
}
