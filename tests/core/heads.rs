//! The softmax + cross-entropy head and ReLU hidden units: the loss by hand,
//! its stability, BPTT against the exact dual-number derivative, and the
//! checker's verdicts on correct and wrong gradients.

use nalgebra::DMatrix;
use rnn_gradcheck::exact::{check_exact_rnn, ExactOptions};
use rnn_gradcheck::model::Loss;
use rnn_gradcheck::random::random_problem;
use rnn_gradcheck::{bptt, check_central, Activation, CheckOptions, GradientReport, Rnn, Verdict};

/// One-hot columns of `classes` (one class index per step).
fn one_hot(classes: &[usize], n_out: usize) -> DMatrix<f64> {
    let mut t = DMatrix::zeros(n_out, classes.len());
    for (step, &c) in classes.iter().enumerate() {
        t[(c, step)] = 1.0;
    }
    t
}

/// A tanh network with a softmax head and class-index targets, as
/// min-char-rnn writes it.
fn softmax_problem(seed: u64, t_len: usize, scale: f64) -> (Rnn, DMatrix<f64>, DMatrix<f64>) {
    let (mut rnn, x, _) = random_problem(seed, 4, 6, 5, t_len, scale);
    rnn.hidden = Activation::Tanh;
    rnn.output = Activation::Softmax;
    let classes: Vec<usize> = (0..t_len).map(|t| (t * 7 + seed as usize) % 5).collect();
    (rnn, x, one_hot(&classes, 5))
}

fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs() / scale))
}

#[test]
fn the_cross_entropy_of_one_step_is_minus_the_log_probability_of_the_target() {
    let (mut rnn, x, _) = random_problem(3, 2, 3, 3, 1, 1.0);
    rnn.output = Activation::Softmax;
    assert_eq!(rnn.loss_kind(), Loss::CrossEntropy);
    let targets = one_hot(&[2], 3);
    let trace = rnn.forward(&x, &targets);
    let z = trace.z.column(0);
    let sum: f64 = z.iter().map(|v| v.exp()).sum();
    let by_hand = -(z[2].exp() / sum).ln();
    approx::assert_relative_eq!(trace.loss, by_hand, max_relative = 1e-14);
    approx::assert_relative_eq!(trace.y.column(0).sum(), 1.0, max_relative = 1e-15);
    // A squared-error network is unchanged.
    rnn.output = Activation::Sigmoid;
    assert_eq!(rnn.loss_kind(), Loss::SquaredError);
}

#[test]
fn huge_logits_give_a_finite_loss_and_gradient() {
    // W_hy scaled so that the logits are about ±1e4: a probability
    // underflows to 0, and the loss must still be finite (not log 0).
    let (mut rnn, x, targets) = softmax_problem(11, 6, 1.0);
    rnn.params.w_hy *= 1e4;
    let trace = rnn.forward(&x, &targets);
    assert!(
        trace.y.iter().any(|&p| p == 0.0),
        "some probability underflows"
    );
    assert!(trace.loss.is_finite() && trace.loss > 0.0, "{}", trace.loss);
    let g = bptt(&rnn, &x, &targets, &trace);
    assert!(g.w_hy.iter().chain(g.w_hh.iter()).all(|v| v.is_finite()));
}

#[test]
fn bptt_of_the_softmax_head_is_the_exact_derivative() {
    for seed in 0..8 {
        let (rnn, x, targets) = softmax_problem(seed, 9, 1.0);
        let grad = bptt(&rnn, &x, &targets, &rnn.forward(&x, &targets));
        let exact = rnn.exact_gradient(&x, &targets);
        for (name, a, e) in [
            ("W_xh", grad.w_xh.as_slice(), exact.w_xh.as_slice()),
            ("W_hh", grad.w_hh.as_slice(), exact.w_hh.as_slice()),
            ("W_hy", grad.w_hy.as_slice(), exact.w_hy.as_slice()),
            ("h_0", grad.h_0.as_slice(), exact.h_0.as_slice()),
        ] {
            let d = max_rel_diff(a, e);
            assert!(d < 1e-12, "seed {seed} {name}: {d:e}");
        }
        let report = check_exact_rnn(&rnn, &x, &targets, &grad, &ExactOptions::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::Correct, "{report}");
    }
}

