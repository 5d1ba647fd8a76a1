//! Property tests of the two tolerance-free methods: the Taylor-remainder
//! slope ([`rnn_gradcheck::taylor`]) and the exact dual-number oracle
//! ([`rnn_gradcheck::exact`]), on the correct BPTT and on two wrong ones.
//!
//! `assert_verdicts` states what both methods must say about any gradient
//! given the blocks it gets wrong, so a bug catalogue can be checked with a
//! loop over its variants.

mod common;

use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use rnn_gradcheck::exact::{self, ExactOptions, EXACT_RTOL};
use rnn_gradcheck::methods::{check_rnn, Method, MethodOptions};
use rnn_gradcheck::random::{random_params, uniform_matrix};
use rnn_gradcheck::taylor::{self, SlopeVerdict, TaylorOptions};
use rnn_gradcheck::{bptt, bptt_truncated, Activation, Gradients, Rnn, Truncation, Verdict};

const N_IN: std::ops::RangeInclusive<usize> = 1..=8;
const N_H: std::ops::RangeInclusive<usize> = 1..=12;
const N_OUT: std::ops::RangeInclusive<usize> = 1..=4;
const T_LEN: std::ops::RangeInclusive<usize> = 1..=12;
const SCALE: std::ops::RangeInclusive<f64> = 0.05..=3.0;
/// The negative controls' ranges, as in `gradient_properties.rs`: T ≥ 2 so
/// that time matters, weights large enough that the recurrence does.
const T_LEN_CONTROL: std::ops::RangeInclusive<usize> = 2..=12;
const SCALE_CONTROL: std::ops::RangeInclusive<f64> = 0.5..=2.0;

/// The slope band of a correct gradient.
const SECOND_ORDER: std::ops::RangeInclusive<f64> = 1.8..=2.2;

/// One random problem: a network, inputs `n_in × T` and targets `n_out × T`.
#[derive(Clone, Debug)]
struct Case {
    rnn: Rnn,
    x: DMatrix<f64>,
    y: DMatrix<f64>,
}

/// Shapes and scale are drawn by proptest (so failures shrink); the values
/// come from a seeded generator.
fn case(
    t_len: std::ops::RangeInclusive<usize>,
    scale: std::ops::RangeInclusive<f64>,
) -> impl Strategy<Value = Case> {
    (
        N_IN,
        N_H,
        N_OUT,
        t_len,
        scale,
        prop_oneof![Just(Activation::Sigmoid), Just(Activation::Tanh)],
        prop::sample::select(Activation::ALL.to_vec()),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(n_in, n_h, n_out, t_len, scale, hidden, output, biases, seed)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let params = random_params(&mut rng, (n_in, n_h, n_out), scale, biases);
                let x = uniform_matrix(&mut rng, n_in, t_len, 1.0);
                let y = uniform_matrix(&mut rng, n_out, t_len, 0.5).add_scalar(0.5);
                Case {
                    rnn: Rnn::new(params, hidden, output),
                    x,
                    y,
                }
            },
        )
}

/// What the Taylor test and the exact oracle must say about `grad`, a
/// gradient that is wrong in the blocks `wrong` (where present) and right in
/// every other block:
/// * a right block: Taylor slope in [1.8, 2.2] (above it only for a
///   single-entry block whose curvature vanishes), or not measurable (too
///   flat to judge), and the exact oracle agrees to 1e-10 relative;
/// * a wrong block: the exact oracle flags it; the Taylor test says wrong,
///   with a slope below 1.5, whenever the error is within its resolution
///   along one of its directions (see `visible`), and never certifies a
///   block as correct when it is.
fn assert_verdicts(case: &Case, grad: &Gradients, wrong: &[&str]) -> Result<(), TestCaseError> {
    let mut rnn = case.rnn.clone();
    let (x, y) = (&case.x, &case.y);
    let options = TaylorOptions::default();
    let t = taylor::check(&mut rnn, grad, |r: &Rnn| r.loss(x, y), &options).expect("same blocks");
    let e = exact::check_rnn(&case.rnn, x, y, grad, &ExactOptions::default()).expect("same blocks");
    let true_grad = case.rnn.exact_gradient(x, y);
    for (b, (tb, eb)) in t.blocks.iter().zip(&e.blocks).enumerate() {
        let context = || format!("block {}\n{t}\n{e}", tb.name);
        if wrong.contains(&tb.name.as_str()) {
            prop_assert!(!eb.passed(), "the exact oracle misses {}", context());
            let g_true = true_grad.block(&tb.name).unwrap();
            let g = grad.block(&tb.name).unwrap();
            let visible = tb.directions.iter().any(|d| {
                visible(
                    &mut rnn,
                    b,
                    g_true,
                    g,
                    &d.direction,
                    |r: &Rnn| r.loss(x, y),
                    &options,
                )
            });
            if visible {
                prop_assert_eq!(tb.verdict(), SlopeVerdict::Wrong, "{}", context());
                prop_assert!(tb.slope().unwrap() < 1.5, "{}", context());
            }
        } else {
            prop_assert!(eb.passed(), "the exact oracle flags {}", context());
            prop_assert!(eb.max_rel_error() <= EXACT_RTOL, "{}", context());
            match tb.slope() {
                Some(s) if SECOND_ORDER.contains(&s) => {}
                Some(s) if s > *SECOND_ORDER.end() && tb.shape == (1, 1) => {
                    // A single entry: every direction is ±1, so all share one
                    // curvature, and where it (nearly) vanishes the remainder
                    // is third order until h is small. Then the local slopes
                    // fall from ~3 towards 2 and never below.
                    let d = tb.decisive().unwrap();
                    let fit = d.fit.unwrap();
                    let local = d.local_slopes();
                    prop_assert!(
                        local[fit.first..fit.last].iter().all(|&l| l >= 1.9),
                        "slope {s} in {}",
                        context()
                    );
                }
                Some(s) => prop_assert!(false, "slope {s} in {}", context()),
                None => prop_assert_eq!(tb.verdict(), SlopeVerdict::NotMeasurable),
            }
        }
    }
    Ok(())
}

