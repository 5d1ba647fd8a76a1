//! Numerics at the edges: saturated units, exploding and vanishing regimes,
//! non-finite values, long sequences. A verdict is never a pass on a value
//! the checker could not measure.

use nalgebra::{dmatrix, dvector, DMatrix};
use rnn_gradcheck::checker::{check_central, CheckOptions, Verdict};
use rnn_gradcheck::numerics::{
    first_non_finite, first_non_finite_gradient, loss_rounding_scale, NonFinite,
};
use rnn_gradcheck::random::random_problem;
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{bptt, bptt_truncated, Activation, Params, Rnn, Truncation};

/// Central differences alone.
fn check_rnn(
    rnn: &Rnn,
    grad: &Params,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
) -> rnn_gradcheck::CheckReport {
    let mut r = rnn.clone();
    check_central(
        &mut r,
        grad,
        |r: &Rnn| r.loss(x, y),
        &CheckOptions::default(),
    )
    .unwrap()
}

/// Central differences with the exact derivative as referee where they
/// cannot settle an entry.
fn check_refereed_rnn(
    rnn: &Rnn,
    grad: &Params,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
) -> rnn_gradcheck::CheckReport {
    let mut r = rnn.clone();
    let exact = |r: &Rnn, b, k| r.exact_entry(x, y, b, k);
    rnn_gradcheck::checker::check_refereed(
        &mut r,
        grad,
        |r: &Rnn| r.loss(x, y),
        exact,
        &CheckOptions::default(),
    )
    .unwrap()
}

/// Three hidden units driven to pre-activations `+a`, `−a` and `a / 2`.
fn saturated(a: f64) -> (Rnn, DMatrix<f64>, DMatrix<f64>) {
    let params = Params {
        w_xh: dmatrix![a; -a; a / 2.0],
        w_hh: DMatrix::from_element(3, 3, 0.1),
        w_hy: dmatrix![0.5, -0.3, 0.2],
        b_h: None,
        b_y: None,
        h_0: dvector![0.0, 0.0, 0.0],
    };
    let x = DMatrix::from_element(1, 4, 1.0);
    let y = DMatrix::from_element(1, 4, 0.3);
    (
        Rnn::new(params, Activation::Sigmoid, Activation::Sigmoid),
        x,
        y,
    )
}

#[test]
fn saturated_sigmoids_stay_finite_and_are_inconclusive_until_refereed() {
    for a in [50.0, 500.0, 1e300] {
        let (rnn, x, y) = saturated(a);
        let trace = rnn.forward(&x, &y);
        assert_eq!(first_non_finite(&trace), None, "forward at |a| = {a}");
        let grad = bptt(&rnn, &x, &y, &trace);
        assert_eq!(
            first_non_finite_gradient(&grad),
            None,
            "backward at |a| = {a}"
        );

        let report = check_rnn(&rnn, &grad, &x, &y);
        // W_xh's entries have σ'(±a) ≤ e^{-25}: below what differences resolve.
        let w_xh = report.block("W_xh").unwrap();
        assert_eq!(w_xh.not_measurable(), 3, "{report}");
        assert_eq!(w_xh.failed(), 0, "{report}");
        // W_hy sees the saturated states 0, 1: measurable and correct.
        assert!(
            report.block("W_hy").unwrap().not_measurable() < 3,
            "{report}"
        );
        // Central differences alone certify nothing they could not measure.
        assert_eq!(report.verdict(), Verdict::Inconclusive, "{report}");
        assert!(report.inconclusive_blocks().contains(&"W_xh"), "{report}");
        assert!(
            report
                .to_string()
                .contains("below the noise floor, not judged"),
            "{report}"
        );
        // The exact derivative (σ'(50) ≈ 2e-22 where y (1 − y) rounds to
        // 0) does not blame the textbook 0 either: the difference is below
        // ε·|L|, what any rounding computation may lose. Still not certified.
        let refereed = check_refereed_rnn(&rnn, &grad, &x, &y);
        assert_eq!(refereed.verdict(), Verdict::Inconclusive, "{refereed}");
        assert_eq!(
            refereed.block("W_hy").unwrap().verdict(1e-5),
            Verdict::Correct,
            "{refereed}"
        );
        // A wrong W_hy is still caught.
        let mut wrong = grad.clone();
        wrong.w_hy *= -1.0;
        let refereed = check_refereed_rnn(&rnn, &wrong, &x, &y);
        assert_eq!(refereed.failing_blocks(), vec!["W_hy"], "{refereed}");
    }
}