#[test]
fn bptt_of_relu_units_is_the_exact_derivative_away_from_the_kinks() {
    for seed in 0..8 {
        let (mut rnn, x, targets) = random_problem(seed, 3, 6, 2, 8, 1.0);
        rnn.hidden = Activation::Relu;
        rnn.output = Activation::Identity;
        let trace = rnn.forward(&x, &targets);
        assert!(
            trace.a.iter().all(|&a| a != 0.0),
            "no pre-activation at a kink"
        );
        assert!(trace.h.iter().any(|&h| h == 0.0), "some units are off");
        let grad = bptt(&rnn, &x, &targets, &trace);
        let exact = rnn.exact_gradient(&x, &targets);
        let d = max_rel_diff(grad.w_hh.as_slice(), exact.w_hh.as_slice());
        assert!(d < 1e-12, "seed {seed}: {d:e}");
        let report = check_exact_rnn(&rnn, &x, &targets, &grad, &ExactOptions::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::Correct, "{report}");
    }
}

#[test]
fn the_checker_passes_the_correct_softmax_gradient_and_fails_dy_equal_p() {
    let (mut rnn, x, targets) = softmax_problem(5, 7, 1.0);
    let trace = rnn.forward(&x, &targets);
    let grad = bptt(&rnn, &x, &targets, &trace);
    let f = |r: &Rnn| r.loss(&x, &targets);
    let report = check_central(&mut rnn, &grad, f, &CheckOptions::default()).unwrap();
    assert_eq!(report.verdict(), Verdict::Correct, "{report}");

    // The softmax gradient without the "− 1" at the target, dz_t = p_t, in
    // the output layer's gradients.
    let mut wrong = grad.clone();
    let dz = trace.y.clone();
    let h = trace.h.columns(1, trace.len());
    wrong.w_hy = &dz * h.transpose();
    wrong.b_y = rnn.params.b_y.as_ref().map(|_| dz.column_sum());
    let report = check_central(&mut rnn, &wrong, f, &CheckOptions::default()).unwrap();
    assert_eq!(report.verdict(), Verdict::Wrong, "{report}");
    assert!(report.failing_blocks().contains(&"W_hy"), "{report}");
}

#[test]
fn a_zero_target_column_is_a_step_without_loss() {
    let (rnn, x, targets) = softmax_problem(2, 5, 1.0);
    let mut masked = targets.clone();
    masked.column_mut(4).fill(0.0);
    let full = rnn.forward(&x, &targets);
    let part = rnn.forward(&x, &masked);
    let p = full.y[(targets.column(4).imax(), 4)];
    approx::assert_relative_eq!(full.loss - part.loss, -p.ln(), max_relative = 1e-12);
    let g = bptt(&rnn, &x, &masked, &part);
    assert!(g.w_hy.column(0).iter().all(|v| v.is_finite()));
}

/// `w_t`: only the last of `t_len` steps (many-to-one).
fn last_only(t_len: usize) -> nalgebra::DVector<f64> {
    nalgebra::DVector::from_fn(t_len, |t, _| f64::from(t + 1 == t_len))
}

#[test]
fn step_weights_weigh_each_steps_loss_term() {
    let (mut rnn, x, targets) = random_problem(4, 3, 5, 2, 6, 1.0);
    let trace = rnn.forward(&x, &targets);
    // Squared error, last step only: L = ½‖y_T − target_T‖².
    rnn.step_weights = Some(last_only(6));
    let r = trace.y.column(5) - targets.column(5);
    approx::assert_relative_eq!(
        rnn.loss(&x, &targets),
        0.5 * r.norm_squared(),
        max_relative = 1e-14
    );
    // A mean over the steps: L / T.
    rnn.step_weights = Some(nalgebra::DVector::from_element(6, 1.0 / 6.0));
    approx::assert_relative_eq!(
        rnn.loss(&x, &targets),
        trace.loss / 6.0,
        max_relative = 1e-14
    );
}