/// Is the error of `g` along direction `d` within the Taylor test's
/// resolution? With `δ = (∇L − g)ᵀd` and curvature `c = ½ |dᵀ∇²L d|`, the
/// remainder `|c h² − δ h|` is first order below `h* = |δ| / c`, and stays
/// above the rounding tail (`tail_factor · noise`) down to
/// `h = tail_factor · noise / |δ|`: that is `log₂(δ² / (c · tail · noise))`
/// halvings of slope 1. Visible means at least 8 of them (a fit needs 4).
/// `c` is measured from the remainder of the true gradient `g_true`.
fn visible<F: FnMut(&Rnn) -> f64>(
    rnn: &mut Rnn,
    block: usize,
    g_true: &[f64],
    g: &[f64],
    d: &[f64],
    mut f: F,
    options: &TaylorOptions,
) -> bool {
    let delta: f64 = g_true
        .iter()
        .zip(g)
        .zip(d)
        .map(|((t, g), d)| (t - g) * d)
        .sum();
    let series = taylor::remainder_series(rnn, block, g_true, d, &mut f, options);
    let Some(fit) = taylor::fit_slope(&series, options) else {
        return false; // no curvature to compare with
    };
    let mid = &series[(fit.first + fit.last) / 2];
    let curvature = mid.r / (mid.h * mid.h);
    let noise = series.iter().map(|p| p.noise).fold(0.0, f64::max);
    delta * delta / (curvature * options.tail_factor * noise) >= 2f64.powi(8)
}

/// The blocks on the backward path through the hidden layer: what a bug in
/// `da_t` or `dh_next` gets wrong (the output layer's `W_hy`, `b_y` only
/// see `dz_t`).
const HIDDEN_PATH: [&str; 4] = ["W_xh", "W_hh", "b_h", "h_0"];

/// A deliberately wrong BPTT: the hidden derivative is taken at `W_xh x_t`
/// alone instead of at `a_t = W_xh x_t + W_hh h_{t-1} (+ b_h)` (one of the
/// original question's two defects), everything else correct. (The same
/// negative control as in `gradient_properties.rs`.)
fn bptt_wrong_preactivation(rnn: &Rnn, x: &DMatrix<f64>, y: &DMatrix<f64>) -> Gradients {
    let p = &rnn.params;
    let tr = rnn.forward(x, y);
    let t_len = x.ncols();
    let mut dz = &tr.y - y;
    dz.zip_apply(&tr.y, |d, y| *d *= rnn.output.derivative_from_output(y));
    let wrong_a = &p.w_xh * x; // W_xh x_t only
    let mut da = DMatrix::zeros(p.n_h(), t_len);
    let mut dh_next = DVector::zeros(p.n_h());
    for t in (1..=t_len).rev() {
        let dh = p.w_hy.transpose() * dz.column(t - 1) + &dh_next;
        let da_t = dh.zip_map(&wrong_a.column(t - 1), |dh, a| {
            dh * rnn.hidden.derivative(a)
        });
        dh_next = p.w_hh.transpose() * &da_t;
        da.set_column(t - 1, &da_t);
    }
    Gradients {
        w_xh: &da * x.transpose(),
        w_hh: &da * tr.h.columns(0, t_len).transpose(),
        w_hy: &dz * tr.h.columns(1, t_len).transpose(),
        b_h: p.b_h.as_ref().map(|_| da.column_sum()),
        b_y: p.b_y.as_ref().map(|_| dz.column_sum()),
        h_0: dh_next,
    }
}