#[test]
fn a_fully_saturated_network_is_not_certified() {
    // Every gradient entry is below the noise floor: the verdict says so
    // instead of "correct".
    let (mut rnn, x, y) = saturated(1e300);
    rnn.params.w_hy.fill(0.0);
    rnn.params.h_0.fill(0.0);
    let y = y.map(|_| 0.5); // y_t = σ(0) = 0.5 = target: dz = 0 everywhere
    let trace = rnn.forward(&x, &y);
    let grad = bptt(&rnn, &x, &y, &trace);
    // The loss is 0 here, so its rounding comes from the residuals y − target,
    // not from L itself: the noise floor must be told (see loss_rounding_scale).
    let options = CheckOptions {
        loss_scale: loss_rounding_scale(&trace, &y),
        ..CheckOptions::default()
    };
    let mut r = rnn.clone();
    let report = check_central(&mut r, &grad, |r: &Rnn| r.loss(&x, &y), &options).unwrap();
    assert_eq!(report.verdict(), Verdict::Inconclusive, "{report}");
    assert!(!report.passed());
    // Without the loss scale the plain differences (rounding noise of ~4e-17)
    // look like errors; the escalation (Richardson, then Ridders) finds them
    // step-sensitive and still refuses to certify or accuse.
    let naive = check_rnn(&rnn, &grad, &x, &y);
    assert_eq!(naive.verdict(), Verdict::Inconclusive, "{naive}");
}

#[test]
fn an_overflowing_forward_pass_is_located_and_never_passes() {
    // Identity output with W_hy ~ 1e308: z_1 overflows to ±inf at step 1.
    let (mut rnn, x, y) = random_problem(3, 2, 4, 1, 6, 1.0);
    rnn.output = Activation::Identity;
    rnn.params.w_hy.fill(1e308);
    rnn.params.h_0.fill(0.9);
    let trace = rnn.forward(&x, &y);
    let found = first_non_finite(&trace).expect("overflow");
    assert!(
        matches!(found, NonFinite::Output { step: 1, .. }),
        "{found:?}"
    );
    assert!(
        found
            .to_string()
            .starts_with("the loss is not finite at step 1"),
        "{found}"
    );

    let grad = bptt(&rnn, &x, &y, &trace);
    assert!(first_non_finite_gradient(&grad).is_some());
    let report = check_rnn(&rnn, &grad, &x, &y);
    assert_eq!(report.verdict(), Verdict::NonFinite, "{report}");
    assert!(
        report.to_string().contains("the loss itself is not finite"),
        "{report}"
    );
}

#[test]
fn a_nan_input_is_located_at_its_step() {
    let (rnn, mut x, y) = random_problem(4, 3, 5, 2, 8, 1.0);
    x[(1, 4)] = f64::NAN; // x_5
    let found = first_non_finite(&rnn.forward(&x, &y)).expect("NaN");
    assert!(
        matches!(found, NonFinite::PreActivation { step: 5, .. }),
        "{found:?}"
    );
}

#[test]
fn exploding_weights_over_long_sequences_give_the_right_verdict() {
    // Weight scale 10, T = 200: units saturate, nothing overflows (sigmoid and
    // tanh are bounded), and the verdicts stay right in both directions.
    for hidden in [Activation::Sigmoid, Activation::Tanh] {
        let (mut rnn, x, y) = random_problem(10, 4, 8, 2, 200, 10.0);
        rnn.hidden = hidden;
        let trace = rnn.forward(&x, &y);
        assert_eq!(first_non_finite(&trace), None);
        let full = bptt(&rnn, &x, &y, &trace);
        assert_eq!(first_non_finite_gradient(&full), None);
        // Central differences alone: nothing wrong; the smallest blocks may
        // be left unresolved, and the exact referee resolves them.
        let report = check_rnn(&rnn, &full, &x, &y);
        assert!(!report.verdict().is_wrong(), "{hidden}: {report}");
        let report = check_refereed_rnn(&rnn, &full, &x, &y);
        assert_eq!(report.verdict(), Verdict::Correct, "{hidden}: {report}");

        let one = bptt_truncated(&rnn, &x, &y, &trace, Truncation::Window(1));
        let report = check_rnn(&rnn, &one, &x, &y);
        assert_eq!(report.verdict(), Verdict::Wrong, "{hidden}: {report}");
        assert!(
            report.failing_blocks().contains(&"W_hh"),
            "{hidden}: {report}"
        );
    }
}

