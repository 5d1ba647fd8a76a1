//! The bug catalogue against the checker: every variant is caught on every
//! network it is not documented to be harmless on (a 100% catch rate), only
//! in the blocks it says it corrupts, and it is exactly right where it is
//! documented harmless; the correct pass of the same engine is the crate's
//! BPTT.

use crate::common;
use common::problems::{
    any_activation, build_problem, problem, sigmoid_or_tanh, Problem as Case, Shapes,
};
use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rnn_gradcheck::attribution;
use rnn_gradcheck::bugs::Backward;
use rnn_gradcheck::bugs::Bug;
use rnn_gradcheck::checker::{
    check_central, rounding_floor, CheckOptions, CheckReport, Parameters, Verdict,
};
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{bptt, bptt_truncated, Activation, Gradients, Rnn, Truncation};

const N_IN: std::ops::RangeInclusive<usize> = 1..=6;
const N_H: std::ops::RangeInclusive<usize> = 1..=8;
const N_OUT: std::ops::RangeInclusive<usize> = 1..=3;
const T_LEN: std::ops::RangeInclusive<usize> = 1..=8;
/// Weights uniform in `[-scale, scale]`: from mild to saturating sigmoids.
const SCALE: std::ops::RangeInclusive<f64> = 0.5..=2.0;

/// A problem of this file's sizes with `n_h` and `T` in the given ranges.
fn case(
    n_h: std::ops::RangeInclusive<usize>,
    t_len: std::ops::RangeInclusive<usize>,
    hidden: impl Strategy<Value = Activation>,
    output: impl Strategy<Value = Activation>,
) -> impl Strategy<Value = Case> {
    let shapes = Shapes {
        n_in: N_IN,
        n_h,
        n_out: N_OUT,
        t_len,
        scale: SCALE,
    };
    problem(shapes, hidden, output)
}

fn check_gradient(case: &Case, grad: &Gradients) -> CheckReport {
    let (x, y) = (&case.x, &case.y);
    check_central(
        &mut case.rnn.clone(),
        grad,
        |r: &Rnn| r.loss(x, y),
        &CheckOptions::default(),
    )
    .expect("same blocks")
}

fn true_gradient(case: &Case) -> Gradients {
    bptt(
        &case.rnn,
        &case.x,
        &case.y,
        &case.rnn.forward(&case.x, &case.y),
    )
}

/// The larger of `a` and `b`, and NaN if either is: `f64::max` (and
/// nalgebra's `max`) return the other argument for a NaN, so a maximum folded
/// with them would hide a NaN and let the comparison pass.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// `|a − b| ≤ tol · max(|a|, |b|, scale)` entry by entry, block by block.
fn assert_close(a: &Gradients, b: &Gradients, tol: f64) -> Result<(), TestCaseError> {
    for (ba, bb) in a.blocks().iter().zip(b.blocks().iter()) {
        prop_assert_eq!(ba.name, bb.name);
        let scale = ba
            .values
            .iter()
            .chain(bb.values)
            .fold(0.0f64, |m, v| nan_max(m, v.abs()));
        for (u, v) in ba.values.iter().zip(bb.values) {
            prop_assert!(
                (u - v).abs() <= tol * scale.max(1e-300),
                "{}: {} vs {}",
                ba.name,
                u,
                v
            );
        }
    }
    Ok(())
}

/// True when `bug` differs from `truth` by more than the checker can
/// resolve, with a margin of 2: some entry has `|bug − truth| > 2 (rtol ·
/// max(|bug|, |truth|) + floor)`, where `floor` is the noise floor the checker
/// would use for that entry (`NOISE_FACTOR ε |L| / h`).
fn visible(case: &Case, bug: &Gradients, truth: &Gradients) -> bool {
    let loss = case.rnn.loss(&case.x, &case.y);
    let options = CheckOptions::default();
    let params = case.rnn.blocks();
    bug.blocks()
        .iter()
        .zip(truth.blocks().iter())
        .zip(&params)
        .any(|((b, t), p)| {
            b.values
                .iter()
                .zip(t.values)
                .zip(p.values)
                .any(|((&b, &t), &theta)| {
                    let h = options.step.for_value(theta);
                    let floor = rounding_floor(loss.abs(), h, options.atol);
                    (b - t).abs() > 2.0 * (options.rtol * b.abs().max(t.abs()) + floor)
                })
        })
}