#[test]
fn bptt_with_step_weights_is_the_exact_derivative_and_checks_correct() {
    for seed in 0..6 {
        for softmax in [false, true] {
            let (mut rnn, x, targets) = if softmax {
                softmax_problem(seed, 7, 1.0)
            } else {
                random_problem(seed, 3, 5, 2, 7, 1.0)
            };
            let mask = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0];
            rnn.step_weights = Some(nalgebra::DVector::from_iterator(
                7,
                mask.iter().map(|m| m / 4.0),
            ));
            let grad = bptt(&rnn, &x, &targets, &rnn.forward(&x, &targets));
            let exact = rnn.exact_gradient(&x, &targets);
            let d = max_rel_diff(grad.w_hh.as_slice(), exact.w_hh.as_slice());
            assert!(d < 1e-12, "seed {seed} softmax {softmax}: {d:e}");
            let f = |r: &Rnn| r.loss(&x, &targets);
            let report = check_central(&mut rnn, &grad, f, &CheckOptions::default()).unwrap();
            assert_eq!(report.verdict(), Verdict::Correct, "{report}");
            // The unweighted gradient is wrong for the weighted loss.
            let mut plain = rnn.clone();
            plain.step_weights = None;
            let unweighted = bptt(&plain, &x, &targets, &plain.forward(&x, &targets));
            let report = check_central(&mut rnn, &unweighted, f, &CheckOptions::default()).unwrap();
            assert_eq!(report.verdict(), Verdict::Wrong, "{report}");
        }
    }
}

#[test]
fn a_cross_entropy_mask_is_a_zeroed_target_column() {
    // An independent route to the many-to-one gradient: the unweighted
    // network with every target column but the last set to zero.
    let (mut rnn, x, targets) = softmax_problem(9, 6, 1.0);
    let mut last = targets.clone();
    for t in 0..5 {
        last.column_mut(t).fill(0.0);
    }
    let by_targets = bptt(&rnn, &x, &last, &rnn.forward(&x, &last));
    rnn.step_weights = Some(last_only(6));
    let by_weights = bptt(&rnn, &x, &targets, &rnn.forward(&x, &targets));
    assert_eq!(by_targets, by_weights);
}

#[test]
fn central_differences_never_blame_a_correct_relu_gradient_when_probes_cross_kinks() {
    // Unit 0's first pre-activation is put 1e-8 above its kink (through
    // b_h), so the probes b_h[0] ± h (h ≈ 1e-5) land on both sides of it:
    // the plain quotient mixes the two one-sided slopes. The step ladder
    // re-measures the disagreement with smaller steps, which stop
    // crossing; a correct gradient is never called wrong.
    let mut crossings = 0;
    for seed in 0..12 {
        let (mut rnn, x, targets) = random_problem(seed, 3, 6, 2, 8, 1.0);
        rnn.hidden = Activation::Relu;
        rnn.output = Activation::Identity;
        let a_1 = rnn.forward(&x, &targets).a[(0, 0)];
        rnn.params.b_h.as_mut().unwrap()[0] -= a_1 - 1e-8;
        let trace = rnn.forward(&x, &targets);
        let a = trace.a[(0, 0)];
        assert!(a > 0.0 && a < 1e-7, "seed {seed}: a = {a:e}");
        let grad = bptt(&rnn, &x, &targets, &trace);
        let f = |r: &Rnn| r.loss(&x, &targets);
        // The plain quotient at h = 1e-5 really is off: it crosses the kink.
        let quotient = {
            let mut r = rnn.clone();
            let b = r.params.b_h.as_ref().unwrap()[0];
            r.params.b_h.as_mut().unwrap()[0] = b + 1e-5;
            let plus = f(&r);
            r.params.b_h.as_mut().unwrap()[0] = b - 1e-5;
            (plus - f(&r)) / 2e-5
        };
        let g = grad.b_h.as_ref().unwrap()[0];
        if (quotient - g).abs() > 1e-3 * g.abs().max(1e-3) {
            crossings += 1;
        }
        let report = check_central(&mut rnn, &grad, f, &CheckOptions::default()).unwrap();
        assert_ne!(report.verdict(), Verdict::Wrong, "seed {seed}: {report}");
    }
    assert!(
        crossings >= 6,
        "the probes crossed the kink in {crossings} of 12"
    );
}

