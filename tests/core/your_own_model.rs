//! `assert_gradient!` on a model that is not this crate's RNN: a user's
//! two-layer tanh network with its own hand-written backward pass.
//!
//! `y = W2 tanh(W1 x + b1)`, loss `L = ½ Σ_s ‖y_s − t_s‖²` over a few samples.
//! Backward, per sample (`z = W1 x + b1`, `a = tanh z`, `r = y − t`):
//! `∂L/∂W2 += r aᵀ`, `δ = (W2ᵀ r) ⊙ (1 − a²)`, `∂L/∂W1 += δ xᵀ`, `∂L/∂b1 += δ`.

use rnn_gradcheck::GradientReport;
use std::panic::{catch_unwind, AssertUnwindSafe};

use nalgebra::{DMatrix, DVector};
use rnn_gradcheck::{assert_gradient, check_gradient, Verdict};

/// `(W1, b1, W2)`: blocks "0", "1", "2" of the check.
type Net = (DMatrix<f64>, DVector<f64>, DMatrix<f64>);

struct Data {
    xs: Vec<DVector<f64>>,
    ts: Vec<DVector<f64>>,
}

/// A 3-4-2 network and five samples, deterministic.
fn problem() -> (Net, Data) {
    let w1 = DMatrix::from_fn(4, 3, |i, j| ((i * 3 + j) as f64 * 0.7 + 0.3).sin() * 0.9);
    let b1 = DVector::from_fn(4, |i, _| (i as f64 * 1.3).cos() * 0.2);
    let w2 = DMatrix::from_fn(2, 4, |i, j| ((i * 4 + j) as f64 * 1.1 + 0.5).cos() * 0.8);
    let xs = (0..5)
        .map(|s| DVector::from_fn(3, |i, _| ((s * 3 + i) as f64 * 0.9).sin()))
        .collect();
    let ts = (0..5)
        .map(|s| DVector::from_fn(2, |i, _| ((s * 2 + i) as f64 * 0.4).cos() * 0.5))
        .collect();
    ((w1, b1, w2), Data { xs, ts })
}

fn loss(net: &Net, data: &Data) -> f64 {
    let (w1, b1, w2) = net;
    data.xs
        .iter()
        .zip(&data.ts)
        .map(|(x, t)| 0.5 * (w2 * (w1 * x + b1).map(f64::tanh) - t).norm_squared())
        .sum()
}

#[derive(Clone, Copy, PartialEq)]
enum Backward {
    Correct,
    /// tanh'(z) written as `1 − z²`: evaluated at the pre-activation `z`
    /// instead of `1 − a²` at the activation `a = tanh z`.
    TanhPrimeAtPreActivation,
    /// `∂L/∂W2 += r zᵀ`: the pre-activation where the activation belongs.
    W2FromPreActivation,
}

fn backward(net: &Net, data: &Data, how: Backward) -> Net {
    let (w1, b1, w2) = net;
    let mut g: Net = (w1 * 0.0, b1 * 0.0, w2 * 0.0);
    for (x, t) in data.xs.iter().zip(&data.ts) {
        let z = w1 * x + b1;
        let a = z.map(f64::tanh);
        let r = w2 * &a - t;
        let feeds_w2 = if how == Backward::W2FromPreActivation {
            &z
        } else {
            &a
        };
        g.2 += &r * feeds_w2.transpose();
        let at = if how == Backward::TanhPrimeAtPreActivation {
            &z
        } else {
            &a
        };
        let delta = (w2.transpose() * &r).component_mul(&at.map(|v| 1.0 - v * v));
        g.0 += &delta * x.transpose();
        g.1 += delta;
    }
    g
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a string payload")
}