proptest! {
    #![proptest_config(common::config(192, "proptest-regressions/bug_catalogue.txt"))]

    /// The checker flags every catalogue variant (verdict Wrong) on every
    /// network the variant is not documented harmless on, whenever the bug
    /// changes the gradient by more than the checker's resolution; the
    /// failing blocks are among those the variant corrupts; the correct BPTT
    /// of the same network passes. (How rarely a bug is invisible is
    /// measured by `bugs_are_visible_on_almost_every_network`.)
    #[test]
    fn every_visible_bug_is_caught_in_the_blocks_it_corrupts(
        case in case(N_H, T_LEN, sigmoid_or_tanh(), any_activation())
    ) {
        let truth = true_gradient(&case);
        let report = check_gradient(&case, &truth);
        prop_assert!(report.passed(), "correct BPTT:\n{}", report);
        for bug in Bug::ALL {
            if bug.harmless_on(&case.rnn, case.t_len()) {
                continue;
            }
            let grad = bug.gradient(&case.rnn, &case.x, &case.y);
            if !visible(&case, &grad, &truth) {
                continue;
            }
            let report = check_gradient(&case, &grad);
            prop_assert_eq!(report.verdict(), Verdict::Wrong, "{} not caught:\n{}", bug, report);
            for block in report.failing_blocks() {
                prop_assert!(bug.corrupts().contains(&block), "{} fails {}:\n{}", bug, block, report);
            }
        }
    }
}

proptest! {
    #![proptest_config(common::config(96, "proptest-regressions/bug_catalogue.txt"))]

    /// Where a variant is documented harmless (T = 1, n_h = 1, identity
    /// activations, no biases), it computes the true gradient, to rounding:
    /// the exclusions of the property above are exact, not convenient.
    #[test]
    fn documented_harmless_cases_are_exactly_right(
        case in case(1..=2, 1..=2, prop_oneof![Just(Activation::Identity), sigmoid_or_tanh()], any_activation())
    ) {
        let truth = true_gradient(&case);
        for bug in Bug::ALL {
            if bug.harmless_on(&case.rnn, case.t_len()) {
                assert_close(&bug.gradient(&case.rnn, &case.x, &case.y), &truth, 1e-13)?;
            }
        }
    }

    /// The engine's correct pass is the crate's BPTT, and its one-step pass is
    /// `bptt_truncated(Window(1))`, to rounding (independent implementations).
    #[test]
    fn the_engine_agrees_with_the_crate_bptt(case in case(N_H, T_LEN, sigmoid_or_tanh(), any_activation())) {
        let tr = case.rnn.forward(&case.x, &case.y);
        let correct = attribution::per_step(&case.rnn, &case.x, &case.y, Backward::Correct).sum_over_steps();
        assert_close(&correct, &true_gradient(&case), 1e-13)?;
        let window = bptt_truncated(&case.rnn, &case.x, &case.y, &tr, Truncation::Window(1));
        assert_close(&Bug::DhNextDropped.gradient(&case.rnn, &case.x, &case.y), &window, 1e-13)?;
    }

    /// For every variant, the attribution by lag (plus a stateful pass's
    /// leftover) sums to the variant's gradient: the O(T²) per-loss-term
    /// propagation and the linear-time pass compute the same thing.
    #[test]
    fn lags_sum_to_the_gradient_for_every_variant(case in case(N_H, T_LEN, sigmoid_or_tanh(), any_activation())) {
        for bug in Bug::ALL {
            let g = bug.gradient(&case.rnn, &case.x, &case.y);
            let lags = attribution::by_lag(&case.rnn, &case.x, &case.y, Backward::Bug(bug));
            prop_assert_eq!(lags.leftover.is_some(), bug == Bug::StatefulDhNext);
            let total = lags.total();
            let as_grad = Gradients { w_xh: total.w_xh, w_hh: total.w_hh, w_hy: total.w_hy,
                b_h: total.b_h, b_y: total.b_y, h_0: g.h_0.clone() };
            assert_close(&as_grad, &g, 1e-12)?;
        }
    }
}