/// Every catalogue bug's gradient on `rnn` is wrong by central differences,
/// unless [`Bug::harmless_on`] the network, where it is correct.
fn caught_unless_harmless(mut rnn: Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>, seed: u64) {
    use rnn_gradcheck::bugs::Bug;
    for bug in Bug::ALL {
        let grad = bug.gradient(&rnn, x, targets);
        let f = |r: &Rnn| r.loss(x, targets);
        let report = check_central(&mut rnn, &grad, f, &CheckOptions::default()).unwrap();
        let expected = match bug.harmless_on(&rnn, x.ncols()) {
            true => Verdict::Correct,
            false => Verdict::Wrong,
        };
        let (h, o, weighted) = (rnn.hidden, rnn.output, rnn.step_weights.is_some());
        assert_eq!(
            report.verdict(),
            expected,
            "{bug} on {h}/{o}, weighted {weighted}, seed {seed}: {report}"
        );
    }
}

#[test]
fn every_catalogue_bug_is_caught_on_softmax_and_relu_networks_unless_harmless_there() {
    for seed in 0..3 {
        let relu = {
            let (mut rnn, x, y) = random_problem(seed, 3, 5, 2, 6, 1.0);
            rnn.hidden = Activation::Relu;
            rnn.output = Activation::Tanh;
            (rnn, x, y)
        };
        for (rnn, x, targets) in [softmax_problem(seed, 6, 1.0), relu] {
            caught_unless_harmless(rnn, &x, &targets, seed);
        }
    }
}

#[test]
fn every_catalogue_bug_is_caught_on_weighted_losses_unless_harmless_there() {
    for seed in 0..3 {
        for softmax in [false, true] {
            let (mut rnn, x, targets) = if softmax {
                softmax_problem(seed, 6, 1.0)
            } else {
                random_problem(seed, 3, 5, 2, 6, 1.0)
            };
            // A mask and a mean over the counted steps.
            let mask = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
            rnn.step_weights = Some(nalgebra::DVector::from_iterator(
                6,
                mask.iter().map(|m| m / 4.0),
            ));
            caught_unless_harmless(rnn, &x, &targets, seed);
        }
    }
}

/// On ReLU units `f'(h_t) = [h_t > 0] = [a_t > 0] = f'(a_t)`, so the
/// derivative-placement variants are harmless behind a softmax or identity
/// output, and every variant `harmless_on` such a network computes the
/// correct gradient, to rounding; behind a sigmoid output they are caught.
#[test]
fn derivative_placement_is_harmless_on_relu_units_behind_a_linear_or_softmax_output() {
    use rnn_gradcheck::bugs::Bug;
    for seed in 0..3 {
        let (mut rnn, x, y) = random_problem(seed, 3, 5, 2, 6, 1.0);
        rnn.hidden = Activation::Relu;
        let (mut soft, xs, ys) = softmax_problem(seed, 6, 1.0);
        soft.hidden = Activation::Relu;
        for output in [Activation::Identity, Activation::Sigmoid] {
            rnn.output = output;
            for (rnn, x, y) in [(&rnn, &x, &y), (&soft, &xs, &ys)] {
                let truth = bptt(rnn, x, y, &rnn.forward(x, y));
                let linear = rnn.output != Activation::Sigmoid;
                for bug in [
                    Bug::DerivativeAtActivation,
                    Bug::OutputFormulaAtPreActivation,
                ] {
                    assert_eq!(
                        bug.harmless_on(rnn, 6),
                        linear,
                        "{bug} on relu/{}",
                        rnn.output
                    );
                }
                for bug in Bug::ALL.into_iter().filter(|b| b.harmless_on(rnn, 6)) {
                    let g = bug.gradient(rnn, x, y);
                    for (name, a, e) in [
                        ("W_xh", g.w_xh.as_slice(), truth.w_xh.as_slice()),
                        ("W_hh", g.w_hh.as_slice(), truth.w_hh.as_slice()),
                        ("W_hy", g.w_hy.as_slice(), truth.w_hy.as_slice()),
                        ("h_0", g.h_0.as_slice(), truth.h_0.as_slice()),
                    ] {
                        let d = max_rel_diff(a, e);
                        assert!(d < 1e-13, "{bug} on relu/{} {name}: {d:e}", rnn.output);
                    }
                }
            }
        }
        // Behind a sigmoid output, g'(y_t) is wrong: caught.
        rnn.output = Activation::Sigmoid;
        let f = |r: &Rnn| r.loss(&x, &y);
        let g = Bug::DerivativeAtActivation.gradient(&rnn, &x, &y);
        let report = check_central(&mut rnn.clone(), &g, f, &CheckOptions::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::Wrong, "{report}");
    }
}