#[test]
fn the_correct_backward_pass_passes() {
    let (net, data) = problem();
    let grad = backward(&net, &data, Backward::Correct);
    let before = net.clone();
    assert_gradient!(|p: &Net| loss(p, &data), net, grad);
    assert_eq!(net, before, "the caller's parameters are untouched");

    let report = check_gradient(|p: &Net| loss(p, &data), &net, &grad);
    assert_eq!(report.verdict(), Verdict::Correct, "{report}");
    let names: Vec<&str> = report.blocks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["0", "1", "2"]);
    assert_eq!(report.blocks[0].shape, (4, 3));
    assert_eq!(report.blocks[1].shape, (4, 1));
    assert_eq!(report.blocks[2].shape, (2, 4));
    assert_eq!(
        report.blocks.iter().map(|b| b.checked()).sum::<usize>(),
        12 + 4 + 8
    );
}

#[test]
#[should_panic(expected = "gradient check failed: WRONG: 0, 1")]
fn tanh_prime_at_the_pre_activation_fails_the_assertion() {
    let (net, data) = problem();
    let grad = backward(&net, &data, Backward::TanhPrimeAtPreActivation);
    assert_gradient!(|p: &Net| loss(p, &data), net, grad);
}

#[test]
fn the_panic_message_carries_the_table_naming_the_wrong_blocks() {
    let (net, data) = problem();
    let grad = backward(&net, &data, Backward::TanhPrimeAtPreActivation);
    let msg = panic_message(|| assert_gradient!(|p: &Net| loss(p, &data), net, grad));
    let mut lines = msg.lines();
    assert_eq!(lines.next(), Some("gradient check failed: WRONG: 0, 1"));
    assert!(lines.next().unwrap().starts_with("block "), "{msg}");
    let row = |name: &str| {
        msg.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{msg}"))
            .to_string()
    };
    assert!(row("0").ends_with("WRONG"), "{msg}");
    assert!(row("1").ends_with("WRONG"), "{msg}");
    assert!(row("2").ends_with("correct"), "{msg}");
    assert!(msg.contains("verdict: WRONG: 0, 1"), "{msg}");
    assert!(msg.contains("hint: 0, 1 wrong while 2 correct"), "{msg}");
}

#[test]
fn a_bug_in_the_output_layer_names_only_the_output_block() {
    let (net, data) = problem();
    let grad = backward(&net, &data, Backward::W2FromPreActivation);
    let msg = panic_message(|| assert_gradient!(|p: &Net| loss(p, &data), net, grad));
    assert!(
        msg.starts_with("gradient check failed: WRONG: 2\n"),
        "{msg}"
    );
    assert!(msg.contains("hint: 2 wrong while 0, 1 correct"), "{msg}");
}

/// `f(w) = Σ w_i³ + w_0 w_1`: `∂f/∂w_0 = 3w_0² + w_1`, `∂f/∂w_1 = 3w_1² + w_0`,
/// `∂f/∂w_i = 3w_i²` otherwise.
fn cubic(w: &[f64]) -> f64 {
    w.iter().map(|v| v.powi(3)).sum::<f64>() + w[0] * w[1]
}

fn cubic_grad(w: &[f64]) -> Vec<f64> {
    let mut g: Vec<f64> = w.iter().map(|v| 3.0 * v * v).collect();
    g[0] += w[1];
    g[1] += w[0];
    g
}

#[test]
fn vec_and_array_parameters_work() {
    let w = vec![1.0, -2.0, 0.5];
    assert_gradient!(|w: &Vec<f64>| cubic(w), w, cubic_grad(&w));

    let a = [1.0, -2.0, 0.5];
    let g: [f64; 3] = cubic_grad(&a).try_into().unwrap();
    assert_gradient!(|a: &[f64; 3]| cubic(a), a, g);

    let v = DVector::from_vec(w.clone());
    assert_gradient!(
        |v: &DVector<f64>| cubic(v.as_slice()),
        v,
        DVector::from_vec(cubic_grad(&w))
    );

    // Tuples of mixed single blocks: f(u, a) = cubic(u ++ a).
    let both = |(u, a): &(Vec<f64>, [f64; 2])| cubic(&[u.as_slice(), a].concat());
    let g = cubic_grad(&[1.0, -2.0, 0.5, 0.7]);
    assert_gradient!(
        both,
        (vec![1.0, -2.0], [0.5, 0.7]),
        (g[..2].to_vec(), [g[2], g[3]])
    );

    // A 1 % error in one entry is found and located.
    let mut bad = cubic_grad(&w);
    bad[2] *= 1.01;
    let report = check_gradient(|w: &Vec<f64>| cubic(w), &w, &bad);
    assert_eq!(report.failing_blocks(), ["0"]);
    assert_eq!(report.blocks[0].worst().unwrap().index, (2, 0));
}