/// How often a bug that is not documented harmless still changes the
/// gradient by less than the checker can resolve (see [`visible`]): near its
/// harmless cases a bug's effect is small (tanh units near zero, where tanh
/// is nearly linear; a nearly vanishing recurrence). This fixed sample of
/// 10,000 networks of the property tests' distribution must stay within 0.1%
/// for every bug, so the exclusion in the property above stays a rare,
/// documented one; `cargo test --test core bugs_are_visible -- --nocapture`
/// prints the counts.
#[test]
fn bugs_are_visible_on_almost_every_network() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let networks = 10_000;
    let mut invisible = std::collections::BTreeMap::<&str, usize>::new();
    let mut visible_count = 0usize;
    for _ in 0..networks {
        let case = build_problem(
            (
                rng.random_range(N_IN),
                rng.random_range(N_H),
                rng.random_range(N_OUT),
            ),
            rng.random_range(T_LEN),
            rng.random_range(SCALE),
            (
                [Activation::Sigmoid, Activation::Tanh][rng.random_range(0..2)],
                [Activation::Sigmoid, Activation::Tanh, Activation::Identity]
                    [rng.random_range(0..3)],
            ),
            rng.random(),
            rng.random(),
        );
        let truth = true_gradient(&case);
        for bug in Bug::ALL {
            if !bug.harmless_on(&case.rnn, case.t_len()) {
                if visible(&case, &bug.gradient(&case.rnn, &case.x, &case.y), &truth) {
                    visible_count += 1;
                } else {
                    *invisible.entry(bug.name()).or_default() += 1;
                }
            }
        }
    }
    println!("invisible (of {networks} networks): {invisible:?}; visible pairs: {visible_count}");
    for (bug, n) in &invisible {
        assert!(
            *n * 1000 <= networks,
            "{bug} invisible on {n} of {networks} networks"
        );
    }
    assert!(visible_count > 15 * networks, "most pairs are visible");
}

/// The catalogue's variants differ from one another on a generic network:
/// no two names for the same computation. Without step weights every step
/// counts (`T' = T`), and `gradient-averaged-loss-summed` is
/// `mean-over-time` (both documented, and `same_gradient_on` says so); with
/// a mask they differ too.
#[test]
fn variants_are_distinct() {
    let (rnn, x, y) = rnn_gradcheck::random::random_problem(11, 3, 4, 2, 5, 1.0);
    let mut masked = rnn.clone();
    masked.step_weights = Some(nalgebra::dvector![1.0, 0.0, 1.0, 1.0, 1.0]);
    // Without step weights, both step-weight variants are the correct pass.
    let coincide = [
        (Bug::MeanOverTime, Bug::GradientAveragedLossSummed),
        (Bug::WeightsLeftOutOfGradient, Bug::MaskLeftOutOfGradient),
    ];
    // A summed masked loss: the mask is all the weights, so leaving it out
    // is leaving the weights out; averaged, the two differ.
    let mask_only = [(Bug::WeightsLeftOutOfGradient, Bug::MaskLeftOutOfGradient)];
    let mut averaged = masked.clone();
    averaged.step_weights = Some(nalgebra::dvector![1.0, 0.0, 1.0, 1.0, 1.0] / 4.0);
    for (rnn, expected) in [
        (&rnn, &coincide[..]),
        (&masked, &mask_only[..]),
        (&averaged, &[][..]),
    ] {
        let grads: Vec<(Bug, Gradients)> = Bug::ALL
            .iter()
            .map(|&b| (b, b.gradient(rnn, &x, &y)))
            .collect();
        let mut equal = Vec::new();
        for (i, (a, ga)) in grads.iter().enumerate() {
            for (b, gb) in &grads[i + 1..] {
                let same = a.same_gradient_on(*b, rnn, x.ncols());
                if ga == gb {
                    assert!(same, "{a} and {b} compute the same gradient");
                    equal.push((*a, *b));
                } else {
                    assert!(!same, "{a} and {b} said to coincide");
                }
            }
        }
        assert_eq!(equal, expected);
    }
}

