//! The data and initial weights every experiment uses.
//!
//! **Seam:** until the replica of the original code lands (with the
//! reconstructed dataset in `fixtures/`), [`dataset`] builds the same
//! reconstruction in code and [`initial_rnn`] draws standard-normal weights
//! as the question's `np.random.randn` does. Replace these two functions to
//! switch every experiment to the fixture.

use nalgebra::{DMatrix, DVector};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::activation::Activation;
use crate::model::{Params, Rnn};

/// The original network's sizes: 4 inputs, 6 hidden units, 1 output.
pub const SIZES: (usize, usize, usize) = (4, 6, 1);

/// Samples per epoch in the question (`for i in range(50)`).
pub const SAMPLES: usize = 50;

/// A training sequence: inputs `n_in × T` and targets `n_out × T`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// Inputs, one column per time step.
    pub x: DMatrix<f64>,
    /// Targets, one column per time step.
    pub targets: DMatrix<f64>,
}

/// The triangle wave `0.1, 0.2, …, 0.9, 0.8, …, 0.2, 0.1, 0.2, …` (period 16)
/// at position `i`.
pub fn triangle_wave(i: usize) -> f64 {
    let k = i % 16;
    let step = if k <= 8 { k } else { 16 - k };
    (step + 1) as f64 / 10.0
}

/// The reconstructed dataset (the question does not give its data): inputs
/// `[1, 1, 1, w_i]`, target `w_{i+1}`, for `i = 0 … 49`, where `w` is
/// [`triangle_wave`]. After 0.2, 0.3 comes 0.4 and after 0.4, 0.3 comes 0.2,
/// as in the question's probe.
pub fn dataset() -> Sequence {
    let x = DMatrix::from_fn(SIZES.0, SAMPLES, |r, i| {
        if r + 1 < SIZES.0 {
            1.0
        } else {
            triangle_wave(i)
        }
    });
    let targets = DMatrix::from_fn(1, SAMPLES, |_, i| triangle_wave(i + 1));
    Sequence { x, targets }
}

/// A standard-normal sample (Box–Muller) from a seeded generator.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The question's network with weights drawn like `np.random.randn` (standard
/// normal) from `seed`: sigmoid hidden and output units, no biases, `h_0 = 0`.
pub fn initial_rnn(seed: u64) -> Rnn {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (n_in, n_h, n_out) = SIZES;
    let mut normal = |rows, cols| DMatrix::from_fn(rows, cols, |_, _| standard_normal(&mut rng));
    let w_xh = normal(n_h, n_in);
    let w_hh = normal(n_h, n_h);
    let w_hy = normal(n_out, n_h);
    let params = Params {
        w_xh,
        w_hh,
        w_hy,
        b_h: None,
        b_y: None,
        h_0: DVector::zeros(n_h),
    };
    Rnn::new(params, Activation::Sigmoid, Activation::Sigmoid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wave_and_the_probe() {
        let w: Vec<f64> = (0..18).map(triangle_wave).collect();
        let tenths: Vec<i32> = w.iter().map(|v| (v * 10.0).round() as i32).collect();
        assert_eq!(
            tenths,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 7, 6, 5, 4, 3, 2, 1, 2]
        );
        let d = dataset();
        assert_eq!((d.x.shape(), d.targets.shape()), ((4, 50), (1, 50)));
        // Each target is the next input's x.
        for i in 0..49 {
            assert_eq!(d.targets[(0, i)], d.x[(3, i + 1)]);
        }
        assert_eq!(d.x.column(0).as_slice(), &[1.0, 1.0, 1.0, 0.1]);
    }

    #[test]
    fn initial_weights_are_seeded_and_roughly_standard_normal() {
        assert_eq!(initial_rnn(4), initial_rnn(4));
        assert_ne!(initial_rnn(4), initial_rnn(5));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let n = 20_000;
        let s: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = s.iter().sum::<f64>() / n as f64;
        let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: mean 1/√n ≈ 0.007, variance √(2/n) ≈ 0.01.
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