#[test]
fn six_element_tuples_work() {
    type Six = (
        [f64; 1],
        [f64; 1],
        [f64; 1],
        Vec<f64>,
        DVector<f64>,
        DMatrix<f64>,
    );
    let p: Six = (
        [0.5],
        [-1.0],
        [2.0],
        vec![0.3],
        DVector::from_element(1, 0.7),
        DMatrix::from_element(1, 1, -0.4),
    );
    // f = Π of the six values: ∂f/∂θ_k = f / θ_k.
    let f = |p: &Six| p.0[0] * p.1[0] * p.2[0] * p.3[0] * p.4[0] * p.5[0];
    let v = f(&p);
    let g: Six = (
        [v / 0.5],
        [v / -1.0],
        [v / 2.0],
        vec![v / 0.3],
        DVector::from_element(1, v / 0.7),
        DMatrix::from_element(1, 1, v / -0.4),
    );
    assert_gradient!(f, p, g);
    assert_gradient!(&f, p, g,); // a borrowed loss and a trailing comma
}

#[test]
#[should_panic(
    expected = "gradient check cannot start: gradient block \"0\" (2×1) does not match parameter block \"0\" (3×1)"
)]
fn a_gradient_of_the_wrong_length_panics_clearly() {
    let w = vec![1.0, -2.0, 0.5];
    assert_gradient!(|w: &Vec<f64>| cubic(w), w, vec![3.0, 12.0]);
}

#[test]
fn an_inconclusive_check_panics_as_inconclusive_and_a_referee_settles_it() {
    // f(w) = 1 + 1e-12 Σ w_i²: the derivatives 2e-12 w_i are far below the
    // rounding noise of central differences on a loss of size 1.
    let f = |w: &Vec<f64>| 1.0 + 1e-12 * w.iter().map(|v| v * v).sum::<f64>();
    let w = vec![1.0, -2.0, 0.5];
    let g: Vec<f64> = w.iter().map(|v| 2e-12 * v).collect();

    let msg = panic_message(|| assert_gradient!(f, w, g));
    assert!(
        msg.starts_with(
            "gradient check inconclusive (not shown wrong, not certified correct): 0 not resolved"
        ),
        "{msg}"
    );
    assert!(!msg.lines().next().unwrap().contains("failed"), "{msg}");
    assert!(
        msg.contains("assert_gradient!(loss, params, grad, exact)"),
        "{msg}"
    );
    assert!(msg.contains("verdict: INCONCLUSIVE"), "{msg}");

    // The exact derivative decides it: correct ...
    let exact = |w: &Vec<f64>, _block: usize, i: usize| 2e-12 * w[i];
    assert_gradient!(f, w, g, exact);
    // ... and a wrong claim (a factor 2 off) is then wrong, not inconclusive.
    let half: Vec<f64> = g.iter().map(|v| v / 2.0).collect();
    let msg = panic_message(|| assert_gradient!(f, w, half, exact));
    assert!(
        msg.starts_with("gradient check failed: WRONG: 0\n"),
        "{msg}"
    );
}

#[test]
fn a_nan_gradient_fails_as_non_finite() {
    let w = vec![1.0, -2.0, 0.5];
    let mut g = cubic_grad(&w);
    g[1] = f64::NAN;
    let msg = panic_message(|| assert_gradient!(|w: &Vec<f64>| cubic(w), w, g));
    assert!(
        msg.starts_with("gradient check failed: NON-FINITE: NaN or infinite values in 0\n"),
        "{msg}"
    );
}