proptest! {
    #![proptest_config(common::config(256, "proptest-regressions/taylor_exact.txt"))]

    /// The correct BPTT: every block's remainder is second order and every
    /// entry matches the exact derivative to 1e-10.
    #[test]
    fn correct_bptt_has_slope_two_and_matches_the_exact_oracle(case in case(T_LEN, SCALE)) {
        let grad = bptt(&case.rnn, &case.x, &case.y, &case.rnn.forward(&case.x, &case.y));
        assert_verdicts(&case, &grad, &[])?;
    }

    /// Negative control: one-step truncation (the original code's missing
    /// propagation through time) is first order on the hidden path, second
    /// order on the output layer.
    #[test]
    fn one_step_truncation_has_slope_one_on_the_hidden_path(case in case(T_LEN_CONTROL, SCALE_CONTROL)) {
        let tr = case.rnn.forward(&case.x, &case.y);
        let grad = bptt_truncated(&case.rnn, &case.x, &case.y, &tr, Truncation::Window(1));
        assert_verdicts(&case, &grad, &HIDDEN_PATH)?;
    }

    /// Negative control: the sigmoid derivative at the wrong pre-activation
    /// (the original code's other defect).
    #[test]
    fn wrong_preactivation_has_slope_one_on_the_hidden_path(case in case(T_LEN_CONTROL, SCALE_CONTROL)) {
        let grad = bptt_wrong_preactivation(&case.rnn, &case.x, &case.y);
        assert_verdicts(&case, &grad, &HIDDEN_PATH)?;
    }

    /// The report holds the exact gradient, bit for bit, and it agrees with BPTT.
    #[test]
    fn the_oracle_report_holds_the_exact_gradient(case in case(T_LEN, SCALE)) {
        let grad = bptt(&case.rnn, &case.x, &case.y, &case.rnn.forward(&case.x, &case.y));
        let exact = case.rnn.exact_gradient(&case.x, &case.y);
        let report = exact::check(&case.rnn.params, &grad, |d| case.rnn.loss_dual(&case.x, &case.y, d), &ExactOptions::default()).unwrap();
        prop_assert!(report.passed(), "{}", report);
        for (b, block) in report.blocks.iter().enumerate() {
            let values = exact.block(&block.name).unwrap();
            for (e, k) in block.entries.iter().zip(0..) {
                prop_assert_eq!(e.exact.to_bits(), values[k].to_bits(), "block {}", b);
            }
        }
    }
}

#[test]
fn the_oracle_catches_an_error_far_below_central_differences() {
    // A 1e-7 relative error in one entry: below central differences' 1e-5
    // tolerance and Taylor's reach, 1,000 times above the oracle's.
    let (rnn, x, y) = rnn_gradcheck::random::random_problem(3, 4, 6, 1, 20, 1.0);
    let mut grad = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
    grad.w_hh[(2, 3)] *= 1.0 + 1e-7;
    let report = check_rnn(Method::All, &rnn, &x, &y, &grad, &MethodOptions::default()).unwrap();
    let (central, taylor, exact) = (
        report.central.as_ref().unwrap(),
        report.taylor.as_ref().unwrap(),
        report.exact.as_ref().unwrap(),
    );
    assert!(central.passed(), "{report}");
    assert!(taylor.passed(), "{report}");
    assert_eq!(exact.failing_blocks(), vec!["W_hh"], "{report}");
    let worst = exact.block("W_hh").unwrap().worst().unwrap();
    assert_eq!(worst.index, (2, 3));
    approx::assert_relative_eq!(worst.rel_error, 1e-7, max_relative = 1e-3);
    assert_eq!(report.verdict(), Verdict::Wrong);
    assert_eq!(report.failing_blocks(), vec!["W_hh".to_string()]);
}

#[test]
fn the_summary_has_a_slope_or_null_and_the_exact_error_per_block() {
    let (rnn, x, y) = rnn_gradcheck::random::random_problem(11, 3, 5, 2, 8, 1.0);
    let tr = rnn.forward(&x, &y);
    let one_step = bptt_truncated(&rnn, &x, &y, &tr, Truncation::Window(1));
    let report = check_rnn(
        Method::All,
        &rnn,
        &x,
        &y,
        &one_step,
        &MethodOptions::default(),
    )
    .unwrap();
    let json = serde_json::to_value(report.summary()).unwrap();
    let blocks = json.as_array().unwrap();
    assert_eq!(blocks.len(), 6);
    for b in blocks {
        let slope = b["taylor_slope"].as_f64().unwrap();
        let exact = b["exact_max_rel_error"].as_f64().unwrap();
        match b["name"].as_str().unwrap() {
            "W_hy" | "b_y" => assert!((slope - 2.0).abs() < 0.2 && exact < 1e-10, "{b}"),
            _ => assert!((slope - 1.0).abs() < 0.2 && exact > 1e-3, "{b}"),
        }
    }
    // A block that does not influence the loss: no slope, null in JSON.
    let mut flat = rnn.clone();
    flat.params.w_hy.fill(0.0); // the output ignores the hidden state: W_xh, W_hh, b_h, h_0 are flat
    let grad = bptt(&flat, &x, &y, &flat.forward(&x, &y));
    let report = check_rnn(
        Method::Taylor,
        &flat,
        &x,
        &y,
        &grad,
        &MethodOptions::default(),
    )
    .unwrap();
    let json = serde_json::to_value(report.summary()).unwrap();
    assert!(json[0]["taylor_slope"].is_null(), "{json}");
    assert_eq!(json[0]["taylor_verdict"], "not measurable");
    assert!(json[0]["exact_max_rel_error"].is_null(), "{json}");
}