#[test]
fn vanishing_weights_over_long_sequences_give_the_right_verdict() {
    // Weight scale 0.01, T = 200: gradients through time shrink by ~0.01/4
    // per step, yet the one-step truncation still errs measurably in W_hh.
    let (rnn, x, y) = random_problem(11, 4, 8, 2, 200, 0.01);
    let trace = rnn.forward(&x, &y);
    let full = bptt(&rnn, &x, &y, &trace);
    // h_0's gradient (~1e-8) is below what central differences resolve
    // against a loss of ~10: inconclusive, until the exact referee decides.
    let report = check_rnn(&rnn, &full, &x, &y);
    assert_eq!(report.verdict(), Verdict::Inconclusive, "{report}");
    assert_eq!(report.inconclusive_blocks(), vec!["h_0"], "{report}");
    let report = check_refereed_rnn(&rnn, &full, &x, &y);
    assert_eq!(report.verdict(), Verdict::Correct, "{report}");
    let one = bptt_truncated(&rnn, &x, &y, &trace, Truncation::Window(1));
    let report = check_rnn(&rnn, &one, &x, &y);
    assert_eq!(report.verdict(), Verdict::Wrong, "{report}");
    assert!(report.failing_blocks().contains(&"W_hh"), "{report}");
}

#[test]
fn ten_thousand_steps_of_512_units_run_forward_and_backward() {
    // BPTT is a loop, not a recursion: no stack growth with T. Memory is the
    // trace, 2 · n_h · (T + 1) · 8 bytes ≈ 82 MB here, linear in T.
    let (rnn, x, y) = random_problem(12, 8, 512, 4, 10_000, 0.05);
    let trace = rnn.forward(&x, &y);
    assert_eq!(first_non_finite(&trace), None);
    let grad = bptt(&rnn, &x, &y, &trace);
    assert_eq!(first_non_finite_gradient(&grad), None);
    assert_eq!(grad.w_hh.shape(), (512, 512));
    assert!(grad.w_hh.norm() > 0.0);
}

/// Issue 11's chaotic case: tanh networks with n_h = 16, T = 60 and weights
/// uniform in ±3, whose correct BPTT agrees with the exact derivative to
/// 1e-10 while central differences at the default step miss it (the loss
/// wiggles below the step: the linear regime starts near h = 1e-11). They
/// used to be called WRONG (25 of 30 seeds); central differences alone may
/// now only abstain, and the exact referee certifies them.
/// `cargo run --release --example chaos_check` prints the counts.
#[test]
fn correct_gradients_of_chaotic_networks_are_never_called_wrong() {
    for seed in 0..8 {
        let (mut rnn, x, y) = random_problem(seed, 3, 16, 1, 60, 3.0);
        rnn.hidden = Activation::Tanh;
        let grad = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
        let report = check_rnn(&rnn, &grad, &x, &y);
        assert!(!report.verdict().is_wrong(), "seed {seed}: {report}");
        let refereed = check_refereed_rnn(&rnn, &grad, &x, &y);
        assert_eq!(
            refereed.verdict(),
            Verdict::Correct,
            "seed {seed}: {refereed}"
        );
        // ... and a wrong one is still caught.
        let mut wrong = grad.clone();
        wrong.w_hh.transpose_mut();
        let refereed = check_refereed_rnn(&rnn, &wrong, &x, &y);
        assert!(
            refereed.failing_blocks().contains(&"W_hh"),
            "seed {seed}: {refereed}"
        );
    }
}