/// The cyclic shift numpy's `targets[t-1]` makes: column `t − 1` holds
/// `target_{t-1}`, column 0 `target_T`.
fn previous_targets(y: &nalgebra::DMatrix<f64>) -> nalgebra::DMatrix<f64> {
    let t_len = y.ncols();
    nalgebra::DMatrix::from_fn(y.nrows(), t_len, |o, j| y[(o, (j + t_len - 1) % t_len)])
}

/// The new variants compute the equations their docs give, each rebuilt
/// here by another route: from the correct BPTT of other data, from the
/// correct per-step terms (`attribution::per_step`), or from the one-step
/// truncation of a shorter sequence.
#[test]
fn the_survey_variants_compute_their_documented_equations() {
    use nalgebra::DVector;
    for seed in 0..4 {
        for (hidden, output) in [
            (Activation::Tanh, Activation::Sigmoid),
            (Activation::Relu, Activation::Identity),
            (Activation::Sigmoid, Activation::Softmax),
        ] {
            let (mut rnn, x, mut y) = rnn_gradcheck::random::random_problem(seed, 3, 4, 3, 6, 1.0);
            rnn.hidden = hidden;
            rnn.output = output;
            if output == Activation::Softmax {
                // One-hot class targets.
                y = nalgebra::DMatrix::from_fn(3, 6, |o, t| {
                    f64::from(o == (t * 2 + seed as usize) % 3)
                });
            }
            let close = |a: &Gradients, b: &Gradients, what: &str| {
                let (a, b) = (a.blocks(), b.blocks());
                for (u, v) in a.iter().zip(b.iter()) {
                    let scale = v.values.iter().fold(1e-300f64, |m, x| nan_max(m, x.abs()));
                    for (p, q) in u.values.iter().zip(v.values) {
                        assert!(
                            (p - q).abs() <= 1e-12 * scale,
                            "{what} {}: {p} vs {q} ({hidden}/{output}, seed {seed})",
                            u.name
                        );
                    }
                }
            };
            let trace = rnn.forward(&x, &y);
            let truth = bptt(&rnn, &x, &y, &trace);
            let steps = attribution::per_step(&rnn, &x, &y, Backward::Correct);
            let dz = |t: usize| steps.steps()[t - 1].b_y.clone().unwrap(); // db_y^(t) = dz_t
            let da = |t: usize| steps.steps()[t - 1].b_h.clone().unwrap(); // db_h^(t) = da_t
            let h = |t: usize| trace.h.column(t).into_owned();

            // dz_t from target_{t-1}: the correct BPTT of the shifted targets
            // (the forward pass does not read the targets).
            let shifted = previous_targets(&y);
            let by_shift = bptt(&rnn, &x, &shifted, &rnn.forward(&x, &shifted));
            close(
                &Bug::TargetOffByOne.gradient(&rnn, &x, &y),
                &by_shift,
                "target-off-by-one",
            );

            // ÷ T' with a mask of T' = 4 counted steps, the loss summed.
            let mut masked = rnn.clone();
            masked.step_weights = Some(DVector::from_vec(vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0]));
            let mut quarter = bptt(&masked, &x, &y, &masked.forward(&x, &y));
            quarter.iter_blocks_mut(|_, v| v.iter_mut().for_each(|v| *v /= 4.0));
            close(
                &Bug::GradientAveragedLossSummed.gradient(&masked, &x, &y),
                &quarter,
                "gradient-averaged-loss-summed",
            );

            // dW_hh's first term: da_1 h_Tᵀ instead of da_1 h_0ᵀ.
            let mut wraps = truth.clone();
            wraps.w_hh += da(1) * (h(6) - h(0)).transpose();
            close(
                &Bug::HPrevWrapsAround.gradient(&rnn, &x, &y),
                &wraps,
                "h-prev-wraps-around",
            );

            // db_h without da_1; db_y = 0.
            let mut skips = truth.clone();
            *skips.b_h.as_mut().unwrap() -= da(1);
            close(
                &Bug::HiddenBiasSkipsFirstStep.gradient(&rnn, &x, &y),
                &skips,
                "b-h-skips-first-step",
            );
            let mut no_b_y = truth.clone();
            no_b_y.b_y.as_mut().unwrap().fill(0.0);
            close(
                &Bug::OutputBiasNeverAccumulated.gradient(&rnn, &x, &y),
                &no_b_y,
                "b-y-never-accumulated",
            );

            // No recurrence over the first T − 1 steps: the one-step
            // truncation of the sequence without its last step.
            let (x5, y5) = (x.columns(0, 5).into_owned(), y.columns(0, 5).into_owned());
            let first_five = bptt_truncated(
                &rnn,
                &x5,
                &y5,
                &rnn.forward(&x5, &y5),
                Truncation::Window(1),
            );
            close(
                &Bug::NoRecurrenceLastStepDropped.gradient(&rnn, &x, &y),
                &first_five,
                "no-recurrence-last-step-dropped",
            );

            // dW_hy = Σ_t dz_t h_{t-1}ᵀ; and Σ_t t dz_t h_tᵀ, Σ_t t dz_t.
            let mut previous = truth.clone();
            previous.w_hy = (1..=6).map(|t| dz(t) * h(t - 1).transpose()).sum();
            close(
                &Bug::PreviousStateInDwHy.gradient(&rnn, &x, &y),
                &previous,
                "h-prev-in-dw-hy",
            );
            let mut window = truth.clone();
            window.w_hy = (1..=6).map(|t| t as f64 * dz(t) * h(t).transpose()).sum();
            window.b_y = Some((1..=6).map(|t| t as f64 * dz(t)).sum());
            close(
                &Bug::OutputGradientInWindowLoop.gradient(&rnn, &x, &y),
                &window,
                "output-gradient-in-window-loop",
            );

            // f' from step t − 1's state, at T = 1 from h_0: da_1 = (W_hyᵀ dz_1) ⊙ f'_out(h_0).
            let (x1, y1) = (x.columns(0, 1).into_owned(), y.columns(0, 1).into_owned());
            let one = attribution::per_step(&rnn, &x1, &y1, Backward::Correct);
            let dz_1 = one.steps()[0].b_y.clone().unwrap();
            let da_1 = (rnn.params.w_hy.transpose() * dz_1)
                .component_mul(&h(0).map(|h| hidden.derivative_from_output(h)));
            let g = Bug::DerivativeFromPreviousStep.gradient(&rnn, &x1, &y1);
            let expected_w_xh = &da_1 * x1.column(0).transpose();
            assert!(
                (g.w_xh - &expected_w_xh).amax() <= 1e-12 * expected_w_xh.amax().max(1e-300),
                "derivative-from-previous-step at T = 1 ({hidden}/{output}, seed {seed})"
            );
            approx::assert_relative_eq!(
                g.h_0,
                rnn.params.w_hh.transpose() * &da_1,
                max_relative = 1e-12
            );
        }
    }
}
