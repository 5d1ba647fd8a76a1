//! 03 — Check the hand-written gradient of your own model, not this crate's
//! RNN: a two-layer tanh network `y = W2 tanh(W1 x + b1)` with squared error
//! over five samples, its parameters a plain tuple `(W1, b1, W2)` of nalgebra
//! matrices (blocks "0", "1", "2" in the report).
//!
//! Run: `cargo run --example 03_your_own_model`
//!
//! In a test, the whole check is one line: `assert_gradient!(loss, params, grad)`.

use nalgebra::{DMatrix, DVector};
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{assert_gradient, check_gradient, Verdict};

/// `(W1, b1, W2)`.
type Net = (DMatrix<f64>, DVector<f64>, DMatrix<f64>);

/// `L = ½ Σ_s ‖W2 tanh(W1 x_s + b1) − t_s‖²`.
fn loss(net: &Net, xs: &[DVector<f64>], ts: &[DVector<f64>]) -> f64 {
    let (w1, b1, w2) = net;
    xs.iter()
        .zip(ts)
        .map(|(x, t)| 0.5 * (w2 * (w1 * x + b1).map(f64::tanh) - t).norm_squared())
        .sum()
}

/// The hand-written backward pass, per sample (`z = W1 x + b1`, `a = tanh z`,
/// `r = W2 a − t`): `∂L/∂W2 += r aᵀ`, `δ = (W2ᵀ r) ⊙ (1 − a²)`,
/// `∂L/∂W1 += δ xᵀ`, `∂L/∂b1 += δ`. With `bug`, tanh' is written `1 − z²`:
/// evaluated at the pre-activation instead of the activation.
fn backward(net: &Net, xs: &[DVector<f64>], ts: &[DVector<f64>], bug: bool) -> Net {
    let (w1, b1, w2) = net;
    let mut g: Net = (w1 * 0.0, b1 * 0.0, w2 * 0.0);
    for (x, t) in xs.iter().zip(ts) {
        let z = w1 * x + b1;
        let a = z.map(f64::tanh);
        let r = w2 * &a - t;
        g.2 += &r * a.transpose();
        let tanh_prime = if bug { &z } else { &a }.map(|v| 1.0 - v * v);
        let delta = (w2.transpose() * &r).component_mul(&tanh_prime);
        g.0 += &delta * x.transpose();
        g.1 += delta;
    }
    g
}

fn main() {
    // A 3-4-2 network and five samples, deterministic.
    let net: Net = (
        DMatrix::from_fn(4, 3, |i, j| ((i * 3 + j) as f64 * 0.7 + 0.3).sin() * 0.9),
        DVector::from_fn(4, |i, _| (i as f64 * 1.3).cos() * 0.2),
        DMatrix::from_fn(2, 4, |i, j| ((i * 4 + j) as f64 * 1.1 + 0.5).cos() * 0.8),
    );
    let xs: Vec<DVector<f64>> = (0..5)
        .map(|s| DVector::from_fn(3, |i, _| ((s * 3 + i) as f64 * 0.9).sin()))
        .collect();
    let ts: Vec<DVector<f64>> = (0..5)
        .map(|s| DVector::from_fn(2, |i, _| ((s * 2 + i) as f64 * 0.4).cos() * 0.5))
        .collect();
    let f = |p: &Net| loss(p, &xs, &ts);

    let correct = backward(&net, &xs, &ts, false);
    let report = check_gradient(f, &net, &correct);
    println!("correct backward pass:\n{report}\n");
    assert_eq!(report.verdict(), Verdict::Correct);
    assert_gradient!(f, net, correct); // what a test would write

    let buggy = backward(&net, &xs, &ts, true);
    let report = check_gradient(f, &net, &buggy);
    println!("tanh' evaluated at the pre-activation (1 - z² instead of 1 - a²):\n{report}");
    assert_eq!(report.failing_blocks(), ["0", "1"]);
}
